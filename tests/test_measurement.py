"""The harness's timing, proven with the fake framework whose step time is known (real processes)."""

import pytest

from fake_plugins import STEP_S


def _only(records, variant):
    found = [r for r in records if r["variant"] == variant]
    assert found, f"no record for {variant}"
    return found


def test_throughput_matches_known_step_time_and_records_follow_the_schema(fake_run):
    process, records = fake_run("--variant", "sleep", "-m", "softmax", "-t", "synthetic_images", "--steps", "120")
    assert process.returncode == 0, process.stderr
    (record,) = records
    assert record["status"] == "ok" and record["schema_version"] == 1
    for key in ("run_id", "case_id", "framework_version", "threads", "env", "fairness", "data", "plugin"):
        assert key in record
    metrics = record["metrics"]
    expected = 128 / STEP_S
    assert expected * 0.6 < metrics["train_samples_per_s"] <= expected * 1.05
    lo, hi = metrics["train_ci95"]
    assert lo <= metrics["train_samples_per_s"] <= hi
    assert metrics["params"] == 7850 and metrics["train_steps"] == 120
    assert set(metrics["latency_ms"]) >= {"p50", "p90", "p99"}
    assert "softmax" in process.stdout  # the comparison table


def test_sync_is_made_at_block_ends(fake_run):
    # the async variant queues its sleeps until sync(): without a sync per block, blocks would look instant
    process, records = fake_run("--variant", "async", "-m", "softmax", "-t", "synthetic_images", "--steps", "120")
    metrics = records[0]["metrics"]
    assert metrics["train_samples_per_s"] <= 128 / STEP_S * 1.05
    assert records[0]["fairness"]["sync_calls"] >= len(metrics["train_blocks"])


def test_compile_time_is_kept_out_of_steady_state(fake_run):
    process, records = fake_run("--variant", "slow-first-step", "-m", "softmax", "-t", "synthetic_images",
                                "--steps", "120")
    metrics = records[0]["metrics"]
    assert metrics["compile_s"] == pytest.approx(0.5, abs=0.15)
    assert metrics["train_samples_per_s"] > 128 / STEP_S * 0.6


def test_time_to_accuracy_clock_excludes_setup(fake_run):
    # slow-prepare sleeps 1 s while building; the fake reaches accuracy 0.5 after 50 steps (~0.1 s)
    process, records = fake_run("--variant", "slow-prepare", "-m", "softmax", "-t", "synthetic_images",
                                "--steps", "120", "--target", "0.5")
    metrics = records[0]["metrics"]
    assert metrics["target_accuracy"] == 0.5
    assert 0.09 < metrics["time_to_accuracy_s"] < 0.8
    assert metrics["prepare_s"] >= 1.0


def test_repeats_run_in_separate_processes_in_alternating_order(fake_run):
    process, records = fake_run("--variant", "sleep", "--variant", "noop", "-m", "softmax",
                                "-t", "synthetic_images", "--repeat", "3")
    assert process.returncode == 0, process.stderr
    assert [r["variant"] for r in records] == ["sleep", "noop", "noop", "sleep", "sleep", "noop"]
    assert [r["repeat"] for r in records] == [0, 0, 1, 1, 2, 2]
    assert len({r["fairness"]["pid"] for r in records}) == 6
