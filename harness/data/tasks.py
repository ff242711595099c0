"""The task registry: where each data set is looked for, how it is loaded, how to get it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from dlbench.contract import TaskData
from dlbench.data.errors import DataError
from dlbench.data.idx import read_idx
from dlbench.data.split import split_validation
from dlbench.data.synthetic import synthetic_images, synthetic_text
from dlbench.zoo import MAXLEN, VOCAB


def search_dirs(data_dir: Optional[str] = None) -> list[Path]:
    """Where data is looked for, in order: --data-dir, $DLBENCH_DATA, Keras' cache, Debian's, dlbench's cache."""
    dirs = [data_dir, os.environ.get("DLBENCH_DATA"), "~/.keras/datasets", "/usr/share/datasets", cache_dir()]
    return [Path(d).expanduser() for d in dirs if d]


def cache_dir() -> Path:
    return Path(os.environ.get("DLBENCH_CACHE", "~/.cache/dlbench")).expanduser()


@dataclass(frozen=True)
class Task:
    name: str
    modality: str
    num_classes: int
    input_shape: tuple[int, ...]
    synthetic: bool
    how_to_get: str
    locate: Callable[[Sequence[Path]], Optional[Path]]  # where the data is, or None
    load: Callable[[Path, int], TaskData]


FASHION_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _find_idx_dir(dirs: Sequence[Path], subdirs: Sequence[str]) -> Optional[Path]:
    for base in dirs:
        for sub in subdirs:
            folder = base / sub
            if all(_idx_file(folder, stem) for stem in FASHION_FILES):
                return folder
    return None


def _idx_file(folder: Path, stem: str) -> Optional[Path]:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _load_idx_task(name: str, folder: Path, seed: int) -> TaskData:
    files = [_idx_file(folder, stem) for stem in FASHION_FILES]
    if None in files:
        raise DataError(f"{folder}: the four IDX files {', '.join(FASHION_FILES)} (.gz or not) are not all there")
    x_train = read_idx(files[0], (60000, 28, 28))
    y_train = read_idx(files[1], (60000,))
    x_test = read_idx(files[2], (10000, 28, 28))
    y_test = read_idx(files[3], (10000,))
    return _image_task(name, folder, seed, x_train, y_train, x_test, y_test, "uint8 / 255 -> float32")


def _image_task(name, source, seed, x_train, y_train, x_test, y_test, pipeline, synthetic=False) -> TaskData:
    def norm(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32)
        if x.max() > 1.0:
            x /= 255.0
        return x.reshape(len(x), 28, 28, 1)

    xt, yt, xv, yv = split_validation(norm(x_train), y_train.astype(np.int64), seed)
    return TaskData(name, "image", 10, (28, 28, 1), xt, yt, xv, yv, norm(x_test), y_test.astype(np.int64),
                    synthetic=synthetic, pipeline=pipeline + "; validation 10% seeded", source=str(source))


def _load_digits(_: Path, seed: int) -> TaskData:
    from sklearn.datasets import load_digits  # scikit-learn ships the real 8x8 digits

    bunch = load_digits()
    images = bunch.images.astype(np.float32) / 16.0
    big = np.kron(images, np.ones((3, 3), dtype=np.float32))  # 8x8 -> 24x24, nearest neighbour
    padded = np.pad(big, ((0, 0), (2, 2), (2, 2)))  # centred in 28x28 like MNIST's 20x20 box
    order = np.random.default_rng(1234).permutation(len(padded))  # fixed 80/20 train/test split
    n_test = len(padded) // 5
    test, train = order[:n_test], order[n_test:]
    labels = bunch.target.astype(np.int64)
    return _image_task("digits", "scikit-learn load_digits", seed, padded[train], labels[train], padded[test],
                       labels[test], "8x8 / 16, upscaled x3 nearest to 24x24, zero-padded to 28x28; "
                       "fixed 80/20 train/test split")


def _load_synthetic_images(_: Path, seed: int) -> TaskData:
    x, y = synthetic_images(12000, seed=7)
    return _image_task("synthetic_images", "generated", seed, x[:10000], y[:10000], x[10000:], y[10000:],
                       "generated: class square on uniform noise, float32", synthetic=True)


def _load_synthetic_text(_: Path, seed: int) -> TaskData:
    x, y = synthetic_text(6000, seed=7, vocab=VOCAB, maxlen=MAXLEN)
    xt, yt, xv, yv = split_validation(x[:5000], y[:5000], seed)
    return TaskData("synthetic_text", "text", 2, (MAXLEN,), xt, yt, xv, yv, x[5000:], y[5000:], synthetic=True,
                    pipeline="generated: label = which of two 50-token sets is planted; validation 10% seeded",
                    source="generated", vocab_size=VOCAB)


def _always(_: Sequence[Path]) -> Path:
    return Path("-")


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task("fashion_mnist", "image", 10, (28, 28, 1), False,
             "apt-get install dataset-fashion-mnist, or put the four IDX files in --data-dir/fashion-mnist",
             lambda dirs: _find_idx_dir(dirs, ("fashion-mnist", "fashion_mnist")),
             lambda path, seed: _load_idx_task("fashion_mnist", path, seed)),
        Task("digits", "image", 10, (28, 28, 1), False, "pip install scikit-learn",
             _always, _load_digits),
        Task("synthetic_images", "image", 10, (28, 28, 1), True, "always present", _always,
             _load_synthetic_images),
        Task("synthetic_text", "text", 2, (MAXLEN,), True, "always present", _always, _load_synthetic_text),
    )
}
