"""Every MLPerf scenario through the real LoadGen on both built-in frameworks (softmax on digits, smoke), the
Server served batched (one grid point, so the search costs what one at a time does; the fixed-service tests
cover one at a time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import read_records, run_dlbench

SCENARIOS = ("single-stream", "multi-stream", "server", "offline")


@pytest.fixture(scope="module")
def builtin(tmp_path_factory):
    out = tmp_path_factory.mktemp("builtin") / "run"
    process = run_dlbench("run", "-f", "pytorch", "-f", "keras", "-m", "softmax", "-t", "digits", "--profile", "smoke",
                          "--threads", "1", "--inference", "loadgen", "--serve", "batched", "--max-batch", "8",
                          "--batch-timeout-us", "0", "--out", str(out), timeout=400)
    assert process.returncode == 0, process.stderr[-3000:]
    return out, {r["framework"]: r for r in read_records(out)}, process


@pytest.mark.parametrize("framework", ["pytorch", "keras"])
def test_every_scenario_runs_through_loadgen(builtin, framework):
    out, records, _ = builtin
    record = records[framework]
    assert record["status"] == "ok", record.get("error")
    details = record["metrics"]["loadgen"]
    assert set(details["scenarios"]) == set(SCENARIOS)
    for name, result in details["scenarios"].items():
        run = result["run"] if name == "server" else result
        assert run["mode"] == "PerformanceOnly"
        assert Path(run["logs"]["summary"]).is_file() and Path(run["logs"]["detail"]).is_file()
        assert Path(run["logs"]["summary"]).is_relative_to(out / "logs")
        assert result["valid"] in (True, False) and result["result"] in ("VALID", "INVALID")
        assert run["sut_s"]["predict_s"] > 0  # the plugin's predict really ran under LoadGen
    single, multi = details["scenarios"]["single-stream"], details["scenarios"]["multi-stream"]
    assert single["sut_s"]["samples"] == single["sut_s"]["queries"]
    assert multi["sut_s"]["samples"] == 8 * multi["sut_s"]["queries"] and multi["samples_per_query"] == 8
    offline = details["scenarios"]["offline"]
    assert offline["sut_s"]["queries"] == 1 and offline["samples_per_query"] == offline["sut_s"]["samples"]
    server = details["scenarios"]["server"]
    assert 1 <= len(server["search"]) <= 5 and server["latency_bound_ms"] == 10.0  # the zoo's bound for softmax
    assert server["serve"] == {"mode": "batched", "max_batch": 8, "batch_timeout_us": 0.0}
    assert details["settings"]["serve_grid"] == [server["serve"]] and details["settings"]["serve"] == "batched"
    batches = server["run"]["sut_s"]["batches"]  # the real framework predicted gathered batches of 1 to 8
    assert sum(batches["histogram"].values()) == batches["calls"] and batches["max_samples"] <= 8
    if server["valid"]:
        assert record["metrics"]["loadgen_server_qps"] == server["target_qps"] > 0
        assert server["run"]["latency_ms"]["p99"] <= 10.0
    else:
        assert "loadgen_server_qps" not in record["metrics"]


@pytest.mark.parametrize("framework", ["pytorch", "keras"])
def test_offline_and_single_stream_are_checked_against_dlbench_own(builtin, framework):
    _, records, _ = builtin
    check = records[framework]["metrics"]["loadgen"]["consistency"]
    own = records[framework]["metrics"]
    assert check["single_stream"]["own_p50_ms"] == own["latency_ms"]["p50"]
    assert check["offline"]["own_samples_per_s"] == pytest.approx(own["infer_samples_per_s"])
    assert check["offline"]["ratio"] == pytest.approx(check["offline"]["loadgen_samples_per_s"]
                                                      / check["offline"]["own_samples_per_s"])
    assert 0 < check["offline"]["staging_share"] < 1 and 0 < check["offline"]["bookkeeping_share"] < 1
    single = check["single_stream"]
    timed = records[framework]["metrics"]["loadgen"]["scenarios"]["single-stream"]["sut_s"]["single_predict_ms"]
    assert single["predict_p50_ms"] == timed["p50"] and timed["count"] == \
        records[framework]["metrics"]["loadgen"]["scenarios"]["single-stream"]["sut_s"]["queries"]
    # LoadGen's latency holds the framework's predict and LoadGen's own path, which is never free
    assert 0 < single["predict_p50_ms"] < single["loadgen_p50_ms"]
    assert single["path_ms"] == pytest.approx(single["loadgen_p50_ms"] - single["predict_p50_ms"])
    within = (abs(single["predict_ratio_p50"] - 1) <= check["tolerance"]
              or abs(single["predict_p50_ms"] - single["own_p50_ms"]) <= check["latency_slack_ms"])
    assert single["agree"] is within  # judged on the framework's share, not on LoadGen's path
    assert check["verdict"].split(" ")[0] in ("agree", "DIFFER")
    # LoadGen's own path, measured with an empty predict, and the Offline time per sample accounted for
    assert 0 < single["loadgen_path_p50_ms"] < single["loadgen_p50_ms"]
    per = check["offline"]["us_per_sample"]
    assert per["loadgen_path"] > 0 and per["predict"] > 0
    assert per["unaccounted"] == pytest.approx(per["measured"] - per["predict"] - per["staging"] - per["loadgen_path"])
    assert check["offline"]["loadgen_path_samples_per_s"] > check["offline"]["loadgen_samples_per_s"]


def test_the_run_table_has_a_scenario_section(builtin):
    _, _, process = builtin
    lines = [line for line in process.stdout.splitlines() if line.startswith("| digits")]
    for framework in ("pytorch", "keras"):
        assert {s for s in SCENARIOS if any(f"| {framework}" in line and f"| {s}" in line for line in lines)} \
            == set(SCENARIOS)
    assert "not MLPerf-valid (shortened)" in process.stdout
