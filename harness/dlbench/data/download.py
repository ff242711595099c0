"""One verified download with urllib: resumable, retried, atomic.

Bytes go to ``<dest>.part`` beside the destination. An interrupted transfer keeps what arrived and the
next attempt asks for the rest (HTTP Range); a server that ignores Range sends the whole file again and
the part file restarts. Only a file whose checksum matches is moved into place (os.replace), so the
final path never holds a partial or unverified file.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Optional

from dlbench.errors import DataError

CHUNK = 1 << 16
USER_AGENT = "dlbench-data-fetch"


class _Interrupted(Exception):
    """A transfer that may succeed if tried again (connection dropped, short body, 5xx)."""


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: Path, *, sha256: Optional[str] = None, md5: Optional[str] = None,
             retries: int = 5, backoff: float = 1.0, timeout: float = 60.0,
             log: Callable[[str], None] = lambda _: None) -> str:
    """Fetch ``url`` to ``dest`` and return its SHA-256; DataError when it cannot be done.

    At least one of ``sha256`` / ``md5`` must be given: nothing unverified is ever put in place.
    Retries ``retries`` times after the first attempt, sleeping backoff, 2*backoff, 4*backoff, ...
    """
    if not sha256 and not md5:
        raise ValueError("download() needs an expected checksum")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    attempt = 0
    while True:
        try:
            _transfer(url, part, timeout, log)
            break
        except _Interrupted as exc:
            if attempt >= retries:
                kept = part.stat().st_size if part.exists() else 0
                raise DataError(f"{url}: download failed after {attempt + 1} attempts ({exc}); {kept} bytes kept "
                                f"in {part}, run the same command again to resume, or use --mirror URL") from None
            delay = backoff * 2 ** attempt
            attempt += 1
            log(f"{dest.name}: {exc}; retry {attempt}/{retries} in {delay:.1f} s")
            time.sleep(delay)
    got = file_digest(part)
    if sha256 and got != sha256.lower():
        part.unlink(missing_ok=True)
        raise DataError(f"{url}: SHA-256 {got} does not match the expected {sha256.lower()}; the download was "
                        f"deleted and nothing was written to {dest}; try again, or use another --mirror")
    if not sha256 and md5:
        got_md5 = file_digest(part, "md5")
        if got_md5 != md5.lower():
            part.unlink(missing_ok=True)
            raise DataError(f"{url}: MD5 {got_md5} does not match the publisher's {md5.lower()}; the download was "
                            f"deleted and nothing was written to {dest}; try again, or use another --mirror")
    with open(part, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(part, dest)
    return got


def _transfer(url: str, part: Path, timeout: float, log: Callable[[str], None]) -> None:
    """One attempt: append the missing bytes to ``part``, or raise _Interrupted / DataError."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # our part file is not a prefix of what the server has now
            part.unlink(missing_ok=True)
            raise _Interrupted("server refused to resume; starting over") from None
        if exc.code in (408, 425, 429) or exc.code >= 500:
            raise _Interrupted(f"HTTP {exc.code} {exc.reason}") from None
        raise DataError(f"{url}: HTTP {exc.code} {exc.reason}; check the URL or --mirror") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (OSError, socket.timeout)) and not isinstance(exc.reason, socket.gaierror):
            raise _Interrupted(f"cannot connect ({exc.reason})") from None
        raise DataError(f"{url}: cannot connect ({exc.reason}); check the network or use --mirror URL") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Interrupted(f"cannot connect ({exc})") from None
    with response:
        status = getattr(response, "status", None) or 200
        mode = "wb"
        if have and status == 206:
            start = _content_range_start(response.headers.get("Content-Range", ""))
            if start != have:
                part.unlink(missing_ok=True)
                raise _Interrupted(f"server resumed at byte {start}, not {have}; starting over")
            mode = "ab"
            log(f"{part.name}: resuming at byte {have}")
        elif have:
            log(f"{part.name}: server does not resume; downloading from the start")
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        received = 0
        with open(part, mode) as out:
            try:
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    received += len(block)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                raise _Interrupted(f"connection lost after {received} bytes ({exc})") from None
    if expected is not None and received < expected:
        raise _Interrupted(f"connection closed after {received} of {expected} bytes")


def _content_range_start(value: str) -> Optional[int]:
    match = re.match(r"\s*bytes\s+(\d+)-", value)
    return int(match.group(1)) if match else None
