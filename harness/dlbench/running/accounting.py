"""Where a run's wall time went: the timed blocks (what the numbers come from) and everything else.

Read from the records alone, so a report of any run folder can say it: the worker's phases
(``metrics.phases_s``), the seconds the harness spent around each worker (``harness_s``, running.launch) and
the run's start-up (``run_startup_s``); with the run's own wall time (the runner's), what is left is the
driver's time between cases. Overhead is everything outside the timed blocks.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

TIMED_PHASES = ("train", "extra_timing", "offline", "latency", "loadgen")  # blocks whose clock makes the numbers
CASE_PHASES = ("load", "prepare", "parity", "test_eval")  # the rest of a case: needed, but not timed
HARNESS_PARTS = {"start": "process_start", "server": "fork_servers", "worker": "worker_other",
                 "hand_back": "hand_back"}
LABELS = {"timed": "timed blocks", "load": "load", "prepare": "prepare", "parity": "parity", "test_eval": "test eval",
          "process_start": "process start", "fork_servers": "fork servers", "worker_other": "in the worker",
          "hand_back": "hand-back", "run_startup": "run start-up", "between_cases": "between cases",
          "failed_cases": "cases that failed"}
GROUPS = (("the rest of the cases", CASE_PHASES),
          ("the harness", ("process_start", "fork_servers", "worker_other", "hand_back", "run_startup",
                           "between_cases")),
          ("", ("failed_cases",)))


def account(records: Iterable[dict[str, Any]], wall_s: Optional[float] = None) -> dict[str, float]:
    """Seconds per part (``LABELS``) over ``records``; ``wall`` is ``wall_s`` when given (then
    ``between_cases`` is what no part explains), else the sum of the parts."""
    parts = dict.fromkeys(LABELS, 0.0)
    startups: dict[str, float] = {}
    for record in records:
        startups.setdefault(str(record.get("run_id")), sum((record.get("run_startup_s") or {}).values()))
        if record.get("status") == "skipped":
            continue
        if record.get("status") != "ok":
            parts["failed_cases"] += float(record.get("wall_s") or 0.0)
            continue
        phases = (record.get("metrics") or {}).get("phases_s") or {}
        parts["timed"] += sum(float(phases.get(name) or 0.0) for name in TIMED_PHASES)
        for name in CASE_PHASES:
            parts[name] += float(phases.get(name) or 0.0)
        for field, part in HARNESS_PARTS.items():
            parts[part] += float((record.get("harness_s") or {}).get(field) or 0.0)
    parts["run_startup"] = sum(startups.values())
    explained = sum(parts.values())
    if wall_s is not None:
        parts["between_cases"] = max(0.0, wall_s - explained)
    parts["wall"] = wall_s if wall_s is not None else explained
    return parts


def overhead_share(parts: dict[str, float]) -> float:
    """The share of the wall time outside the timed blocks."""
    return 1.0 - parts["timed"] / parts["wall"] if parts.get("wall") else 0.0


def time_line(parts: dict[str, float]) -> str:
    """One line for the end of a run: measured against overhead, and the overhead's parts."""
    wall = parts.get("wall") or 0.0
    if wall <= 0:
        return "time: nothing ran"
    share = overhead_share(parts)
    pieces = []
    for title, names in GROUPS:
        shown = [f"{LABELS[n]} {parts[n]:.1f}" for n in sorted(names, key=lambda n: -parts[n]) if parts[n] >= 0.05]
        total = sum(parts[n] for n in names)
        if shown:
            pieces.append(f"{title + ' ' if title else ''}{total:.0f} s ({', '.join(shown)})")
    return (f"time: {wall:.0f} s in all, {parts['timed']:.0f} s measured in timed blocks ({1 - share:.0%}), "
            f"{wall - parts['timed']:.0f} s overhead ({share:.0%}): " + "; ".join(pieces))


def time_rows(parts: dict[str, float]) -> list[list[str]]:
    """The report's table: part, seconds, share of the wall time."""
    wall = parts.get("wall") or 0.0
    rows = [["timed blocks (measured)", f"{parts['timed']:.1f}", f"{parts['timed'] / wall:.1%}" if wall else ""]]
    for title, names in GROUPS:
        for name in names:
            if parts.get(name):
                label = f"{title}: {LABELS[name]}" if title else LABELS[name]
                rows.append([label, f"{parts[name]:.1f}", f"{parts[name] / wall:.1%}" if wall else ""])
    rows.append(["in all", f"{wall:.1f}", "100%" if wall else ""])
    return rows
