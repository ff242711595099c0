"""``dlbench data fetch`` against a real HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import pytest

from dlbench.data import DataError, load_task, task_status
from dlbench.data import remote
from dlbench.testing import datafiles as testing
from dlbench.cli.data import add_commands
from dlbench.data.download import download
from dlbench.errors import UsageError


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    testing.isolate(monkeypatch, tmp_path)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def payload() -> bytes:
    return np.random.default_rng(0).bytes(300_000)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- download(): resume, retry, verify ------------------------------------------------------------------


def test_download_verifies_and_writes(tmp_path, payload):
    with testing.serve({"blob.bin": payload}) as server:
        got = download(server.url + "blob.bin", tmp_path / "out" / "blob.bin", sha256=sha(payload), backoff=0)
    assert got == sha(payload)
    assert (tmp_path / "out" / "blob.bin").read_bytes() == payload
    assert _leftovers(tmp_path / "out") == ["blob.bin"]


def test_interrupted_download_resumes_with_range(tmp_path, payload):
    with testing.serve({"blob.bin": payload}) as server:
        server.cut["blob.bin"] = 2  # the first two responses stop halfway
        download(server.url + "blob.bin", tmp_path / "blob.bin", sha256=sha(payload), backoff=0)
    assert (tmp_path / "blob.bin").read_bytes() == payload
    ranges = [r for _, r in server.requests]
    assert ranges == [None, "bytes=150000-", "bytes=225000-"]


def test_interrupted_download_restarts_when_server_ignores_range(tmp_path, payload):
    with testing.serve({"blob.bin": payload}) as server:
        server.ranges = False
        server.cut["blob.bin"] = 1
        download(server.url + "blob.bin", tmp_path / "blob.bin", sha256=sha(payload), backoff=0)
    assert (tmp_path / "blob.bin").read_bytes() == payload
    assert len(server.requests) == 2


def test_stale_part_file_longer_than_remote_restarts(tmp_path, payload):
    (tmp_path / "blob.bin.part").write_bytes(b"x" * (len(payload) + 10))
    with testing.serve({"blob.bin": payload}) as server:
        download(server.url + "blob.bin", tmp_path / "blob.bin", sha256=sha(payload), backoff=0)
    assert (tmp_path / "blob.bin").read_bytes() == payload
    assert _leftovers(tmp_path) == ["blob.bin"]


def test_retries_are_bounded_and_keep_the_part_for_later(tmp_path, payload):
    with testing.serve({"blob.bin": payload}) as server:
        server.ranges = False
        server.cut["blob.bin"] = 100
        with pytest.raises(DataError, match="failed after 3 attempts.*run the same command again to resume"):
            download(server.url + "blob.bin", tmp_path / "blob.bin", sha256=sha(payload), retries=2, backoff=0)
        assert len(server.requests) == 3
    assert not (tmp_path / "blob.bin").exists()
    assert (tmp_path / "blob.bin.part").exists()


def test_wrong_checksum_fails_and_leaves_nothing(tmp_path, payload):
    with testing.serve({"blob.bin": payload}) as server:
        with pytest.raises(DataError) as info:
            download(server.url + "blob.bin", tmp_path / "blob.bin", sha256="0" * 64, backoff=0)
    message = str(info.value)
    assert f"SHA-256 {sha(payload)} does not match the expected {'0' * 64}" in message
    assert "nothing was written" in message and "\n" not in message
    assert _leftovers(tmp_path) == []


def test_corrupted_in_transit_after_resume_fails_the_checksum(tmp_path, payload):
    (tmp_path / "blob.bin.part").write_bytes(b"\0" * 1000)  # a part file from some other content
    with testing.serve({"blob.bin": payload}) as server:
        with pytest.raises(DataError, match="does not match"):
            download(server.url + "blob.bin", tmp_path / "blob.bin", sha256=sha(payload), backoff=0)
    assert _leftovers(tmp_path) == []


def test_missing_file_is_not_retried(tmp_path):
    with testing.serve({}) as server:
        with pytest.raises(DataError, match="HTTP 404.*--mirror"):
            download(server.url + "nope.npz", tmp_path / "nope.npz", sha256="0" * 64, backoff=0)
        assert len(server.requests) == 1


def test_refused_connection_is_retried_then_reported(tmp_path):
    with testing.serve({}) as server:
        url = server.url
    with pytest.raises(DataError, match="failed after 2 attempts.*cannot connect"):
        download(url + "x.npz", tmp_path / "x.npz", sha256="0" * 64, retries=1, backoff=0)


def test_md5_only_verification(tmp_path, payload):
    with testing.serve({"blob.bin": payload}) as server:
        download(server.url + "blob.bin", tmp_path / "ok.bin", md5=hashlib.md5(payload).hexdigest(), backoff=0)
        with pytest.raises(DataError, match="MD5 .* does not match the publisher's"):
            download(server.url + "blob.bin", tmp_path / "bad.bin", md5="0" * 32, backoff=0)
    assert _leftovers(tmp_path) == ["ok.bin"]


# --- fetch(): the shipped table ---------------------------------------------------------------------------


def test_shipped_checksums_are_real_values_or_none():
    for item in (f for r in remote.REMOTES.values() for f in r.files):
        assert item.sha256 is None or (len(item.sha256) == 64 and int(item.sha256, 16) >= 0)
        assert item.sha256 or item.md5, f"{item.name}: no checksum at all"
    assert remote.REMOTES["mnist"].files[0].sha256.startswith("731c5ac6")
    assert remote.REMOTES["imdb"].files[0].sha256.startswith("69664113")
    assert remote.REMOTES["mnist"].base == "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


def test_fetch_mnist_from_mirror_then_load(tmp_path):
    data = testing.write_mnist_npz(tmp_path / "src" / "mnist.npz", 300, 60).read_bytes()
    with testing.serve({"mnist.npz": data}) as server:
        server.cut["mnist.npz"] = 1
        folder = remote.fetch("mnist", mirror=server.url, sha256={"mnist.npz": sha(data)}, backoff=0, log=str)
    assert folder == tmp_path / "cache"
    assert task_status("mnist").where == str(tmp_path / "cache" / "mnist.npz")
    assert load_task("mnist").x_test.shape == (60, 28, 28, 1)


def test_fetch_uses_the_shipped_checksum_by_default(tmp_path):
    data = testing.write_mnist_npz(tmp_path / "src" / "mnist.npz", 50, 10).read_bytes()
    with testing.serve({"mnist.npz": data}) as server:
        with pytest.raises(DataError, match="expected 731c5ac6"):
            remote.fetch("mnist", mirror=server.url, backoff=0, log=str)
    assert _leftovers(tmp_path / "cache") == []


def test_fetch_mirror_from_environment(tmp_path, monkeypatch):
    data = testing.write_imdb_npz(tmp_path / "src" / "imdb.npz", 40, 20).read_bytes()
    with testing.serve({"imdb.npz": data}) as server:
        monkeypatch.setenv("DLBENCH_MIRROR", server.url.rstrip("/"))
        remote.fetch("imdb", dest=tmp_path / "mine", sha256={"imdb.npz": sha(data)}, backoff=0, log=str)
    assert load_task("imdb", str(tmp_path / "mine")).x_test.shape == (20, 100)


def test_fetch_fashion_checks_publisher_md5_and_skips_good_files(tmp_path, monkeypatch):
    folder = testing.write_idx_folder(tmp_path / "src", 100, 20)
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    fake = remote.Remote("fashion_mnist", "http://unused.invalid/", "fashion-mnist", tuple(
        remote.RemoteFile(name, None, hashlib.md5(data).hexdigest()) for name, data in files.items()), "test")
    monkeypatch.setitem(remote.REMOTES, "fashion_mnist", fake)
    lines: list[str] = []
    with testing.serve(files) as server:
        remote.fetch("fashion_mnist", dest=tmp_path / "d", mirror=server.url, backoff=0, log=lines.append)
        first = len(server.requests)
        remote.fetch("fashion_mnist", dest=tmp_path / "d", mirror=server.url, backoff=0, log=lines.append)
        assert len(server.requests) == first == 4  # second time: all present and verified
    assert any("MD5 verified against the publisher's" in line and "SHA-256" in line for line in lines)
    assert load_task("fashion_mnist", str(tmp_path / "d")).x_test.shape == (20, 28, 28, 1)


def test_fetch_refuses_a_file_without_any_checksum(monkeypatch):
    fake = remote.Remote("mnist", "http://unused.invalid/", "", (remote.RemoteFile("mnist.npz", None),), "test")
    monkeypatch.setitem(remote.REMOTES, "mnist", fake)
    with pytest.raises(DataError, match="ships no checksum.*--sha256 mnist.npz=HEX"):
        remote.fetch("mnist", log=str)


def test_sha256_override_parsing():
    fashion = remote.REMOTES["fashion_mnist"]
    assert remote.parse_sha256_overrides(["A" * 64], remote.REMOTES["mnist"]) == {"mnist.npz": "a" * 64}
    assert remote.parse_sha256_overrides([f"t10k-labels-idx1-ubyte.gz={'b' * 64}"], fashion) == \
        {"t10k-labels-idx1-ubyte.gz": "b" * 64}
    for bad, why in ((["b" * 64], "has 4 files"), (["x.gz=" + "b" * 64], "no file 'x.gz'"), (["abc"], "64 hex")):
        with pytest.raises(ValueError, match=why):
            remote.parse_sha256_overrides(bad, fashion if "files" in why or "x.gz" in why else remote.REMOTES["imdb"])


# --- the CLI glue ---------------------------------------------------------------------------------------


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dlbench")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_fetch_into_data_dir(tmp_path, capsys):
    data = testing.write_mnist_npz(tmp_path / "src" / "mnist.npz", 100, 20).read_bytes()
    with testing.serve({"mnist.npz": data}) as server:
        code = _cli(["data", "fetch", "mnist", "--mirror", server.url, "--data-dir", str(tmp_path / "dd"),
                     "--sha256", sha(data)])
    assert code == 0
    assert (tmp_path / "dd" / "mnist.npz").read_bytes() == data
    out = capsys.readouterr()
    assert "given with --sha256" in out.err and "mnist: ready in" in out.out
    assert _cli(["data", "fetch", "mnist", "--data-dir", str(tmp_path / "dd")]) == 0  # already there
    assert "already present" in capsys.readouterr().out


def test_cli_fetch_failure_exits_1_with_one_line(tmp_path, capsys):
    data = b"not the real file"
    with testing.serve({"imdb.npz": data}) as server:
        assert _cli(["data", "fetch", "imdb", "--mirror", server.url]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("dlbench: ") and "does not match the expected 69664113" in err[-1]
    assert not (tmp_path / "cache" / "imdb.npz").exists()


@pytest.mark.parametrize("argv, why", [
    (["data", "fetch", "cifar"], "unknown data set 'cifar'; fetchable: mnist, imdb, fashion_mnist, cifar10"),
    (["data", "fetch", "digits"], "digits needs no download"),
    (["data", "fetch", "mnist", "--sha256", "123"], "expected 64 hex digits"),
    (["data", "fetch", "mnist", "--mirror", "ftp://x"], "expected an http"),
])
def test_cli_usage_errors(argv, why):
    with pytest.raises(UsageError, match=why):
        _cli(argv)


def test_cli_status_lists_every_task(tmp_path, capsys):
    testing.write_mnist_npz(tmp_path / "mnist.npz", 50, 10)
    assert _cli(["data", "status", "--data-dir", str(tmp_path)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "found" in lines["mnist"] and str(tmp_path / "mnist.npz") in lines["mnist"]
    assert "missing" in lines["imdb"] and "dlbench data fetch imdb" in lines["imdb"]


def test_real_command_fetches_through_the_main_cli(tmp_path):
    import os
    import subprocess
    import sys

    data = testing.write_mnist_npz(tmp_path / "src" / "mnist.npz", 60, 10).read_bytes()
    env = {**os.environ, "HOME": str(tmp_path / "home"), "DLBENCH_CACHE": str(tmp_path / "cache")}
    with testing.serve({"mnist.npz": data}) as server:
        env["DLBENCH_MIRROR"] = server.url
        done = subprocess.run([sys.executable, "-m", "dlbench.cli", "data", "fetch", "mnist", "--sha256", sha(data)],
                              capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cache" / "mnist.npz").read_bytes() == data
    status = subprocess.run([sys.executable, "-m", "dlbench.cli", "data", "status"], capture_output=True, text=True,
                            timeout=60, env=env)
    assert status.returncode == 0 and str(tmp_path / "cache" / "mnist.npz") in status.stdout


def test_fetch_cifar10_from_mirror_then_load_from_the_archive(tmp_path):
    assert remote.REMOTES["cifar10"].base + remote.REMOTES["cifar10"].files[0].name == \
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    data = testing.write_cifar10(tmp_path / "src" / "cifar-10-python.tar.gz", per_batch=20).read_bytes()
    with testing.serve({"cifar-10-python.tar.gz": data}) as server:
        server.cut["cifar-10-python.tar.gz"] = 1  # resumed with a Range request
        with pytest.raises(DataError, match="expected 6d958be0"):  # Keras' pin of the real archive is shipped
            remote.fetch("cifar10", mirror=server.url, backoff=0, log=str)
        remote.fetch("cifar10", mirror=server.url, sha256={"cifar-10-python.tar.gz": sha(data)}, backoff=0, log=str)
    assert task_status("cifar10").where == str(tmp_path / "cache" / "cifar-10-python.tar.gz")
    task = load_task("cifar10")
    assert task.input_shape == (32, 32, 3) and task.x_train.shape == (90, 32, 32, 3) and len(task.x_val) == 10
    assert task.x_test.shape == (20, 32, 32, 3) and task.x_test.dtype == np.float32 and task.x_test.max() <= 1.0
    x, y = testing.rgb_images(20, 5)  # the test batch, written with seed 0 + 5: HWC from the CHW bytes
    np.testing.assert_array_equal(task.y_test, y)
    np.testing.assert_allclose(task.x_test[3, 10, 4], x[3].reshape(3, 32, 32)[:, 10, 4] / 255.0, rtol=1e-6)
