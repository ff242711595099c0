"""The cache of measured ceilings (the CPU's, dlbench.machine.peak; a GPU's, dlbench.machine.gpu_peak): a ceiling
measured on a busy machine only comes out low, so the cache keeps the highest value seen, field by field."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional


def read_ceiling(path: Path, required: str) -> Optional[dict[str, Any]]:
    """The cached facts at ``path`` when ``required`` is a number there, else None."""
    try:
        facts = json.loads(path.read_text())
        return facts if isinstance(facts.get(required), (int, float)) else None
    except (OSError, ValueError, AttributeError):
        return None


def keep_highest(path: Path, facts: dict[str, Any], fields: tuple[str, ...], old: Optional[dict[str, Any]]) -> dict:
    """Store ``facts`` at ``path``, each of ``fields`` the higher of it and ``old``'s (a busy machine only measures
    low); returns what the cache holds now, with how many measurements it is the best of and the lowest load
    average any of them ran under (``quietest_load_1m``, where measured)."""
    best = dict(facts)
    if old:
        for key in fields:
            if old.get(key) and old[key] > (best.get(key) or 0):
                best[key] = old[key]
        best["measurements"] = int(old.get("measurements") or 1) + 1
        loads = [v for v in (old.get("quietest_load_1m"), facts.get("quietest_load_1m")) if v is not None]
        best["quietest_load_1m"] = min(loads) if loads else None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(best))
        os.replace(tmp, path)
    except OSError:  # an unwritable cache only means measuring again next run
        pass
    return best
