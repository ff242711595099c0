"""Many runs as histories: one per machine and case, each point one run, with the changes found in it.

Runs are grouped by their comparability key (``dlbench.machine.identity``: the machine with its CPU
signature and features, cores, memory and GPUs, the thread budget, the device and the measurement
environment; never the host name), and a history never mixes keys: a number from a 64-core box is not a
regression of a laptop, nor one from a 2-thread run of a 1-thread one. A point is
the case's summary in that run, computed by ``table.summarise`` (median over ok repeats, 95% CI over
repeats or, for one repeat, over timed blocks), so it is the number ``dlbench report`` shows for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Optional

from dlbench.machine.identity import ComparabilityKey, key_of
from dlbench.report import format as f
from dlbench.publish.privacy import Scrubber, home_users, local_identity
from dlbench.stats.changepoints import detect_steps, noise_sigma
from dlbench.results import CASE_KEYS, case_id

# metric -> (title, higher is better): the series the step detector watches
TRACKED: dict[str, tuple[str, bool]] = {
    "train_samples_per_s": ("training samples/s", True),
    "infer_samples_per_s": ("inference samples/s (Offline)", True),
    "latency_p50_ms": ("latency p50 at batch 1 (ms)", False),
}
SHOWN: dict[str, str] = {"accuracy": "test accuracy"}  # charted beside them, not watched
# not needed for a summary, dropped on read (memory: 32,000 records stay under 300 MiB)
_HEAVY_FIELDS = ("fairness", "data", "stderr_tail")
_HEAVY_METRICS = ("train_blocks", "infer_blocks", "phases_s")


def machine_key(record: dict[str, Any]) -> tuple:
    """A cheap stand-in for ``key_of(record)``, to reuse the key of records that share their facts."""
    env = record.get("env") if isinstance(record.get("env"), dict) else {}
    state = record.get("machine_state") if isinstance(record.get("machine_state"), dict) else {}
    return (repr(record.get("machine")), repr({k: env.get(k) for k in ("cpu", "cpu_signature", "cpu_features", "cores",
                                                                       "memory_gib", "gpu", "gpus")}),
            record.get("threads"), record.get("device"), repr(record.get("worker_environment")),
            repr(state.get("allocator")), repr(state.get("affinity")))


def versions_of(record: dict[str, Any]) -> dict[str, str]:
    """Every version that could explain a change: the framework's, its libraries', Python's, dlbench's."""
    versions: dict[str, str] = {}
    if record.get("framework_version"):
        versions[str(record["framework"])] = str(record["framework_version"])
    fairness = record.get("fairness")
    libraries = fairness.get("framework_versions") if isinstance(fairness, dict) else None
    if isinstance(libraries, dict):
        versions.update({str(k): str(v) for k, v in libraries.items() if v})
    plugin = record.get("plugin")
    if isinstance(plugin, dict) and plugin.get("dist") not in (None, "", "dlbench") and plugin.get("dist_version"):
        versions[f"plugin {plugin['dist']}"] = str(plugin["dist_version"])
    env = record.get("env") if isinstance(record.get("env"), dict) else {}
    for key, name in (("python", "python"), ("dlbench_version", "dlbench")):
        if env.get(key):
            versions[name] = str(env[key])
    return versions


def parse_time(text: Any, run_id: str) -> float:
    """Seconds since the epoch of an ISO time, else of the run id's YYYYmmdd-HHMMSS prefix, else 0."""
    for candidate, fmt in ((text, None), (str(run_id)[:15], "%Y%m%d-%H%M%S")):
        try:
            moment = datetime.strptime(candidate, fmt) if fmt else datetime.fromisoformat(str(candidate))
        except (TypeError, ValueError):
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        seconds = moment.timestamp()
        if 0 < seconds < 2**33:  # 1970 to 2242: anything else is a broken clock or field
            return seconds
    return 0.0


def iso_date(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M") if seconds else "unknown"


@dataclass
class Run:
    """One run on one machine, as the index lists it."""

    run_id: str
    machine: ComparabilityKey
    time: float = math.inf
    profiles: set[str] = field(default_factory=set)
    versions: dict[str, str] = field(default_factory=dict)  # framework -> version
    statuses: dict[str, int] = field(default_factory=dict)
    cases: set[str] = field(default_factory=set)
    hosts: set[str] = field(default_factory=set)
    records: list[dict[str, Any]] = field(default_factory=list)  # slim records, until summarised

    @property
    def date(self) -> str:
        return iso_date(self.time if math.isfinite(self.time) else 0)


@dataclass
class Point:
    """One case in one run."""

    run_id: str
    time: float
    versions: dict[str, str]
    n: int
    n_ok: int
    status: str
    error: str
    noisy: bool
    values: dict[str, tuple[float, Optional[float], Optional[float]]]  # metric -> (median, ci lo, ci hi)

    @property
    def date(self) -> str:
        return iso_date(self.time)


@dataclass
class Change:
    """A step the detector found and verified in one metric of one history."""

    machine: str  # ComparabilityKey.id
    case: str
    metric: str
    kind: str  # regression | improvement
    index: int  # the point where the new level begins
    run_id: str
    date: str
    previous_run_id: str
    previous_date: str
    before: float
    after: float
    change: float  # after / before - 1
    versions_changed: list[str]


@dataclass
class History:
    machine: ComparabilityKey
    case: str
    keys: dict[str, Any]  # framework, variant, model, task, device, batch_size
    synthetic: bool
    points: list[Point] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    noise: dict[str, float] = field(default_factory=dict)  # metric -> robust run-to-run sigma (relative)

    def series(self, metric: str) -> list[tuple[int, float]]:
        """(point index, value) of the points that have a positive value for ``metric``."""
        return [(i, p.values[metric][0]) for i, p in enumerate(self.points)
                if metric in p.values and p.values[metric][0] > 0]


@dataclass
class Collection:
    """Everything a site is built from."""

    runs: list[Run]
    histories: dict[tuple[str, str], History]  # (machine id, case id) -> history
    latest: dict[tuple[str, str], dict[str, Any]]  # (machine id, case id) -> summary row of its latest run
    machines: dict[str, ComparabilityKey]
    duplicates: int = 0

    @property
    def changes(self) -> list[Change]:
        return sorted((c for h in self.histories.values() for c in h.changes), key=lambda c: (c.date, c.case),
                      reverse=True)


class Collector:
    """Reads records one by one (memory stays small: heavy fields are dropped), then builds histories."""

    def __init__(self) -> None:
        self.runs: dict[tuple[str, str], Run] = {}
        self.machines: dict[str, ComparabilityKey] = {}
        self._machine_cache: dict[tuple, ComparabilityKey] = {}
        self._seen: set[tuple[str, str, str]] = set()
        self.duplicates = 0
        self.names: set[str] = set()  # host and user names seen, blanked out of published text

    def add(self, record: dict[str, Any]) -> None:
        cid = case_id(record)
        key = (str(record["run_id"]), cid, repr(record.get("repeat", 0)))
        if key in self._seen:  # the same run given twice (a run folder and a copy of its results)
            self.duplicates += 1
            return
        self._seen.add(key)
        cache_key = machine_key(record)
        machine = self._machine_cache.get(cache_key)
        if machine is None:
            machine = self._machine_cache[cache_key] = key_of(record)
            self.machines[machine.id] = machine
        run = self.runs.get((key[0], machine.id))
        if run is None:
            run = self.runs[(key[0], machine.id)] = Run(key[0], machine)
        run.time = min(run.time, parse_time(record.get("started_at"), key[0]) or math.inf)
        if record.get("profile"):
            run.profiles.add(str(record["profile"]))
        if record.get("framework_version") and record["status"] == "ok":
            run.versions[str(record["framework"])] = str(record["framework_version"])
        run.statuses[record["status"]] = run.statuses.get(record["status"], 0) + 1
        run.cases.add(cid)
        for where in (record.get("env"), record.get("machine")):
            host = where.get("hostname") if isinstance(where, dict) else None
            if host:
                run.hosts.add(str(host))
                self.names |= {str(host), str(host).split(".")[0]}
        self.names |= home_users(t for t in (record.get("error"), record.get("log"), record.get("stderr_tail"))
                                 if isinstance(t, str))
        run.records.append(_slim(record))

    def build(self, threshold: float = 0.05, keep_hostnames: bool = False) -> Collection:
        """Summarise every run (oldest first), fill the histories and find their changes."""
        from dlbench.report.summary import summary_rows

        scrubber = Scrubber(self.names | local_identity(), keep=keep_hostnames)
        histories: dict[tuple[str, str], History] = {}
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        runs = sorted(self.runs.values(), key=lambda r: (r.time, r.run_id))
        for run in runs:
            if not math.isfinite(run.time):
                run.time = 0.0
            versions = {}
            for record in run.records:
                versions.setdefault(case_id(record), record.pop("_versions"))
            for row in summary_rows(run.records):
                row["error"] = scrubber.text(row["error"])
                key = (run.machine.id, row["case_id"])
                history = histories.get(key)
                if history is None:
                    keys = {k: row[k] for k in CASE_KEYS}
                    history = histories[key] = History(run.machine, row["case_id"], keys, bool(row["synthetic"]))
                history.synthetic = history.synthetic or bool(row["synthetic"])
                history.points.append(_point(run, row, versions.get(row["case_id"], {})))
                latest[key] = row
            run.records = []
        for history in histories.values():
            find_changes(history, threshold)
        if not keep_hostnames:
            for run in runs:
                run.hosts = set()
        return Collection(runs, histories, latest, dict(self.machines), self.duplicates)


def _slim(record: dict[str, Any]) -> dict[str, Any]:
    """The record without the per-block lists, fairness and data descriptions (a summary needs none)."""
    slim = {k: v for k, v in record.items() if k not in _HEAVY_FIELDS}
    slim["metrics"] = {k: v for k, v in record["metrics"].items() if k not in _HEAVY_METRICS}
    slim["_versions"] = versions_of(record)
    return slim


def _point(run: Run, row: dict[str, Any], versions: dict[str, str]) -> Point:
    values = {}
    for metric in (*TRACKED, *SHOWN):
        value = f.number(row.get(metric))
        if value is not None:
            values[metric] = (value, f.number(row.get(f"{metric}_ci_lo")), f.number(row.get(f"{metric}_ci_hi")))
    return Point(run.run_id, run.time, versions, int(row["n_repeats"]), int(row["n_ok"]), str(row["status"]),
                 str(row["error"] or ""), bool(row["noisy"]), values)


def versions_diff(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """'torch 2.12.0 → 2.13.0' for every version that differs between two points."""
    names = list(dict.fromkeys([*before, *after]))
    return [f"{name} {before.get(name, '—')} → {after.get(name, '—')}" for name in names
            if before.get(name) != after.get(name)]


def find_changes(history: History, threshold: float) -> None:
    """Run the step detector over every tracked metric of ``history``; fill ``changes`` and ``noise``."""
    history.changes = []
    for metric, (_, higher_is_better) in TRACKED.items():
        series = history.series(metric)
        if len(series) >= 3:
            sigma = noise_sigma([math.log(v) for _, v in series])
            history.noise[metric] = math.exp(sigma) - 1
        for step in detect_steps([v for _, v in series], threshold):
            index, previous = series[step.index][0], series[step.index - 1][0]
            point, before = history.points[index], history.points[previous]
            better = step.change > 0 if higher_is_better else step.change < 0
            history.changes.append(Change(
                history.machine.id, history.case, metric, "improvement" if better else "regression", index,
                point.run_id, point.date, before.run_id, before.date, step.before, step.after, step.change,
                versions_diff(before.versions, point.versions)))


def collect(records: Iterable[dict[str, Any]], threshold: float = 0.05, keep_hostnames: bool = False) -> Collection:
    """Histories of ``records`` (for tests and scripts; ``publish`` streams files into a Collector)."""
    collector = Collector()
    for record in records:
        collector.add(record)
    return collector.build(threshold, keep_hostnames)
