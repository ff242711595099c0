"""Reading Keras' dataset .npz files safely: numeric arrays without pickle, object arrays with a
restricted unpickler.

Keras' imdb.npz stores ragged word-index lists as object arrays, which numpy can only persist as a
pickle. ``np.load(allow_pickle=True)`` would run any code a tampered file carries, so object arrays
are rebuilt by an unpickler that only knows the three globals numpy needs (the same allow-list Keras 3
uses in keras/src/datasets/npz_utils.py).
"""

from __future__ import annotations

import hashlib
import io
import pickle
import zipfile
import zlib
from pathlib import Path

import numpy as np

from dlbench.errors import DataError

_ALLOWED_GLOBALS = frozenset({
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
})


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D401 - pickle's hook
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def restricted_unpickle(buffer: io.BytesIO, encoding: str = "latin1") -> object:
    """``pickle.load`` that rebuilds numpy arrays and plain containers and refuses every other global."""
    return _RestrictedUnpickler(buffer, encoding=encoding).load()


def _read_npy(buffer: io.BytesIO) -> np.ndarray:
    fmt = np.lib.format
    version = fmt.read_magic(buffer)
    if version == (1, 0):
        shape, _, dtype = fmt.read_array_header_1_0(buffer)
    else:  # 2.0 and 3.0 share the header layout; 3.0 only changes the header's text encoding
        shape, _, dtype = fmt.read_array_header_2_0(buffer)
    if not dtype.hasobject:
        buffer.seek(0)
        return fmt.read_array(buffer, allow_pickle=False)
    array = restricted_unpickle(buffer)
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        raise ValueError(f"pickled object is not the declared array of shape {tuple(shape)}")
    return array


def read_npz(path: Path, fix: str) -> tuple[dict[str, np.ndarray], str]:
    """({member name: array}, SHA-256 of the file) for an .npz archive; DataError naming file and fix."""
    try:
        stored = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc}); {fix}") from None
    digest = hashlib.sha256(stored).hexdigest()
    try:
        archive = zipfile.ZipFile(io.BytesIO(stored))
    except zipfile.BadZipFile as exc:
        raise DataError(f"{path}: not an .npz archive ({exc}; truncated or not a zip file); {fix}") from None
    arrays = {}
    with archive:
        for member in archive.namelist():
            if not member.endswith(".npy"):
                continue
            key = member[: -len(".npy")]
            try:
                arrays[key] = _read_npy(io.BytesIO(archive.read(member)))
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise DataError(f"{path}: member {member} is corrupt ({exc}); {fix}") from None
            except pickle.UnpicklingError as exc:
                raise DataError(f"{path}: member {member}: {exc} (only numpy arrays are allowed; the file "
                                f"may be tampered with); {fix}") from None
            except (ValueError, TypeError, OSError, pickle.PickleError, AttributeError, IndexError) as exc:
                raise DataError(f"{path}: member {member} is not a valid .npy array ({exc}); {fix}") from None
    return arrays, digest


def require_keys(path: Path, arrays: dict[str, np.ndarray], keys: tuple[str, ...], fix: str) -> None:
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise DataError(f"{path}: missing arrays {', '.join(missing)} (has {', '.join(sorted(arrays)) or 'none'}; "
                        f"expected {', '.join(keys)}); {fix}")
