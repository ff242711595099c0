"""Reading IDX files (the MNIST / Fashion-MNIST format), gzipped or not.

Every failure is a DataError that names the file, what was expected and the fix, because a truncated
download or a renamed file is the usual cause and the user can act on it.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

from dlbench.errors import DataError

_UINT8 = 0x08


def read_idx(path: Path, trailing: tuple[int, ...], fix: str) -> tuple[np.ndarray, str]:
    """(array, SHA-256 of the file as stored) for an unsigned-byte IDX file of shape (N, *trailing).

    ``fix`` is the advice appended to every error, e.g. "delete it and run: dlbench data fetch mnist".
    The array is read-only (a view of the decompressed bytes).
    """
    try:
        stored = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc}); {fix}") from None
    digest = hashlib.sha256(stored).hexdigest()
    raw = stored
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(stored)
        except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; a cut file is an EOFError
            raise DataError(f"{path}: not a complete gzip file ({exc}); expected gzip-compressed IDX data; "
                            f"{fix}") from None
    ndim = 1 + len(trailing)
    magic = raw[:4]
    if len(raw) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] != _UINT8 or magic[3] != ndim:
        raise DataError(f"{path}: bad IDX magic number {magic.hex() or '(empty file)'}, expected "
                        f"{bytes((0, 0, _UINT8, ndim)).hex()} (unsigned bytes, {ndim} dimensions); {fix}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: IDX header cut short ({len(raw)} bytes, expected {header}); {fix}")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if dims[1:] != tuple(trailing) or dims[0] == 0:
        raise DataError(f"{path}: IDX shape {dims}, expected (N, {', '.join(map(str, trailing))}) with N > 0; "
                        f"{fix}")
    count = int(np.prod(dims))
    if len(raw) - header != count:
        raise DataError(f"{path}: truncated or padded IDX data ({len(raw) - header} data bytes, expected "
                        f"{count} for shape {dims}); {fix}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims), digest
