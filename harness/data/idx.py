"""Reading IDX files (the MNIST / Fashion-MNIST format), gzipped or not."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from dlbench.data.errors import DataError

_DTYPES = {0x08: np.uint8}


def read_idx(path: Path, expected_shape: tuple[int, ...]) -> np.ndarray:
    """The array stored in ``path``; DataError naming the file when it is not the expected IDX array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read ({exc}); delete it and fetch it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'}); "
                        "expected 0000080N; replace it with the original file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if dims != expected_shape:
        raise DataError(f"{path}: shape {dims}, expected {expected_shape}; replace it with the original file")
    count = int(np.prod(dims))
    if len(raw) - header != count:
        raise DataError(f"{path}: truncated or padded ({len(raw) - header} data bytes, expected {count}); "
                        "delete it and fetch it again")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
