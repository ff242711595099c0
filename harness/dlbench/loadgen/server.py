"""MLPerf Server: the highest target QPS whose LoadGen run is VALID under the latency bound.

A bounded search over LoadGen runs, each a full PerformanceOnly Server test at one target QPS with
Poisson arrivals (LoadGen's schedule, from mlperf.conf's seeds). It starts at half the SUT's capacity
(one query at a time: capacity = 1 / service time), doubles or halves until a VALID and an INVALID run
bracket the answer, then bisects (geometrically) until they are within the budget's precision or the
budget's number of runs is spent. The answer is the highest target QPS that LoadGen called VALID; when
no run was VALID the result is INVALID, with LoadGen's reasons, and no QPS at all.

A run that is INVALID because even its fastest query missed the bound stops the search: a lower load
cannot make a query faster than the model's service time. So does reaching the floor (1/16 of capacity,
and no run longer than the profile allows: a run lasts at least min_query_count / QPS seconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

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


def _hopeless(step: Step, bound_ms: float) -> bool:
    latency = step.run.get("latency_ms") or {}
    fastest = latency.get("min")
    return not step.valid and fastest is not None and fastest > bound_ms


def find_peak(run_at: Callable[[float], dict[str, Any]], capacity_qps: float, bound_ms: float, runs: int,
              precision: float, floor_qps: float = LOWEST_QPS) -> Search:
    """Search the highest VALID target QPS; ``run_at(qps)`` runs LoadGen once and returns its summary record."""
    search = Search()
    floor = max(LOWEST_QPS, floor_qps)
    ceiling = max(floor, 1.25 * capacity_qps)  # past capacity the queue only grows
    qps = _round(max(floor, capacity_qps / 2))
    tried: set[float] = set()
    while len(search.steps) < runs:
        tried.add(qps)
        step = Step(qps, run_at(qps))
        search.steps.append(step)
        if _hopeless(step, bound_ms):
            search.stopped = (f"even the fastest query took {step.run['latency_ms']['min']:.3g} ms, over the "
                              f"{bound_ms:g} ms bound: no load is low enough")
            break
        best = search.best
        low = best.target_qps if best else None
        high = search.lowest_invalid_above(low if low is not None else 0.0)
        if low is not None and high is not None and high / low - 1 <= precision:
            search.stopped = f"bracketed within {100 * precision:g}%"
            break
        if high is None:
            nxt = min(2 * low, ceiling) if low is not None else ceiling
        elif low is None:
            nxt = high / 2
        else:
            nxt = math.sqrt(low * high)
        if low is None and nxt < floor:
            search.stopped = (f"INVALID down to {qps:g} QPS; the floor is {floor:.3g} QPS (1/16 of capacity, "
                              f"or the longest run the profile allows)")
            break
        nxt = _round(max(floor, nxt))
        if nxt in tried:
            search.stopped = ("reached the SUT's capacity" if high is None else "no untried QPS left between "
                              "the highest VALID and lowest INVALID run")
            break
        qps = nxt
    else:
        search.stopped = f"used the budget of {runs} runs"
    return search
