"""``mlperf_log_summary.txt`` parsed into the record: LoadGen's own verdict, numbers and parameters.

The summary is the file MLPerf submitters read and the one kept in the run's logs, so the record is
built from it (never from numbers dlbench computed on the side). Its layout, as LoadGen 6 writes it::

    SUT name : PySUT
    Scenario : Server
    Completed samples per second    : 101.05
    Result is : INVALID
      Performance constraints satisfied : Yes
      Early stopping satisfied: NO
    Recommendations:
     * ...
    Early Stopping Result:
     * ...
    ====  Additional Stats  ====
    50.00 percentile latency (ns)   : 2267391
    ====  Test Parameters Used  ====
    min_duration (ms): 500
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

_PERCENTILE = re.compile(r"^(\d+(?:\.\d+)?) percentile latency \(ns\)$")
_HEADLINE_PERCENTILE = re.compile(r"^(\d+(?:\.\d+)?)th percentile latency \(ns\)$")
_CHECK = re.compile(r"^(.+?) ?satisfied ?$", re.IGNORECASE)
SEEDS = ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed")


@dataclass
class Summary:
    """One LoadGen test as its summary file states it."""

    scenario: str = ""
    mode: str = ""
    result: str = ""  # VALID | INVALID
    checks: dict[str, bool] = field(default_factory=dict)  # "Min duration satisfied" -> True
    headline: dict[str, float] = field(default_factory=dict)  # the scenario's result lines, above "Result is"
    stats: dict[str, float] = field(default_factory=dict)  # Additional Stats (latencies in ns, QPS)
    parameters: dict[str, str] = field(default_factory=dict)  # Test Parameters Used
    recommendations: list[str] = field(default_factory=list)
    early_stopping: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # warning / error lines

    @property
    def valid(self) -> bool:
        return self.result == "VALID"

    def reasons(self) -> list[str]:
        """Why LoadGen called the run invalid: failed checks first, then its recommendations."""
        failed = [f"{name}: NO" for name, ok in self.checks.items() if not ok]
        return failed + self.recommendations + (self.early_stopping if not self.valid else []) + self.problems

    def latency_ms(self) -> dict[str, float]:
        """Latency percentiles of the run in ms (per query for MultiStream): p50, p90, ..., min, mean, max."""
        out: dict[str, float] = {}
        for key, value in self.stats.items():
            match = _PERCENTILE.match(key)
            if match:
                out[_percentile_name(match.group(1))] = value / 1e6
        for name in ("Min", "Mean", "Max"):
            if f"{name} latency (ns)" in self.stats:
                out[name.lower()] = self.stats[f"{name} latency (ns)"] / 1e6
        return out

    def parameter(self, name: str) -> Optional[float]:
        value = self.parameters.get(name)
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


def _percentile_name(text: str) -> str:
    """'50.00' -> 'p50', '99.90' -> 'p99.9'."""
    number = float(text)
    return f"p{number:g}"


def _number(text: str) -> Optional[float]:
    try:
        return float(text.strip())
    except ValueError:
        return None


def parse_summary(text: str) -> Summary:
    """Read a ``mlperf_log_summary.txt``; unknown lines are ignored, so newer LoadGens still parse."""
    summary = Summary()
    section = "results"
    bullets: Optional[list[str]] = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("===="):
            bullets = None
            continue
        if line == "Additional Stats":
            section = "stats"
            continue
        if line == "Test Parameters Used":
            section = "parameters"
            continue
        if section == "results" and line == "Recommendations:":
            bullets = summary.recommendations
            continue
        if section == "results" and line == "Early Stopping Result:":
            bullets = summary.early_stopping
            continue
        if bullets is not None:
            if line.startswith("*"):
                bullets.append(line.lstrip("* ").strip())
            elif bullets:  # a bullet wrapped onto the next line
                bullets[-1] += " " + line
            continue
        if "warning" in line.lower() or "error" in line.lower():
            if not line.lower().startswith("no "):
                summary.problems.append(line)
            continue
        if ":" not in line:
            continue
        key, value = (part.strip() for part in line.split(":", 1))
        if section == "parameters":
            summary.parameters[key] = value
        elif section == "stats":
            number = _number(value)
            if number is not None:
                summary.stats[key] = number
        elif key == "Scenario":
            summary.scenario = value
        elif key == "Mode":
            summary.mode = value
        elif key == "Result is":
            summary.result = value
        elif _CHECK.match(key) and value.lower() in ("yes", "no"):
            summary.checks[key] = value.lower() == "yes"
        elif (number := _number(value)) is not None:
            summary.headline[key] = number
    return summary


def read_summary(folder: Path) -> Summary:
    return parse_summary((Path(folder) / "mlperf_log_summary.txt").read_text(errors="replace"))


def summary_record(summary: Summary) -> dict[str, Any]:
    """The parts of one summary that go into the record (JSON-ready)."""
    record: dict[str, Any] = {
        "scenario": summary.scenario, "mode": summary.mode, "result": summary.result or "UNKNOWN",
        "valid": summary.valid, "checks": dict(summary.checks), "reasons": summary.reasons(),
        "latency_ms": summary.latency_ms(),
    }
    for key, value in summary.headline.items():
        match = _HEADLINE_PERCENTILE.match(key)
        if match:
            record["result_percentile"] = float(match.group(1))
            record["result_latency_ms"] = value / 1e6
    qps = (summary.headline.get("Samples per second") or summary.headline.get("Completed samples per second")
           or summary.stats.get("QPS w/ loadgen overhead"))
    if qps is not None:
        record["qps"] = qps
    if "Scheduled samples per second" in summary.stats:
        record["scheduled_qps"] = summary.stats["Scheduled samples per second"]
    keys = [("samples_per_query", "samples_per_query"), ("min_duration_ms", "min_duration (ms)"),
            ("min_query_count", "min_query_count"), ("performance_sample_count", "performance_sample_count")]
    if summary.scenario in ("Server", "Offline"):  # elsewhere LoadGen derives it from the expected latency
        keys.append(("target_qps", "target_qps"))
    for name, key in keys:
        value = summary.parameter(key)
        if value is not None:
            record[name] = int(value) if value.is_integer() else value
    target_ns = summary.parameter("target_latency (ns)")
    if target_ns:
        record["target_latency_ms"] = target_ns / 1e6
    record["seeds"] = {seed: summary.parameters[seed] for seed in SEEDS if seed in summary.parameters}
    estimate = next((line for line in summary.early_stopping if "percentile estimate" in line), None)
    if estimate and (value := _number(estimate.rsplit(":", 1)[-1])) is not None:
        record["early_stopping_estimate_ms"] = value / 1e6
    return record
