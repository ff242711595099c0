"""LoadGen's pieces one by one: the SUT and summary parser on real in-process LoadGen runs, the Server
search's bookkeeping, and the command line's one-line errors."""

from __future__ import annotations

import time
from pathlib import Path

import mlperf_loadgen as lg
import numpy as np
import pytest

from conftest import run_dlbench
from dlbench.loadgen.consistency import LATENCY_SLACK_MS, TOLERANCE, consistency
from dlbench.loadgen.server import find_peak
from dlbench.loadgen.settings import BUDGETS, SCENARIOS, loadgen_settings
from dlbench.loadgen.summary import parse_summary, read_summary, summary_record
from dlbench.loadgen.sut import Serving, SessionSUT


class SleepySession:
    """The session protocol's inference half, over numpy: predict takes 0.5 ms, records every batch size."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.staged = 0

    def stage(self, x):
        self.staged += 1
        return np.array(x)

    def predict(self, staged):
        self.batches.append(len(staged))
        time.sleep(0.0005)
        return staged

    def sync(self) -> None:
        pass


def _run(scenario: str, tmp_path: Path, **expect):
    session = SleepySession()
    x = np.zeros((300, 4, 4, 1), dtype=np.float32)
    serving = Serving(64, stage_samples=scenario in ("single-stream", "server"), pad_batches=scenario == "offline")
    sut = SessionSUT(lg, session, x, serving, performance_samples=128)
    sut.run(loadgen_settings(lg, scenario, BUDGETS["smoke"], **expect), tmp_path / scenario)
    return session, sut, read_summary(tmp_path / scenario)


@pytest.mark.parametrize("scenario, expect", [("single-stream", {"expected_latency_s": 0.0004}),
                                              ("multi-stream", {"expected_latency_s": 0.0004}),
                                              ("offline", {"expected_qps": 100_000}),
                                              ("server", {"target_qps": 400, "latency_bound_ms": 100})])
def test_a_real_loadgen_run_parses_into_the_record(scenario, expect, tmp_path):
    session, sut, summary = _run(scenario, tmp_path, **expect)
    record = summary_record(summary)
    assert record["scenario"] == {"single-stream": "SingleStream", "multi-stream": "MultiStream",
                                  "offline": "Offline", "server": "Server"}[scenario]
    assert record["result"] == "VALID", record["reasons"]
    assert record["min_duration_ms"] == 200 and record["performance_sample_count"] == 128
    assert record["seeds"]["schedule_rng_seed"] == "16159082839903944936"  # mlperf.conf's, not LoadGen's 0
    assert record["latency_ms"]["min"] >= 0.5  # every query waited for predict
    assert record["latency_ms"]["p50"] <= record["latency_ms"]["p90"] <= record["latency_ms"]["p99"]
    assert sut.times.queries >= 1 and sut.times.predict_s > 0
    if scenario == "multi-stream":
        assert record["samples_per_query"] == 8 and set(session.batches[-50:]) == {8}
    if scenario == "offline":
        assert set(session.batches) == {64}  # the last, partial batch padded: no new shape to compile
        assert record["qps"] > 0 and record["samples_per_query"] == sut.times.samples
    if scenario == "server":
        assert record["target_qps"] == 400 and record["target_latency_ms"] == 100.0  # loose: a busy CPU stalls
        assert record["qps"] == pytest.approx(400, rel=0.2)
    if scenario in ("single-stream", "server"):
        assert session.staged == 128 and set(session.batches) == {1}  # staged once per loaded sample, off the clock
        timed = sut.times.as_dict()["single_predict_ms"]
        assert timed["count"] == sut.times.queries
        assert 0.5 <= timed["p50"] <= record["latency_ms"]["p50"]  # the sleep, inside LoadGen's latency


def test_a_failing_predict_lets_loadgen_finish_and_then_raises(tmp_path):
    class Failing(SleepySession):
        def predict(self, staged):
            if len(self.batches) >= 20:
                raise ValueError("predict broke")
            return super().predict(staged)

    session = Failing()
    sut = SessionSUT(lg, session, np.zeros((50, 2), dtype=np.float32), Serving(8, stage_samples=True),
                     performance_samples=50)
    with pytest.raises(ValueError, match="predict broke"):
        sut.run(loadgen_settings(lg, "single-stream", BUDGETS["smoke"], expected_latency_s=0.0004), tmp_path)
    assert (tmp_path / "mlperf_log_summary.txt").exists()  # LoadGen's test ran to its end


def _single(loadgen_p50: float, predict_p50: float) -> dict:
    return {"latency_ms": {"p50": loadgen_p50, "p90": loadgen_p50 * 1.1},
            "sut_s": {"single_predict_ms": {"p50": predict_p50}}}


def test_consistency_judges_the_framework_share_and_reports_loadgen_path():
    own = {"p50": 1.0, "p90": 1.1}
    # LoadGen's latency twice dlbench's own, all of it LoadGen's path: the framework agrees
    check = consistency({"single-stream": _single(2.0, 1.02)}, None, own)
    single = check["single_stream"]
    assert check["agree"] and single["ratio_p50"] == pytest.approx(2.0)
    assert single["predict_ratio_p50"] == pytest.approx(1.02) and single["path_ms"] == pytest.approx(0.98)
    assert "LoadGen's issue-to-completion path 980 µs" in check["verdict"]
    # the framework itself slower through LoadGen, beyond the tolerance and the slack: differs
    slow = 1.0 + 2 * TOLERANCE
    check = consistency({"single-stream": _single(slow + 0.03, slow)}, None, own)
    assert not check["agree"] and check["verdict"].startswith("DIFFER")
    # tens of microseconds: the absolute slack decides
    fast = {"p50": 0.015, "p90": 0.016}
    assert consistency({"single-stream": _single(0.045, 0.015 + LATENCY_SLACK_MS / 2)}, None, fast)["agree"]
    assert not consistency({"single-stream": _single(0.06, 0.015 + 2 * LATENCY_SLACK_MS)}, None, fast)["agree"]
    # without the SUT's own timing there is nothing to judge the framework on
    assert not consistency({"single-stream": {"latency_ms": {"p50": 1.0}, "sut_s": {}}}, None, own)["agree"]


def test_consistency_of_offline_counts_predict_alone_against_the_own_total_rate():
    sut = {"samples": 10_000, "predict_s": 1.0, "stage_s": 0.25, "complete_s": 0.25}
    check = consistency({"offline": {"qps": 6_000.0, "sut_s": sut}}, 10_000.0, {}, [9_000.0, 11_000.0])
    offline = check["offline"]
    assert offline["ratio"] == pytest.approx(0.6) and offline["predict_ratio"] == pytest.approx(1.0)
    assert offline["own_total_samples_per_s"] == pytest.approx(2 / (1 / 9_000 + 1 / 11_000))
    assert offline["staging_share"] == pytest.approx(0.25 / 1.5) and check["agree"]
    halved = {**sut, "predict_s": 2.0}
    assert not consistency({"offline": {"qps": 4_000.0, "sut_s": halved}}, 10_000.0, {}, [10_000.0])["agree"]


def test_summary_parser_reads_invalid_runs_and_wrapped_bullets():
    text = """================================================
MLPerf Results Summary
================================================
SUT name : PySUT
Scenario : Server
Mode     : PerformanceOnly
Completed samples per second    : 101.05
Result is : INVALID
  Performance constraints satisfied : NO
  Min duration satisfied : Yes
  Min queries satisfied : Yes
  Early stopping satisfied: NO
Recommendations:
 * Reduce target QPS to improve latency.
Early Stopping Result:
 * Run unsuccessful.
 * Would need to run at least 405 more queries,
 with the run being successful if every additional
 query were under latency.

================================================
Additional Stats
================================================
Scheduled samples per second : 101.50
Min latency (ns)                : 2143382
50.00 percentile latency (ns)   : 2267391
99.00 percentile latency (ns)   : 5776576
99.90 percentile latency (ns)   : 5776576

================================================
Test Parameters Used
================================================
samples_per_query : 1
target_qps : 100
target_latency (ns): 10000000
min_duration (ms): 500
qsl_rng_seed : 2085463073848966840

1 warning encountered. See detailed log.

No errors encountered during test.
"""
    record = summary_record(parse_summary(text))
    assert record["result"] == "INVALID" and record["valid"] is False
    assert record["checks"] == {"Performance constraints satisfied": False, "Min duration satisfied": True,
                                "Min queries satisfied": True, "Early stopping satisfied": False}
    assert record["reasons"][:2] == ["Performance constraints satisfied: NO", "Early stopping satisfied: NO"]
    assert ("Would need to run at least 405 more queries, with the run being successful if every additional "
            "query were under latency.") in record["reasons"]
    assert "1 warning encountered. See detailed log." in record["reasons"]
    assert record["qps"] == 101.05 and record["scheduled_qps"] == 101.5 and record["target_qps"] == 100
    assert record["latency_ms"] == {"p50": 2.267391, "p99": 5.776576, "p99.9": 5.776576, "min": 2.143382}
    assert record["target_latency_ms"] == 10.0 and record["min_duration_ms"] == 500
    assert record["seeds"] == {"qsl_rng_seed": "2085463073848966840"}


def _queue(capacity: float, knee: float, calls: list[float]):
    """A pretend SUT for the search's bookkeeping: VALID below ``knee`` QPS, p50 rising with load."""

    def run_at(qps: float) -> dict:
        calls.append(qps)
        return {"valid": qps <= knee, "result": "VALID" if qps <= knee else "INVALID",
                "latency_ms": {"min": 1.0, "p50": 1 + qps / capacity, "p99": 5.0}, "reasons": []}

    return run_at


def test_the_server_search_brackets_the_knee_within_its_precision():
    calls: list[float] = []
    search = find_peak(_queue(1000, 612, calls), capacity_qps=1000, bound_ms=10, runs=10, precision=0.05)
    assert calls[0] == 500  # half the capacity first
    assert 0.95 * 612 <= search.best.target_qps <= 612
    assert search.lowest_invalid_above(search.best.target_qps) / search.best.target_qps - 1 <= 0.05
    assert search.stopped.startswith("bracketed") and len(calls) <= 10


def test_the_server_search_is_bounded_and_goes_down_when_nothing_is_valid():
    calls: list[float] = []
    search = find_peak(_queue(1000, 20, calls), capacity_qps=1000, bound_ms=10, runs=4, precision=0.01)
    assert calls == [500, 250, 125, 62.5] and search.best is None and "budget of 4" in search.stopped


def test_the_server_search_never_goes_below_its_floor():
    calls: list[float] = []
    search = find_peak(_queue(1000, 20, calls), capacity_qps=1000, bound_ms=10, runs=10, precision=0.05,
                       floor_qps=100)
    assert calls == [500, 250, 125, 100] and search.best is None  # the floor itself is tried, nothing below
    assert "INVALID down to 100 QPS" in search.stopped
    assert BUDGETS["quick"].search_floor_qps(1000) == 1000 / 16  # 1/16 of capacity ...
    assert BUDGETS["quick"].search_floor_qps(100) == 1024 / 30  # ... or 1024 queries in at most 30 s


def test_the_server_search_stops_when_no_load_is_low_enough():
    def too_slow(qps: float) -> dict:
        return {"valid": False, "result": "INVALID", "latency_ms": {"min": 12.0, "p50": 13.0}, "reasons": []}

    search = find_peak(too_slow, capacity_qps=80, bound_ms=10, runs=8, precision=0.05)
    assert len(search.steps) == 1 and search.best is None and "no load is low enough" in search.stopped


def test_the_server_search_stops_at_capacity():
    calls: list[float] = []
    search = find_peak(_queue(1000, 10_000, calls), capacity_qps=1000, bound_ms=10, runs=10, precision=0.05)
    assert calls == [500, 1000, 1250] and search.best.target_qps == 1250 and "capacity" in search.stopped


def test_full_profile_uses_mlperf_defaults_and_smoke_is_marked_shortened():
    full = loadgen_settings(lg, "server", BUDGETS["full"], target_qps=10, latency_bound_ms=10)
    assert full.min_duration_ms == 600_000 and full.server_target_latency_percentile == 0.99
    assert BUDGETS["full"].describe()["mlperf_valid_settings"] is True
    multi = loadgen_settings(lg, "multi-stream", BUDGETS["full"], expected_latency_s=0.001)
    assert multi.multi_stream_samples_per_query == 8 and multi.min_query_count == 662
    smoke = loadgen_settings(lg, "server", BUDGETS["smoke"], target_qps=10, latency_bound_ms=3)
    assert smoke.min_duration_ms == 200 and smoke.server_target_latency_ns == 3_000_000
    assert BUDGETS["smoke"].note == "not MLPerf-valid (shortened)"
    assert set(SCENARIOS) == {"single-stream", "multi-stream", "server", "offline"}


# -- the command line ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--scenario", "server"], "--scenario applies only to --inference loadgen; add --inference loadgen or drop it"),
    (["--scenario", "server", "--latency-bound-ms", "5"],
     "--scenario and --latency-bound-ms apply only to --inference loadgen"),
    (["--inference", "loadgen", "--latency-bound-ms", "-1"], "--latency-bound-ms must be between"),
    (["--inference", "loadgen", "--latency-bound-ms", "nan"], "--latency-bound-ms must be between"),
    (["--inference", "loadgen", "--scenario", "burst"], "invalid choice: 'burst'"),
    (["--inference", "mlperf"], "invalid choice: 'mlperf'"),
])
def test_bad_loadgen_options_are_usage_errors(args, message):
    """In process (the CLI turns a UsageError into one line and exit code 2: test_loadgen_batching.py runs one)."""
    from dlbench.cli.main import build_parser
    from dlbench.errors import UsageError
    from dlbench.cli.loadgen import apply
    from dlbench.running.options import RunOptions

    with pytest.raises(UsageError, match=message):
        apply(build_parser().parse_args(["run", "-f", "fake", *args]), RunOptions())


def test_missing_loadgen_is_one_line_naming_the_extra(tmp_path):
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "mlperf_loadgen.py").write_text("raise ImportError('No module named mlperf_loadgen')\n")
    process = run_dlbench("run", "-f", "fake", "-m", "softmax", "-t", "synthetic_images", "--out",
                          str(tmp_path / "out"), "--inference", "loadgen", plugins="fake_plugins",
                          PYTHONPATH=f"{hide}:{Path(__file__).parent / 'plugins'}")
    assert process.returncode == 2, process.stderr
    assert process.stderr.count("\n") == 1 and "pip install 'dlbench[loadgen]'" in process.stderr
    assert not (tmp_path / "out").exists()
