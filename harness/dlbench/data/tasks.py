"""The task registry: where each data set is looked for, how it is read, how to get it.

Reading a task gives raw arrays (uint8 images or int32 token ids); ``Task.load`` then applies the
preprocessing every framework shares: the seeded validation split, scaling to float32 [0, 1] and,
when asked, augmentation of the training images.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from dlbench.contract import TaskData
from dlbench.data.cache import cache_dir, cached
from dlbench.errors import DataError
from dlbench.data.idx import read_idx
from dlbench.data.npzfile import read_npz, require_keys
from dlbench.data.split import split_validation
from dlbench.data.synthetic import synthetic_images, synthetic_rgb, synthetic_text
from dlbench.zoo import MAXLEN, VOCAB

__all__ = ["TASKS", "Task", "Raw", "cache_dir", "search_dirs"]


DEBIAN_DATASETS = Path("/usr/share/datasets")  # Debian's dataset-* packages install here


def search_dirs(data_dir: Optional[str] = None) -> list[Path]:
    """Where data is looked for, in order: --data-dir, $DLBENCH_DATA, Keras' cache, Debian's, dlbench's cache."""
    dirs = [data_dir, os.environ.get("DLBENCH_DATA"), "~/.keras/datasets", DEBIAN_DATASETS, cache_dir()]
    return [Path(d).expanduser() for d in dirs if d]


@dataclass(frozen=True)
class Raw:
    """A task's arrays before the shared preprocessing, and how they were made."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    pipeline: str
    source: str


@dataclass(frozen=True)
class Task:
    name: str
    modality: str
    num_classes: int
    input_shape: tuple[int, ...]
    synthetic: bool
    how_to_get: str  # one line: the command or package that provides the data
    locate: Callable[[Sequence[Path]], Optional[str]]  # where the data is, or None
    read: Callable[[str], Raw]

    def load(self, where: str, seed: int, augment: bool = False) -> TaskData:
        """The shared preprocessing: split (seeded) -> float32 [0, 1] -> optional augmentation."""
        if augment and self.modality != "image":
            raise DataError(f"task {self.name} is {self.modality}: augmentation (rotation/shift/shear) applies to "
                            "image tasks only; drop --augment for it")
        raw = self.read(where)
        x_train, y_train, x_val, y_val = split_validation(raw.x_train, raw.y_train, seed)
        steps = [raw.pipeline, "validation 10% of train, seeded"]
        x_test = np.array(raw.x_test)  # a private, writable copy: raw arrays may be shared (cache memo)
        augment_s = 0.0
        if self.modality == "image":
            x_train, x_val, x_test = (_to_unit_float(x, self.input_shape) for x in (x_train, x_val, x_test))
            steps.append("float32 in [0, 1], NHWC")
            if augment:
                from dlbench.data.augment import DESCRIPTION, augment_images

                start = time.perf_counter()
                x_train = augment_images(x_train, seed)
                augment_s = time.perf_counter() - start
                steps.append(DESCRIPTION)
        return TaskData(self.name, self.modality, self.num_classes, self.input_shape, x_train,
                        y_train.astype(np.int64), x_val, y_val.astype(np.int64), x_test, raw.y_test.astype(np.int64),
                        synthetic=self.synthetic, pipeline="; ".join(steps), source=raw.source,
                        vocab_size=VOCAB if self.modality == "text" else 0, augment_s=augment_s)


def _to_unit_float(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if x.dtype == np.uint8:
        x = np.divide(x, np.float32(255.0), dtype=np.float32)
    else:
        x = np.asarray(x, dtype=np.float32)
    return x.reshape(len(x), *shape)


def _identity(digests: dict[str, str]) -> str:
    """One short SHA-256 naming the exact source files, for the records."""
    combined = hashlib.sha256("".join(f"{name}:{h}\n" for name, h in sorted(digests.items())).encode())
    return combined.hexdigest()[:16]


# --- MNIST-style IDX folders (fashion_mnist, mnist) ------------------------------------------------------

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FASHION_FILES = IDX_FILES  # the lead's name, kept


def _idx_file(folder: Path, stem: str) -> Optional[Path]:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _find_idx_dir(dirs: Sequence[Path], subdirs: Sequence[str]) -> Optional[Path]:
    for base in dirs:
        for sub in subdirs:
            if all(_idx_file(base / sub, stem) for stem in IDX_FILES):
                return base / sub
    return None


def _check_labels(path: Path, y: np.ndarray, count: int, classes: int, fix: str) -> np.ndarray:
    if y.ndim != 1 or len(y) != count or y.dtype.kind not in "iu":
        raise DataError(f"{path}: labels of dtype {y.dtype} and shape {y.shape}, expected {count} integers "
                        f"(one per image); {fix}")
    if len(y) and (y.min() < 0 or y.max() >= classes):
        raise DataError(f"{path}: labels {y.min()}..{y.max()}, expected 0..{classes - 1}; {fix}")
    return y


def _read_idx_folder(task: str, folder: Path, fix: str) -> Raw:
    files = [_idx_file(folder, stem) for stem in IDX_FILES]
    if None in files:
        raise DataError(f"{folder}: the four IDX files {', '.join(IDX_FILES)} (.gz or not) are not all there; {fix}")

    def parse():
        x_train, h0 = read_idx(files[0], (28, 28), fix)
        y_train, h1 = read_idx(files[1], (), fix)
        x_test, h2 = read_idx(files[2], (28, 28), fix)
        y_test, h3 = read_idx(files[3], (), fix)
        _check_labels(files[1], y_train, len(x_train), 10, fix)
        _check_labels(files[3], y_test, len(x_test), 10, fix)
        digests = {f.name: h for f, h in zip(files, (h0, h1, h2, h3))}
        return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}, {"sha256": digests}

    arrays, meta = cached(f"{task}-idx", files, {}, parse)
    return _raw_images(arrays, meta, f"IDX uint8 {len(arrays['x_train'])}/{len(arrays['x_test'])} train/test",
                       folder)


def _raw_images(arrays, meta, pipeline: str, where: Path) -> Raw:
    return Raw(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], pipeline,
               f"{where} (sha256 {_identity(meta['sha256'])}, cache {meta.get('cache', '-')})")


# --- Keras .npz files (mnist, imdb) ----------------------------------------------------------------------

KEYS = ("x_train", "y_train", "x_test", "y_test")


def _read_mnist_npz(path: Path, fix: str) -> Raw:
    def parse():
        arrays, digest = read_npz(path, fix)
        require_keys(path, arrays, KEYS, fix)
        for key in ("x_train", "x_test"):
            x = arrays[key]
            if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) == 0:
                raise DataError(f"{path}: {key} has dtype {x.dtype} and shape {x.shape}, expected uint8 "
                                f"(N, 28, 28); {fix}")
        for key in ("y_train", "y_test"):
            _check_labels(path, arrays[key], len(arrays["x" + key[1:]]), 10, fix)
        return {k: arrays[k] for k in KEYS}, {"sha256": {path.name: digest}}

    arrays, meta = cached("mnist-npz", [path], {}, parse)
    return _raw_images(arrays, meta, f"Keras mnist.npz uint8 {len(arrays['x_train'])}/{len(arrays['x_test'])} "
                       "train/test", path)


def _read_imdb_npz(path: Path, fix: str) -> Raw:
    from dlbench.data import text

    def parse():
        arrays, digest = read_npz(path, fix)
        require_keys(path, arrays, KEYS, fix)
        x_train = text.keras_sequences(path, "x_train", arrays["x_train"], VOCAB, MAXLEN, fix)
        x_test = text.keras_sequences(path, "x_test", arrays["x_test"], VOCAB, MAXLEN, fix)
        y_train = text.keras_labels(path, "y_train", arrays["y_train"], len(x_train), fix)
        y_test = text.keras_labels(path, "y_test", arrays["y_test"], len(x_test), fix)
        x_train, y_train, x_test, y_test = text.keras_shuffle(x_train, y_train, x_test, y_test)
        out = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
        return out, {"sha256": {path.name: digest}}

    arrays, meta = cached("imdb-npz", [path], {"vocab": VOCAB, "maxlen": MAXLEN}, parse)
    pipeline = (f"Keras imdb.npz: start 1, OOV 2, word rank + 3, ids >= {VOCAB} -> OOV, Keras' seed-113 order; "
                f"pad_sequences maxlen {MAXLEN} pre-padding pre-truncation; "
                f"{len(arrays['x_train'])}/{len(arrays['x_test'])} train/test")
    return Raw(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], pipeline,
               f"{path} (sha256 {_identity(meta['sha256'])}, cache {meta.get('cache', '-')})")


def _read_aclimdb(folder: Path, fix: str) -> Raw:
    from dlbench.data import text

    files = [f for split in ("train", "test") for group in text.review_files(folder, split) for f in group]

    def parse():
        return text.read_aclimdb(folder, VOCAB, MAXLEN, fix), {"sha256": {}}

    arrays, meta = cached("imdb-aclimdb", files, {"vocab": VOCAB, "maxlen": MAXLEN}, parse)
    pipeline = (f"aclImdb text: lowercase, <br /> removed, words [a-z0-9]+('[a-z0-9]+)*; vocabulary the "
                f"{VOCAB - 3} most frequent training words -> ids 3.., start 1, OOV 2; pad_sequences maxlen "
                f"{MAXLEN} pre-padding pre-truncation; {len(arrays['x_train'])}/{len(arrays['x_test'])} train/test")
    return Raw(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], pipeline,
               f"{folder} ({len(files)} reviews, cache {meta.get('cache', '-')})")


# --- locating -------------------------------------------------------------------------------------------


def _find_mnist(dirs: Sequence[Path]) -> Optional[str]:
    for base in dirs:
        if (base / "mnist.npz").is_file():
            return str(base / "mnist.npz")
        folder = _find_idx_dir([base], ("mnist",))
        if folder:
            return str(folder)
    return None


def _is_aclimdb(folder: Path) -> bool:
    return all((folder / split / label).is_dir() for split in ("train", "test") for label in ("pos", "neg"))


def _find_imdb(dirs: Sequence[Path]) -> Optional[str]:
    for base in dirs:
        if (base / "imdb.npz").is_file():
            return str(base / "imdb.npz")
        if _is_aclimdb(base / "aclImdb"):
            return str(base / "aclImdb")
    return None


def _find_fashion(dirs: Sequence[Path]) -> Optional[str]:
    folder = _find_idx_dir(dirs, ("fashion-mnist", "fashion_mnist"))
    return str(folder) if folder else None


def _fix(task: str) -> str:
    return f"delete it and run: dlbench data fetch {task}"


def _read_fashion(where: str) -> Raw:
    folder = Path(where)
    fix = ("reinstall it: apt-get install --reinstall dataset-fashion-mnist" if folder.parent == DEBIAN_DATASETS
           else _fix("fashion_mnist"))
    return _read_idx_folder("fashion_mnist", folder, fix)


def _read_mnist(where: str) -> Raw:
    path = Path(where)
    return _read_mnist_npz(path, _fix("mnist")) if path.suffix == ".npz" else \
        _read_idx_folder("mnist", path, _fix("mnist"))


def _read_imdb(where: str) -> Raw:
    path = Path(where)
    if path.suffix == ".npz":
        return _read_imdb_npz(path, _fix("imdb"))
    return _read_aclimdb(path, "replace the aclImdb folder with a fresh copy, or run: dlbench data fetch imdb")


def _read_cifar10(where: str) -> Raw:
    from dlbench.data.cifar import batch_files, read_cifar10

    path, fix = Path(where), _fix("cifar10")

    def parse():
        arrays, digests = read_cifar10(path, fix)
        return arrays, {"sha256": digests}

    arrays, meta = cached("cifar10", batch_files(path), {}, parse)
    pipeline = (f"CIFAR-10 python batches (restricted unpickler), uint8 RGB, CHW bytes -> HWC; "
                f"{len(arrays['x_train'])}/{len(arrays['x_test'])} train/test")
    return _raw_images(arrays, meta, pipeline, path)


def _find_cifar10(dirs: Sequence[Path]) -> Optional[str]:
    from dlbench.data.cifar import find_cifar10

    return find_cifar10(dirs)


# --- built-in tasks -------------------------------------------------------------------------------------


def _digits_file() -> Optional[Path]:
    """scikit-learn's own copy of the 8x8 digits (read directly: importing sklearn costs ~1.7 s a case)."""
    spec = importlib.util.find_spec("sklearn")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


def _find_sklearn(_: Sequence[Path]) -> Optional[str]:
    path = _digits_file()
    return str(path) if path else None


def _read_digits(location: str) -> Raw:
    path = Path(location)
    fix = "reinstall scikit-learn (pip install --force-reinstall scikit-learn), which ships this file"
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)  # 64 pixels in 0..16, then the label
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: cannot read the digits table ({exc}); {fix}") from None
    if table.ndim != 2 or table.shape[1] != 65 or len(table) != 1797:
        raise DataError(f"{path}: expected 1797 rows of 64 pixels and a label, got shape {table.shape}; {fix}")
    images = table[:, :64].reshape(-1, 8, 8) / 16.0
    big = np.kron(images, np.ones((3, 3), dtype=np.float32))  # 8x8 -> 24x24, nearest neighbour
    padded = np.pad(big, ((0, 0), (2, 2), (2, 2)))  # centred in 28x28 like MNIST's 20x20 box
    order = np.random.default_rng(1234).permutation(len(padded))  # fixed 80/20 train/test split
    n_test = len(padded) // 5
    test, train = order[:n_test], order[n_test:]
    labels = table[:, 64].astype(np.int64)
    return Raw(padded[train], labels[train], padded[test], labels[test],
               "8x8 / 16, upscaled x3 nearest to 24x24, zero-padded to 28x28; fixed 80/20 train/test split",
               f"scikit-learn's digits ({path})")


def _read_synthetic_images(_: str) -> Raw:
    x, y = synthetic_images(12000, seed=7)
    return Raw(x[:10000], y[:10000], x[10000:], y[10000:], "generated: class square on uniform noise, float32",
               "generated")


def _read_synthetic_rgb(_: str) -> Raw:
    x, y = synthetic_rgb(4000, seed=7)
    return Raw(x[:3500], y[:3500], x[3500:], y[3500:],
               "generated: class-coloured square at a class position on RGB noise, float32", "generated")


def _read_synthetic_text(_: str) -> Raw:
    x, y = synthetic_text(6000, seed=7, vocab=VOCAB, maxlen=MAXLEN)
    return Raw(x[:5000], y[:5000], x[5000:], y[5000:],
               "generated: label = which of two 50-token sets is planted", "generated")


def _generated(_: Sequence[Path]) -> Optional[str]:
    return "generated"


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task("fashion_mnist", "image", 10, (28, 28, 1), False,
             "apt-get install dataset-fashion-mnist, or: dlbench data fetch fashion_mnist",
             _find_fashion, _read_fashion),
        Task("mnist", "image", 10, (28, 28, 1), False,
             "dlbench data fetch mnist (or put Keras' mnist.npz, or the 4 IDX files in a folder mnist/, in --data-dir)",
             _find_mnist, _read_mnist),
        Task("digits", "image", 10, (28, 28, 1), False, "pip install scikit-learn", _find_sklearn, _read_digits),
        Task("imdb", "text", 2, (MAXLEN,), False,
             "dlbench data fetch imdb (or put Keras' imdb.npz, or the aclImdb folder, in --data-dir)",
             _find_imdb, _read_imdb),
        Task("synthetic_images", "image", 10, (28, 28, 1), True, "always present", _generated,
             _read_synthetic_images),
        Task("synthetic_text", "text", 2, (MAXLEN,), True, "always present", _generated, _read_synthetic_text),
        Task("cifar10", "image", 10, (32, 32, 3), False,
             "dlbench data fetch cifar10 (or put cifar-10-python.tar.gz, or its cifar-10-batches-py folder, in "
             "--data-dir)", _find_cifar10, _read_cifar10),
        Task("synthetic_rgb", "image", 10, (32, 32, 3), True, "always present", _generated, _read_synthetic_rgb),
    )
}
