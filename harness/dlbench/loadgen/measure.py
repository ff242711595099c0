"""``--inference loadgen``: the chosen MLPerf scenarios through LoadGen, after dlbench's own timing.

Runs in the worker, on the session dlbench has just trained and timed. Returns the record's flat
headline metrics (``loadgen_*``, only for runs LoadGen called VALID) and ``metrics.loadgen`` with every
scenario's parsed summary, the shared settings, the serving policy, and the consistency check of LoadGen's
Offline and SingleStream against dlbench's own numbers for the same case (``consistency.py``), with
LoadGen's own path measured apart by the same tests run with an empty predict.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from dlbench.errors import CaseFailed
from dlbench.loadgen import INSTALL, loadgen_version
from dlbench.loadgen.batching import SINGLE, ServePolicy, serve_grid
from dlbench.loadgen.consistency import consistency
from dlbench.loadgen.server import best_point, search_grid
from dlbench.loadgen.settings import SCENARIOS, Budget, budget_for, loadgen_settings
from dlbench.loadgen.summary import read_summary, summary_record
from dlbench.loadgen.sut import Serving, SessionSUT, keep_logs

MULTISTREAM_SAMPLES = 8  # mlperf.conf: *.MultiStream.samples_per_query
EXPECT_FASTER = 0.5  # expected latency told to LoadGen, as a share of the calibrated one (never over-promise)
EXPECT_OFFLINE = 1.4  # expected Offline QPS, as a multiple of dlbench's own (LoadGen then runs ~1.5x min duration)
MAX_GENERATED = 5_000_000  # queries (samples, Offline) LoadGen may pre-generate: Python holds a list of their ids
WINDOW_BYTES = 256 * 2**20  # Offline on an accelerator: input staged ahead of its predicts (sut.py)
EMPTY_MAX_DURATION_MS = 1000  # an empty-predict run (LoadGen's own path) needs no more, whatever the profile


def import_loadgen() -> Any:
    """``mlperf_loadgen``, or a one-line error naming the install command."""
    try:
        import mlperf_loadgen
    except ImportError:
        raise CaseFailed(f"--inference loadgen needs MLPerf's LoadGen (mlperf_loadgen): {INSTALL}") from None
    return mlperf_loadgen


class _Scenarios:
    """Runs LoadGen tests for one case; each test's logs go to ``logs/<scenario>[-search step]/``."""

    def __init__(self, lg: Any, session: Any, x: Any, budget: Budget, logs: Path, batch_size: int,
                 device: str = "cpu") -> None:
        self.lg, self.session, self.x, self.budget, self.logs = lg, session, x, budget, logs
        self.batch_size = batch_size
        self.window_bytes = 0 if device == "cpu" else WINDOW_BYTES
        self.path_budget = dataclasses.replace(budget, min_duration_ms=min(budget.min_duration_ms or 600_000,
                                                                           EMPTY_MAX_DURATION_MS))
        self.warmed: set[int] = set()  # batch shapes compiled for batched serving, shared by every Server run

    def capped(self, expect: dict[str, float]) -> dict[str, float]:
        """Expectations that keep LoadGen from pre-generating more than MAX_GENERATED queries or samples
        (a minimum duration of 600 s at microseconds a sample); past it a run may miss its minimum duration,
        and LoadGen then says so."""
        duration_s = 1.1 * (self.budget.min_duration_ms or 600_000) / 1000
        out = dict(expect)
        if out.get("expected_latency_s"):
            out["expected_latency_s"] = max(out["expected_latency_s"], duration_s / MAX_GENERATED)
        if out.get("expected_qps"):
            out["expected_qps"] = min(out["expected_qps"], MAX_GENERATED / duration_s)
        return out

    def serving(self, scenario: str, policy: ServePolicy = SINGLE, empty: bool = False) -> Serving:
        offline = scenario == "offline"
        return Serving(self.batch_size, stage_samples=scenario in ("single-stream", "server"), pad_batches=offline,
                       policy=policy if scenario == "server" else SINGLE, window_bytes=self.window_bytes,
                       window_sync=offline and self.window_bytes > 0, empty=empty)

    def sut(self, serving: Serving) -> SessionSUT:
        return SessionSUT(self.lg, self.session, self.x, serving, self.budget.performance_samples, self.warmed)

    def time_query(self, samples: int) -> float:
        return self.sut(self.serving("multi-stream")).time_query(samples)

    def run(self, scenario: str, folder: str, policy: ServePolicy = SINGLE, empty: bool = False,
            **expect: float) -> dict[str, Any]:
        expect = self.capped(expect)
        settings = loadgen_settings(self.lg, scenario, self.path_budget if empty else self.budget, **expect)
        out = self.logs / folder
        sut = self.sut(self.serving(scenario, policy, empty))
        sut.run(settings, out)
        record = summary_record(read_summary(out))
        record["requested"] = dict(expect)  # what LoadGen was told to expect of this case (the rest is shared)
        record["sut_s"] = sut.times.as_dict()
        if scenario == "server":
            record["serve"] = policy.describe()
        record["logs"] = keep_logs(out)
        return record


def measure_loadgen(session: Any, case: dict[str, Any], data: Any, own: dict[str, Any]) -> dict[str, Any]:
    """Run the case's LoadGen scenarios; ``own`` holds the metrics dlbench's own timing just measured."""
    from dlbench.stats.estimators import rate_summary
    from dlbench.stats.estimators import DEFAULT_ESTIMATOR
    from dlbench.zoo import get_model

    lg = import_loadgen()
    budget = budget_for(case["profile"])
    chosen = [s for s in SCENARIOS if s in (case.get("scenarios") or SCENARIOS)]
    bound_ms = float(case.get("latency_bound_ms") or get_model(case["model"]).server_latency_ms)
    policies = serve_grid(case.get("serve") or "single", case.get("max_batch") or (),
                          case.get("batch_timeout_us") or (), bound_ms)
    batch = int(own.get("infer_batch_size") or 1024)
    logs = _log_folder(case)
    runner = _Scenarios(lg, session, data.x_test, budget, logs, batch, str(case.get("device") or "cpu"))
    own_latency = own.get("latency_ms") or {}
    own_offline = (rate_summary("infer", own["infer_blocks"], own.get("estimator") or DEFAULT_ESTIMATOR)
                   .get("infer_samples_per_s") if own.get("infer_blocks") else None)  # the record's own number
    one_s = (own_latency.get("p50") or 0) / 1000 or runner.time_query(1)
    expect = {"single-stream": {"expected_latency_s": EXPECT_FASTER * one_s},
              "offline": {"expected_qps": EXPECT_OFFLINE * (own_offline or batch / runner.time_query(batch))}}
    scenarios: dict[str, Any] = {}
    flat: dict[str, Any] = {}
    for scenario in chosen:
        if scenario == "server":  # the service time: LoadGen's SingleStream p50 when it ran (same path), else own
            served = (scenarios.get("single-stream") or {}).get("latency_ms", {}).get("p50")
            scenarios[scenario] = _server(runner, min(one_s, served / 1000) if served else one_s, bound_ms,
                                          policies, flat)
            continue
        if scenario == "multi-stream":
            expect[scenario] = {"expected_latency_s": EXPECT_FASTER * runner.time_query(MULTISTREAM_SAMPLES)}
        scenarios[scenario] = runner.run(scenario, scenario, **expect[scenario])
        _headline(flat, scenario, scenarios[scenario])
    path = {s: runner.run(s, f"{s}-empty", empty=True, **expect[s]) for s in ("single-stream", "offline")
            if s in scenarios}  # LoadGen's own path: the same test with an empty predict
    details = {"version": loadgen_version(), "note": budget.note,
               "settings": _settings(budget, bound_ms, batch, policies, runner.window_bytes), "logs": str(logs),
               "scenarios": scenarios, "loadgen_path": path,
               "consistency": consistency(scenarios, own_offline, own_latency, own.get("infer_blocks") or [], path)}
    return {**flat, "loadgen": details}


def _settings(budget: Budget, bound_ms: float, batch: int, policies: list[ServePolicy],
              window_bytes: int) -> dict[str, Any]:
    """What every framework shares, with the serving mode and the grid the Server search covers."""
    return {**budget.describe(), "server_latency_bound_ms": bound_ms, "infer_batch_size": batch,
            "multistream_samples_per_query": MULTISTREAM_SAMPLES, "max_generated": MAX_GENERATED,
            "serve": policies[0].mode, "serve_grid": [p.describe() for p in policies],
            "offline_window_bytes": window_bytes}


HEADLINES = {"single-stream": {"loadgen_singlestream_latency_p90_ms": "result_latency_ms",
                               "loadgen_singlestream_latency_p50_ms": "p50"},
             "multi-stream": {"loadgen_multistream_latency_p99_ms": "result_latency_ms"},
             "offline": {"loadgen_offline_samples_per_s": "qps"}}


def _headline(flat: dict[str, Any], scenario: str, result: dict[str, Any]) -> None:
    """Headline metrics only for VALID runs: an INVALID run is reported as invalid, not as a number."""
    if not result.get("valid"):
        return
    for name, key in HEADLINES[scenario].items():
        value = result["latency_ms"].get(key) if key.startswith("p") else result.get(key)
        if value is not None:
            flat[name] = value


def _server(runner: _Scenarios, one_s: float, bound_ms: float, policies: list[ServePolicy],
            flat: dict[str, Any]) -> dict[str, Any]:
    """The Server search over the serving grid; every run's logs in ``server-<step>-<qps>qps[-b<max>-t<us>]/``."""
    tried: list[float] = []

    def run_at(policy: ServePolicy, qps: float) -> dict[str, Any]:
        tried.append(qps)
        tag = f"-b{policy.max_batch}-t{policy.timeout_us:g}" if policy.batched else ""
        return runner.run("server", f"server-{len(tried):02d}-{qps:g}qps{tag}", policy, target_qps=qps,
                          latency_bound_ms=bound_ms)

    single = 1.0 / max(one_s, 1e-6)  # one query at a time: 1 / service time
    floor = runner.budget.search_floor_qps(single)  # the same lowest QPS for every policy

    def plan(policy: ServePolicy) -> tuple[float, float, float]:
        """Capacity, start and floor: one at a time from half its capacity; batched (capacity: full batches
        back to back) from twice what one at a time can reach, where batching starts to matter, unless that
        is more than half its capacity (LoadGen's per-query path, not the model, is then the likelier limit)."""
        if not policy.batched:
            return single, single / 2, floor
        runner.sut(runner.serving("server", policy)).warm_buckets()
        capacity = policy.max_batch / max(runner.time_query(policy.max_batch), 1e-6)
        return capacity, min(capacity / 2, 2 * single), floor

    points = search_grid(policies, run_at, plan, bound_ms, runner.budget)
    chosen = best_point(points)
    best = chosen.search.best if chosen else None
    steps = [(point, step) for point in points for step in point.search.steps]
    shown = best or min((step for _, step in steps), key=lambda s: s.target_qps)  # no VALID run: the lowest load
    result = {"result": "VALID" if best else "INVALID", "valid": best is not None,
              "target_qps": best.target_qps if best else None, "latency_bound_ms": bound_ms,
              "percentile": 99.0, "reasons": [] if best else shown.run.get("reasons", []),
              "serve": (chosen.policy if chosen else points[0].policy).describe(), "run": shown.run,
              "search": [{**step.brief(), **point.policy.describe()} for point, step in steps],
              "search_stopped": "; ".join(f"{p.policy.label()}: {p.search.stopped}" for p in points)
              if len(points) > 1 else points[0].search.stopped,
              "capacity_qps_estimate": (chosen or points[0]).capacity_qps}
    if len(policies) > 1 or policies[0].batched:
        result["grid"] = [point.brief() for point in points]
    if best:
        latency = best.run["latency_ms"]
        flat.update(loadgen_server_qps=best.target_qps, loadgen_server_latency_p50_ms=latency.get("p50"),
                    loadgen_server_latency_p90_ms=latency.get("p90"), loadgen_server_latency_p99_ms=latency.get("p99"))
    return result


def _log_folder(case: dict[str, Any]) -> Path:
    """``RUN/logs/<case log name>.loadgen/``; a temporary folder when the case has no run folder."""
    if case.get("log_dir") and case.get("log_name"):
        return Path(case["log_dir"]) / f"{case['log_name']}.loadgen"
    return Path(tempfile.mkdtemp(prefix="dlbench-loadgen-"))
