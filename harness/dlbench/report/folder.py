"""``dlbench report``: a self-contained folder that opens from disk and publishes as is.

    index.html     one page, charts inline as SVG, CSS inline, no script, no network (a CSP forbids it)
    report.md      GitHub markdown; charts as sibling chart-*.svg files referenced relatively
    results.csv    the per-case summary (``table.summarise``)
    results.jsonl  the input records, one per line

Every string that comes from a results file is escaped (html.escape) before it reaches markup.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from dlbench.report import plots
from dlbench.report.device import NOTES as DEVICE_NOTES, device_table, not_measured_reasons
from dlbench.report.html import CSS, PAGE_META, esc, grid_table, html_table, inline_svg, notes_html
from dlbench.report.scenarios import scenario_table
from dlbench.report.sections import (TIME_NOTES, Table, environment_table, failures_table, fairness_table,
                                     overview_facts, task_table, time_table)
from dlbench.report.summary import summarise
from dlbench.report.table import Grid, comparison_grid, framework_labels
from dlbench.version import __version__

CHART_PREFIX = "chart-"
NO_TTA = ("No case reached its validation accuracy target within its training budget, so there is no "
          "time-to-accuracy to plot (the smoke and quick profiles rarely train long enough).")


@dataclass
class Chart:
    file: str  # chart-<n>-<slug>.svg, safe whatever the task is called
    title: str
    caption: str
    svg: str


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text)[:40].strip("_") or "x"


def write_report(records: Iterable[dict[str, Any]], out_dir: Path | str, sources: Sequence[str] = ()) -> Path:
    """Write index.html, report.md, results.csv, results.jsonl and the charts into ``out_dir``; return it."""
    records = list(records)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(f"{CHART_PREFIX}*.svg"):  # charts of an earlier report in the same folder
        stale.unlink()
    summary = summarise(records)
    rows = summary.to_dict("records")
    label_of = framework_labels(summary) if rows else {}
    colors = plots.colors_for(label_of.values())
    charts = _charts(rows, label_of, colors, records)
    for chart in charts:
        (out / chart.file).write_text(chart.svg, encoding="utf-8")
    _write_csv(summary, out / "results.csv")
    with open(out / "results.jsonl", "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, sort_keys=True, allow_nan=False) + "\n")
    context = _Context(records, rows, summary, label_of, charts, list(map(str, sources)))
    (out / "report.md").write_text(_markdown(context), encoding="utf-8")
    (out / "index.html").write_text(_html(context), encoding="utf-8")
    return out


def _write_csv(summary, path: Path) -> None:
    """The summary as CSV; text cells that a spreadsheet would run as a formula get a leading quote."""
    frame = summary.copy()
    for column in frame.columns:
        if frame[column].dtype == object or str(frame[column].dtype).startswith("str"):
            frame[column] = frame[column].map(
                lambda v: "'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r") else v)
    frame.to_csv(path, index=False)


def _charts(rows: list[dict[str, Any]], label_of, colors, records: Sequence[dict[str, Any]] = ()) -> list[Chart]:
    charts: list[Chart] = []
    ok = [r for r in rows if r["n_ok"]]
    many = _many_machines(rows)
    for task in dict.fromkeys(section_of(r, many) for r in ok):
        task_rows = [r for r in ok if section_of(r, many) == task]
        if any(plots._value(r, m) is not None for r in task_rows
               for m in ("train_samples_per_s", "infer_samples_per_s")):
            charts.append(Chart(f"{CHART_PREFIX}{len(charts) + 1}-throughput-{_slug(task)}.svg",
                                f"Throughput on {task}",
                                "Median samples/s per model, one bar per framework; whiskers: 95% CI; "
                                "hatched: noisy.", plots.throughput_svg(task_rows, label_of, colors)))
    if any(plots._value(r, "latency_p50_ms") is not None for r in ok):
        charts.append(Chart(f"{CHART_PREFIX}{len(charts) + 1}-latency.svg", "Latency percentiles",
                            "SingleStream latency at batch 1: p50 (circle), p90 (triangle), p99 (square).",
                            plots.latency_svg(ok, label_of, colors)))
    reached = [r for r in ok if plots._value(r, "time_to_accuracy_s") is not None]
    if reached:
        missing = sum(1 for r in ok if plots._value(r, "time_to_accuracy_s") is None)
        charts.append(Chart(f"{CHART_PREFIX}{len(charts) + 1}-accuracy.svg", "Accuracy against time-to-accuracy",
                            "Test accuracy after the budget against the wall time to reach the validation "
                            "target (evaluation on the clock); up and to the left is better."
                            + (f" {missing} case(s) never reached their target and are not shown." if missing
                               else ""), plots.accuracy_svg(ok, label_of, colors)))
    curves = plots.batch_curves(records)
    if curves:
        charts.append(Chart(f"{CHART_PREFIX}{len(charts) + 1}-batch.svg", "Throughput against batch size",
                            "Training samples/s at each batch a case ran (--batch-size auto sweeps and fixed "
                            "batches), log-log: where a line flattens the device is at work; where it still "
                            "rises, a smaller batch was paying for launches and dispatch.", plots.batch_curve_svg(curves)))
    return charts


def _many_machines(rows: list[dict[str, Any]]) -> bool:
    return len({str(r.get("machine", "")) for r in rows}) > 1


def section_of(row: dict[str, Any], many_machines: bool) -> str:
    """A task's section (and chart): one per task, or per task and machine when results span machines."""
    return f"{row['task']} on {row['machine']}" if many_machines else str(row["task"])


@dataclass
class _Context:
    records: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    summary: Any
    label_of: dict[tuple[str, str], str]
    charts: list[Chart]
    sources: list[str]

    @property
    def tasks(self) -> list[str]:
        return list(dict.fromkeys(section_of(r, _many_machines(self.rows)) for r in self.rows))

    def task_rows(self, task: str) -> list[dict[str, Any]]:
        many = _many_machines(self.rows)
        return [r for r in self.rows if section_of(r, many) == task]

    def synthetic(self, task: str) -> bool:
        return any(r["synthetic"] for r in self.task_rows(task))

    def chart_for(self, task: str) -> Optional[Chart]:
        return next((c for c in self.charts if c.title == f"Throughput on {task}"), None)

    @property
    def other_charts(self) -> list[Chart]:
        return [c for c in self.charts if not c.title.startswith("Throughput on ")]

    @property
    def many_devices(self) -> bool:
        return len({r["device"] for r in self.rows}) > 1

    @property
    def many_batches(self) -> bool:
        return len({(r["batch_size"], bool(r.get("batch_auto"))) for r in self.rows}) > 1

    @property
    def grid(self) -> Grid:
        return comparison_grid(self.summary)


# ---------------------------------------------------------------- HTML

def _figure(chart: Chart, index: int) -> str:
    return (f"<figure>{inline_svg(chart.svg, f'c{index}-', chart.title)}"
            f"<figcaption>{esc(chart.caption)}</figcaption></figure>")


@dataclass
class _Section:
    anchor: str
    nav: str  # its link in the page's navigation ('' for none)
    html: str


def _html(ctx: _Context) -> str:
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    facts = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in overview_facts(ctx.records, ctx.sources))
    sections = [_overview_section(ctx), *_task_sections(ctx), *_chart_sections(ctx), *_optional_sections(ctx),
                _environment_section(ctx), _failures_section(ctx)]
    sections = [section for section in sections if section is not None]
    nav = "".join(f'<a href="#{section.anchor}">{esc(section.nav)}</a>' for section in sections if section.nav)
    body = "\n".join(f'<section id="{section.anchor}">{section.html}</section>' for section in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
{PAGE_META}
<title>dlbench report</title>
<style>{CSS}</style>
</head>
<body>
<header><h1>dlbench report</h1><dl>{facts}</dl></header>
<nav>{nav}</nav>
<main>
{body}
</main>
<footer>dlbench {esc(__version__)} · generated {esc(generated)}</footer>
</body>
</html>
"""


def _overview_section(ctx: _Context) -> _Section:
    grid = ctx.grid
    return _Section("overview", "Overview", f"<h2>Overview</h2>{html_table(grid_table(grid, grouped=True), 'overview')}"
                                            f"{notes_html(grid.notes)}")


def _task_sections(ctx: _Context) -> list[_Section]:
    sections = []
    for number, task in enumerate(ctx.tasks, start=1):
        tag = '<span class="tag">synthetic</span>' if ctx.synthetic(task) else ""
        table = task_table(ctx.task_rows(task), ctx.label_of, ctx.many_devices, ctx.many_batches)
        chart = ctx.chart_for(task)
        figure = _figure(chart, ctx.charts.index(chart)) if chart else ""
        sections.append(_Section(f"task-{number}", task, f"<h2>{esc(task)}{tag}</h2>{html_table(table, 'summary')}"
                                                         f"{notes_html(_task_notes(ctx, task))}{figure}"))
    return sections


def _chart_sections(ctx: _Context) -> list[_Section]:
    sections = [_Section(f"chart-{ctx.charts.index(chart)}", chart.title.split(" ")[0],
                         f"<h2>{esc(chart.title)}</h2>{_figure(chart, ctx.charts.index(chart))}")
                for chart in ctx.other_charts]
    if not any(c.title.startswith("Accuracy") for c in ctx.charts) and any(r["n_ok"] for r in ctx.rows):
        sections.append(_Section("accuracy", "", f"<h2>Accuracy against time-to-accuracy</h2>{notes_html([NO_TTA])}"))
    return sections


def _environment_section(ctx: _Context) -> _Section:
    return _Section("environment", "Environment",
                    f"<h2>Environment</h2>{html_table(environment_table(ctx.records))}"
                    f"<h3>Fairness profile</h3>{html_table(fairness_table(ctx.records, ctx.label_of))}"
                    f"{notes_html(['Highlighted: a setting that differs between frameworks.'])}")


def _failures_section(ctx: _Context) -> Optional[_Section]:
    failures, tails = failures_table(ctx.records)
    if not failures.rows:
        return None
    logs = "".join(f"<details><summary>stderr of {esc(row[0])} ({esc(row[1])})</summary><pre>{esc(tail)}</pre>"
                   f"</details>" for row, tail in zip(failures.rows, tails) if tail)
    return _Section("not-measured", "Not measured", f"<h2>Not measured</h2>{html_table(failures)}{logs}")


def _optional_tables(records: list[dict[str, Any]]) -> list[tuple[str, str, str, Table, list[str]]]:
    """The sections a report has only when its records call for them: (anchor, nav label, title, table, notes)."""
    found = []
    device = device_table(records)
    if device is not None:
        found.append(("device", "Device", "Device memory, energy and timing", device,
                      DEVICE_NOTES + not_measured_reasons(records)))
    scenarios = scenario_table(records)
    if scenarios is not None:
        found.append(("scenarios", "Scenarios", "MLPerf scenarios (LoadGen)", scenarios[0], list(scenarios[1])))
    timing = time_table(records)
    if timing is not None:
        found.append(("time", "Time", "Where the time went", timing, TIME_NOTES))
    return found

def _optional_sections(ctx: _Context) -> list[_Section]:
    return [_Section(anchor, label, f"<h2>{esc(title)}</h2>{html_table(table)}{notes_html(notes)}")
            for anchor, label, title, table, notes in _optional_tables(ctx.records)]


def _task_notes(ctx: _Context, task: str) -> list[str]:
    notes = ["Medians over repeats; 95% CI over repeats (min–max below six repeats), or over timed blocks "
             "for a single repeat. Latency: SingleStream at batch 1."]
    if any(r["noisy"] for r in ctx.task_rows(task)):
        notes.append("~ noisy: IQR/median above 10% over blocks or repeats.")
    if any(r.get("disturbed") for r in ctx.task_rows(task)):
        notes.append("~ disturbed: steal, other processes' load, a wait for the worker's own core or the "
                     "allocator's paging during the timed blocks (the flags column says "
                     "which and how much); `dlbench doctor` says what to change.")
    if ctx.synthetic(task):
        notes.append("Synthetic task: generated data, its accuracy says little about real tasks.")
    return notes


# ---------------------------------------------------------------- markdown

_MD_SPECIAL = re.compile(r"([\\`*~\[\]|])")


def md(value: Any) -> str:
    """A results string made inert in GitHub markdown: HTML-escaped, markdown punctuation backslashed."""
    return _MD_SPECIAL.sub(r"\\\1", esc(value)).replace("\n", " ")


def _md_table(table: Table) -> str:
    from tabulate import tabulate

    align = ["right" if i in table.numeric else "left" for i in range(len(table.headers))]
    return tabulate([[md(c) for c in row] for row in table.rows], [md(h) for h in table.headers],
                    tablefmt="github", colalign=align, disable_numparse=True)


def _markdown(ctx: _Context) -> str:
    lines = ["# dlbench report", ""]
    lines += [f"- **{md(k)}**: {md(v)}" for k, v in overview_facts(ctx.records, ctx.sources)]
    grid = ctx.grid
    lines += ["", "## Overview", "", _md_table(grid_table(grid, grouped=False)), ""]
    lines += [f"- {md(note)}" for note in grid.notes]
    for task in ctx.tasks:
        lines += ["", f"## {md(task)}{' (synthetic)' if ctx.synthetic(task) else ''}", ""]
        lines.append(_md_table(task_table(ctx.task_rows(task), ctx.label_of, ctx.many_devices, ctx.many_batches)))
        lines += [""] + [f"- {md(note)}" for note in _task_notes(ctx, task)]
        chart = ctx.chart_for(task)
        if chart:
            lines += ["", f"![{md(chart.title)}]({chart.file})", "", f"*{md(chart.caption)}*"]
    for chart in ctx.other_charts:
        lines += ["", f"## {md(chart.title)}", "", f"![{md(chart.title)}]({chart.file})", "", f"*{md(chart.caption)}*"]
    if not any(c.title.startswith("Accuracy") for c in ctx.charts) and any(r["n_ok"] for r in ctx.rows):
        lines += ["", "## Accuracy against time-to-accuracy", "", NO_TTA]
    for _, _, title, table, notes in _optional_tables(ctx.records):
        lines += ["", f"## {md(title)}", "", _md_table(table), ""] + [f"- {md(note)}" for note in notes]
    lines += ["", "## Environment", "", _md_table(environment_table(ctx.records)), "",
              "### Fairness profile", "", _md_table(fairness_table(ctx.records, ctx.label_of))]
    failures, tails = failures_table(ctx.records)
    if failures.rows:
        lines += ["", "## Not measured", "", _md_table(failures)]
        for row, tail in zip(failures.rows, tails):
            if tail:
                lines += ["", f"<details><summary>stderr of {esc(row[0])} ({esc(row[1])})</summary>", "",
                          f"<pre>{esc(tail)}</pre>", "</details>"]
    return "\n".join(lines) + "\n"
