"""Broken data files: each gives a one-line DataError naming the file, what was expected and the fix."""

from __future__ import annotations

import gzip
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dlbench.data import DataError, load_task
from dlbench.testing import datafiles as testing


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    testing.isolate(monkeypatch, tmp_path)


def _load_error(task: str, data_dir: Path) -> str:
    with pytest.raises(DataError) as info:
        load_task(task, str(data_dir))
    message = str(info.value)
    assert "\n" not in message, "the message must be one line"
    return message


# --- IDX ------------------------------------------------------------------------------------------------


@pytest.fixture
def idx_dir(tmp_path) -> Path:
    return testing.write_idx_folder(tmp_path / "d" / "fashion-mnist", n_train=100, n_test=20)


def test_bad_gzip(idx_dir):
    (idx_dir / "train-images-idx3-ubyte.gz").write_bytes(b"this is not gzip data at all")
    message = _load_error("fashion_mnist", idx_dir.parent)
    assert "train-images-idx3-ubyte.gz" in message and "gzip" in message
    assert "delete it and run: dlbench data fetch fashion_mnist" in message


def test_truncated_gzip(idx_dir):
    path = idx_dir / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-200])
    message = _load_error("fashion_mnist", idx_dir.parent)
    assert "t10k-images-idx3-ubyte.gz" in message and "gzip" in message


def test_wrong_idx_magic(idx_dir):
    path = idx_dir / "train-labels-idx1-ubyte.gz"
    data = bytearray(gzip.decompress(path.read_bytes()))
    data[2] = 0x0D  # float32 instead of unsigned byte
    path.write_bytes(gzip.compress(bytes(data)))
    message = _load_error("fashion_mnist", idx_dir.parent)
    assert "train-labels-idx1-ubyte.gz" in message and "magic number 00000d01" in message
    assert "expected 00000801" in message


def test_images_and_labels_swapped(idx_dir):
    images, labels = idx_dir / "train-images-idx3-ubyte.gz", idx_dir / "train-labels-idx1-ubyte.gz"
    a, b = images.read_bytes(), labels.read_bytes()
    images.write_bytes(b)
    labels.write_bytes(a)
    message = _load_error("fashion_mnist", idx_dir.parent)
    assert "train-images-idx3-ubyte.gz" in message and "expected 00000803" in message


def test_wrong_image_shape(idx_dir):
    (idx_dir / "train-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(testing.idx_bytes(np.zeros((100, 32, 32), np.uint8))))
    message = _load_error("fashion_mnist", idx_dir.parent)
    assert "shape (100, 32, 32)" in message and "expected (N, 28, 28)" in message


def test_truncated_idx_data(idx_dir):
    path = idx_dir / "train-images-idx3-ubyte.gz"
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[:-28]))  # a valid gzip of a cut IDX file
    message = _load_error("fashion_mnist", idx_dir.parent)
    assert "truncated" in message and "78372 data bytes, expected 78400" in message


def test_label_count_mismatch(idx_dir):
    (idx_dir / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(testing.idx_bytes(np.zeros(99, np.uint8))))
    message = _load_error("fashion_mnist", idx_dir.parent)
    assert "train-labels-idx1-ubyte.gz" in message and "expected 100 integers" in message


def test_label_out_of_range(idx_dir):
    (idx_dir / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(testing.idx_bytes(np.full(20, 12, np.uint8))))
    message = _load_error("fashion_mnist", idx_dir.parent)
    assert "t10k-labels-idx1-ubyte.gz" in message and "expected 0..9" in message


def test_empty_idx_file(idx_dir):
    (idx_dir / "t10k-labels-idx1-ubyte.gz").unlink()
    (idx_dir / "t10k-labels-idx1-ubyte").write_bytes(b"")
    message = _load_error("fashion_mnist", idx_dir.parent)
    assert "t10k-labels-idx1-ubyte" in message and "(empty file)" in message


def test_unreadable_file(idx_dir):
    from dlbench.data.idx import read_idx

    path = idx_dir / "train-images-idx3-ubyte.gz"
    path.unlink()
    path.mkdir()  # unreadable as a file even for root (chmod 0 is not)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: cannot read .*; fetch it"):
        read_idx(path, (28, 28), "fetch it")


# --- mnist.npz ------------------------------------------------------------------------------------------


def test_npz_not_a_zip(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"<html>Not Found</html>")
    message = _load_error("mnist", tmp_path)
    assert "mnist.npz" in message and "not an .npz archive" in message and "dlbench data fetch mnist" in message


def test_npz_truncated(tmp_path):
    path = testing.write_mnist_npz(tmp_path / "mnist.npz", 200, 50)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    message = _load_error("mnist", tmp_path)
    assert "mnist.npz" in message and "not an .npz archive" in message


def test_npz_corrupt_member(tmp_path):
    path = testing.write_mnist_npz(tmp_path / "mnist.npz", 200, 50)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as archive:
        info = archive.getinfo("x_train.npy")
    middle = info.header_offset + 100 + info.compress_size // 2
    raw[middle: middle + 16] = bytes(16)  # damage compressed data; the zip directory stays intact
    path.write_bytes(bytes(raw))
    message = _load_error("mnist", tmp_path)
    assert "x_train.npy" in message and ("corrupt" in message or "not a valid" in message)


def test_npz_missing_key(tmp_path):
    testing.write_mnist_npz(tmp_path / "mnist.npz", 100, 20, y_test=None)
    message = _load_error("mnist", tmp_path)
    assert "missing arrays y_test" in message and "expected x_train, y_train, x_test, y_test" in message


def test_npz_wrong_dtype(tmp_path):
    testing.write_mnist_npz(tmp_path / "mnist.npz", 100, 20, x_test=np.zeros((20, 28, 28), np.float64))
    message = _load_error("mnist", tmp_path)
    assert "x_test has dtype float64" in message and "expected uint8 (N, 28, 28)" in message


def test_npz_wrong_shape(tmp_path):
    testing.write_mnist_npz(tmp_path / "mnist.npz", 100, 20, x_train=np.zeros((100, 784), np.uint8))
    message = _load_error("mnist", tmp_path)
    assert "x_train" in message and "(100, 784)" in message


def test_npz_label_count(tmp_path):
    testing.write_mnist_npz(tmp_path / "mnist.npz", 100, 20, y_train=np.zeros(90, np.uint8))
    assert "expected 100 integers" in _load_error("mnist", tmp_path)


def test_npz_object_array_where_numbers_expected(tmp_path):
    testing.write_mnist_npz(tmp_path / "mnist.npz", 100, 20, y_train=testing.ragged([[1]] * 100))
    assert "labels of dtype object" in _load_error("mnist", tmp_path)


# --- imdb.npz -------------------------------------------------------------------------------------------


def test_imdb_numbers_instead_of_sequences(tmp_path):
    testing.write_imdb_npz(tmp_path / "imdb.npz", 50, 20, x_train=np.zeros((50, 80), np.int32))
    message = _load_error("imdb", tmp_path)
    assert "x_train has dtype int32 and shape (50, 80)" in message and "object array" in message
    assert "dlbench data fetch imdb" in message


def test_imdb_non_integer_words(tmp_path):
    testing.write_imdb_npz(tmp_path / "imdb.npz", 2, 2, x_test=testing.ragged([[1, 2.5], [3]]),
                           y_train=np.array([0, 1]), x_train=testing.ragged([[1], [2]]), y_test=np.array([0, 1]))
    assert "x_test is not a list of integer word-index sequences" in _load_error("imdb", tmp_path)


def test_imdb_labels_not_binary(tmp_path):
    testing.write_imdb_npz(tmp_path / "imdb.npz", 30, 10, y_test=np.arange(10))
    assert "y_test has labels 0..9, expected 0/1" in _load_error("imdb", tmp_path)


class _Evil:
    def __reduce__(self):
        return (os.getpid, ())


def test_imdb_pickle_gadget_is_refused(tmp_path):
    evil = np.empty(2, dtype=object)
    evil[0], evil[1] = [1, 2], _Evil()
    testing.write_imdb_npz(tmp_path / "imdb.npz", 2, 2, x_train=evil, y_train=np.array([0, 1]))
    message = _load_error("imdb", tmp_path)
    assert "refusing to unpickle posix.getpid" in message and "tampered" in message


# --- aclImdb --------------------------------------------------------------------------------------------


def test_aclimdb_without_reviews(tmp_path):
    folder = testing.write_aclimdb(tmp_path, per_class=3)
    for review in (folder / "test" / "pos").glob("*.txt"):
        review.unlink()
    message = _load_error("imdb", tmp_path)
    assert "aclImdb/test" in message and "found 3 and 0" in message


def test_aclimdb_incomplete_folder_is_not_found(tmp_path):
    folder = testing.write_aclimdb(tmp_path, per_class=2)
    for review in (folder / "test" / "neg").glob("*.txt"):
        review.unlink()
    (folder / "test" / "neg").rmdir()
    with pytest.raises(DataError, match="no data for task 'imdb'.*dlbench data fetch imdb"):
        load_task("imdb", str(tmp_path))


# --- CIFAR-10 -------------------------------------------------------------------------------------------


def test_cifar_pickle_gadget_is_refused(tmp_path):
    x, y = testing.rgb_images(4, 0)
    evil = testing.cifar_batch(x, y, "evil", labels=_Evil())
    testing.write_cifar10(tmp_path / "cifar-10-python.tar.gz", per_batch=4, batches={"data_batch_3": evil})
    message = _load_error("cifar10", tmp_path)
    assert "batch data_batch_3: refusing to unpickle posix.getpid" in message and "tampered" in message


def test_cifar_folder_with_a_wrong_batch_and_a_truncated_archive(tmp_path):
    x, y = testing.rgb_images(4, 0)
    flat = testing.cifar_batch(x[:, :1000], y, "short rows")
    testing.write_cifar10(tmp_path / "d" / "cifar-10-batches-py", per_batch=4, folder=True,
                          batches={"test_batch": flat})
    message = _load_error("cifar10", tmp_path / "d")
    assert "batch test_batch: b'data' is uint8 (4, 1000), expected uint8 (N, 3072)" in message
    archive = testing.write_cifar10(tmp_path / "t" / "cifar-10-python.tar.gz", per_batch=4)
    archive.write_bytes(archive.read_bytes()[:-300])
    message = _load_error("cifar10", tmp_path / "t")
    assert "cifar-10-python.tar.gz: not a readable tar.gz" in message and "dlbench data fetch cifar10" in message
