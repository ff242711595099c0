"""``dlbench publish RUNS... -o SITE``: many runs as a static site with histories and the changes found.

Incremental like asv: every page has a fingerprint of exactly what it shows (its model, serialised)
plus the code that renders it; a page whose fingerprint is unchanged since the last publish into the
same folder is not rendered or written again. The fingerprints live in ``SITE/.dlbench-publish.json``,
which also marks the folder as a site (publish refuses to write into any other non-empty folder, and
deletes only pages it wrote itself).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from dlbench.version import __version__
from dlbench.errors import ResultsError, UsageError
from dlbench.publish import pages
from dlbench.publish.history import Collection, Collector
from dlbench.results import iter_records
from dlbench.results import RESULTS
from dlbench.running.rundir import LOCK, MANIFEST

STATE = ".dlbench-publish.json"
STATE_VERSION = 1


@dataclass
class Page:
    path: str  # relative to the site root
    model: Any  # everything the page shows; its fingerprint decides whether to render again
    render: Callable[[], str]


@dataclass
class Published:
    site: Path
    collection: Collection
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # about the inputs: skipped, still running

    def summary(self) -> str:
        c = self.collection
        regressions = sum(x.kind == "regression" for x in c.changes)
        lines = [f"published {len(c.runs)} runs on {len(c.machines)} machine(s), {len(c.histories)} histories, "
                 f"to {self.site / 'index.html'}: {len(self.written)} page(s) written, {len(self.unchanged)} "
                 f"unchanged; {regressions} regression(s) and {len(c.changes) - regressions} improvement(s) found"]
        if c.duplicates:
            lines.append(f"note: {c.duplicates} record(s) given twice (same run, case and repeat) counted once")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def input_files(paths: Sequence[Path]) -> tuple[list[Path], list[str]]:  # (files, notes)
    """The results files behind RUNS (folders or files); folders that are not runs raise UsageError.

    A run folder with no results yet (interrupted before its first case ended) and a site built by an
    earlier publish (``reports/runs/*`` may match it) are skipped with a note instead.
    """
    files, notes = [], []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            if (path / RESULTS).is_file():
                files.append(path / RESULTS)
                if (path / LOCK).is_file():
                    notes.append(f"{path} is still running; only its finished cases are in the site")
            elif (path / STATE).is_file():
                notes.append(f"skipped {path}: a site built by dlbench publish, not a run")
            elif (path / MANIFEST).is_file():
                notes.append(f"skipped {path}: a run folder with no results yet")
            else:
                raise UsageError(f"{path}: not a run folder (no {RESULTS} in it); give run folders written by "
                                 f"`dlbench run` (e.g. reports/runs/*) or results.jsonl files")
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"{path}: no such run folder or results file; give run folders (e.g. reports/runs/*) "
                             f"or results.jsonl files")
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique, notes


def read_inputs(files: Iterable[Path], collector: Collector) -> None:
    for path in files:
        try:
            for record in iter_records(path):
                collector.add(record)
        except ResultsError as exc:
            raise UsageError(f"{exc}; fix or delete that line (one JSON record per line, "
                             f"docs/results-schema.md)") from None


def check_site_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {out}: is a file; give a folder for the site")
    if out.is_dir() and any(out.iterdir()) and not (out / STATE).is_file():
        raise UsageError(f"-o {out}: folder holds other files; give an empty or new folder, or one an earlier "
                         f"`dlbench publish` built")


def site_pages(collection: Collection, threshold: float, keep_hostnames: bool, across: bool) -> list[Page]:
    """Every page of the site with the model it is rendered from."""
    result: list[Page] = []
    options = {"threshold": threshold, "keep_hostnames": keep_hostnames, "across": across}
    by_case: dict[str, list] = {}
    for (machine_id, case), history in collection.histories.items():
        hosts = pages.host_list(collection.runs, history.machine) if keep_hostnames else []
        by_case.setdefault(case, []).append(history)
        result.append(Page(pages.case_page(history.machine, case), (history, hosts, options),
                           lambda h=history, hs=hosts: pages.render_case(h, threshold, hs, across)))
    if across:
        for case, histories in by_case.items():
            result.append(Page(pages.across_page(case), (histories, options),
                               lambda c=case, hs=histories: pages.render_across(c, hs)))
    changes = collection.changes
    result.append(Page("changes.html", (changes, options),
                       lambda: pages.render_changes(changes, collection.machines, threshold)))
    result.append(Page("changes.json", changes,
                       lambda: json.dumps([vars(c) for c in changes], indent=1, default=str) + "\n"))
    latest_rows: dict[str, list] = {}
    for (machine_id, _), row in collection.latest.items():
        latest_rows.setdefault(machine_id, []).append(row)

    def index() -> str:
        tables = {m: pages.latest_table(rows) for m, rows in latest_rows.items()}
        return pages.render_index(collection, threshold, keep_hostnames, across, tables)

    summary = [(r.run_id, r.machine, r.time, r.profiles, r.versions, r.statuses, len(r.cases), r.hosts)
               for r in collection.runs]
    index_model = (summary, [(k, h.points[-1], len(h.points), h.changes) for k, h in collection.histories.items()],
                   latest_rows, changes[:20], len(changes), options)
    result.append(Page("index.html", index_model, index))
    return result


def _plain(value: Any) -> Any:
    """JSON for what ``json`` cannot take: sets (sorted), dataclasses, numpy scalars (as text)."""
    if isinstance(value, (set, frozenset)):
        return sorted(map(str, value))
    if dataclasses.is_dataclass(value):  # the fields only: not what a cached_property happened to store
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return str(value)


_CODE_SALT: Optional[str] = None


def code_salt() -> str:
    """A hash of the code that renders pages: a new dlbench re-renders everything once."""
    global _CODE_SALT
    if _CODE_SALT is None:
        digest = hashlib.sha256(__version__.encode())
        report = Path(__file__).resolve().parent
        for name in sorted(p.name for p in report.glob("*.py")):
            digest.update(name.encode() + (report / name).read_bytes())
        _CODE_SALT = digest.hexdigest()
    return _CODE_SALT


def fingerprint(model: Any) -> str:
    text = json.dumps(model, default=_plain, sort_keys=True, allow_nan=True)
    return hashlib.sha256((code_salt() + text).encode()).hexdigest()


def _write(path: Path, text: str) -> None:
    """Replace atomically, so a browser or a static host never serves half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _load_state(out: Path) -> dict[str, str]:
    try:
        state = json.loads((out / STATE).read_text())
        if state.get("version") == STATE_VERSION and isinstance(state.get("pages"), dict):
            return {str(k): str(v) for k, v in state["pages"].items()}
    except (OSError, ValueError, AttributeError):
        pass
    return {}


def write_site(collection: Collection, out: Path, threshold: float = 0.05, keep_hostnames: bool = False,
               across: bool = False) -> Published:
    """Render the pages whose inputs changed since the last publish into ``out``; remove pages gone."""
    check_site_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    previous = _load_state(out)
    result = Published(out, collection)
    state: dict[str, str] = {}
    for page in site_pages(collection, threshold, keep_hostnames, across):
        print_ = fingerprint(page.model)
        state[page.path] = print_
        if previous.get(page.path) == print_ and (out / page.path).is_file():
            result.unchanged.append(page.path)
            continue
        _write(out / page.path, page.render())
        result.written.append(page.path)
    for gone in sorted(set(previous) - set(state)):
        target = out / gone
        if target.is_file() and out.resolve() in target.resolve().parents:
            target.unlink()
            result.removed.append(gone)
    _write(out / STATE, json.dumps({"version": STATE_VERSION, "pages": state}, indent=0, sort_keys=True))
    return result


def publish(paths: Sequence[Path], out: Path, threshold: float = 0.05, keep_hostnames: bool = False,
            across: bool = False) -> Published:
    """Read RUNS (folders or results files), build the histories and write the site into ``out``."""
    out = Path(out)
    check_site_folder(out)
    files, notes = input_files(paths)
    collector = Collector()
    read_inputs(files, collector)
    if not collector.runs:
        raise UsageError(f"{', '.join(map(str, paths))}: no result records in them; run `dlbench run` first")
    collection = collector.build(threshold, keep_hostnames)
    result = write_site(collection, out, threshold, keep_hostnames, across)
    result.notes = notes
    return result
