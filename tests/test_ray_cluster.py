"""`dlbench run --executor ray` against a real Ray cluster started here: a head on loopback with 2 CPUs
and a second node started as its own process (custom resource ``second``, an empty HOME, so it has no
data sets of its own). Each test drives the real CLI in a subprocess; the fake framework makes cases
take a known time without a tensor library.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import dlbench_env, read_records, run_dlbench, sigint_default

pytest.importorskip("ray")

from dlbench.testing.datafiles import write_idx_folder  # noqa: E402
from dlbench.testing.raycluster import LocalRayCluster  # noqa: E402
from dlbench.running.launcher import default_launch  # noqa: E402

MARK = f"DLBENCH_TEST_CLUSTER={uuid.uuid4().hex}".encode()  # in the environ of every worker this cluster starts


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = Path(f"/tmp/dlr-{uuid.uuid4().hex[:8]}")  # short: Ray's socket paths must fit in 107 bytes
    key, value = MARK.decode().split("=")
    env = {"PYTHONPATH": dlbench_env()["PYTHONPATH"], key: value}
    with LocalRayCluster(root, head_cpus=2, env=env) as ray_cluster:
        empty = tmp_path_factory.mktemp("second-home")
        ray_cluster.add_node(num_cpus=2, resources={"second": 1}, name="second",
                             env={"HOME": str(empty), "DLBENCH_CACHE": str(empty / "cache"), "DLBENCH_DATA": ""})
        yield ray_cluster
    _wait_gone(_workers(MARK), 10)
    shutil.rmtree(root, ignore_errors=True)


def ray_run(cluster: LocalRayCluster, out: Path, *args: str, timeout: float = 120, cwd=None):
    return run_dlbench("run", "-f", "fake", "--profile", "smoke", "--threads", "1", "--out", str(out),
                       "--executor", "ray", "--ray-address", cluster.address, *args, plugins="fake_plugins",
                       timeout=timeout, cwd=cwd, **cluster.client_env)


def _workers(marker: bytes) -> list[int]:
    """pids of live dlbench worker processes whose environment carries ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"dlbench.measure.worker" in (entry / "cmdline").read_bytes() and marker in (entry / "environ").read_bytes():
                if (entry / "stat").read_text().split(")")[-1].split()[0] != "Z":
                    pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in alive if p in _workers(MARK)]
    return alive


def _wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _final(records: list[dict]) -> dict[tuple[str, int], dict]:
    """The record that counts for each (case, repeat): crashed attempts that were retried left out."""
    final = {}
    for record in records:
        if not record.get("retried"):
            key = (record["case_id"], record["repeat"])
            assert key not in final, f"{key} recorded twice"
            final[key] = record
    return final


def _lines(out: Path) -> list[str]:
    path = out / "results.jsonl"
    return path.read_text().splitlines() if path.exists() else []


def _ray_driver(cluster, out: Path, models: tuple[str, ...], steps: int) -> subprocess.Popen:
    """`dlbench run` of the fake plugin on the cluster, one case per model, as a background process."""
    command = [sys.executable, "-m", "dlbench.cli", "run", "-f", "fake", "--profile", "smoke", "--threads", "1",
               "--out", str(out), "--executor", "ray", "--ray-address", cluster.address, "--steps", str(steps),
               "-t", "synthetic_images", *[a for m in models for a in ("-m", m)]]
    with sigint_default():
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dlbench_env("fake_plugins", **cluster.client_env))


# -- the proofs ---------------------------------------------------------------------------------------------

def test_smoke_matrix_matches_the_local_executor_case_for_case(cluster, tmp_path):
    matrix = ("-f", "pytorch", "-m", "softmax", "-m", "mlp", "-t", "digits")  # a real framework next to the fake
    local = run_dlbench("run", "-f", "fake", "--profile", "smoke", "--threads", "1", "--out", str(tmp_path / "local"),
                        *matrix, plugins="fake_plugins", timeout=300)
    assert local.returncode == 0, local.stderr
    remote = ray_run(cluster, tmp_path / "ray", *matrix, timeout=300)
    assert remote.returncode == 0, remote.stderr
    here, there = _final(read_records(tmp_path / "local")), _final(read_records(tmp_path / "ray"))
    assert set(here) == set(there) and len(here) == 4
    for key, a in here.items():
        b = there[key]
        assert (a["status"], b["status"]) == ("ok", "ok"), key
        assert a["executor"]["name"] == "local" and b["executor"]["name"] == "ray"
        assert b["executor"]["packed"] is False and b["executor"]["num_cpus"] == 1
        assert b["machine"]["node_id"] != "local" and b["machine"]["hostname"] and b["machine"]["cpu"]
        assert b["data"]["origin"] == "node" and a["data"]["origin"] == "local"
        for field in ("pipeline", "source", "train", "val", "test"):
            assert a["data"][field] == b["data"][field], (key, field)
        for metric in ("params", "train_steps", "flops_per_sample", "initial_loss"):
            assert a["metrics"][metric] == pytest.approx(b["metrics"][metric], rel=1e-6), (key, metric)
        assert a["metrics"]["accuracy"] == pytest.approx(b["metrics"]["accuracy"], abs=1e-6), key
    nodes = {r["machine"]["node_id"] for r in there.values()}
    assert len(nodes) == 2, "both nodes of the cluster ran cases"
    for node in nodes:  # a node ran one case at a time: its cases' intervals never overlap
        spans = sorted((r["executor"]["started_unix"], r["executor"]["ended_unix"])
                       for r in there.values() if r["machine"]["node_id"] == node)
        assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:])), spans
    assert "| machine" not in remote.stdout  # one kind of machine: no machine column, ratios as usual
    # every case launched alike on the nodes and here (forked by default, from a server per Ray worker process)
    assert {r["launch"]["method"] for r in list(here.values()) + list(there.values())} == {default_launch()}


def test_pack_lets_cases_share_a_node_and_the_record_says_so(cluster, tmp_path):
    result = ray_run(cluster, tmp_path / "out", "-m", "softmax", "-m", "mlp", "-m", "cnn",
                     "-t", "synthetic_images", "--steps", "300", "--pack", "--node-type", "second")
    assert result.returncode == 0, result.stderr
    records = list(_final(read_records(tmp_path / "out")).values())
    assert len(records) == 3 and all(r["status"] == "ok" for r in records)
    assert {r["executor"]["packed"] for r in records} == {True}
    assert {r["executor"]["node_type"] for r in records} == {"second"}
    assert len({r["machine"]["node_id"] for r in records}) == 1
    spans = sorted((r["executor"]["started_unix"], r["executor"]["ended_unix"]) for r in records)
    assert any(next_start < end for (_, end), (next_start, _) in zip(spans, spans[1:])), \
        f"2 CPUs, 1 thread per case, --pack: cases should have overlapped {spans}"


def test_a_killed_worker_is_recorded_crashed_and_retried_on_another_node(cluster, tmp_path):
    killed: list[int] = []

    def kill_first_worker() -> None:
        pid = _wait_for(lambda: _workers(MARK), 60, "the case's worker process")[0]
        time.sleep(0.5)  # mid-case: training takes ~2 s
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_first_worker, daemon=True)
    killer.start()
    result = ray_run(cluster, tmp_path / "out", "-m", "mlp", "-t", "synthetic_images", "--steps", "1000")
    killer.join(timeout=5)
    assert killed, "the worker was never seen"
    assert result.returncode == 0, result.stderr  # the retry succeeded, so the run did
    first, retry = read_records(tmp_path / "out")
    assert first["status"] == "crashed" and first["retried"] is True and first["attempt"] == 0
    assert "SIGKILL" in first["error"] and first["machine"]["node_id"][:8] in first["error"]
    assert retry["status"] == "ok" and retry["attempt"] == 1 and not retry.get("retried")
    assert retry["machine"]["node_id"] != first["machine"]["node_id"], "retried on another node"
    assert Path(first["log"]).exists() and Path(first["log"]) != Path(tmp_path / "out" / "logs")
    assert "retry 1 after a crash" in result.stderr
    assert "crashed" not in result.stdout.split("Not measured")[0]  # the table shows the retry's numbers


def test_killing_a_node_mid_run_loses_no_finished_record(cluster, tmp_path):
    victim = cluster.add_node(num_cpus=2, resources={"victim": 1}, name="victim",
                              env={"DLBENCH_TEST_NODE": "victim"})
    out = tmp_path / "out"
    models = ("softmax", "mlp", "mlp64", "cnn", "cnn_dropout", "cnn3")
    driver = _ray_driver(cluster, out, models, 600)
    try:
        _wait_for(lambda: _lines(out) and _workers(b"DLBENCH_TEST_NODE=victim") and _workers(MARK), 90,
                  "a finished record while the victim node runs a case")
        before = _lines(out)
        cluster.kill_node(victim)
        stdout, stderr = driver.communicate(timeout=180)
    finally:
        driver.kill()
    assert driver.returncode == 0, stderr
    after = _lines(out)
    assert after[:len(before)] == before, "records on disk before the node died are still there, unchanged"
    records = [json.loads(line) for line in after]
    final = _final(records)
    assert len(final) == len(models) and all(r["status"] == "ok" for r in final.values())
    crashed = [r for r in records if r["status"] == "crashed"]
    assert crashed and all(r["retried"] for r in crashed)
    victim_ids = {r["machine"]["node_id"] for r in crashed}
    assert len(victim_ids) == 1 and "died while running the case" in crashed[0]["error"]
    retries = [r for r in final.values() if r["attempt"] == 1]
    assert retries and all(r["machine"]["node_id"] not in victim_ids for r in retries), "retried elsewhere"


def test_sigint_cancels_outstanding_tasks_and_resume_finishes_the_run(cluster, tmp_path):
    out = tmp_path / "out"
    models = ("softmax", "mlp", "mlp64", "cnn", "cnn_dropout")
    driver = _ray_driver(cluster, out, models, 700)
    try:
        _wait_for(lambda: _lines(out) and _workers(MARK), 90, "a finished record and a running case")
        running = _workers(MARK)
        driver.send_signal(signal.SIGINT)
        stdout, stderr = driver.communicate(timeout=60)
    finally:
        driver.kill()
    assert driver.returncode == 130, stderr
    assert _wait_gone(running, 15) == [], "cancelled cases' worker processes are gone"
    interrupted = [json.loads(line) for line in _lines(out)]
    assert 1 <= len(_final(interrupted)) < len(models)
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    assert f"--resume {out}" in stderr

    resumed = run_dlbench("run", "--resume", str(out), plugins="fake_plugins", timeout=180, **cluster.client_env)
    assert resumed.returncode == 0, resumed.stderr
    records = [json.loads(line) for line in _lines(out)]
    assert records[:len(interrupted)] == interrupted
    final = _final(records)
    assert len(final) == len(models) and all(r["status"] == "ok" for r in final.values())
    assert {r["executor"]["name"] for r in records} == {"ray"}  # the resumed run kept its executor


def test_a_node_without_the_data_set_gets_the_drivers_arrays(cluster, tmp_path):
    # The data exists only under the driver's working directory: --data-dir is relative, and a Ray
    # worker's working directory is not the driver's, so the second node cannot find it (as on a real
    # cluster without a shared disk); HOME, DLBENCH_DATA and the cache of that node are empty too.
    write_idx_folder(tmp_path / "data" / "mnist", n_train=600, n_test=100)
    local = run_dlbench("run", "-f", "fake", "-m", "softmax", "-t", "mnist", "--profile", "smoke", "--threads", "1",
                        "--data-dir", "data", "--out", "local", plugins="fake_plugins", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    result = ray_run(cluster, Path("out"), "-m", "softmax", "-t", "mnist", "--data-dir", "data",
                     "--node-type", "second", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (here,), (there,) = read_records(tmp_path / "local"), read_records(tmp_path / "out")
    assert there["status"] == "ok" and there["data"]["origin"] == "driver"
    assert "shipped by the driver through Ray's object store" in there["data"]["source"]
    assert there["data"]["source"].split(", cache")[0] == here["data"]["source"].split(", cache")[0]  # same digest
    for field in ("pipeline", "train", "val", "test"):
        assert there["data"][field] == here["data"][field]
    assert there["metrics"]["accuracy"] == here["metrics"]["accuracy"]
    assert there["executor"]["node_type"] == "second"


def test_an_unknown_node_type_is_one_line(cluster, tmp_path):
    result = ray_run(cluster, tmp_path / "out", "-m", "mlp", "-t", "synthetic_images", "--node-type", "h100")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]  # after the plan's summary line: one line, no traceback
    assert last.startswith("dlbench: error: --node-type h100: no node of the cluster has that custom resource")
    assert "second" in last  # says which custom resources the cluster has
    assert not (tmp_path / "out" / "results.jsonl").exists()
