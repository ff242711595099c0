"""Where each downloadable data set lives, the checksums dlbench ships for it, and ``fetch``.

Checksum provenance (never guessed):
- mnist.npz, imdb.npz, cifar-10-python.tar.gz: the SHA-256 Keras itself pins in
  keras/src/datasets/{mnist,imdb,cifar10}.py (``get_file(..., file_hash=...)``) for these exact URLs
  (CIFAR-10's publisher gives an MD5 only, c58f30108f718f92721af3b95e74349a, on its page).
- Fashion-MNIST's four .gz files: dlbench knows no SHA-256 for sure, so none is shipped (None). Zalando
  publishes an MD5 for each file in the project's README (also in Debian's
  /usr/share/doc/dataset-fashion-mnist/README.md.gz); a download is checked against it and its SHA-256
  is printed. (Debian's copies are recompressed: same images, different .gz bytes and hashes.)
A file with neither kind of checksum is refused unless the user gives ``--sha256``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional

from dlbench.data.cache import cache_dir
from dlbench.errors import DataError

KERAS_BASE = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
TORONTO_BASE = "https://www.cs.toronto.edu/~kriz/"
ZALANDO_BASE = "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"


@dataclass(frozen=True)
class RemoteFile:
    name: str  # file name at the source, and in the destination folder
    sha256: Optional[str]  # shipped SHA-256, or None when dlbench does not know it for sure
    md5: Optional[str] = None  # the publisher's own MD5, used only when no SHA-256 is known


@dataclass(frozen=True)
class Remote:
    task: str
    base: str
    subdir: str  # folder under the destination ("" for the destination itself)
    files: tuple[RemoteFile, ...]
    checksum_note: str


REMOTES: dict[str, Remote] = {
    remote.task: remote
    for remote in (
        Remote("mnist", KERAS_BASE, "", (
            RemoteFile("mnist.npz", "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"),),
            "SHA-256 as pinned by Keras"),
        Remote("imdb", KERAS_BASE, "", (
            RemoteFile("imdb.npz", "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"),),
            "SHA-256 as pinned by Keras"),
        Remote("fashion_mnist", ZALANDO_BASE, "fashion-mnist", (
            RemoteFile("train-images-idx3-ubyte.gz", None, "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            RemoteFile("train-labels-idx1-ubyte.gz", None, "25c81989df183df01b3e8a0aad5dffbe"),
            RemoteFile("t10k-images-idx3-ubyte.gz", None, "bef4ecab320f06d8554ea6380940ec79"),
            RemoteFile("t10k-labels-idx1-ubyte.gz", None, "bb300cfdad3c16e7a12a480ee83cd310")),
            "no SHA-256 shipped; checked against Zalando's published MD5"),
        Remote("cifar10", TORONTO_BASE, "", (
            RemoteFile("cifar-10-python.tar.gz", "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                       "c58f30108f718f92721af3b95e74349a"),),
            "SHA-256 as pinned by Keras"),
    )
}


def parse_sha256_overrides(values: Optional[list[str]], remote: Remote) -> dict[str, str]:
    """``--sha256 HEX`` (one-file data sets) or ``--sha256 FILE=HEX`` -> {file name: hex}; ValueError if bad."""
    names = [f.name for f in remote.files]
    out: dict[str, str] = {}
    for value in values or []:
        name, _, hexdigest = value.rpartition("=")
        if not name:
            if len(names) != 1:
                raise ValueError(f"--sha256 {value}: {remote.task} has {len(names)} files; write --sha256 FILE=HEX "
                                 f"with FILE one of {', '.join(names)}")
            name = names[0]
        if name not in names:
            raise ValueError(f"--sha256 {value}: no file {name!r} in {remote.task}; choose from {', '.join(names)}")
        hexdigest = hexdigest.strip().lower()
        if len(hexdigest) != 64 or any(ch not in "0123456789abcdef" for ch in hexdigest):
            raise ValueError(f"--sha256 {value}: expected 64 hex digits")
        out[name] = hexdigest
    return out


def mirror_base(mirror: Optional[str]) -> Optional[str]:
    base = mirror or os.environ.get("DLBENCH_MIRROR") or None
    return base.rstrip("/") + "/" if base else None


def fetch(task: str, *, dest: Optional[Path] = None, mirror: Optional[str] = None,
          sha256: Optional[Mapping[str, str]] = None, retries: int = 5, backoff: float = 1.0,
          timeout: float = 60.0, log: Callable[[str], None] = print) -> Path:
    """Download ``task``'s files into ``dest`` (default: the dlbench cache), verified; return the folder.

    Files already there with the right checksum are kept. DataError when a file cannot be had.
    """
    from dlbench.data.download import download, file_digest  # urllib only when fetching

    remote = REMOTES[task]
    folder = (dest or cache_dir()) / remote.subdir if remote.subdir else (dest or cache_dir())
    base = mirror_base(mirror) or remote.base
    overrides = dict(sha256 or {})
    for item in remote.files:
        target = folder / item.name
        expected = overrides.get(item.name) or item.sha256
        if expected is None and item.md5 is None:
            raise DataError(f"{item.name}: dlbench ships no checksum for it; pass --sha256 {item.name}=HEX with a "
                            "checksum you trust")
        if target.is_file():
            ok = (file_digest(target) == expected) if expected else (file_digest(target, "md5") == item.md5)
            if ok:
                log(f"{target}: already present, checksum ok")
                continue
            log(f"{target}: present but its checksum does not match; downloading again")
        url = base + item.name
        log(f"{item.name}: downloading {url}")
        got = download(url, target, sha256=expected, md5=None if expected else item.md5, retries=retries,
                       backoff=backoff, timeout=timeout, log=log)
        size = target.stat().st_size
        if expected:
            source = "given with --sha256" if item.name in overrides else "shipped by dlbench"
            log(f"{target}: {size} bytes, SHA-256 {got} verified ({source})")
        else:
            log(f"{target}: {size} bytes, MD5 verified against the publisher's {item.md5}; SHA-256 {got} "
                "(dlbench ships none for this file; record it if you need to pin it)")
    return folder
