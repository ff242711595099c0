"""One run's folder: every file name and every rule about what lives in it, in one place.

A run folder holds ``results.jsonl`` (one record per finished case, appended and fsynced), ``run.json``
(the manifest: the options, whether the run completed), ``logs/`` (each worker's output), ``.lock``
(one ``dlbench run`` at a time) and, with ``--report``, ``report/``. The CLI, the runner, the report
commands and the conformance kit all go through this class.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

from dlbench.errors import ResultsError, UsageError
from dlbench.results import RESULTS, append_record, clean_numbers, iter_records, load_records, truncate_torn_tail

MANIFEST = "run.json"
LOGS = "logs"
LOCK = ".lock"
REPORT = "report"


def safe_name(text: str) -> str:
    """``text`` usable as a file name on any file system (case ids contain slashes)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


class RunDir:
    """The folder of one ``dlbench run`` (a fresh one, or one being resumed)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    @property
    def results(self) -> Path:
        return self.path / RESULTS

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def logs(self) -> Path:
        return self.path / LOGS

    @property
    def report(self) -> Path:
        return self.path / REPORT

    def create(self) -> "RunDir":
        self.logs.mkdir(parents=True, exist_ok=True)
        return self

    def log_path(self, case_id: str, repeat: int) -> Path:
        return self.logs / f"{safe_name(case_id)}-r{repeat}.log"

    def has_results(self) -> bool:
        """Whether an earlier run already wrote records here (a new run must not append to them)."""
        try:
            return self.results.stat().st_size > 0
        except OSError:
            return False

    # -- records -----------------------------------------------------------------------------------
    def append(self, record: dict[str, Any]) -> None:
        append_record(self.results, clean_numbers(record))

    def records(self) -> list[dict[str, Any]]:
        return load_records([self.results])

    def finished(self) -> tuple[frozenset[tuple[str, int]], Optional[str]]:
        """The (case id, repeat) pairs already on disk, and the run id that wrote them.

        A torn last line (the run was killed mid-write) is cut first so that appends start clean.
        """
        done: set[tuple[str, int]] = set()
        run_id = None
        if not self.results.exists():
            return frozenset(), None
        truncate_torn_tail(self.results)
        try:
            for record in iter_records(self.results):
                if not record.get("retried"):  # a crashed attempt whose retry may not have ended: run it again
                    done.add((record.get("case_id", ""), int(record.get("repeat", 0))))
                run_id = run_id or record["run_id"]
        except ResultsError as exc:
            raise UsageError(f"--resume: {exc}") from None
        return frozenset(done), run_id

    # -- manifest ----------------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any]:
        """The manifest of a run to resume; UsageError when this is not a run folder."""
        try:
            manifest = json.loads(self.manifest_path.read_text())
            if not isinstance(manifest, dict) or not isinstance(manifest["argv"], dict):
                raise TypeError
        except (OSError, ValueError, KeyError, TypeError):
            raise UsageError(f"--resume {self.path}: no readable {MANIFEST}; is it a dlbench run folder?") from None
        return manifest

    def write_manifest(self, data: dict[str, Any]) -> None:
        """Say what the run is and whether it completed (atomic replace: never half a file)."""
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str))
        os.replace(tmp, self.manifest_path)

    # -- lock --------------------------------------------------------------------------------------
    def lock(self) -> "RunLock":
        return RunLock(self.path / LOCK)


class RunLock:
    """One ``dlbench run`` per folder: a second one refuses instead of interleaving records."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if _lock_is_stale(self.path):
                    self.path.unlink(missing_ok=True)
                    continue
                raise UsageError(f"{self.path.parent} is in use by another dlbench run (pid "
                                 f"{self.path.read_text().strip() or '?'}); choose another --out") from None
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            return self
        raise UsageError(f"cannot lock {self.path}; remove it if no dlbench run is using the folder")

    def __exit__(self, *exc: Any) -> None:
        self.path.unlink(missing_ok=True)


def _lock_is_stale(path: Path) -> bool:
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return True
    return False
