"""LoadGen against arithmetic: a framework with a fixed service time, every scenario, real LoadGen.

The fixed-service plugin holds each ``predict`` for exactly ``CALL_MS + n * SAMPLE_MS``. Served one query at
a time, LoadGen's Server scenario (Poisson arrivals) is an M/D/1 queue, whose sojourn-time distribution is
known in closed form (Erlang), so the highest target QPS with p99 under the bound, and the latency
percentiles at any QPS, are predicted before the run. The tolerances leave room below the prediction
(a shared CPU only ever makes queries slower, and LoadGen's early-stopping rule asks for more than a bare
p99 in a short run) but little above it: no SUT beats the queue.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal, localcontext
from pathlib import Path

import pytest

from conftest import read_records, run_dlbench

CALL_MS, SAMPLE_MS, BOUND_MS = 3.0, 0.002, 30.0
SERVICE_MS = CALL_MS + SAMPLE_MS  # one sample per Server / SingleStream query
OFFICIAL_SEEDS = {"qsl_rng_seed": "2085463073848966840", "sample_index_rng_seed": "2747215439041700203",
                  "schedule_rng_seed": "16159082839903944936"}  # mlperf.conf


# -- M/D/1 (service time 1, load rho): P(wait <= t) = (1 - rho) sum_k<=t (rho (k - t))^k / k! e^(-rho (k - t)) ----

def wait_cdf(t: float, rho: float) -> float:
    """Erlang's formula; its terms alternate in sign and grow like e^(rho t), so it is summed in 60 digits."""
    if t < 0:
        return 0.0
    with localcontext() as ctx:
        ctx.prec = 60
        big_t, r = Decimal(repr(t)), Decimal(repr(rho))
        total = sum((r * (k - big_t)) ** k / math.factorial(k) * (-(r * (k - big_t))).exp()
                    for k in range(int(t) + 1))
        return float((1 - r) * total)


def sojourn_quantile(q: float, rho: float) -> float:
    """The q-quantile of wait + service, in service times."""
    low, high = 0.0, 1.0
    while wait_cdf(high, rho) < q:
        high *= 2
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (low, mid) if wait_cdf(mid, rho) >= q else (mid, high)
    return high + 1.0


def peak_load(bound: float, q: float = 0.99) -> float:
    """The highest load rho whose q-quantile sojourn time is within ``bound`` service times."""
    low, high = 0.0, 0.999
    for _ in range(30):
        mid = (low + high) / 2
        low, high = (mid, high) if sojourn_quantile(q, mid) <= bound else (low, mid)
    return low


def test_the_queueing_formula_matches_a_simulated_queue():
    import random

    rng, rho, clock, free, sojourns = random.Random(1), 0.7, 0.0, 0.0, []
    for _ in range(100_000):
        clock += rng.expovariate(rho)
        free = max(clock, free) + 1.0
        sojourns.append(free - clock)
    sojourns.sort()
    for q in (0.5, 0.9, 0.99):
        assert sojourns[int(q * len(sojourns))] == pytest.approx(sojourn_quantile(q, rho), rel=0.04)


# -- batched serving: Poisson arrivals, one server that gathers up to m queries (timeout t after the first) ---

def batched_p99(rate_qps: float, call_ms: float, sample_ms: float, max_batch: int, timeout_ms: float = 0.0,
                queries: int = 20_000, seed: int = 1) -> float:
    """The p99 sojourn time (ms) of the batching SUT's rule (sut.py ``_gather``), simulated event by event.

    The server takes the oldest waiting query when it is free, closes the batch when it holds ``max_batch``
    queries or ``timeout_ms`` after that query arrived (at once if that time has passed), pads it to its
    bucket (batching.py) and serves it in ``call_ms + bucket * sample_ms``.
    """
    import random

    from dlbench.loadgen.batching import ServePolicy

    policy, rng, clock, arrivals = ServePolicy("batched", max_batch, timeout_ms * 1000), random.Random(seed), 0.0, []
    for _ in range(queries):
        clock += rng.expovariate(rate_qps / 1000)
        arrivals.append(clock)
    free, first, sojourns = 0.0, 0, []
    while first < queries:
        full = first + max_batch - 1
        closes = max(arrivals[first], free, min(arrivals[first] + timeout_ms,
                                                arrivals[full] if full < queries else math.inf))
        last = first
        while last < queries and last - first < max_batch and arrivals[last] <= closes:
            last += 1
        free = closes + call_ms + policy.bucket(last - first) * sample_ms
        sojourns += [free - arrivals[i] for i in range(first, last)]
        first = last
    sojourns.sort()
    return sojourns[int(0.99 * len(sojourns))]


def batched_peak_qps(bound_ms: float, call_ms: float, sample_ms: float, max_batch: int) -> float:
    """The highest Poisson rate whose simulated p99 stays within the bound (bisection on the rate)."""
    low, high = 0.0, max_batch / ((call_ms + max_batch * sample_ms) / 1000)  # full batches: the capacity
    for _ in range(14):
        mid = (low + high) / 2
        low, high = (mid, high) if batched_p99(mid, call_ms, sample_ms, max_batch) <= bound_ms else (low, mid)
    return low


def test_the_batched_queue_simulation_agrees_with_m_d_1_at_batch_one():
    # a batch of at most one query is the M/D/1 queue: the simulation and Erlang's formula must agree
    rho = 0.6
    simulated = batched_p99(rho / (SERVICE_MS / 1000), CALL_MS, SAMPLE_MS, max_batch=1, queries=100_000)
    assert simulated == pytest.approx(sojourn_quantile(0.99, rho) * SERVICE_MS, rel=0.05)


# -- the runs -------------------------------------------------------------------------------------------

def _fixed_run(out: Path, *args: str, call_ms: float = CALL_MS, sample_ms: float = SAMPLE_MS, **env: str):
    process = run_dlbench("run", "-f", "fixed", "-m", "softmax", "-t", "synthetic_images", "--profile", "smoke",
                          "--threads", "1", "--inference", "loadgen", "--out", str(out), *args,
                          plugins="fixed_service_plugin", timeout=240, FIXED_SERVICE_CALL_MS=str(call_ms),
                          FIXED_SERVICE_SAMPLE_MS=str(sample_ms), **env)
    records = read_records(out) if (out / "results.jsonl").exists() else []
    return process, records


@pytest.fixture(scope="module")
def fixed(tmp_path_factory):
    """All four scenarios on the fixed-service framework (about 18 s)."""
    out = tmp_path_factory.mktemp("fixed") / "run"
    process, records = _fixed_run(out, "--latency-bound-ms", str(BOUND_MS))
    assert process.returncode == 0, process.stderr[-3000:]
    assert len(records) == 1 and records[0]["status"] == "ok", records
    return out, records[0], process


def test_server_finds_the_qps_queueing_theory_predicts(fixed):
    _, record, _ = fixed
    server = record["metrics"]["loadgen"]["scenarios"]["server"]
    predicted = peak_load(BOUND_MS / SERVICE_MS) / (SERVICE_MS / 1000)  # ~254 QPS
    assert server["result"] == "VALID" and server["valid"]
    found = server["target_qps"]
    assert record["metrics"]["loadgen_server_qps"] == found
    # above: nothing beats the queue; below: a busy shared CPU stalls queries past the bound (at a load average
    # of 10 on 2 cores this found 0.60-0.85 of the prediction; on a quiet machine 0.9-1.0)
    assert 0.5 * predicted <= found <= 1.1 * predicted, (found, predicted, server["search"])
    assert server["run"]["latency_ms"]["p99"] <= BOUND_MS
    assert len(server["search"]) <= 5  # the smoke budget bounds the search


def test_server_latencies_follow_the_queue_at_every_qps_tried(fixed):
    _, record, _ = fixed
    server = record["metrics"]["loadgen"]["scenarios"]["server"]
    for step in server["search"]:
        assert step["p50_ms"] >= 0.97 * SERVICE_MS, step  # no query is served faster than the service time allows
        rho = step["target_qps"] * SERVICE_MS / 1000
        if rho > 0.8:
            # a short run starts from an empty queue; near capacity the queue takes far longer than the run to
            # reach its stationary length (measured: p50 7.7 ms at rho 0.94 against a stationary 19 ms)
            continue
        p50 = sojourn_quantile(0.5, rho) * SERVICE_MS
        assert step["p50_ms"] >= 0.9 * p50, step
        if step["result"] == "VALID":
            assert step["p50_ms"] <= 2.0 * p50 + 1.0, step
    best = server["run"]["latency_ms"]
    rho = server["target_qps"] * SERVICE_MS / 1000
    assert best["p90"] >= 0.97 * SERVICE_MS
    if rho <= 0.8:  # see above: only there does a short run reach the stationary queue
        assert best["p90"] >= 0.9 * sojourn_quantile(0.9, rho) * SERVICE_MS, (best, rho)
    invalid_above = [s for s in server["search"] if s["result"] == "INVALID" and s["target_qps"] > server["target_qps"]]
    assert invalid_above or "budget" in server["search_stopped"]  # the answer was bracketed from above


def test_single_stream_multi_stream_and_offline_match_the_service_time(fixed):
    _, record, _ = fixed
    scenarios = record["metrics"]["loadgen"]["scenarios"]
    single = scenarios["single-stream"]
    assert single["valid"] and single["samples_per_query"] == 1
    assert SERVICE_MS <= single["latency_ms"]["p50"] <= SERVICE_MS + 0.3
    assert single["result_percentile"] == 90.0  # MLPerf's SingleStream metric is the p90
    multi = scenarios["multi-stream"]
    query_ms = CALL_MS + 8 * SAMPLE_MS
    assert multi["valid"] and multi["samples_per_query"] == 8  # MLPerf's samples per query
    assert multi["result_percentile"] == 99.0
    assert query_ms <= multi["latency_ms"]["p50"] <= query_ms + 0.3
    offline = scenarios["offline"]
    batch_rate = 1024 / ((CALL_MS + 1024 * SAMPLE_MS) / 1000)  # ~203k samples/s at batch 1024
    assert offline["valid"] and 0.5 * batch_rate <= offline["qps"] <= 1.02 * batch_rate


def test_the_record_keeps_loadgen_settings_seeds_and_logs(fixed):
    out, record, _ = fixed
    details = record["metrics"]["loadgen"]
    assert details["note"] == "not MLPerf-valid (shortened)"
    assert details["settings"]["mlperf_valid_settings"] is False
    assert details["settings"]["server_latency_bound_ms"] == BOUND_MS
    for name, result in details["scenarios"].items():
        run = result["run"] if name == "server" else result
        assert run["seeds"] == OFFICIAL_SEEDS, name
        assert run["min_duration_ms"] == 200, name  # shortened from MLPerf's 600 s, and recorded as such
        for kind in ("summary", "detail"):
            path = Path(run["logs"][kind])
            assert path.parents[2] == out / "logs" and path.parents[1].name.endswith("-r0.loadgen")
            assert path.name == f"mlperf_log_{kind}.txt" and path.stat().st_size > 0
    assert Path(details["logs"]).parent == out / "logs"
    assert not list((out / "logs").rglob("mlperf_log_trace.json"))
    assert record["metrics"]["phases_s"]["loadgen"] > 0


def test_consistency_with_dlbench_own_timing_is_in_the_record(fixed):
    _, record, _ = fixed
    check = record["metrics"]["loadgen"]["consistency"]
    assert check["single_stream"]["ratio_p50"] == pytest.approx(1.0, abs=0.25)  # both medians of the same hold()
    # a total over the whole Offline query against dlbench's median block: late wake-ups on a busy CPU
    # only ever lower it (0.75-0.83 at a load average of 10 on 2 cores)
    assert 0.6 <= check["offline"]["predict_ratio"] <= 1.05
    assert 0.6 <= check["offline"]["predict_ratio_total"] <= 1.05  # against the own blocks' total rate
    offline_ok = abs(check["offline"]["predict_ratio_total"] - 1) <= check["tolerance"]
    assert check["agree"] is (offline_ok and check["single_stream"]["agree"])
    assert check["verdict"].startswith("agree" if check["agree"] else "DIFFER")


def test_table_report_and_compare_show_the_scenarios(fixed, tmp_path):
    from dlbench.report.folder import write_report
    from dlbench.report.compare import compare_records, format_comparison

    out, record, process = fixed
    row = next(line for line in process.stdout.splitlines() if "| server" in line)  # the run's own table
    assert "VALID" in row and f"{record['metrics']['loadgen_server_qps']:.0f}" in row.replace(",", "")
    assert "single-stream" in process.stdout and "not MLPerf-valid (shortened)" in process.stdout
    write_report([record], tmp_path / "report")
    html = (tmp_path / "report" / "index.html").read_text()
    assert 'id="scenarios"' in html and "multi-stream" in html
    assert "## MLPerf scenarios (LoadGen)" in (tmp_path / "report" / "report.md").read_text()
    metrics = ["loadgen_server_qps", "loadgen_offline_samples_per_s", "loadgen_multistream_latency_p99_ms"]
    result = compare_records([record], [record], metrics)
    assert {c.metric for c in result.changes} == set(metrics) and not result.regressions
    assert "loadgen_server_qps" in format_comparison(result)


def test_compare_calls_a_server_that_turned_invalid_a_regression(fixed, tmp_path):
    out, record, _ = fixed
    broken = json.loads(json.dumps(record))
    del broken["metrics"]["loadgen_server_qps"]
    broken["metrics"]["loadgen"]["scenarios"]["server"].update(result="INVALID", valid=False, target_qps=None)
    (tmp_path / "new.jsonl").write_text(json.dumps(broken) + "\n")
    compare = run_dlbench("compare", str(out), str(tmp_path / "new.jsonl"), "--metric", "loadgen_server_qps")
    assert compare.returncode == 1, compare.stdout + compare.stderr
    assert "no LoadGen run VALID in NEW" in compare.stdout


def test_an_impossible_bound_is_reported_invalid_not_as_a_number(tmp_path):
    process, records = _fixed_run(tmp_path / "run", "--scenario", "server", "--latency-bound-ms", "0.5",
                                  call_ms=1.0)
    assert process.returncode == 0, process.stderr[-3000:]
    metrics = records[0]["metrics"]
    server = metrics["loadgen"]["scenarios"]["server"]
    assert server["result"] == "INVALID" and server["valid"] is False and server["target_qps"] is None
    assert not any(key.startswith("loadgen_server") for key in metrics)
    assert "Performance constraints satisfied: NO" in server["reasons"]
    assert len(server["search"]) == 1 and "no load is low enough" in server["search_stopped"]
    assert set(metrics["loadgen"]["scenarios"]) == {"server"}  # --scenario chose one
    row = next(line for line in process.stdout.splitlines() if "| server" in line)
    assert "INVALID" in row and "server INVALID at every QPS tried" in process.stdout


def test_a_plugin_failing_under_loadgen_fails_the_case_naming_the_plugin(tmp_path):
    # dlbench's own timing makes about 130 predict calls; LoadGen's first Server run at least 662
    process, records = _fixed_run(tmp_path / "run", "--scenario", "server", call_ms=0.2,
                                  FIXED_SERVICE_FAIL_AFTER="400")
    assert process.returncode == 1
    assert records[0]["status"] == "failed"
    assert records[0]["error"].startswith("plugin fixed_service_plugin failed in predict: RuntimeError")


BATCH_SAMPLE_MS, BATCHES = 0.25, (4, 16)  # a + b n, a = 3 ms, b = 0.25 ms: the call's cost is what batching saves


def test_batched_serving_reaches_the_qps_the_batch_queue_predicts(tmp_path):
    """Served one at a time this framework cannot pass 1 / 3.25 ms = 308 QPS at any bound; batched up to 16 it
    can serve about seven times that within 30 ms. The search covers max batch 4 and 16 without a timeout."""
    process, records = _fixed_run(tmp_path / "run", "--scenario", "server", "--latency-bound-ms", str(BOUND_MS),
                                  "--serve", "batched", "--max-batch", ",".join(map(str, BATCHES)),
                                  "--batch-timeout-us", "0", sample_ms=BATCH_SAMPLE_MS)
    assert process.returncode == 0, process.stderr[-3000:]
    metrics = records[0]["metrics"]
    server = metrics["loadgen"]["scenarios"]["server"]
    single_capacity = 1000 / (CALL_MS + BATCH_SAMPLE_MS)
    predicted = max(batched_peak_qps(BOUND_MS, CALL_MS, BATCH_SAMPLE_MS, m) for m in BATCHES)  # ~2,200 QPS
    assert server["valid"] and metrics["loadgen_server_qps"] == server["target_qps"]
    found = server["target_qps"]
    # below: a busy shared CPU only makes it slower (as the M/D/1 test above); above: a short run starts from an
    # empty queue, and the simulated 800-query run passes at 1.1x the stationary peak in 25-30% of seeds, at 1.2x
    # never (the capacity, full batches back to back, is only 1.04x)
    assert 0.5 * predicted <= found <= 1.2 * predicted, (found, predicted, server["search"])
    assert found > 2 * single_capacity  # impossible one query at a time: the queries really were batched
    assert server["serve"] == {"mode": "batched", "max_batch": 16, "batch_timeout_us": 0.0}
    assert [(p["max_batch"], p["batch_timeout_us"]) for p in server["grid"]] == [(16, 0.0), (4, 0.0)]
    assert len(server["search"]) <= 8  # the smoke budget bounds the grid's runs
    batches = server["run"]["sut_s"]["batches"]
    assert batches["mean_samples"] > 2 and batches["max_samples"] <= 16
    assert set(map(int, batches["histogram"])) <= set(range(1, 17))
    # batching never reports a QPS whose p99 breaks the bound
    assert server["run"]["latency_ms"]["p99"] <= BOUND_MS
    assert all(step["p99_ms"] <= BOUND_MS for step in server["search"] if step["result"] == "VALID")
    assert metrics["loadgen_server_latency_p99_ms"] <= BOUND_MS
    row = next(line for line in process.stdout.splitlines() if "| server" in line)
    assert "batched <=16, 0 µs" in row
