"""Parsed arrays cached on disk (uncompressed .npz) and in the process, so a data set is parsed once.

The key is cheap: the loader's version and parameters plus each source file's path, size and
modification time, so a lookup never reads the sources. The SHA-256 of the sources, computed while
parsing (the bytes are read then anyway), is stored in the entry and reported as the data's identity.
A stale or damaged entry is ignored and rewritten; an unwritable cache only costs speed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

FORMAT = 1  # bump when a loader's output changes, so old entries are not reused
_MEMO: dict[str, tuple[dict[str, np.ndarray], dict]] = {}
_MEMO_SIZE = 2

Parsed = tuple[dict[str, np.ndarray], dict]  # (arrays, metadata with at least "sha256": {file: hex})


def cache_dir() -> Path:
    return Path(os.environ.get("DLBENCH_CACHE", "~/.cache/dlbench")).expanduser()


def cache_key(kind: str, files: Sequence[Path], params: Mapping[str, object]) -> str:
    stats = []
    for path in files:
        st = path.stat()
        stats.append((str(path.resolve()), st.st_size, st.st_mtime_ns))
    blob = json.dumps({"format": FORMAT, "kind": kind, "params": dict(params), "files": stats}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def cached(kind: str, files: Sequence[Path], params: Mapping[str, object], parse: Callable[[], Parsed]) -> Parsed:
    """``parse()``'s result, from memory, from the disk cache, or by parsing (and then storing it)."""
    key = f"{kind}-{cache_key(kind, files, params)}"
    if key in _MEMO:
        arrays, meta = _MEMO[key]
        return arrays, {**meta, "cache": "memory"}
    path = cache_dir() / "parsed" / f"{key}.npz"
    found = _read(path)
    if found is None:
        found = parse()
        _write(path, kind, *found)
        found[1]["cache"] = "parsed"
    else:
        found[1]["cache"] = "disk"
    _remember(key, found)
    return found[0], dict(found[1])


def clear_memory() -> None:
    """Forget what this process has loaded (tests; long-lived processes that want the memory back)."""
    _MEMO.clear()


def _remember(key: str, value: Parsed) -> None:
    for arr in value[0].values():
        arr.flags.writeable = False  # shared between callers: nobody may change it in place
    _MEMO[key] = value
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.pop(next(iter(_MEMO)))


def _read(path: Path) -> Parsed | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        meta = json.loads(str(arrays.pop("__meta__")))
        return arrays, meta
    except Exception:  # noqa: BLE001 - absent or damaged in any way (bad zip, bad header): parse again
        return None


def _write(path: Path, kind: str, arrays: dict[str, np.ndarray], meta: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez(out, __meta__=np.array(json.dumps(meta)), **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        for old in path.parent.glob(f"{kind}-*.npz"):  # one entry per kind: drop the superseded ones
            if old != path:
                old.unlink(missing_ok=True)
    except OSError as exc:
        warnings.warn(f"dlbench: cannot cache parsed data in {path.parent} ({exc}); loading will not be faster "
                      "next time (set DLBENCH_CACHE to a writable folder)", stacklevel=3)
