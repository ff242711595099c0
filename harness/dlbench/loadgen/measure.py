"""``--inference loadgen``: the chosen MLPerf scenarios through LoadGen, after dlbench's own timing.

Runs in the worker, on the session dlbench has just trained and timed. Returns the record's flat
headline metrics (``loadgen_*``, only for runs LoadGen called VALID) and ``metrics.loadgen`` with every
scenario's parsed summary, the shared settings, and the consistency check of LoadGen's Offline and
SingleStream against dlbench's own numbers for the same case.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

from dlbench.errors import CaseFailed
from dlbench.loadgen import INSTALL, loadgen_version
from dlbench.loadgen.server import find_peak
from dlbench.loadgen.settings import SCENARIOS, Budget, budget_for, loadgen_settings
from dlbench.loadgen.summary import read_summary, summary_record
from dlbench.loadgen.sut import SessionSUT, keep_logs

MULTISTREAM_SAMPLES = 8  # mlperf.conf: *.MultiStream.samples_per_query
EXPECT_FASTER = 0.5  # expected latency told to LoadGen, as a share of the calibrated one (never over-promise)
EXPECT_OFFLINE = 1.4  # expected Offline QPS, as a multiple of dlbench's own (LoadGen then runs ~1.5x min duration)
MAX_GENERATED = 5_000_000  # queries (samples, Offline) LoadGen may pre-generate: Python holds a list of their ids
# LoadGen's and dlbench's own timing of the framework's work "agree" within this ratio (quiet 2-core VM, three
# frameworks x mlp/cnn: Offline predict-alone 0.92-1.03, SingleStream predict-alone p50 1.05-1.34) ...
TOLERANCE = 0.10
# ... or, for SingleStream, within this many ms: a query that wakes LoadGen's idle serving thread runs its
# predict 5-9 µs slower than dlbench's back-to-back queries (cold caches after the wait), whatever the model
LATENCY_SLACK_MS = 0.012


def import_loadgen() -> Any:
    """``mlperf_loadgen``, or a one-line error naming the install command."""
    try:
        import mlperf_loadgen
    except ImportError:
        raise CaseFailed(f"--inference loadgen needs MLPerf's LoadGen (mlperf_loadgen): {INSTALL}") from None
    return mlperf_loadgen


class _Scenarios:
    """Runs LoadGen tests for one case; each test's logs go to ``logs/<scenario>[-search step]/``."""

    def __init__(self, lg: Any, session: Any, x: Any, budget: Budget, logs: Path, batch_size: int) -> None:
        self.lg, self.session, self.x, self.budget, self.logs = lg, session, x, budget, logs
        self.batch_size = batch_size

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

    def sut(self, single_samples: bool, pad_batches: bool = False) -> SessionSUT:
        return SessionSUT(self.lg, self.session, self.x, self.batch_size, single_samples,
                          self.budget.performance_samples, pad_batches)

    def run(self, scenario: str, folder: str, single_samples: bool, **expect: float) -> dict[str, Any]:
        expect = self.capped(expect)
        settings = loadgen_settings(self.lg, scenario, self.budget, **expect)
        out = self.logs / folder
        sut = self.sut(single_samples, pad_batches=scenario == "offline")
        sut.run(settings, out)
        record = summary_record(read_summary(out))
        record["requested"] = dict(expect)  # what LoadGen was told to expect of this case (the rest is shared)
        record["sut_s"] = sut.times.as_dict()
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
    batch = int(own.get("infer_batch_size") or 1024)
    logs = _log_folder(case)
    runner = _Scenarios(lg, session, data.x_test, budget, logs, batch)

    own_latency = own.get("latency_ms") or {}
    own_offline = (rate_summary("infer", own["infer_blocks"], own.get("estimator") or DEFAULT_ESTIMATOR)
                   .get("infer_samples_per_s") if own.get("infer_blocks") else None)  # the record's own number
    one_s = (own_latency.get("p50") or 0) / 1000 or runner.sut(False).time_query(1)
    scenarios: dict[str, Any] = {}
    flat: dict[str, Any] = {}
    for scenario in chosen:
        if scenario == "single-stream":
            result = runner.run(scenario, scenario, True, expected_latency_s=EXPECT_FASTER * one_s)
            _headline(flat, result, loadgen_singlestream_latency_p90_ms=result.get("result_latency_ms"),
                      loadgen_singlestream_latency_p50_ms=result["latency_ms"].get("p50"))
        elif scenario == "multi-stream":
            query_s = runner.sut(False).time_query(MULTISTREAM_SAMPLES)
            result = runner.run(scenario, scenario, False, expected_latency_s=EXPECT_FASTER * query_s)
            _headline(flat, result, loadgen_multistream_latency_p99_ms=result.get("result_latency_ms"))
        elif scenario == "offline":
            rate = own_offline or batch / runner.sut(False).time_query(batch)
            result = runner.run(scenario, scenario, False, expected_qps=EXPECT_OFFLINE * rate)
            _headline(flat, result, loadgen_offline_samples_per_s=result.get("qps"))
        else:  # the service time: LoadGen's own SingleStream p50 when it ran (same SUT path), else dlbench's
            served = (scenarios.get("single-stream") or {}).get("latency_ms", {}).get("p50")
            result = _server(runner, min(one_s, served / 1000) if served else one_s, bound_ms)
            if result["valid"]:
                latency = result["run"]["latency_ms"]
                flat.update(loadgen_server_qps=result["target_qps"], loadgen_server_latency_p50_ms=latency.get("p50"),
                            loadgen_server_latency_p90_ms=latency.get("p90"),
                            loadgen_server_latency_p99_ms=latency.get("p99"))
        scenarios[scenario] = result
    details = {"version": loadgen_version(), "settings": {**budget.describe(), "server_latency_bound_ms": bound_ms,
                                                          "infer_batch_size": batch,
                                                          "multistream_samples_per_query": MULTISTREAM_SAMPLES,
                                                          "max_generated": MAX_GENERATED},
               "note": budget.note, "logs": str(logs), "scenarios": scenarios,
               "consistency": consistency(scenarios, own_offline, own_latency, own.get("infer_blocks") or [])}
    return {**flat, "loadgen": details}


def _headline(flat: dict[str, Any], result: dict[str, Any], **values: Optional[float]) -> None:
    """Headline metrics only for VALID runs: an INVALID run is reported as invalid, not as a number."""
    if result.get("valid"):
        flat.update({k: v for k, v in values.items() if v is not None})


def _server(runner: _Scenarios, one_s: float, bound_ms: float) -> dict[str, Any]:
    """The Server search; every run's logs in ``server-<step>-<qps>qps/``."""
    budget = runner.budget
    tried: list[float] = []

    def run_at(qps: float) -> dict[str, Any]:
        tried.append(qps)
        return runner.run("server", f"server-{len(tried):02d}-{qps:g}qps", True, target_qps=qps,
                          latency_bound_ms=bound_ms)

    capacity = 1.0 / max(one_s, 1e-6)
    search = find_peak(run_at, capacity, bound_ms, budget.search_runs, budget.search_precision,
                       budget.search_floor_qps(capacity))
    best = search.best
    shown = best or min(search.steps, key=lambda s: s.target_qps)  # no VALID run: the lowest load's verdict
    return {"result": "VALID" if best else "INVALID", "valid": best is not None,
            "target_qps": best.target_qps if best else None, "latency_bound_ms": bound_ms,
            "percentile": 99.0, "reasons": [] if best else shown.run.get("reasons", []),
            "run": shown.run, "search": [s.brief() for s in search.steps], "search_stopped": search.stopped,
            "capacity_qps_estimate": capacity}


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a and b else None


def consistency(scenarios: dict[str, Any], own_offline: Optional[float], own_latency: dict[str, Any],
                own_blocks: Sequence[float] = ()) -> dict[str, Any]:
    """LoadGen's Offline and SingleStream against dlbench's own numbers for the same session.

    Offline through LoadGen also pays for gathering and staging each batch and for LoadGen's per-sample
    bookkeeping; the SUT timed those apart, so the check is made on the framework's share (samples over
    predict seconds) and the overall ratio is reported beside it. LoadGen's Offline is one long total, while
    the record's own number summarises short blocks (a median by default, which steps over the blocks a
    busy machine stalled); so the check compares like with like, against the own blocks' total rate
    (all samples over all block time), and reports the ratio to the record's number too.

    A SingleStream latency through LoadGen is the framework's predict plus LoadGen's own path (its issue
    thread, the Python callback, the hand-over to the serving thread, the completion call: 20-35 µs a query
    on a 2-core VM), which is most of the latency of a model answering in tens of microseconds. The SUT times
    each query's predict alone, so the check compares that p50 with dlbench's own and reports the path.
    """
    out: dict[str, Any] = {"tolerance": TOLERANCE, "latency_slack_ms": LATENCY_SLACK_MS}
    verdicts: list[bool] = []
    words: list[str] = []
    offline = scenarios.get("offline")
    if offline and own_offline:
        sut = offline.get("sut_s") or {}
        predict_rate = sut["samples"] / sut["predict_s"] if sut.get("predict_s") else None
        total_s = (sut.get("stage_s") or 0) + (sut.get("predict_s") or 0) + (sut.get("complete_s") or 0)
        own_total = len(own_blocks) / sum(1 / r for r in own_blocks) if own_blocks and all(own_blocks) else None
        entry = {"own_samples_per_s": own_offline, "loadgen_samples_per_s": offline.get("qps"),
                 "ratio": _ratio(offline.get("qps"), own_offline),
                 "predict_samples_per_s": predict_rate, "predict_ratio": _ratio(predict_rate, own_offline),
                 "own_total_samples_per_s": own_total, "predict_ratio_total": _ratio(predict_rate, own_total),
                 "staging_share": (sut.get("stage_s") or 0) / total_s if total_s else None,
                 "bookkeeping_share": (sut.get("complete_s") or 0) / total_s if total_s else None}
        judged = entry["predict_ratio_total"] or entry["predict_ratio"]
        ok = judged is not None and abs(judged - 1) <= TOLERANCE
        entry["agree"] = ok
        verdicts.append(ok)
        out["offline"] = entry
        words.append(f"Offline {_x(entry['ratio'])} of dlbench's own ({_x(entry['predict_ratio'])} counting "
                     f"predict alone, {_x(entry['predict_ratio_total'])} against the own blocks' total rate; "
                     f"staging {_pct(entry['staging_share'])}, LoadGen bookkeeping "
                     f"{_pct(entry['bookkeeping_share'])} of the run)")
    single = scenarios.get("single-stream")
    if single and own_latency.get("p50"):
        lg_latency = single.get("latency_ms") or {}
        predict = (single.get("sut_s") or {}).get("single_predict_ms") or {}
        entry = {}
        for p in ("p50", "p90"):
            mine, theirs = own_latency.get(p), lg_latency.get(p)
            entry[f"own_{p}_ms"], entry[f"loadgen_{p}_ms"] = mine, theirs
            entry[f"ratio_{p}"] = _ratio(theirs, mine)
        mine, framework = own_latency["p50"], predict.get("p50")
        entry["predict_p50_ms"] = framework
        entry["predict_ratio_p50"] = _ratio(framework, mine)
        entry["path_ms"] = lg_latency["p50"] - framework if framework and lg_latency.get("p50") else None
        ok = framework is not None and (abs(framework / mine - 1) <= TOLERANCE
                                        or abs(framework - mine) <= LATENCY_SLACK_MS)
        entry["agree"] = ok
        verdicts.append(ok)
        out["single_stream"] = entry
        words.append(f"SingleStream p50 {_x(entry['ratio_p50'])} of dlbench's own "
                     f"({_x(entry['predict_ratio_p50'])} counting predict alone; LoadGen's issue-to-completion "
                     f"path {_us(entry['path_ms'])} a query)")
    if verdicts:
        out["agree"] = all(verdicts)
        out["verdict"] = (("agree" if out["agree"] else "DIFFER") + f" within {100 * TOLERANCE:g}%: "
                          + "; ".join(words))
    return out


def _x(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.2f}x"


def _us(value: Optional[float]) -> str:
    return "—" if value is None else f"{1000 * value:.0f} µs"


def _pct(value: Optional[float]) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def _log_folder(case: dict[str, Any]) -> Path:
    """``RUN/logs/<case log name>.loadgen/``; a temporary folder when the case has no run folder."""
    if case.get("log_dir") and case.get("log_name"):
        return Path(case["log_dir"]) / f"{case['log_name']}.loadgen"
    return Path(tempfile.mkdtemp(prefix="dlbench-loadgen-"))
