"""LoadGen's test settings: MLPerf's own (the ``mlperf.conf`` built into LoadGen) for ``full``, shortened
for ``smoke`` and ``quick``.

Every framework gets the same settings; only the expectations LoadGen asks the SUT for (expected
latency, expected Offline QPS, the Server target QPS being searched) come from the case's own
measurements, and those are recorded next to the result. A shortened run lowers LoadGen's minimum
duration (MLPerf: 600 s per scenario) and raises the Server's minimum query count so that LoadGen's
early-stopping rule can pass in a short run; its record says "not MLPerf-valid (shortened)".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from dlbench.errors import UnknownName

SCENARIOS = ("single-stream", "multi-stream", "server", "offline")  # the order they run in
LOADGEN_NAMES = {"single-stream": "SingleStream", "multi-stream": "MultiStream", "server": "Server",
                 "offline": "Offline"}
CONFIG_MODEL = "dlbench"  # not an MLPerf model: only mlperf.conf's wildcard rules (*.*.key) apply
SHORTENED = "not MLPerf-valid (shortened)"
MLPERF_DEFAULTS = "MLPerf's defaults (mlperf.conf built into LoadGen)"


@dataclass(frozen=True)
class Budget:
    """How long each LoadGen test runs and how hard the Server search tries, for one dlbench profile."""

    profile: str
    min_duration_ms: Optional[int]  # None: MLPerf's (600 s)
    server_min_query_count: Optional[int]  # None: MLPerf's; >= 662 lets early stopping pass at p99
    search_runs: int  # Server: at most this many LoadGen runs
    search_precision: float  # Server: stop when the lowest invalid QPS is within this of the highest valid
    search_max_run_s: Optional[float] = None  # Server: never try a QPS so low that one run lasts longer
    grid_runs: int = 0  # Server, --serve batched: at most this many runs over the whole grid of policies
    performance_samples: int = 1024  # samples LoadGen loads (the QSL's performance set; resnet50's 1024)

    @property
    def shortened(self) -> bool:
        return self.min_duration_ms is not None or self.server_min_query_count is not None

    @property
    def note(self) -> str:
        return SHORTENED if self.shortened else MLPERF_DEFAULTS

    def search_floor_qps(self, capacity_qps: float) -> float:
        """The lowest target QPS the Server search tries: 1/16 of capacity (below it, a p99 over the bound is
        the model's tail, not queueing), and never a run longer than ``search_max_run_s``."""
        floor = capacity_qps / 16
        if self.search_max_run_s and self.server_min_query_count:
            floor = max(floor, self.server_min_query_count / self.search_max_run_s)
        return floor

    def describe(self) -> dict[str, Any]:
        """The settings every framework shares, for the record."""
        return {"profile": self.profile, "mlperf_valid_settings": not self.shortened, "note": self.note,
                "min_duration_ms": self.min_duration_ms if self.shortened else "mlperf.conf (600000)",
                "server_min_query_count": self.server_min_query_count or "mlperf.conf",
                "server_search_runs": self.search_runs, "server_search_precision": self.search_precision,
                "server_search_max_run_s": self.search_max_run_s, "server_grid_runs": self.grid_runs,
                "performance_sample_count": self.performance_samples, "mode": "PerformanceOnly",
                "config": "mlperf.conf built into LoadGen, model '*' rules"}


BUDGETS: dict[str, Budget] = {
    budget.profile: budget
    for budget in (
        Budget("smoke", min_duration_ms=200, server_min_query_count=662, search_runs=5, search_precision=0.15,
               search_max_run_s=10.0, grid_runs=8),
        Budget("quick", min_duration_ms=1000, server_min_query_count=1024, search_runs=7, search_precision=0.05,
               search_max_run_s=30.0, grid_runs=14),
        Budget("full", min_duration_ms=None, server_min_query_count=None, search_runs=10, search_precision=0.02,
               grid_runs=20),
    )
}


def budget_for(profile: str) -> Budget:
    try:
        return BUDGETS[profile]
    except KeyError:
        raise UnknownName("profile", profile, BUDGETS) from None


def loadgen_settings(lg: Any, scenario: str, budget: Budget, *, expected_latency_s: float = 0.0,
                  expected_qps: float = 0.0, target_qps: float = 0.0, latency_bound_ms: float = 0.0) -> Any:
    """A ``mlperf_loadgen.TestSettings`` for one performance run of ``scenario``.

    Starts from MLPerf's mlperf.conf (seeds, percentiles, MultiStream's 8 samples per query, 600 s minimum
    duration, the Server's 10 ms default bound) and applies the budget and the case's expectations.
    """
    name = LOADGEN_NAMES[scenario]
    settings = lg.TestSettings()
    if settings.FromConfig("", CONFIG_MODEL, name, 0) != 0:
        raise RuntimeError(f"LoadGen could not load its built-in mlperf.conf for {name}")
    settings.scenario = getattr(lg.TestScenario, name)
    settings.mode = lg.TestMode.PerformanceOnly
    if budget.min_duration_ms is not None:
        settings.min_duration_ms = budget.min_duration_ms
    if scenario == "single-stream":
        settings.single_stream_expected_latency_ns = max(1, int(expected_latency_s * 1e9))
    elif scenario == "multi-stream":
        settings.multi_stream_expected_latency_ns = max(1, int(expected_latency_s * 1e9))
    elif scenario == "offline":
        settings.offline_expected_qps = max(1.0, expected_qps)
    elif scenario == "server":
        if budget.server_min_query_count is not None:
            settings.min_query_count = budget.server_min_query_count
        settings.server_target_qps = target_qps
        settings.server_target_latency_ns = int(latency_bound_ms * 1e6)
    return settings
