"""History charts as small hand-written SVG: a line per series, its 95% CI as a band, change markers.

Written by hand rather than with matplotlib because a site of 64 cases has hundreds of them: this takes
well under a millisecond a chart, matplotlib about 100 ms. Tooltips are SVG ``<title>`` elements, so the
charts need no script and no network; every text from a results file is escaped.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional, Sequence

WIDTH, HEIGHT = 560, 240
LEFT, RIGHT, TOP, BOTTOM = 62, 14, 30, 46
MARKER_COLORS = {"regression": "#d03b3b", "improvement": "#2e9e52"}
MAX_DOTS = 150  # above this many points a series is drawn as a line only (page size)


@dataclass
class Series:
    label: str
    color: str
    xs: list[float]
    ys: list[float]
    lo: list[Optional[float]] = field(default_factory=list)  # the band; None where a point has no CI
    hi: list[Optional[float]] = field(default_factory=list)
    tips: list[str] = field(default_factory=list)  # tooltip of each point


@dataclass
class Marker:
    x: float
    kind: str  # regression | improvement
    tip: str


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 x 10^k) covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


_TIME_STEPS = (60, 300, 900, 3600, 6 * 3600, 86400, 2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400, 91 * 86400,
               365 * 86400)


def time_ticks(lo: float, hi: float, count: int = 6) -> tuple[list[float], str]:
    """Tick times (UTC-aligned) and the strftime format to label them."""
    year = _TIME_STEPS[-1]
    step = next((s for s in _TIME_STEPS if (hi - lo) / s <= count), year * math.ceil((hi - lo) / (count * year)))
    if step < 86400:
        fmt = "%H:%M" if hi - lo < 86400 else "%m-%d %H:%M"
    else:
        fmt = "%Y-%m-%d" if step < year else "%Y"
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) // step) + 1)], fmt


def axis_labels(ticks: Sequence[float], percent: bool = False) -> list[str]:
    """Tick labels with just enough digits to tell neighbouring ticks apart (0.0205, 0.0210, ...)."""
    scale = 100.0 if percent else 1.0
    values = [t * scale for t in ticks]
    step = min((b - a for a, b in zip(values, values[1:])), default=abs(values[0]) or 1.0) or 1.0
    power = math.floor(math.log10(step) + 1e-9)
    digits = max(0, -power + (abs(step / 10 ** power - 2.5) < 1e-6))  # 2.5 x 10^k steps need a digit more
    return [f"{v:,.{digits}f}{'%' if percent else ''}" for v in values]


def line_chart(title: str, series: Sequence[Series], *, percent: bool = False,
               categories: Optional[Sequence[str]] = None, markers: Sequence[Marker] = (),
               width: int = WIDTH, height: int = HEIGHT, empty: str = "no values") -> str:
    """One panel. x is time in epoch seconds, or the index into ``categories`` when they are given;
    ``percent``: the values are fractions shown as percentages."""
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="hchart" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-label="{_esc(title)}">',
           f'<text x="{LEFT}" y="16" font-size="12.5" font-weight="600" fill="#1d2433">{_esc(title)}</text>']
    ys = [y for s in series for y in s.ys] + [v for s in series for v in (*s.lo, *s.hi) if v is not None]
    xs = [x for s in series for x in s.xs]
    if not xs:
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="12" '
                   f'fill="#667085">{_esc(empty)}</text></svg>')
        return "".join(out)
    if categories is not None:
        x_lo, x_hi = -0.5, max(len(categories) - 0.5, 0.5)
    else:
        x_lo, x_hi = min(xs), max(xs)
        pad = (x_hi - x_lo) * 0.03 or 43200.0
        x_lo, x_hi = x_lo - pad, x_hi + pad
    y_lo, y_hi = min(ys), max(ys)
    pad = (y_hi - y_lo) * 0.08 or abs(y_hi) * 0.05 or 1.0
    y_lo, y_hi = y_lo - pad, y_hi + pad
    if min(ys) >= 0:
        y_lo = max(y_lo, 0.0)

    def px(x: float) -> float:
        return LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        return TOP + (y_hi - y) / (y_hi - y_lo) * plot_h

    ticks = nice_ticks(y_lo, y_hi)
    for tick, label in zip(ticks, axis_labels(ticks, percent)):
        y = py(tick)
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e7ec"/>'
                   f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="10.5" fill="#667085">'
                   f'{_esc(label)}</text>')
    out.append(_x_axis(categories, x_lo, x_hi, px, TOP + plot_h, width))
    out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" stroke="#888"/>')
    for marker in markers:
        x = px(marker.x)
        color = MARKER_COLORS.get(marker.kind, "#667085")
        out.append(f'<line class="change {_esc(marker.kind)}" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" '
                   f'y2="{TOP + plot_h}" stroke="{color}" stroke-width="1.5" stroke-dasharray="4 3">'
                   f'<title>{_esc(marker.tip)}</title></line>')
    for s in series:
        out.append(_series(s, px, py))
    if len(series) > 1:
        x = LEFT
        for s in series:
            out.append(f'<rect x="{x}" y="{height - 12}" width="10" height="10" fill="{_esc(s.color)}"/>'
                       f'<text x="{x + 14}" y="{height - 3}" font-size="10.5" fill="#1d2433">{_esc(s.label)}</text>')
            x += 24 + 6.2 * len(s.label)
    out.append("</svg>")
    return "".join(out)


def _x_axis(categories, x_lo, x_hi, px, base: float, width: int) -> str:
    parts = []
    if categories is not None:
        every = max(1, math.ceil(len(categories) / 8))
        for i, name in enumerate(categories):
            if i % every:
                continue
            x = px(i)
            label = name if len(name) <= 16 else name[:15] + "…"
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{base}" y2="{base + 4}" stroke="#888"/>'
                         f'<text x="{x:.1f}" y="{base + 16}" text-anchor="middle" font-size="10.5" fill="#667085">'
                         f'<title>{_esc(name)}</title>{_esc(label)}</text>')
        return "".join(parts)
    ticks, fmt = time_ticks(x_lo, x_hi)
    for tick in ticks:
        x = px(tick)
        label = datetime.fromtimestamp(tick, timezone.utc).strftime(fmt)
        anchor = "end" if x > width - RIGHT - 3.2 * len(label) else "middle"  # keep the last label inside
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{base}" y2="{base + 4}" stroke="#888"/>'
                     f'<text x="{x:.1f}" y="{base + 16}" text-anchor="{anchor}" font-size="10.5" fill="#667085">'
                     f'{_esc(label)}</text>')
    return "".join(parts)


def _series(s: Series, px, py) -> str:
    parts = []
    points = list(zip(s.xs, s.ys))
    lo = [(x, v if v is not None else y) for (x, y), v in zip(points, s.lo or [None] * len(points))]
    hi = [(x, v if v is not None else y) for (x, y), v in zip(points, s.hi or [None] * len(points))]
    if any(v is not None for v in (*s.lo, *s.hi)):
        outline = hi + lo[::-1]
        parts.append(f'<polygon class="band" fill="{_esc(s.color)}" fill-opacity="0.18" stroke="none" points="'
                     + " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in outline) + '"/>')
    parts.append(f'<polyline class="line" fill="none" stroke="{_esc(s.color)}" stroke-width="1.6" points="'
                 + " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points) + '"/>')
    if len(points) <= MAX_DOTS:
        tips = s.tips or [""] * len(points)
        for (x, y), tip in zip(points, tips):
            title = f"<title>{_esc(tip)}</title>" if tip else ""
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.6" fill="{_esc(s.color)}">{title}</circle>')
    return "".join(parts)
