"""Nothing lost: real crashing, hanging and raising workers; interruption; resume; torn files; locks."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import dlbench_env, read_records, run_dlbench


def test_every_fault_becomes_a_record_and_the_others_survive(fake_run, tmp_path, monkeypatch):
    child_pid_file = tmp_path / "child.pid"
    monkeypatch.setenv("FAKE_CHILD_PID_FILE", str(child_pid_file))
    process, records = fake_run("--variant", "sleep", "--variant", "abort", "--variant", "raise-train",
                                "--variant", "hang", "--variant", "bad-params", "--variant", "nan-loss",
                                "--variant", "raise-prepare", "--variant", "exit", "--variant", "segfault",
                                "--variant", "sigkill", "--variant", "hang-with-child",
                                "-m", "softmax", "-t", "synthetic_images",
                                "--case-timeout", "3.5")  # an ok case takes 0.6 s here; two hang for 3.5 s
    by_variant = {r["variant"]: r for r in records}
    assert process.returncode == 1  # some cases failed
    assert by_variant["sleep"]["status"] == "ok"
    assert by_variant["abort"]["status"] == "crashed" and "SIGABRT" in by_variant["abort"]["error"]
    assert by_variant["exit"]["status"] == "crashed" and "code 3" in by_variant["exit"]["error"]
    assert by_variant["hang"]["status"] == "timeout"
    assert by_variant["segfault"]["status"] == "crashed" and "SIGSEGV" in by_variant["segfault"]["error"]
    assert by_variant["sigkill"]["status"] == "crashed" and "SIGKILL (out of memory?)" in by_variant["sigkill"]["error"]
    assert by_variant["hang-with-child"]["status"] == "timeout"
    child = int(child_pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "the hung worker's child process outlived the timeout"
    assert len(records) == 11  # every case has its record
    assert by_variant["raise-train"]["status"] == "failed"
    assert "plugin fake_plugins failed in train: RuntimeError: the fake framework fell over" in \
        by_variant["raise-train"]["error"]
    assert "cannot build this model" in by_variant["raise-prepare"]["error"]
    assert "parity" in by_variant["bad-params"]["error"] and "7,851" in by_variant["bad-params"]["error"]
    assert "parity" in by_variant["nan-loss"]["error"]
    assert "Traceback" not in process.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as file:  # a zombie still answers kill(0): ask its state
            return file.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:  # reaped in between
        return False


def test_sigint_stops_the_run_keeps_finished_records_and_resume_completes_it(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "dlbench.cli", "run", "-f", "fake", "--variant", "sleep", "-m", "softmax",
               "-m", "mlp", "-t", "synthetic_images", "--steps", "1200", "--profile", "smoke", "--out", str(out)]
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell starts a background job: inherited
    try:  # dlbench run installs its own handler, so a SIGINT still stops it
        process = subprocess.Popen(command, env=dlbench_env("fake_plugins"), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (results.exists() and results.read_text().count("\n") >= 1):
        time.sleep(0.1)
    time.sleep(1.0)  # the second case is now running (1,200 steps of 2 ms: 2.4 s at the least)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert [r["model"] for r in read_records(out)] == ["softmax"]
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    assert "--resume" in stderr

    resumed = run_dlbench("run", "--resume", str(out), plugins="fake_plugins", timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(r["model"] for r in read_records(out)) == ["mlp", "softmax"]
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_torn_last_line_is_dropped_with_a_warning_and_resume_repairs_it(fake_run, tmp_path):
    process, records = fake_run("--variant", "sleep", "-m", "softmax", "-m", "mlp", "-t", "synthetic_images")
    out = tmp_path / "out"
    results = out / "results.jsonl"
    lines = results.read_text().splitlines(keepends=True)
    results.write_text(lines[0] + lines[1][: len(lines[1]) // 2])  # killed mid-write
    table = run_dlbench("table", str(results))
    assert table.returncode == 0, table.stderr
    assert "torn last line" in table.stderr and "softmax" in table.stdout
    resumed = run_dlbench("run", "--resume", str(out), plugins="fake_plugins")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(r["model"] for r in read_records(out)) == ["mlp", "softmax"]


def test_a_second_run_into_the_same_folder_refuses(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".lock").write_text(str(os.getpid()))  # a live process holds it
    process = run_dlbench("run", "-f", "fake", "-m", "softmax", "-t", "synthetic_images", "--profile", "smoke",
                          "--out", str(out), plugins="fake_plugins")
    assert process.returncode == 2
    assert "in use by another dlbench run" in process.stderr
    (out / ".lock").write_text("999999999")  # a dead one: taken over
    process = run_dlbench("run", "-f", "fake", "-m", "softmax", "-t", "synthetic_images", "--profile", "smoke",
                          "--out", str(out), plugins="fake_plugins")
    assert process.returncode == 0, process.stderr
    again = run_dlbench("run", "-f", "fake", "-m", "softmax", "-t", "synthetic_images", "--profile", "smoke",
                        "--out", str(out), plugins="fake_plugins")
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert again.stderr.count("\n") == 1 and f"--resume {out}" in again.stderr, again.stderr
    assert len(read_records(out)) == 1  # the finished run's records are untouched


def test_a_failed_case_names_its_log(fake_run, tmp_path):
    process, records = fake_run("--variant", "raise-train", "-m", "softmax", "-t", "synthetic_images")
    (record,) = records
    assert record["status"] == "failed"
    log = Path(record["log"])
    assert log.is_file() and log.parent == tmp_path / "out" / "logs"
    assert f"(log: {log})" in process.stderr
