"""`dlbench doctor`: the machine's settings read from sysfs, its load seen, its GEMM peak measured and cached."""

from __future__ import annotations

import json
import os

from conftest import run_dlbench
from test_noise import burners

from dlbench.machine.state import cgroup_cpus, governor, turbo
from dlbench.machine.doctor import advice


def test_settings_are_read_from_cgroup_and_sysfs_files(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpus(str(v2)) == 1.5
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpus(str(v2)) is None
    v1 = tmp_path / "v1" / "cpu"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("50000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpus(str(tmp_path / "v1")) == 0.5
    assert cgroup_cpus(str(tmp_path / "nothing")) is None
    cpus = tmp_path / "cpu"
    for n, name in ((0, "powersave"), (1, "powersave")):
        (cpus / f"cpu{n}" / "cpufreq").mkdir(parents=True)
        (cpus / f"cpu{n}" / "cpufreq" / "scaling_governor").write_text(name + "\n")
    assert governor(str(cpus)) == "powersave" and turbo(str(cpus)) is None
    (cpus / "intel_pstate").mkdir()
    (cpus / "intel_pstate" / "no_turbo").write_text("0\n")
    assert turbo(str(cpus)) is True


def test_advice_names_what_to_change():
    facts = {"cores": 4, "threads": 4, "now": {"steal": 0.14, "others_cores": 1.5, "load_during": [5.0, 3, 2],
                                               "busy_processes": [{"pid": 42, "name": "make", "cores": 1.4}]},
             "settings": {"cgroup_cpus": 2.0, "governor": "powersave", "turbo": True},
             "peak_now": {"gemm_gflops": 100.0}, "peak_one_thread": {"gemm_gflops": 90.0}}
    tips = "\n".join(advice(facts))
    for expected in ("CPU steal 14%", "make (pid 42, 1.4 cores)", "--threads 2", "governor 'powersave'",
                     "pyperf system tune", "turbo/boost is on", "hardly faster than with one", "load average 5.0",
                     "uses every core", "--threads 3, the default"):
        assert expected in tips
    quiet = {"cores": 2, "threads": 1, "now": {"steal": 0.0, "others_cores": 0.1, "load_during": [0.2, 0, 0]},
             "settings": {"cgroup_cpus": None, "governor": None, "turbo": None},
             "peak_now": {"gemm_gflops": 100.0}, "peak_one_thread": {"gemm_gflops": 60.0}}
    assert advice(quiet) == []
    assert [tip for tip in advice({**quiet, "threads": 2}) if "uses every core" in tip]


def test_the_default_budget_leaves_one_core_to_the_harness_except_in_the_users_environment():
    from dlbench.cli.main import build_parser
    from dlbench.cli.run import _resolve_environment
    from dlbench.machine.environment import default_threads

    assert [default_threads(n) for n in (1, 2, 4, 64)] == [1, 1, 3, 63]
    assert [default_threads(n, "user") for n in (1, 2, 64)] == [1, 2, 64]
    for argv, threads in ((["run", "--all"], default_threads()), (["run", "--all", "--environment", "user"],
                                                                  os.cpu_count()),
                          (["run", "--all", "--environment", "user", "--threads", "1"], 1)):
        args = build_parser().parse_args(argv)
        _resolve_environment(args)
        assert args.threads == threads


def test_doctor_sees_a_busy_machine_measures_the_peak_and_caches_it(tmp_path):
    with burners(2):
        process = run_dlbench("doctor", "--seconds", "0.5", "--threads", "1", "--json", timeout=120,
                              DLBENCH_CACHE=str(tmp_path))
    assert process.returncode == 0, process.stderr
    facts = json.loads(process.stdout)
    assert facts["now"]["others_cores"] > 0.8 and facts["now"]["busy_processes"]
    assert any("other processes used" in tip for tip in facts["advice"])
    assert facts["peak_now"]["gemm_gflops"] > 1 and facts["peak_now"]["mem_bandwidth_gbs"] > 0.1
    cached = list((tmp_path / "machine").glob("peak-*-1t-cpu-*.json"))  # one per comparability key
    assert len(cached) == 1 and json.loads(cached[0].read_text())["gemm_gflops"] >= facts["peak_now"]["gemm_gflops"]
    text = run_dlbench("doctor", "--seconds", "0.2", "--threads", "1", timeout=120, DLBENCH_CACHE=str(tmp_path))
    assert text.returncode == 0 and "GFLOP/s" in text.stdout and "advice" in text.stdout
    from dlbench.machine.cpu import gpu_names

    if gpu_names():  # the GPU's own ceilings per library (machine.gpu_peak), or why there are none
        assert "GPU ceilings on" in text.stdout and "bfloat16" in text.stdout and facts["gpu_peak"]
    else:
        assert "GPU ceilings: no NVIDIA GPU here" in text.stdout and facts["gpu_peak"] == {}


def test_bad_doctor_options_are_one_line_and_exit_2():
    process = run_dlbench("doctor", "--seconds", "0")
    assert process.returncode == 2 and "--seconds must be between" in process.stderr
    assert "Traceback" not in process.stderr and len(process.stderr.strip().splitlines()) == 1


def test_a_run_measures_the_ceiling_until_it_is_the_best_of_three_then_only_on_a_quieter_machine(tmp_path,
                                                                                                  monkeypatch):
    from dlbench.machine import peak

    monkeypatch.setenv("DLBENCH_CACHE", str(tmp_path))
    assert peak.peak_for_run(1, remeasure=True)["gemm_gflops"] > 1  # nothing cached: measured (a fresh process)
    path = peak._cache_path(1)
    facts = json.loads(path.read_text())
    path.write_text(json.dumps({**facts, "measurements": 3, "quietest_load_1m": 0.0}))  # never quieter than that
    assert peak.peak_for_run(1, remeasure=True)["measured_at"] == facts["measured_at"]  # nothing new to learn
    path.write_text(json.dumps({**facts, "measurements": 3, "quietest_load_1m": 1e6}))  # any load is quieter
    again = peak.peak_for_run(1, remeasure=True)
    assert again["measurements"] == 4 and again["quietest_load_1m"] < 1e6
    assert again["gemm_gflops"] >= facts["gemm_gflops"]  # the cache keeps the highest ceiling seen
