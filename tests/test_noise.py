"""Noise, measured and flagged: estimators on known inputs, /proc readings, adaptive sampling, a CPU burner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from dlbench.machine.state import TOP_PROCESSES, Sampler, busy_processes, flags, parse_proc_stat
from dlbench.stats.estimators import ESTIMATORS, ci_half_width, estimate, estimate_ci, median_ci, quantile_ci
from dlbench.report.table import comparison_table


@contextmanager
def burners(count: int = 2):
    """Processes that spin on a core each: the 'other load' a shared machine has."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(0.3)
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_estimators_on_known_inputs():
    rates = [100.0, 50.0, 80.0, 125.0, 100.0]  # block times 0.01, 0.02, 0.0125, 0.008, 0.01
    assert estimate(rates, "median") == 100.0
    assert estimate(rates, "min_time") == 125.0  # the fastest block
    assert estimate(rates, "low_quantile") == 100.0  # 75th percentile of rates = 25th of times
    # trimmed mean of times: drop one from each end (20% of 5), mean(0.01, 0.01, 0.0125) -> 1 / 0.0108333
    assert estimate(rates, "trimmed_mean") == pytest.approx(1 / ((0.01 + 0.01 + 0.0125) / 3))
    assert set(ESTIMATORS) == {"median", "min_time", "low_quantile", "trimmed_mean"}
    with pytest.raises(LookupError, match="unknown estimator 'mean'"):
        estimate(rates, "mean")


def test_quantile_cis_from_binomial_ranks():
    for n in (1, 3, 6, 9, 10, 50, 1000):
        values = [float(v) for v in range(n)]
        assert quantile_ci(values, 0.5) == median_ci(values)
    lo, hi = quantile_ci([float(v) for v in range(100)], 0.75)  # ranks 75 -/+ 1.96 sqrt(100 * .75 * .25)
    assert (lo, hi) == (65.0, 83.0)
    assert quantile_ci([1.0, 2.0, 3.0], 0.75) == (1.0, 3.0)  # too few values: the full range


def test_ci_half_width_shrinks_with_agreement_and_every_estimator_has_one():
    steady = [100.0 + 0.1 * (i % 5) for i in range(30)]
    spread = [100.0 * (1 + 0.2 * ((i * 7) % 11) / 10) for i in range(30)]
    for name in ESTIMATORS:
        lo, hi = estimate_ci(steady, name)
        assert lo <= estimate(steady, name) * 1.002 and hi >= estimate(steady, name) * 0.998
        assert ci_half_width(steady, name) < 0.01 < ci_half_width(spread, name)
    assert ci_half_width([100.0], "median") == float("inf")


def test_proc_stat_and_the_flags_it_raises():
    text = "cpu  100 5 50 800 20 3 2 140 7 0\ncpu0 50 2 25 400 10 1 1 70 3 0\nintr 1 2 3\n"
    times = parse_proc_stat(text)
    assert (times.total, times.idle, times.steal) == (1120, 820, 140)  # guest is inside user already
    assert times.busy == 160
    assert flags({"window_s": 1.0, "steal": 0.14, "others_cores": 1.3}, threads=2, cores=2) == \
        ["steal 14%", "load 1.3 cores"]
    assert flags({"window_s": 1.0, "steal": 0.01, "others_cores": 1.1}, threads=1, cores=2) == []  # a core free
    assert flags({"window_s": 0.05, "steal": 0.5, "others_cores": 2.0}, threads=2, cores=2) == []  # too short
    before = {1: ("a", 1.0), 2: ("b", 5.0)}
    after = {1: ("a", 1.05), 2: ("b", 6.0), 3: ("new", 0.5)}
    assert busy_processes(before, after, 1.0) == [{"pid": 2, "name": "b", "cores": 1.0},
                                                  {"pid": 3, "name": "new", "cores": 0.5},
                                                  {"pid": 1, "name": "a", "cores": 0.05}]


def test_sampler_reads_load_steal_and_switches_of_this_process():
    sampler = Sampler(threads=1).start()
    until = time.perf_counter() + 0.3
    while time.perf_counter() < until:
        pass
    state = sampler.stop()
    assert state["window_s"] >= 0.3 and 0.05 < state["own_cores"] <= 1.1  # one spinning thread (less when busy)
    assert 0 <= state["steal"] <= 1 and state["busy_cores"] > 0 and state["others_cores"] >= 0
    assert state["minor_faults"] >= 0
    assert set(state["allocator"]) == {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"}
    assert len(state["load_before"]) == 3 and len(state["load_during"]) == 3
    assert state["involuntary_switches"] >= 0 and state["voluntary_switches"] >= 0


def test_adaptive_sampling_stops_at_the_target_on_a_steady_plugin_and_at_the_cap_on_a_jittery_one(fake_run, tmp_path):
    common = ("-m", "mlp", "-t", "synthetic_images", "--steps", "100", "--max-timing", "1.0")
    process, records = fake_run(*common, "--variant", "sleep", "--ci-target", "3%")
    assert process.returncode == 0, process.stderr
    steady = records[0]["metrics"]
    shutil.rmtree(tmp_path / "out")  # fake_run's folder, for the second run
    # the jittery plugin's blocks spread ~17%: a 1% CI of their median needs thousands, far past the cap
    process, records = fake_run(*common, "--variant", "jittery", "--ci-target", "1%")
    assert process.returncode == 0, process.stderr
    jittery = records[0]["metrics"]
    assert steady["ci_target"] == 0.03 and steady["train_ci_reached"] is True
    assert steady["train_ci_half_rel"] <= 0.03 and steady["phases_s"]["extra_timing"] < 0.5
    assert jittery["train_ci_reached"] is False and jittery["train_ci_half_rel"] > 0.01
    assert 0.5 < jittery["phases_s"]["extra_timing"] < 1.0 + 0.6  # the cap is on timed seconds, 1.0 here
    assert len(jittery["train_blocks"]) > len(steady["train_blocks"])
    assert "± CI target missed in 1 case(s)" in comparison_table(records)
    assert not any(reason.startswith("paging") for reason in steady.get("disturbed", []))


def test_a_case_that_pages_every_step_is_flagged(fake_run):
    """A single run of a case whose allocator maps and unmaps every step is one draw of a regime
    (docs/fidelity.md, section 6): the table marks it, whatever dlbench's malloc thresholds."""
    process, records = fake_run("-m", "softmax", "-t", "synthetic_images", "--steps", "60", "--variant", "paging")
    assert process.returncode == 0, process.stderr
    metrics = records[0]["metrics"]
    assert metrics["train_faults_per_step"] > 1500  # 2,048 pages written a step
    assert any(reason.startswith("paging ") and reason.endswith(" faults/step") for reason in metrics["disturbed"])
    table = comparison_table(records)
    assert "~" in table.splitlines()[2] and "paging: page faults a training step" in table


def test_estimator_is_recorded_and_the_raw_blocks_kept(fake_run):
    process, records = fake_run("-m", "softmax", "-t", "synthetic_images", "--steps", "60", "--estimator", "min_time")
    assert process.returncode == 0, process.stderr
    metrics = records[0]["metrics"]
    assert metrics["estimator"] == "min_time"
    assert metrics["train_samples_per_s"] == max(metrics["train_blocks"])
    assert metrics["infer_samples_per_s"] == max(metrics["infer_blocks"])


def test_cpu_burned_beside_a_case_is_measured_and_flagged(fake_run):
    with burners(2) as pids:
        process, records = fake_run("-m", "mlp", "-t", "synthetic_images", "--variant", "spin", "--steps", "300",
                                    "--threads", str(os.cpu_count()))  # every core: no spare core for the burners
    assert process.returncode == 0, process.stderr
    metrics = records[0]["metrics"]
    state = metrics["machine_state"]
    assert state["window_s"] > 0.5 and state["others_cores"] > 0.8
    assert state["involuntary_switches"] > 0  # the spinning worker lost its core to the burners
    busy = {p["pid"] for p in state["busy_processes"]}
    assert busy & set(pids) or len(busy) == TOP_PROCESSES  # on a shared machine others may outrank them
    assert any(reason.startswith("load ") for reason in metrics["disturbed"])
    table = comparison_table(records)
    assert "~" in table.splitlines()[2] and "~ disturbed" in table and "load " in table
    assert json.dumps(records[0]["env"]["peak"])  # the run's ceiling travels with every record



def test_allocator_settings_yield_to_the_environment(monkeypatch):
    from dlbench.machine.environment import ALLOCATOR_ENV, worker_environment

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1234")
    env = worker_environment(1, verbose=False)
    assert env["MALLOC_TRIM_THRESHOLD_"] == "1234"
    assert env["MALLOC_MMAP_THRESHOLD_"] == ALLOCATOR_ENV["MALLOC_MMAP_THRESHOLD_"]
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    monkeypatch.setenv("DLBENCH_MALLOC", "glibc-default")
    assert not set(ALLOCATOR_ENV) & set(worker_environment(1, verbose=False))


def test_short_blocks_are_merged_into_blocks_of_the_profile_length():
    from dlbench.measure.timing import merge_short_blocks

    assert merge_short_blocks([0.05, 0.05, 0.05, 0.05, 0.05], 0.1) == [(2, 0.1), (3, 0.15000000000000002)]
    assert merge_short_blocks([0.2, 0.3], 0.1) == [(1, 0.2), (1, 0.3)]  # long enough: kept as timed
    assert merge_short_blocks([0.02, 0.03], 0.1) == [(2, 0.05)]  # never reaching the length: one block
    assert merge_short_blocks([], 0.1) == []


def test_a_budget_too_small_for_long_blocks_times_short_ones_and_records_them_merged():
    from dataclasses import replace

    from dlbench.measure.profiles import get_profile
    from dlbench.measure.timing import measure_training, merge_short_blocks

    class Sleeper:  # 1 ms a step; calls the block hook every hook.steps steps, as the contract asks
        def train(self, steps, hook=None):
            for index in range(steps):
                time.sleep(0.001)
                if hook is not None and (index + 1) % hook.steps == 0:
                    hook()

        def sync(self):
            pass

        def evaluate(self, x, y):
            return 0.0, 0.5

    profile = replace(get_profile("smoke"), min_block_s=0.02, min_blocks=6, tta_evaluations=0)
    data = type("Data", (), {"x_val": None, "y_val": None})()
    result = measure_training(Sleeper(), data, 8, 40, profile, target=None)
    assert result.raw_block_steps < result.block_steps  # the budget forced short blocks, grouped afterwards
    raw_seconds = [result.raw_block_steps * 8 / rate for rate in result.raw_rates]
    assert len(result.raw_rates) > len(result.rates) >= 1 and max(raw_seconds) < profile.min_block_s
    groups = merge_short_blocks(raw_seconds, profile.min_block_s)
    assert all(seconds >= profile.min_block_s for _, seconds in groups)  # no timed step dropped, none short
    assert result.rates == pytest.approx([count * result.raw_block_steps * 8 / s for count, s in groups])


def test_affinity_off_leaves_the_worker_free(fake_run):
    process, records = fake_run("-m", "softmax", "-t", "synthetic_images", "--steps", "30", "--threads", "1",
                                DLBENCH_AFFINITY="off")
    assert process.returncode == 0, process.stderr
    assert records[0]["metrics"]["machine_state"]["affinity"] == sorted(os.sched_getaffinity(0))


def test_dlbenchs_environment_and_the_users_are_recorded_and_never_pooled(fake_run, tmp_path):
    """dlbench's environment: fixed allocator thresholds, the worker pinned to the last cores of its budget.
    --environment user: glibc and the scheduler as shipped (no thresholds, no pinning), every core by
    default; the record says which, and tables and compare keep the two apart."""
    from conftest import read_records
    from dlbench.machine.environment import ALLOCATOR_ENV, allocator_env, worker_cpus
    from dlbench.machine.identity import environment_of, key_of
    from dlbench.report.compare import compare_records
    from dlbench.report.summary import summarise

    case = ("-m", "softmax", "-t", "synthetic_images", "--steps", "12")
    process, ours = fake_run(*case, "--threads", "1")
    assert process.returncode == 0, process.stderr
    allowed = sorted(os.sched_getaffinity(0))
    assert ours[0]["metrics"]["machine_state"]["allocator"] == ALLOCATOR_ENV
    pinned = ours[0]["metrics"]["machine_state"]["affinity"]
    assert pinned == (allowed[-1:] if len(allowed) > 1 else allowed)  # CPU 0 and the rest left to the harness
    assert worker_cpus(len(allowed)) is None  # a budget of every core: nothing to pin
    assert worker_cpus(1, {"DLBENCH_AFFINITY": "off"}) is None
    process, _ = fake_run(*case, "--environment", "user", "--out", str(tmp_path / "user"))
    assert process.returncode == 0, process.stderr
    users = read_records(tmp_path / "user")
    user = users[0]
    assert user["threads"] == os.cpu_count()  # no core left over by default
    assert user["worker_environment"] == {"name": "user", "allocator": allocator_env(os.environ, "user"), "cpus": None}
    state = user["metrics"]["machine_state"]
    assert state["affinity"] == sorted(os.sched_getaffinity(0))
    assert state["allocator"] == {name: os.environ.get(name) for name in state["allocator"]}  # nothing added
    assert environment_of(user).startswith("user · ") and not environment_of(ours[0]).startswith("user")
    assert "settle" in user["metrics"]["phases_s"] and "settle" not in ours[0]["metrics"]["phases_s"]  # one evaluation
    assert "user's environment" in user["fairness"]["threads"] and "dlbench's" in ours[0]["fairness"]["threads"]
    metrics = ours[0]["metrics"]  # the CPU clock of the blocks: a plugin that sleeps through its steps uses little
    assert metrics["train_cpu_share"] < 0.5 and metrics["train_cpu_samples_per_s"] > 2 * metrics["train_samples_per_s"]
    assert len(metrics["train_blocks_cpu_s"]) == len(metrics["train_blocks_raw"])
    assert metrics["train_faults_per_step"] >= 0
    assert key_of(user) != key_of(ours[0])
    users[0]["threads"] = ours[0]["threads"]  # the same budget: the environment alone keeps them apart
    assert len(set(summarise(ours + users)["machine"])) == 2
    comparison = compare_records(ours, users)
    assert not comparison.changes and comparison.incomparable
    assert comparison.differences == [f"environment {environment_of(ours[0])} vs {environment_of(user)}"]


def test_the_fidelity_protocol_cuts_dlbench_length_blocks_and_refuses_verdicts_it_cannot_give(monkeypatch):
    """benchmarks/fidelity_protocol.py: blocks of exactly dlbench's steps from a plain loop's clock marks (a
    mark of no steps stays in its block), and no pass for a loaded run or differing allocator regimes."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from fidelity_protocol import compare_model, cut

    # [steps, samples, wall s, CPU s, faults]: 10 ms and 8 ms of CPU a step, a 50 ms pause (epoch end) after step 4
    marks = [[i, 128 * i, 0.01 * i + (0.05 if i > 4 else 0), 0.008 * i, 0] for i in range(13)]
    marks.insert(5, [4, 512, 0.09, 0.032, 0])
    wall, cpu = cut(marks, 4, skip=0)
    assert wall == pytest.approx([12800, 512 / 0.09, 12800]) and cpu == pytest.approx([16000] * 3)
    assert cut(marks, 4, skip=4)[0] == pytest.approx([512 / 0.09, 12800])

    def plain(faults: int, loaded: list) -> dict:
        return {"train_marks": [[s, b, w, c, faults * s] for s, b, w, c, _ in marks], "warmup": 0,
                "train_samples_per_s": 10000.0, "infer_marks": [[0, 0, 0.0, 0.0, 0], [1, 128, 0.001, 0.001, 0]],
                "loaded": loaded}

    ours = {"train": 12800.0, "train_cpu": 16000.0, "faults": 3, "block_steps": 4, "infer": 1.0, "infer_cpu": 1.0,
            "loaded": []}
    assert compare_model("m", [ours], [plain(3, [])], False, 2)["verdict"] == "pass"
    assert compare_model("m", [{**ours, "train": 15000.0}], [plain(3, [])], False, 2)["verdict"] == "FAIL: wall"
    assert compare_model("m", [ours], [plain(3, ["load 1.4 cores"])], False, 2)["verdict"].startswith("no verdict")
    assert compare_model("m", [ours], [plain(3, [])], False, 1)["verdict"] == "no verdict: loaded (own share 0.56)"
    quiet = {**plain(3, []), "others_cores": 0.05}  # a low share on a quiet machine is the loop's own idling
    assert compare_model("m", [ours], [quiet], False, 1)["verdict"] == "pass"
    assert "allocator regimes differ" in compare_model("m", [ours], [plain(5000, [])], False, 2)["verdict"]
    glibc = {**ours, "faults": 1837}  # glibc's defaults on both sides, its adaptive state not the same
    assert "allocator regimes differ" in compare_model("m", [glibc], [plain(9936, [])], False, 2)["verdict"]
    assert compare_model("m", [{**ours, "faults": 12692}], [plain(14821, [])], False, 2)["verdict"] == "pass"
    drawn = compare_model("m", [{**ours, "faults": 15}, {**ours, "train": 9000.0, "faults": 1952},
                                {**ours, "train": 9500.0, "faults": 20}], [plain(3, [])] * 2, False, 2)
    assert drawn["verdict"] == "no verdict: runs differ run to run (dlbench faults/step 15-1,952)"  # per process

    # each side spread, 8 runs: a pass only when compare's test calls the two sides the same within the band
    drawn8 = compare_model("m", [{**ours, "faults": f} for f in (15, 1952) * 4],
                           [plain(3, [])] * 8, False, 2)  # faults spread, the rates did not move
    assert drawn8["verdict"].startswith("pass (runs differ run to run: dlbench faults/step 15-1,952; medians wall "
                                        "1.000, 95% interval 1.000-1.000")
    wide = compare_model("m", [{**ours, "faults": f, "train": r} for f, r in zip((15, 1952) * 4, (12800, 10000) * 4)],
                         [plain(3, [])] * 8, False, 2)
    assert wide["verdict"].startswith("no verdict: runs differ run to run (dlbench faults/step 15-1,952; medians wall")
    assert wide["intervals"]["wall"][0] < 0.95 < wide["intervals"]["wall"][1]  # 10,000 or 12,800: either median
    bimodal = compare_model("m", [ours, {**ours, "train": 8000.0}], [plain(3, [])] * 2, False, 2)
    assert bimodal["verdict"] == "no verdict: runs differ run to run (dlbench train/s 8,000-12,800)"
