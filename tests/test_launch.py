"""How a case's process starts (--launch): a forked worker is as fresh as a spawned one, and says how it began.

The probe plugin (plugins/probe_plugin.py) records what each case's process sees before it touches anything,
then leaves marks (a module global, an environment variable, a running thread, RNG draws) that a later case
would see if it ran in, or were forked from, a process that had run the earlier one.
"""

from __future__ import annotations

import json

from conftest import read_records, run_dlbench


def _probe(tmp_path, launch: str, *args: str) -> list[dict]:
    out = tmp_path / launch
    models = [arg for model in ("softmax", "mlp") for arg in ("-m", model)] if "-m" not in args else []
    process = run_dlbench("run", "-f", "probe", *models, "-t", "synthetic_images", "--profile",
                          "smoke", "--steps", "20", "--threads", "1", "--launch", launch, "--out", str(out), *args,
                          plugins="probe_plugin", timeout=120)
    assert process.returncode == 0, process.stderr
    return read_records(out)


def test_a_forked_case_sees_nothing_of_the_case_before_it_and_starts_as_a_spawned_one(tmp_path):
    forked, spawned = _probe(tmp_path, "fork"), _probe(tmp_path, "spawn")
    assert [r["launch"]["method"] for r in forked + spawned] == ["fork", "fork", "spawn", "spawn"]
    seen = [r["fairness"]["probe"] for r in forked + spawned]
    for probe in seen:
        assert probe["earlier_cases"] == [] and probe["mark"] is None, probe  # module globals, environment
        assert probe["threads"] == 1, probe  # no thread of the server's or of an earlier case
        assert probe["sid"] == probe["pgid"] == probe["pid"]  # its own session: a timeout kills its whole group
        assert probe["cmdline"][1:3] == ["-m", "dlbench.measure.worker"] and probe["cmdline"][3].endswith("case.json")
    (f1, f2), (s1, s2) = seen[:2], seen[2:]
    server = forked[0]["launch"]["server_pid"]
    assert forked[1]["launch"]["server_pid"] == server and "server_start_s" not in forked[1]["launch"]
    assert f1["ppid"] == f2["ppid"] == f1["imported_by"] == f2["imported_by"] == server  # preloaded there, once
    assert s1["imported_by"] == s1["pid"] and s2["imported_by"] == s2["pid"]
    assert f1["random"] != f2["random"] and f1["numpy_random"] != f2["numpy_random"]  # fresh entropy, as spawned
    assert f1["cpus"] == f2["cpus"] == s1["cpus"] == s2["cpus"]  # pinned alike
    assert f1["env"] == f2["env"] == s1["env"] == s2["env"] and f1["env"]["OMP_NUM_THREADS"] == "1"
    for forked_kb, spawned_kb in ((f1["memory_kb"], s1["memory_kb"]), (f2["memory_kb"], s2["memory_kb"])):
        for kind in ("VmRSS", "RssFile"):  # its libraries mapped as a spawned worker's, not left to fault in
            assert 0.8 < forked_kb[kind] / spawned_kb[kind] < 1.25, (kind, forked_kb, spawned_kb)
    for record in forked + spawned:
        harness = record["harness_s"]
        assert set(harness) == {"start", "server", "worker", "hand_back"} and min(harness.values()) >= 0
        assert sum(harness.values()) + sum(record["metrics"]["phases_s"].values()) <= record["wall_s"] + 0.05
    time_s = json.loads((tmp_path / "fork" / "run.json").read_text())["time_s"]  # where the run's time went
    assert time_s["fork_servers"] == forked[0]["launch"]["server_start_s"] > 0
    assert time_s["wall"] >= sum(r["wall_s"] for r in forked) and time_s["timed"] > 0
    assert abs(sum(v for k, v in time_s.items() if k != "wall") - time_s["wall"]) < 1e-6


def test_a_server_whose_preload_starts_a_thread_refuses_and_its_cases_are_spawned(tmp_path):
    record, second = _probe(tmp_path, "fork", "--variant", "threaded", "-m", "softmax", "--repeat", "2")
    assert record["status"] == second["status"] == "ok" and second["launch"]["why"] == record["launch"]["why"]
    launch = record["launch"]
    assert launch["method"] == "spawn" and launch["asked"] == "fork"
    assert "started 1 thread(s)" in launch["why"] and "forkserver-probe_threaded.log" in launch["why"]
    assert record["harness_s"]["server"] == launch["server_start_s"] > 0  # the refused server's start is accounted


def test_the_users_environment_spawns_unless_told_otherwise(monkeypatch):
    """--environment user leaves glibc's malloc adaptive: a forked child would inherit its server's thresholds."""
    from dlbench.running.launcher import LAUNCH_ENV, default_launch, fork_supported

    monkeypatch.delenv(LAUNCH_ENV, raising=False)
    assert default_launch("user") == "spawn"
    assert default_launch("dlbench") == ("fork" if fork_supported() else "spawn")
    monkeypatch.setenv(LAUNCH_ENV, "fork")
    assert default_launch("user") == "fork"  # asked for
