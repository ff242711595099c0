"""The shared preprocessing: Keras-compatible padding, seeded augmentation, split."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlbench.data import DataError, load_task
from dlbench.testing import datafiles as testing
from dlbench.data.augment import augment_images
from dlbench.data.split import split_validation
from dlbench.data.text import pad_list


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    testing.isolate(monkeypatch, tmp_path)


def _keras_pad(seqs, maxlen):
    """keras.utils.pad_sequences(seqs, maxlen) with its defaults, written out plainly."""
    out = np.zeros((len(seqs), maxlen), dtype=np.int32)
    for i, seq in enumerate(seqs):
        kept = list(seq)[-maxlen:]
        if kept:
            out[i, -len(kept):] = kept
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(1, 10_000), max_size=30), max_size=12), st.integers(1, 20))
def test_pad_matches_keras_pre_padding_pre_truncation(seqs, maxlen):
    np.testing.assert_array_equal(pad_list(seqs, maxlen), _keras_pad(seqs, maxlen))


def test_pad_example():
    np.testing.assert_array_equal(pad_list([[1, 2, 3, 4, 5], [7], []], 3), [[3, 4, 5], [0, 0, 7], [0, 0, 0]])


# --- augmentation ---------------------------------------------------------------------------------------


def _images(n=64, seed=0):
    x, _ = testing.digit_images(n, seed)
    return (x / np.float32(255)).reshape(n, 28, 28, 1)


def test_augmentation_is_seeded_and_chunk_independent():
    x = _images()
    a, b = augment_images(x, seed=5), augment_images(x, seed=5, chunk=7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, augment_images(x, seed=6))
    assert a.dtype == np.float32 and a.shape == x.shape
    assert a.min() >= 0.0 and a.max() <= 1.0
    changed = np.abs(a - x).reshape(len(x), -1).max(axis=1)
    assert (changed > 0.05).mean() > 0.9  # nearly every image is really transformed


def test_zero_ranges_are_the_identity():
    x = _images(8)
    np.testing.assert_array_equal(augment_images(x, 0, rotation_deg=0, shift=0, shear_rad=0), x)


def test_pure_shift_moves_pixels():
    x = np.zeros((1, 28, 28, 1), np.float32)
    x[0, 10, 12, 0] = 1.0
    out = augment_images(x, 0, rotation_deg=0, shear_rad=0, shift=0.1)
    rows, cols = np.nonzero(out[0, ..., 0] > 0)
    assert len(rows) and np.all(np.abs(rows - 10) <= 3) and np.all(np.abs(cols - 12) <= 3)
    np.testing.assert_allclose(out.sum(), 1.0, atol=1e-5)  # bilinear: mass spread, not lost


def test_rotation_stays_within_ten_degrees():
    x = np.zeros((200, 28, 28, 1), np.float32)
    x[:, 13:15, 2:26, 0] = 1.0  # a horizontal bar through the centre
    out = augment_images(x, 1, shift=0, shear_rad=0)
    for image in out[..., 0]:
        rows, cols = np.nonzero(image > 0.5)
        slope = np.polyfit(cols, rows, 1)[0]
        assert abs(np.degrees(np.arctan(slope))) <= 10.5


def test_load_with_augment_changes_train_only(tmp_path):
    testing.write_mnist_npz(tmp_path / "mnist.npz", 300, 50)
    plain = load_task("mnist", str(tmp_path), seed=2)
    augmented = load_task("mnist", str(tmp_path), seed=2, augment=True)
    assert augmented.augment_s > 0 and plain.augment_s == 0.0
    assert "rotation +-10 deg" in augmented.pipeline and "shear" in augmented.pipeline
    assert augmented.x_train.shape == plain.x_train.shape
    assert not np.array_equal(augmented.x_train, plain.x_train)
    np.testing.assert_array_equal(augmented.y_train, plain.y_train)
    np.testing.assert_array_equal(augmented.x_val, plain.x_val)
    np.testing.assert_array_equal(augmented.x_test, plain.x_test)
    again = load_task("mnist", str(tmp_path), seed=2, augment=True)
    np.testing.assert_array_equal(again.x_train, augmented.x_train)


@pytest.mark.parametrize("task", ["synthetic_text", "imdb"])
def test_text_tasks_reject_augmentation(task):
    with pytest.raises(DataError, match=f"task {task} is text: augmentation .* image tasks only; drop --augment"):
        load_task(task, augment=True)


def test_split_keeps_pairs_and_sizes():
    x = np.arange(1000)
    xt, yt, xv, yv = split_validation(x, x * 2, seed=4)
    assert len(xv) == 100 and len(xt) == 900
    assert sorted(np.r_[xt, xv].tolist()) == list(range(1000))
    np.testing.assert_array_equal(yt, xt * 2)
