"""The result record: one JSON object per case run, appended to ``results.jsonl`` as each run ends.

The schema is documented in docs/results-schema.md. Records are JSON only: nothing is unpickled or
evaluated, and a malformed line is reported with its file and line number.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

from dlbench.errors import ResultsError

SCHEMA_VERSION = 1
RESULTS = "results.jsonl"  # the records of a run folder
STATUSES = ("ok", "failed", "skipped", "crashed", "timeout")
CASE_KEYS = ("framework", "variant", "model", "task", "device", "batch_size")

# field -> accepted types (bool is excluded from numbers below)
_REQUIRED: dict[str, tuple[type, ...]] = {
    "schema_version": (int,),
    "run_id": (str,),
    "framework": (str,),
    "variant": (str,),
    "model": (str,),
    "task": (str,),
    "device": (str,),
    "batch_size": (int,),
    "threads": (int,),
    "status": (str,),
    "metrics": (dict,),
}


# schema version v -> the step that turns a version-v record into a version-(v + 1) one (asv's update_to_N
# pattern). Empty while 1 is the only version there ever was; when version 2 comes, add {1: _to_2} here
# and every older file keeps reading. Steps get a copy and return the upgraded record.
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def upgrade_record(record: Any) -> Any:
    """``record`` brought up to SCHEMA_VERSION, one step at a time; anything else is left to ``validate``.

    A record newer than this dlbench raises ResultsError: guessing at fields we do not know could
    publish wrong numbers.
    """
    if not isinstance(record, dict):
        return record
    version = record.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version == SCHEMA_VERSION:
        return record
    if version > SCHEMA_VERSION:
        raise ResultsError(f"schema_version {version} is newer than this dlbench reads ({SCHEMA_VERSION}); "
                           f"upgrade dlbench (pip install -U dlbench) to read it")
    while version < SCHEMA_VERSION:
        step = UPGRADES.get(version)
        if step is None:
            return record  # no path from this version: validate() names it
        record = step(dict(record))
        version += 1
        record["schema_version"] = version
    return record


def case_id(record: dict[str, Any]) -> str:
    """A stable, human-readable key for one case (the same across repeats and runs); a ``--batch-size auto``
    case is ".../auto" whatever knee each repeat found (its ``batch_size`` is the batch it ran)."""
    auto = record.get("batch_size_requested") == "auto"
    return "/".join("auto" if auto and key == "batch_size" else str(record[key]) for key in CASE_KEYS)


def batch_label(batch_size: Any, auto: bool) -> str:
    """How tables show a case's batch: "128", or "2048 (auto)" for the knee ``--batch-size auto`` found."""
    return f"{batch_size} (auto)" if auto else str(batch_size)


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one record as a line and make it durable before returning: nothing finished is lost."""
    line = json.dumps(record, sort_keys=True, allow_nan=False, default=_jsonable) + "\n"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def clean_numbers(value: Any) -> Any:
    """Replace NaN and infinities (not JSON) by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_numbers(v) for v in value]
    return value


def validate(record: Any) -> Optional[str]:
    """Why ``record`` is not a usable result record, or None when it is."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    for key, types in _REQUIRED.items():
        if key not in record:
            return f"missing field {key!r}"
        value = record[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            return f"field {key!r} should be {'/'.join(t.__name__ for t in types)}, got {type(value).__name__}"
    if record["schema_version"] != SCHEMA_VERSION:
        return f"schema_version {record['schema_version']} is not supported (this dlbench reads {SCHEMA_VERSION})"
    if record["status"] not in STATUSES:
        return f"status {record['status']!r} is not one of {', '.join(STATUSES)}"
    for key, value in record["metrics"].items():
        if isinstance(value, float) and not math.isfinite(value):
            return f"metric {key!r} is not a finite number"
        if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > 1e15:
            return f"metric {key!r} = {value} is absurdly large"
    return None


def iter_records(path: Path, tolerate_torn_tail: bool = True) -> Iterator[dict[str, Any]]:
    """Records of one JSONL file. A torn last line (a kill mid-write) is skipped with a warning."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file") from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    lines = data.split(b"\n")
    torn_tail = bool(lines) and lines[-1] != b""  # the last record did not get its newline
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except ValueError as exc:  # UnicodeDecodeError is a ValueError too: a binary line is not a record
            if tolerate_torn_tail and torn_tail and number == len(lines):
                warn(f"{path}:{number}: dropped a torn last line (the run was killed mid-write)")
                return
            raise ResultsError(f"{path}:{number}: not valid JSON ({exc})") from None
        try:
            record = upgrade_record(record)
        except ResultsError as exc:
            raise ResultsError(f"{path}:{number}: {exc}") from None
        problem = validate(record)
        if problem:
            raise ResultsError(f"{path}:{number}: {problem}")
        yield record


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in results")


def load_records(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """All records of several results files, in order."""
    records: list[dict[str, Any]] = []
    for path in paths:
        records.extend(iter_records(results_file(Path(path))))
    return records


def warn(message: str) -> None:
    import sys

    print(f"dlbench: warning: {message}", file=sys.stderr)


def truncate_torn_tail(path: Path) -> bool:
    """Cut a last line that never got its newline (a kill mid-write), so appends start clean."""
    with open(path, "rb+") as handle:
        data = handle.read()
        if not data or data.endswith(b"\n"):
            return False
        keep = data.rfind(b"\n") + 1
        handle.truncate(keep)
    warn(f"{path}: dropped a torn last line ({len(data) - keep} bytes) left by an interrupted run")
    return True


def results_file(path: Path) -> Path:
    """A results file given as itself or as the run folder that holds it."""
    path = Path(path)
    return path / RESULTS if path.is_dir() else path
