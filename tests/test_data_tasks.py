"""Loading every task from real-format files: status, shapes, normalisation, split, caching, real Fashion-MNIST."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dlbench.data import DataError, TASKS, load_task, task_status
from dlbench.data import cache
from dlbench.testing import datafiles as testing
from dlbench.zoo import MAXLEN, VOCAB
from dlbench.errors import UnknownName

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_debian_fashion = pytest.mark.skipif(
    not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    testing.isolate(monkeypatch, tmp_path)


def test_import_is_cheap_and_framework_free():
    code = ("import sys, dlbench.data, dlbench.cli.data; "
            "heavy = [m for m in ('torch', 'tensorflow', 'keras', 'jax', 'sklearn', 'scipy', 'urllib.request') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@needs_debian_fashion
def test_status_with_only_debian_fashion_present():
    found = {name: task_status(name) for name in TASKS}
    assert found["fashion_mnist"].found and found["fashion_mnist"].where == str(DEBIAN_FASHION)
    for name in ("digits", "synthetic_images", "synthetic_text"):
        assert found[name].found, name
        assert found[name].hint == ""
    for name in ("mnist", "imdb"):
        assert not found[name].found
        assert found[name].where == ""
        assert f"dlbench data fetch {name}" in found[name].hint
        assert "\n" not in found[name].hint


def test_status_missing_fashion_points_to_apt_and_fetch(monkeypatch):
    monkeypatch.setattr("dlbench.data.search_dirs", lambda data_dir=None: [Path(data_dir or "/nonexistent")])
    status = task_status("fashion_mnist")
    assert not status.found
    assert "apt-get install dataset-fashion-mnist" in status.hint and "dlbench data fetch fashion_mnist" in status.hint
    with pytest.raises(DataError, match="dlbench data fetch fashion_mnist"):
        load_task("fashion_mnist")


def test_unknown_task_lists_choices():
    with pytest.raises(UnknownName, match="fashion_mnist"):
        task_status("cifar")


@needs_debian_fashion
def test_real_fashion_mnist_loads_and_second_load_uses_cache():
    start = time.perf_counter()
    data = load_task("fashion_mnist", seed=0)
    first = time.perf_counter() - start
    assert (data.x_train.shape, data.x_val.shape, data.x_test.shape) == \
        ((54000, 28, 28, 1), (6000, 28, 28, 1), (10000, 28, 28, 1))
    assert data.y_train.shape == (54000,) and data.y_test.shape == (10000,)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert 0.0 <= data.x_train.min() and data.x_train.max() == 1.0
    assert set(np.unique(data.y_test)) == set(range(10))
    assert np.bincount(data.y_test).tolist() == [1000] * 10  # Fashion-MNIST's balanced test set
    assert not data.synthetic and data.augment_s == 0.0
    assert "cache parsed" in data.source and "IDX uint8 60000/10000" in data.pipeline

    cache.clear_memory()  # as a fresh process would be
    start = time.perf_counter()
    again = load_task("fashion_mnist", seed=0)
    second = time.perf_counter() - start
    assert "cache disk" in again.source
    np.testing.assert_array_equal(again.x_train, data.x_train)
    np.testing.assert_array_equal(again.y_val, data.y_val)
    print(f"fashion_mnist first load {first:.2f} s, cached {second:.2f} s")


def test_fashion_from_data_dir_takes_precedence(tmp_path):
    testing.write_idx_folder(tmp_path / "data" / "fashion-mnist", n_train=200, n_test=50)
    status = task_status("fashion_mnist", str(tmp_path / "data"))
    assert status.where == str(tmp_path / "data" / "fashion-mnist")
    data = load_task("fashion_mnist", str(tmp_path / "data"))
    assert data.x_train.shape == (180, 28, 28, 1) and data.x_test.shape == (50, 28, 28, 1)


def test_dlbench_data_env_is_searched(tmp_path, monkeypatch):
    testing.write_mnist_npz(tmp_path / "envdata" / "mnist.npz", 100, 20)
    monkeypatch.setenv("DLBENCH_DATA", str(tmp_path / "envdata"))
    assert task_status("mnist").where == str(tmp_path / "envdata" / "mnist.npz")


def test_keras_cache_is_searched(tmp_path):
    testing.write_mnist_npz(tmp_path / "home" / ".keras" / "datasets" / "mnist.npz", 100, 20)
    assert task_status("mnist").found


def test_mnist_npz_loads_like_keras_with_split(tmp_path):
    path = testing.write_mnist_npz(tmp_path / "d" / "mnist.npz", 600, 100)
    assert task_status("mnist", str(tmp_path / "d")).where == str(path)
    data = load_task("mnist", str(tmp_path / "d"), seed=3)
    with np.load(path) as raw:
        x_train, y_train, x_test, y_test = raw["x_train"], raw["y_train"], raw["x_test"], raw["y_test"]
    assert data.x_train.shape == (540, 28, 28, 1) and data.x_val.shape == (60, 28, 28, 1)
    np.testing.assert_array_equal(data.x_test[..., 0], x_test / np.float32(255))
    np.testing.assert_array_equal(data.y_test, y_test)
    # train + val is a permutation of the original training set, pairs kept together
    together = np.concatenate([data.x_train, data.x_val])[..., 0]
    labels = np.concatenate([data.y_train, data.y_val])
    order = np.random.default_rng(3).permutation(600)
    np.testing.assert_array_equal(together, x_train[np.r_[order[60:], order[:60]]] / np.float32(255))
    np.testing.assert_array_equal(labels, y_train[np.r_[order[60:], order[:60]]])
    assert data.input_shape == (28, 28, 1) and data.num_classes == 10 and data.modality == "image"


def test_split_depends_on_seed_only(tmp_path):
    testing.write_mnist_npz(tmp_path / "mnist.npz", 300, 50)
    a, b = load_task("mnist", str(tmp_path), seed=1), load_task("mnist", str(tmp_path), seed=1)
    c = load_task("mnist", str(tmp_path), seed=2)
    np.testing.assert_array_equal(a.y_val, b.y_val)
    assert not np.array_equal(a.y_val, c.y_val)


def test_mnist_idx_folder_plain_and_gz(tmp_path):
    testing.write_idx_folder(tmp_path / "plain" / "mnist", 120, 30, gz=False)
    testing.write_idx_folder(tmp_path / "gz" / "mnist", 120, 30, gz=True)
    plain = load_task("mnist", str(tmp_path / "plain"))
    packed = load_task("mnist", str(tmp_path / "gz"))
    np.testing.assert_array_equal(plain.x_train, packed.x_train)
    assert plain.x_train.shape == (108, 28, 28, 1)


def test_npz_preferred_over_idx_in_same_dir(tmp_path):
    testing.write_idx_folder(tmp_path / "mnist", 100, 20)
    testing.write_mnist_npz(tmp_path / "mnist.npz", 100, 20)
    assert task_status("mnist", str(tmp_path)).where.endswith("mnist.npz")


def _keras_reference(seqs, vocab=VOCAB, maxlen=MAXLEN):
    """imdb.load_data(num_words=vocab) + pad_sequences(maxlen) written out plainly, as Keras does it."""
    out = np.zeros((len(seqs), maxlen), dtype=np.int32)
    for i, seq in enumerate(seqs):
        ids = [1] + [w + 3 for w in seq]
        ids = [w if w < vocab else 2 for w in ids][-maxlen:]
        out[i, maxlen - len(ids):] = ids
    return out


def test_imdb_npz_matches_keras_convention(tmp_path):
    path = testing.write_imdb_npz(tmp_path / "imdb.npz", 300, 100)
    data = load_task("imdb", str(tmp_path), seed=0)
    assert data.modality == "text" and data.input_shape == (MAXLEN,) and data.vocab_size == VOCAB
    assert data.x_train.dtype == np.int32 and data.x_train.shape == (270, MAXLEN)
    assert data.x_val.shape == (30, MAXLEN) and data.x_test.shape == (100, MAXLEN)
    raw = np.load(path, allow_pickle=True)
    rng = np.random.RandomState(113)  # Keras' imdb.load_data shuffle, reproduced
    train_order = np.arange(300)
    rng.shuffle(train_order)
    test_order = np.arange(100)
    rng.shuffle(test_order)
    np.testing.assert_array_equal(data.x_test, _keras_reference(list(raw["x_test"][test_order])))
    np.testing.assert_array_equal(data.y_test, raw["y_test"][test_order])
    assert data.x_train.max() < VOCAB and data.x_train.min() == 0
    assert (data.x_train == 2).any(), "ranks >= 9997 must map to OOV"
    long_rows = [len(s) + 1 > MAXLEN for s in raw["x_test"][test_order]]
    assert all(data.x_test[i, 0] != 0 for i, long in enumerate(long_rows) if long)  # pre-truncated, no padding


def test_aclimdb_text_folder(tmp_path):
    testing.write_aclimdb(tmp_path, per_class=15)
    assert task_status("imdb", str(tmp_path)).where == str(tmp_path / "aclImdb")
    data = load_task("imdb", str(tmp_path))
    assert data.x_train.shape == (27, MAXLEN) and data.x_val.shape == (3, MAXLEN)
    assert data.x_test.shape == (30, MAXLEN)
    assert sorted(np.unique(np.r_[data.y_train, data.y_val])) == [0, 1]
    for row in data.x_test:
        tokens = row[row != 0]
        assert tokens[0] == 1 or len(tokens) == MAXLEN  # start token, unless pre-truncated
    assert "aclImdb text" in data.pipeline


def test_aclimdb_tokenizer_and_vocabulary():
    from dlbench.data import text

    assert text.tokenize("Great film!<br /><br />I DON'T like 'quotes' 2nd") == \
        ["great", "film", "i", "don't", "like", "quotes", "2nd"]
    vocab = text.build_vocabulary([["b", "a", "b"], ["c", "a", "b"]], 2)
    assert vocab == {"b": 3, "a": 4}
    np.testing.assert_array_equal(text.encode([["a", "zzz", "b"]], vocab, 5), [[0, 1, 4, 2, 3]])


def test_synthetic_and_digits_unchanged():
    images = load_task("synthetic_images")
    assert images.synthetic and images.x_train.shape == (9000, 28, 28, 1)
    assert images.x_train.dtype == np.float32 and images.x_train.max() <= 1.0
    txt = load_task("synthetic_text")
    assert txt.synthetic and txt.x_train.shape == (4500, MAXLEN) and txt.x_test.shape == (1000, MAXLEN)
    digits = load_task("digits")
    assert not digits.synthetic and len(digits.x_train) + len(digits.x_val) + len(digits.x_test) == 1797
    rgb = load_task("synthetic_rgb")
    assert rgb.synthetic and rgb.input_shape == (32, 32, 3) and rgb.x_train.shape == (3150, 32, 32, 3)
    # classes c and c + 5 share the square's place: only its colour (red or green) tells them apart
    place = rgb.x_train[(rgb.y_train == 0)][:, 4:12, 2:10].mean(axis=(0, 1, 2))
    assert place[0] > place[1] + 0.4 and len(rgb.x_test) == 500
    assert "upscaled" in digits.pipeline


def test_digits_are_scikit_learns_without_importing_it(tmp_path):
    """The table is read from scikit-learn's own file; it must hold exactly what load_digits() returns."""
    from sklearn.datasets import load_digits

    raw = TASKS["digits"].read(TASKS["digits"].locate([]))
    bunch = load_digits()
    order = np.random.default_rng(1234).permutation(1797)
    test = order[:359]
    expected = np.pad(np.kron(bunch.images[test] / 16.0, np.ones((3, 3))), ((0, 0), (2, 2), (2, 2)))
    np.testing.assert_allclose(raw.x_test, expected, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(raw.y_test, bunch.target[test])
    broken = tmp_path / "digits.csv.gz"
    broken.write_bytes(b"not gzip")
    with pytest.raises(DataError, match=f"{broken}: cannot read the digits table.*reinstall scikit-learn"):
        TASKS["digits"].read(str(broken))
    code = "import sys; from dlbench.data import load_task; load_task('digits'); print('sklearn' in sys.modules)"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "False"


def test_arrays_handed_out_are_private_and_writable(tmp_path):
    testing.write_imdb_npz(tmp_path / "imdb.npz", 100, 40)
    a = load_task("imdb", str(tmp_path))
    a.x_test[:] = 0  # a plugin scribbling on its arrays must not change the next load
    b = load_task("imdb", str(tmp_path))
    assert b.x_test.any()


def test_cache_key_follows_file_changes(tmp_path):
    testing.write_mnist_npz(tmp_path / "mnist.npz", 100, 20, seed=0)
    first = load_task("mnist", str(tmp_path))
    cache.clear_memory()
    testing.write_mnist_npz(tmp_path / "mnist.npz", 120, 20, seed=5)  # replaced in place: new size and mtime
    second = load_task("mnist", str(tmp_path))
    assert len(second.x_train) + len(second.x_val) == 120 and len(first.x_train) + len(first.x_val) == 100
    assert len(list((tmp_path / "cache" / "parsed").glob("mnist-npz-*.npz"))) == 1  # old entry dropped


def test_damaged_cache_entry_is_reparsed(tmp_path):
    testing.write_mnist_npz(tmp_path / "mnist.npz", 100, 20)
    first = load_task("mnist", str(tmp_path))
    (entry,) = (tmp_path / "cache" / "parsed").glob("mnist-npz-*.npz")
    entry.write_bytes(entry.read_bytes()[:100])
    cache.clear_memory()
    again = load_task("mnist", str(tmp_path))
    assert "cache parsed" in again.source
    np.testing.assert_array_equal(first.x_test, again.x_test)


def test_unwritable_cache_still_loads(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("DLBENCH_CACHE", str(blocker))
    testing.write_mnist_npz(tmp_path / "mnist.npz", 100, 20)
    with pytest.warns(UserWarning, match="cannot cache"):
        data = load_task("mnist", str(tmp_path))
    assert len(data.x_test) == 20
