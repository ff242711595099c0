"""MLPerf Server: the highest target QPS whose LoadGen run is VALID under the latency bound.

A bounded search over LoadGen runs, each a full PerformanceOnly Server test at one target QPS with
Poisson arrivals (LoadGen's schedule, from mlperf.conf's seeds). It starts at half the SUT's capacity
(one query at a time: capacity = 1 / service time), doubles or halves until a VALID and an INVALID run
bracket the answer, then bisects (geometrically) until they are within the budget's precision or the
budget's number of runs is spent. The answer is the highest target QPS that LoadGen called VALID; when
no run was VALID the result is INVALID, with LoadGen's reasons, and no QPS at all.

A run that is INVALID because even its fastest query missed the bound, while it kept up with its load,
stops the search: a lower load cannot make a query faster than the model's service time. So does reaching
the floor (1/16 of capacity, and no run longer than the profile allows: a run lasts at least
min_query_count / QPS seconds).

With ``--serve batched`` the search also covers a small grid of serving policies (max batch x timeout,
``batching.serve_grid``). The first policy gets the full search; each other one is a challenger that
starts just above the best VALID QPS so far (by the precision) and may go no lower: one INVALID run
there ends it (it cannot beat the best), a VALID one goes on up as above; while nothing is VALID yet, a
policy starts at the lowest QPS tried so far. All runs together stay within the budget's ``grid_runs``.
The answer is the highest VALID QPS of any policy, reported with the grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

LOWEST_QPS = 1.0  # never below this, whatever the floor


@dataclass
class Step:
    target_qps: float
    run: dict[str, Any]  # summary_record of the run

    @property
    def valid(self) -> bool:
        return bool(self.run.get("valid"))

    def brief(self) -> dict[str, Any]:
        latency = self.run.get("latency_ms") or {}
        return {"target_qps": self.target_qps, "result": self.run.get("result"), "qps": self.run.get("qps"),
                "p50_ms": latency.get("p50"), "p99_ms": latency.get("p99"),
                "reasons": [] if self.valid else self.run.get("reasons", [])}


@dataclass
class Search:
    steps: list[Step] = field(default_factory=list)
    stopped: str = ""  # why the search ended

    @property
    def best(self) -> Optional[Step]:
        valid = [s for s in self.steps if s.valid]
        return max(valid, key=lambda s: s.target_qps) if valid else None

    def lowest_invalid_above(self, qps: float) -> Optional[float]:
        above = [s.target_qps for s in self.steps if not s.valid and s.target_qps > qps]
        return min(above) if above else None


def _round(qps: float) -> float:
    """Three significant digits: target QPS that read well in a table and repeat exactly."""
    if qps <= 0:
        return qps
    digits = 2 - int(math.floor(math.log10(qps)))
    return round(qps, digits)


KEPT_UP = 0.9  # a run whose completions kept this share of its target QPS was not overloaded


def _hopeless(step: Step, bound_ms: float) -> bool:
    """Even the fastest query missed the bound in a run that kept up with its load. (In an overloaded run
    LoadGen falls behind its schedule and counts each query from its scheduled time, so every query can be
    late; a lower load helps there.)"""
    latency = step.run.get("latency_ms") or {}
    fastest, completed = latency.get("min"), step.run.get("qps")
    kept_up = completed is None or completed >= KEPT_UP * step.target_qps
    return not step.valid and fastest is not None and fastest > bound_ms and kept_up


def find_peak(run_at: Callable[[float], dict[str, Any]], capacity_qps: float, bound_ms: float, runs: int,
              precision: float, floor_qps: float = LOWEST_QPS, start_qps: Optional[float] = None,
              floor_reason: str = "1/16 of capacity, or the longest run the profile allows") -> Search:
    """Search the highest VALID target QPS; ``run_at(qps)`` runs LoadGen once and returns its summary record.

    It starts at ``start_qps`` (default: half the capacity) and goes no lower than ``floor_qps``, which it
    tries before it gives up.
    """
    search = Search()
    floor = max(LOWEST_QPS, floor_qps)
    ceiling = max(floor, 1.25 * capacity_qps, start_qps or 0.0)  # past capacity the queue only grows
    qps = _round(max(floor, start_qps if start_qps is not None else capacity_qps / 2))
    tried: set[float] = set()
    while len(search.steps) < runs:
        tried.add(qps)
        step = Step(qps, run_at(qps))
        search.steps.append(step)
        nxt, search.stopped = _next_qps(search, step, bound_ms, precision, ceiling)
        if search.stopped:
            break
        if search.best is None and nxt < floor:
            if _round(floor) in tried or qps <= floor:  # the floor itself was tried
                search.stopped = f"INVALID down to {qps:g} QPS; the floor is {floor:.3g} QPS ({floor_reason})"
                break
            nxt = floor
        nxt = _round(max(floor, nxt))
        if nxt in tried:
            low = search.best.target_qps if search.best else 0.0
            search.stopped = ("reached the SUT's capacity" if search.lowest_invalid_above(low) is None else
                              "no untried QPS left between the highest VALID and lowest INVALID run")
            break
        qps = nxt
    else:
        search.stopped = f"used the budget of {runs} runs"
    return search


def _next_qps(search: Search, step: Step, bound_ms: float, precision: float, ceiling: float) -> tuple[float, str]:
    """The next QPS to try, or why to stop: double up, halve down, then bisect the bracket geometrically."""
    if _hopeless(step, bound_ms):
        return 0.0, (f"even the fastest query took {step.run['latency_ms']['min']:.3g} ms, over the "
                     f"{bound_ms:g} ms bound: no load is low enough")
    best = search.best
    low = best.target_qps if best else None
    high = search.lowest_invalid_above(low if low is not None else 0.0)
    if low is not None and high is not None and high / low - 1 <= precision:
        return 0.0, f"bracketed within {100 * precision:g}%"
    if high is None:
        return (min(2 * low, ceiling) if low is not None else ceiling), ""
    if low is None:
        return high / 2, ""
    return math.sqrt(low * high), ""


@dataclass
class GridPoint:
    """One serving policy of the Server grid and its search."""

    policy: Any  # batching.ServePolicy
    search: Search
    capacity_qps: float

    def brief(self) -> dict[str, Any]:
        best = self.search.best
        return {**self.policy.describe(), "target_qps": best.target_qps if best else None,
                "runs": len(self.search.steps), "stopped": self.search.stopped,
                "capacity_qps_estimate": self.capacity_qps}


def search_grid(policies: Sequence[Any], run_at: Callable[[Any, float], dict[str, Any]],
                plan: Callable[[Any], tuple[float, float, float]], bound_ms: float, budget: Any) -> list[GridPoint]:
    """The Server search over serving policies (see the module's docstring); every policy's search, in order.

    ``plan(policy)`` gives the policy's capacity estimate, the QPS its full search starts at and its floor.
    A policy searched while nothing is VALID yet starts at the lowest QPS tried so far, where the ones before
    it failed, rather than again from the top.
    """
    points: list[GridPoint] = []
    left = budget.grid_runs if len(policies) > 1 else budget.search_runs
    for policy in policies:
        if left <= 0:
            break
        cap, start, floor = plan(policy)
        best = _best_of(points)
        runs = min(budget.search_runs, left)
        if best is None:  # nothing VALID yet: the full search
            tried = [step.target_qps for point in points for step in point.search.steps]
            search = find_peak(lambda qps: run_at(policy, qps), cap, bound_ms, runs, budget.search_precision,
                               floor, start_qps=min(tried) if tried else start)
        else:  # a challenger: it must beat the best so far
            above = _round(best.target_qps * (1 + budget.search_precision))
            search = find_peak(lambda qps: run_at(policy, qps), cap, bound_ms, runs, budget.search_precision,
                               floor_qps=above, start_qps=above,
                               floor_reason=f"the best so far, {best.target_qps:g} QPS, plus the precision: "
                                            "this policy does not beat it")
        points.append(GridPoint(policy, search, cap))
        left -= len(search.steps)
    return points


def _best_of(points: Sequence[GridPoint]) -> Optional[Step]:
    valid = [point.search.best for point in points if point.search.best is not None]
    return max(valid, key=lambda step: step.target_qps) if valid else None


def best_point(points: Sequence[GridPoint]) -> Optional[GridPoint]:
    """The policy whose search found the highest VALID QPS (the first such, on a tie)."""
    best = _best_of(points)
    return next((p for p in points if p.search.best is best), None) if best is not None else None
