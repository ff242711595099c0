"""Small, real data files and a loopback file server, for tests (ours and plugin authors').

Everything written here is in the exact on-disk format of the real data sets, only smaller, so the
loaders under test are the production ones.
"""

from __future__ import annotations

import gzip
import io
import pickle
import re
import struct
import tarfile
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from dlbench.data.cache import clear_memory


def isolate(monkeypatch, tmp_path: Path) -> None:
    """Point HOME (hence ~/.keras), the dlbench cache and the mirror away from the real machine's."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DLBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DLBENCH_DATA", raising=False)
    monkeypatch.delenv("DLBENCH_MIRROR", raising=False)
    clear_memory()


def digit_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images (n, 28, 28), uint8 labels): a bright bar whose position encodes the label."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n).astype(np.uint8)
    x = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
    for label in range(10):
        x[y == label, 4 + 2 * label: 6 + 2 * label, 4:24] = 250
    return x, y


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8) in IDX format."""
    header = bytes((0, 0, 0x08, array.ndim)) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx_folder(folder: Path, n_train: int = 600, n_test: int = 100, gz: bool = True, seed: int = 0) -> Path:
    """The four MNIST-style IDX files (gzipped by default) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    x_train, y_train = digit_images(n_train, seed)
    x_test, y_test = digit_images(n_test, seed + 1)
    for stem, arr in (("train-images-idx3-ubyte", x_train), ("train-labels-idx1-ubyte", y_train),
                      ("t10k-images-idx3-ubyte", x_test), ("t10k-labels-idx1-ubyte", y_test)):
        data = idx_bytes(arr)
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data, mtime=0))
        else:
            (folder / stem).write_bytes(data)
    return folder


def write_mnist_npz(path: Path, n_train: int = 600, n_test: int = 100, seed: int = 0, **override) -> Path:
    """A Keras-style mnist.npz (x_train, y_train, x_test, y_test; uint8); ``override`` replaces arrays."""
    x_train, y_train = digit_images(n_train, seed)
    x_test, y_test = digit_images(n_test, seed + 1)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test, **override}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def ragged(sequences: list[list[int]]) -> np.ndarray:
    """A 1-D object array of lists, as Keras stores IMDb (np.array would make a 2-D array of equal lengths)."""
    out = np.empty(len(sequences), dtype=object)
    for i, seq in enumerate(sequences):
        out[i] = list(seq)
    return out


def review_ranks(n: int, seed: int, max_rank: int = 12000) -> tuple[list[list[int]], np.ndarray]:
    """Word-rank sequences (1 = most frequent) of varied length; label 1 reviews use ranks 20..29 more."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.int64)
    seqs = []
    for label in y:
        words = rng.integers(1, max_rank, rng.integers(5, 160)).tolist()
        words[: 3] = (rng.integers(20, 30, 3) if label else rng.integers(30, 40, 3)).tolist()
        seqs.append(words)
    return seqs, y


def write_imdb_npz(path: Path, n_train: int = 300, n_test: int = 100, seed: int = 0, **override) -> Path:
    """A Keras-style imdb.npz: object arrays of word-rank lists and int64 0/1 labels."""
    train, y_train = review_ranks(n_train, seed)
    test, y_test = review_ranks(n_test, seed + 1)
    arrays = {"x_train": ragged(train), "y_train": y_train, "x_test": ragged(test), "y_test": y_test, **override}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


_WORDS = ("good great fine bad awful movie film plot actor scene the a and of to is it was this "
          "don't wasn't story end music").split()


def write_aclimdb(root: Path, per_class: int = 20, seed: int = 0) -> Path:
    """An aclImdb folder (train/test x pos/neg x *.txt) with HTML line breaks, as in the real one."""
    rng = np.random.default_rng(seed)
    folder = root / "aclImdb"
    for split in ("train", "test"):
        for label, cue in (("pos", "great"), ("neg", "awful")):
            (folder / split / label).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                words = [_WORDS[j] for j in rng.integers(0, len(_WORDS), rng.integers(5, 130))]
                text = f"{cue.capitalize()}! " + " ".join(words) + "<br /><br />The End."
                (folder / split / label / f"{i}_{rng.integers(1, 11)}.txt").write_text(text, encoding="utf-8")
    return folder


def rgb_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 CIFAR-layout rows (n, 3072): 1024 red, 1024 green, 1024 blue bytes; labels): the label's colour."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = rng.integers(0, 60, (n, 3, 32, 32)).astype(np.uint8)
    for label in range(10):
        x[y == label, label % 3, 8:24, 2 * label: 2 * label + 12] = 250
    return x.reshape(n, 3072), y


class _Python2Pickler(pickle._Pickler):  # type: ignore[name-defined]  # the pure-Python pickler, to override bytes
    """Writes bytes as Python 2's ``str`` opcodes, as the CIFAR batches were written (protocol 2)."""

    dispatch = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def save_bytes(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def cifar_batch(x: np.ndarray, y: np.ndarray, label: str, **override) -> bytes:
    """One CIFAR python batch as Python 2 pickled it: a dict with bytes keys; ``override`` (``labels=...``)
    replaces entries, None drops one."""
    batch = {b"batch_label": label.encode(), b"labels": [int(v) for v in y], b"data": x,
             b"filenames": [f"img_{i}.png".encode() for i in range(len(y))],
             **{key.encode(): value for key, value in override.items()}}
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump({k: v for k, v in batch.items() if v is not None})
    return buffer.getvalue()


def write_cifar10(path: Path, per_batch: int = 40, seed: int = 0, folder: bool = False,
                  batches: Optional[dict[str, bytes]] = None) -> Path:
    """``cifar-10-python.tar.gz`` (or, with ``folder``, its extracted ``cifar-10-batches-py``) in the real layout:
    five training batches and a test batch of ``per_batch`` images; ``batches`` replaces members by name."""
    members = {}
    for index, name in enumerate((*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")):
        x, y = rgb_images(per_batch, seed + index)
        members[name] = cifar_batch(x, y, name.replace("_", " "))
    members["batches.meta"] = cifar_batch(np.zeros((0, 3072), np.uint8), np.zeros(0, int), "meta")
    members.update(batches or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    if folder:
        path.mkdir(exist_ok=True)
        for name, data in members.items():
            (path / name).write_bytes(data)
        return path
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


class FileServer(ThreadingHTTPServer):
    """Serves ``files`` {name: bytes} at /<anything>/<name> on 127.0.0.1, with Range support.

    ``cut[name] = k`` makes the next k responses for ``name`` stop halfway and drop the connection;
    ``ranges = False`` makes it ignore Range (always 200 with the whole file). ``requests`` logs
    (path, Range header) of every GET.
    """

    daemon_threads = True

    def __init__(self, files: dict[str, bytes]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = dict(files)
        self.cut: dict[str, int] = {}
        self.ranges = True
        self.requests: list[tuple[str, Optional[str]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/data/"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FileServer

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        name = self.path.rsplit("/", 1)[-1]
        wanted = self.headers.get("Range")
        self.server.requests.append((self.path, wanted))
        data = self.server.files.get(name)
        if data is None:
            self.send_error(404, "no such file")
            return
        match = re.fullmatch(r"bytes=(\d+)-", wanted or "")
        start = int(match.group(1)) if match and self.server.ranges else 0
        if start >= len(data) and start:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = data[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes" if self.server.ranges else "none")
        self.end_headers()
        if self.server.cut.get(name, 0) > 0:
            self.server.cut[name] -= 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@contextmanager
def serve(files: dict[str, bytes]) -> Iterator[FileServer]:
    """A running FileServer in a background thread; shut down on exit."""
    server = FileServer(files)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
