"""How numbers look in every table: few digits, thousands separators, a dash for 'no value'."""

from __future__ import annotations

import math
from typing import Any, Optional

DASH = "—"


def number(value: Any) -> Optional[float]:
    """A finite float, or None for missing, null, NaN, booleans and non-numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:  # numpy and pandas scalars
            value = float(value)
        except (TypeError, ValueError):
            return None
    value = float(value)
    return value if math.isfinite(value) else None


def rate(value: Any) -> str:
    """Samples per second: 12,345 / 123.4 / 1.23."""
    v = number(value)
    if v is None:
        return DASH
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def ms(value: Any) -> str:
    v = number(value)
    if v is None:
        return DASH
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}" if abs(v) >= 1 else f"{v:.3f}"


seconds = ms  # same magnitudes and digits


def percent(value: Any) -> str:
    """An accuracy in [0, 1] as a percentage."""
    v = number(value)
    return DASH if v is None else f"{100 * v:.1f}%"


def ratio(value: Any) -> str:
    v = number(value)
    return DASH if v is None else f"{v:.2f}×"


def change(value: Any) -> str:
    """A relative change: +4.2% / -20.0%."""
    v = number(value)
    return DASH if v is None else f"{100 * v:+.1f}%"


def interval(lo: Any, hi: Any, fmt=rate) -> str:
    a, b = number(lo), number(hi)
    return "" if a is None or b is None else f"{fmt(a)}–{fmt(b)}"
