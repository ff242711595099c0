"""The batching SUT and the serving grid, on real in-process LoadGen runs, and the calls a GPU would pay for.

A session whose ``predict`` sleeps ``CALL_S + n * SAMPLE_S`` (a batch cost, as the fixed-service plugin's)
stands in for a framework; every run here is a short LoadGen test (a second at most).
"""

from __future__ import annotations

import faulthandler
import time
from pathlib import Path

import mlperf_loadgen as lg
import numpy as np
import pytest

from conftest import run_dlbench
from dlbench.loadgen.batching import SINGLE, ServePolicy, serve_grid
from dlbench.loadgen.server import best_point, find_peak, search_grid
from dlbench.loadgen.settings import BUDGETS, Budget, loadgen_settings
from dlbench.loadgen.summary import read_summary, summary_record
from dlbench.loadgen.sut import Serving, SessionSUT

CALL_S, SAMPLE_S = 0.002, 0.0001
SHORT = Budget("test", min_duration_ms=200, server_min_query_count=100, search_runs=1, search_precision=0.1)
JUDGED = BUDGETS["smoke"]  # 662 queries: enough for LoadGen's early stopping to call a run VALID


@pytest.fixture(autouse=True)
def _stacks_on_hang():
    """A hang in the SUT's threads dumps every thread's stack and ends the run, never silently."""
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


class BatchCostSession:
    """stage/predict/sync over numpy; predict costs a + b n; every call is logged in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def stage(self, x):
        self.calls.append(("stage", len(x)))
        return np.array(x)

    def predict(self, staged):
        self.calls.append(("predict", len(staged)))
        time.sleep(CALL_S + SAMPLE_S * len(staged))
        return staged

    def sync(self) -> None:
        self.calls.append(("sync", 0))

    def predicted(self) -> list[int]:
        return [n for kind, n in self.calls if kind == "predict"]


def _server(tmp_path: Path, policy: ServePolicy, qps: float, bound_ms: float = 50.0, budget: Budget = SHORT):
    session = BatchCostSession()
    sut = SessionSUT(lg, session, np.zeros((300, 4), dtype=np.float32), Serving(64, True, policy=policy), 128)
    cpu, wall = time.process_time(), time.perf_counter()
    sut.run(loadgen_settings(lg, "server", budget, target_qps=qps, latency_bound_ms=bound_ms), tmp_path)
    busy = (time.process_time() - cpu) / (time.perf_counter() - wall)
    return session, sut, summary_record(read_summary(tmp_path)), busy


def test_buckets_and_the_default_grid():
    assert ServePolicy("batched", 128).buckets() == (1, 2, 4, 8, 16, 32, 64, 128)
    assert ServePolicy("batched", 24).buckets() == (1, 2, 4, 8, 16, 24)
    assert [ServePolicy("batched", 24).bucket(n) for n in (1, 3, 16, 17, 24)] == [1, 4, 16, 24, 24]
    grid = serve_grid("batched", (), (), bound_ms=10)
    assert [(p.max_batch, p.timeout_us) for p in grid] == [(128, 0), (32, 0), (8, 0), (128, 1000), (32, 1000),
                                                           (8, 1000)]  # the likeliest best leads
    assert serve_grid("single", (8,), (0,), bound_ms=10) == [SINGLE]


def test_batching_serves_a_load_one_at_a_time_cannot(tmp_path):
    # one at a time the capacity is 1 / 2.1 ms = 476 QPS; gathered up to 16, 1,200 QPS is light work
    session, sut, record, _ = _server(tmp_path / "batched", ServePolicy("batched", 16, 0), qps=1200, budget=JUDGED)
    assert record["result"] == "VALID", record["reasons"]
    assert sut.times.queries >= 662  # the minimum query count
    buckets = ServePolicy("batched", 16).buckets()
    warm, sizes = session.predicted()[: 2 * 4], session.predicted()[2 * 4:]
    assert warm == [2, 2, 4, 4, 8, 8, 16, 16]  # every shape compiled before LoadGen's clock started
    assert sum(sut.times.batch_sizes.values()) == len(sizes) < sut.times.queries  # fewer calls than queries
    assert max(sizes) <= 16 and set(sizes) <= set(buckets)  # only the compiled shapes
    assert sum(n * c for n, c in sut.times.batch_sizes.items()) == sut.times.samples == sut.times.queries
    # no sample answered twice or left out: LoadGen counted every query complete, each with its own latency
    assert record["latency_ms"]["min"] >= CALL_S * 1000 and record["latency_ms"]["p99"] <= 50
    _, _, alone, _ = _server(tmp_path / "single", SINGLE, qps=1200, budget=JUDGED)
    assert alone["result"] == "INVALID"  # the same load, one query at a time: the queue grows without end


def test_the_timeout_holds_the_first_query_without_spinning(tmp_path):
    # 100 QPS: the batch of 16 never fills, so the first query of each batch waits out the 20 ms timeout
    session, sut, record, busy = _server(tmp_path, ServePolicy("batched", 16, 20_000), qps=100, bound_ms=100)
    service_ms = (CALL_S + 4 * SAMPLE_S) * 1000
    assert record["latency_ms"]["p50"] >= 10 + service_ms  # half the queries or more waited most of the timeout
    assert record["latency_ms"]["max"] >= 20 + CALL_S * 1000
    assert sut.times.wait_s >= 0.5 * 0.020 * len(session.predicted())  # each batch waited for its timeout
    assert sut.times.as_dict()["batches"]["mean_samples"] > 1.2  # ~2 queries arrive in a 20 ms window
    assert busy < 0.3, busy  # waiting is a lock wait: the process sleeps, the model's core stays free


def test_offline_stages_a_window_then_predicts_it_back_to_back(tmp_path):
    """What a GPU pays for (the accelerator's settings): one sync after staging a window and one after its
    predicts, never per batch."""
    session = BatchCostSession()
    serving = Serving(16, stage_samples=False, pad_batches=True, window_bytes=16 * 16 * 4 * 4, window_sync=True)
    sut = SessionSUT(lg, session, np.zeros((300, 4, 4, 1), dtype=np.float32), serving, 128)
    sut.run(loadgen_settings(lg, "offline", SHORT, expected_qps=2_000), tmp_path)
    pattern = "".join({"stage": "S", "predict": "P", "sync": "|"}[kind] for kind, _ in session.calls)
    batches = len(session.predicted())
    windows = [4] * (batches // 4) + ([batches % 4] if batches % 4 else [])  # 4 batches of 1 KiB a window
    assert batches > 8 and pattern == "".join("S" * n + "|" + "P" * n + "|" for n in windows)
    assert all(n == 16 for kind, n in session.calls if kind != "sync")  # the last batch padded: one shape
    times = sut.times.as_dict()
    assert times["stage_s"] > 0 and times["predict_s"] >= len(session.predicted()) * CALL_S


def test_an_empty_sut_measures_loadgen_alone(tmp_path):
    session = BatchCostSession()
    sut = SessionSUT(lg, session, np.zeros((300, 4), dtype=np.float32), Serving(64, True, empty=True), 128)
    sut.run(loadgen_settings(lg, "single-stream", SHORT, expected_latency_s=0.0001), tmp_path)
    assert session.calls == [] and sut.times.queries > 100  # nothing staged, nothing predicted
    assert summary_record(read_summary(tmp_path))["latency_ms"]["p50"] < 1.0  # LoadGen's path: microseconds


def _knee(knees: dict[int, float], calls: list[tuple[int, float]]):
    """A pretend Server: VALID below the policy's knee QPS."""

    def run_at(policy: ServePolicy, qps: float) -> dict:
        calls.append((policy.max_batch, qps))
        ok = qps <= knees[policy.max_batch]
        return {"valid": ok, "result": "VALID" if ok else "INVALID", "qps": qps,
                "latency_ms": {"min": 1.0, "p50": 2.0, "p99": 5.0 if ok else 50.0}, "reasons": []}

    return run_at


def test_the_grid_search_lets_each_policy_only_try_to_beat_the_best():
    calls: list[tuple[int, float]] = []
    policies = [ServePolicy("batched", m) for m in (128, 32, 8)]
    budget = BUDGETS["quick"]
    points = search_grid(policies, _knee({128: 30_000, 32: 41_000, 8: 12_000}, calls),
                         lambda p: (100_000.0, 20_000.0, 1_000.0), bound_ms=10, budget=budget)
    assert calls[0] == (128, 20_000)  # the first policy's full search starts where it is told
    first = [q for m, q in calls if m == 128]
    assert len(first) <= budget.search_runs and points[0].search.best.target_qps <= 30_000
    challenger = [q for m, q in calls if m == 32]
    assert challenger[0] == pytest.approx(points[0].search.best.target_qps * (1 + budget.search_precision), rel=0.01)
    assert [q for m, q in calls if m == 8] == [pytest.approx(points[1].search.best.target_qps * 1.05, rel=0.01)]
    assert "does not beat it" in points[2].search.stopped  # one INVALID run above the best ends a challenger
    best = best_point(points)
    assert best.policy.max_batch == 32 and 0.95 * 41_000 <= best.search.best.target_qps <= 41_000
    assert len(calls) <= budget.grid_runs


def test_the_grid_search_stays_within_its_budget_of_runs():
    calls: list[tuple[int, float]] = []
    policies = [ServePolicy("batched", m, t) for t in (0, 1000) for m in (128, 32, 8)]
    search_grid(policies, _knee({128: 10, 32: 10, 8: 10}, calls), lambda p: (100_000.0, 50_000.0, 3_000.0), 10,
                BUDGETS["smoke"])
    assert len(calls) == BUDGETS["smoke"].grid_runs  # nothing VALID anywhere: cut by the budget
    assert calls[:5] == [(128, 50_000), (128, 25_000), (128, 12_500), (128, 6_250), (128, 3_120)]  # its 5 runs
    assert calls[5:] == [(32, 3_120), (32, 3_000), (8, 3_000)]  # where the others failed lowest, not the top again


def test_a_policy_searched_before_anything_is_valid_starts_where_the_others_failed():
    calls: list[tuple[int, float]] = []
    policies = [ServePolicy("batched", m) for m in (128, 8)]
    points = search_grid(policies, _knee({128: 10, 8: 7_000}, calls), lambda p: (100_000.0, 40_000.0, 2_000.0),
                         10, BUDGETS["quick"])
    assert [q for m, q in calls if m == 128] == [40_000, 20_000, 10_000, 5_000, 2_500, 2_000]  # to the floor
    assert [q for m, q in calls if m == 8][0] == 2_000 and best_point(points).policy.max_batch == 8
    assert 0.95 * 7_000 <= best_point(points).search.best.target_qps <= 7_000


def test_an_overloaded_run_does_not_end_the_search_as_hopeless():
    # LoadGen counts each query from its scheduled time: in a run far past capacity (1,100 QPS; completions fall
    # behind the schedule) even the first queries are late, and a lower load does help
    def run_at(qps: float) -> dict:
        ok = qps <= 1_000
        return {"valid": ok, "result": "VALID" if ok else "INVALID", "qps": min(qps, 1_100),
                "latency_ms": {"min": 1.0 if qps <= 1_250 else 20.0, "p99": 5.0 if ok else 80.0}, "reasons": []}

    search = find_peak(run_at, capacity_qps=4_000, bound_ms=10, runs=8, precision=0.05)
    assert search.steps[0].target_qps == 2_000 and search.best is not None
    assert "no load is low enough" not in search.stopped


@pytest.mark.parametrize("args, message", [
    (["--inference", "loadgen", "--serve", "single", "--batch-timeout-us", "0"],
     "--batch-timeout-us applies only to --serve batched"),
    (["--serve", "batched"], "--serve applies only to --inference loadgen"),
    (["--inference", "loadgen", "--serve", "batched", "--max-batch", "0"], "--max-batch values must be between 1"),
    (["--inference", "loadgen", "--serve", "batched", "--max-batch", "8,x"],
     "--max-batch takes whole numbers separated by commas"),
    (["--inference", "loadgen", "--serve", "batched", "--batch-timeout-us", "-5"],
     "--batch-timeout-us values must be between 0"),
    (["--inference", "loadgen", "--serve", "pipelined"], "invalid choice: 'pipelined'"),
])
def test_bad_serving_options_are_usage_errors(args, message):
    from dlbench.cli.main import build_parser
    from dlbench.errors import UsageError
    from dlbench.cli.loadgen import apply
    from dlbench.running.options import RunOptions

    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        apply(build_parser().parse_args(["run", "-f", "fake", *args]), RunOptions())


def test_serving_options_reach_the_run_and_a_stray_one_is_one_line_exit_2(tmp_path):
    from dlbench.cli.main import build_parser
    from dlbench.cli.loadgen import apply
    from dlbench.running.options import RunOptions

    options = RunOptions()
    apply(build_parser().parse_args(["run", "--inference", "loadgen", "--serve", "batched", "--max-batch", "32,8,32",
                                     "--batch-timeout-us", "500"]), options)
    assert (options.serve, options.max_batch, options.batch_timeout_us) == ("batched", (8, 32), (500.0,))
    process = run_dlbench("run", "-f", "fake", "-m", "softmax", "-t", "synthetic_images", "--out",
                          str(tmp_path / "out"), "--inference", "loadgen", "--max-batch", "8", plugins="fake_plugins")
    assert process.returncode == 2 and process.stderr.count("\n") == 1, process.stderr
    assert "--max-batch applies only to --serve batched; add --serve batched or drop it" in process.stderr
    assert not (tmp_path / "out").exists()
