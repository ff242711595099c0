"""Reading CIFAR-10's python batches safely, from the published tar.gz or its extracted folder.

``cifar-10-python.tar.gz`` holds ``cifar-10-batches-py/data_batch_1..5`` and ``test_batch``: Python 2
pickles of a dict ``{b"data": uint8 array (10000, 3072), b"labels": [int], ...}``, each image 1024 red,
then 1024 green, then 1024 blue bytes, row-major. They are unpickled with the restricted unpickler of
npzfile.py (numpy arrays and plain containers only: a tampered batch cannot run code), never with
``pickle.load``, and read straight from the archive (nothing is extracted).
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import zlib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from dlbench.data.npzfile import restricted_unpickle
from dlbench.errors import DataError

ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
BATCHES = (*TRAIN_BATCHES, "test_batch")
SHAPE = (32, 32, 3)


def find_cifar10(dirs: Sequence[Path]) -> Optional[str]:
    """The archive, or a folder holding the six batches (Keras' cache extracts one), in the first dir that has it."""
    for base in dirs:
        if (base / ARCHIVE).is_file():
            return str(base / ARCHIVE)
        for folder in (base / FOLDER, base / "cifar-10-batches-py-target" / FOLDER):
            if all((folder / name).is_file() for name in BATCHES):
                return str(folder)
    return None


def batch_files(where: Path) -> list[Path]:
    """The files whose size and time key the parsed cache: the archive, or the folder's six batches."""
    return [where] if where.is_file() else [where / name for name in BATCHES]


def read_cifar10(where: Path, fix: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """({x_train, y_train, x_test, y_test}, {file: SHA-256}): uint8 NHWC images and int64 labels 0..9."""
    stored, digests = _batch_bytes(where, fix)
    parts = {name: _parse_batch(where, name, stored[name], fix) for name in BATCHES}
    x_train = np.concatenate([parts[name][0] for name in TRAIN_BATCHES])
    y_train = np.concatenate([parts[name][1] for name in TRAIN_BATCHES])
    x_test, y_test = parts["test_batch"]
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}, digests


def _batch_bytes(where: Path, fix: str) -> tuple[dict[str, bytes], dict[str, str]]:
    if where.is_dir():
        stored = {}
        for name in BATCHES:
            try:
                stored[name] = (where / name).read_bytes()
            except OSError as exc:
                raise DataError(f"{where / name}: cannot read ({exc.strerror or exc}); {fix}") from None
        return stored, {name: hashlib.sha256(data).hexdigest() for name, data in stored.items()}
    try:
        archive = where.read_bytes()
    except OSError as exc:
        raise DataError(f"{where}: cannot read ({exc.strerror or exc}); {fix}") from None
    stored = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for name in BATCHES:
                member = tar.extractfile(f"{FOLDER}/{name}")  # KeyError when absent; None for a non-file
                if member is None:
                    raise KeyError(name)
                stored[name] = member.read()
    except KeyError:
        raise DataError(f"{where}: no {FOLDER}/{name} in the archive (not CIFAR-10's python version); {fix}") from None
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{where}: not a readable tar.gz ({exc}; truncated or corrupt); {fix}") from None
    return stored, {where.name: hashlib.sha256(archive).hexdigest()}


def _parse_batch(where: Path, name: str, data: bytes, fix: str) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images (N, 32, 32, 3), int64 labels) of one pickled batch; DataError naming the batch and the fix."""
    try:
        batch = restricted_unpickle(io.BytesIO(data), encoding="bytes")
    except pickle.UnpicklingError as exc:
        raise DataError(f"{where}: batch {name}: {exc} (only numpy arrays and plain containers are allowed; "
                        f"the file may be tampered with); {fix}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, pickle.PickleError) as exc:
        raise DataError(f"{where}: batch {name} is not a CIFAR pickle ({exc}); {fix}") from None
    images = batch.get(b"data") if isinstance(batch, dict) else None
    labels = np.asarray(batch.get(b"labels", [])) if isinstance(batch, dict) else np.empty(0)
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2 or \
            images.shape[1] != 3 * 32 * 32 or len(images) == 0:
        got = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise DataError(f"{where}: batch {name}: b'data' is {got}, expected uint8 (N, 3072); {fix}")
    if labels.ndim != 1 or len(labels) != len(images) or labels.dtype.kind not in "iu" or \
            labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{where}: batch {name}: b'labels' are not {len(images)} integers 0..9; {fix}")
    nhwc = np.ascontiguousarray(images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return nhwc, labels.astype(np.int64)
