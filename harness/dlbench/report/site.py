"""``dlbench report``: a self-contained folder that opens from disk and publishes as is.

    index.html     one page, charts inline as SVG, CSS inline, no script, no network (a CSP forbids it)
    report.md      GitHub markdown; charts as sibling chart-*.svg files referenced relatively
    results.csv    the per-case summary (``table.summarise``)
    results.jsonl  the input records, one per line

Every string that comes from a results file is escaped (html.escape) before it reaches markup.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import dlbench
from dlbench.report import plots
from dlbench.report.sections import (Table, environment_table, failures_table, fairness_table, overview_facts,
                                     task_table)
from dlbench.report.device import NOTES as DEVICE_NOTES, device_table, not_measured_reasons
from dlbench.report.scenarios import scenario_table
from dlbench.report.table import FRAMEWORK_COLUMNS, Grid, comparison_grid, framework_labels, summarise

CHART_PREFIX = "chart-"
NO_TTA = ("No case reached its validation accuracy target within its training budget, so there is no "
          "time-to-accuracy to plot (the smoke and quick profiles rarely train long enough).")


@dataclass
class Chart:
    file: str  # chart-<n>-<slug>.svg, safe whatever the task is called
    title: str
    caption: str
    svg: str


# Every page dlbench writes: no script and no network (the CSP forbids both), so it renders the same from
# disk or any static host.
PAGE_META = """<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


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
    charts = _charts(rows, label_of, colors)
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


def _charts(rows: list[dict[str, Any]], label_of, colors) -> list[Chart]:
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
        return len({r["batch_size"] for r in self.rows}) > 1

    @property
    def grid(self) -> Grid:
        return comparison_grid(self.summary)


# ---------------------------------------------------------------- HTML

CSS = """
:root { --fg: #1d2433; --muted: #667085; --line: #e4e7ec; --head: #f2f4f7; --accent: #4269d0; }
* { box-sizing: border-box; }
body { margin: 0; background: #f5f6f8; color: var(--fg);
       font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { background: #1d2433; color: #fff; padding: 22px 40px 18px; }
header h1 { margin: 0 0 6px; font-size: 22px; font-weight: 650; letter-spacing: .2px; }
header dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; font-size: 13px; }
header dt { color: #aab3c5; } header dd { margin: 0; color: #e8ebf2; word-break: break-all; }
nav { background: #fff; border-bottom: 1px solid var(--line); padding: 8px 40px; position: sticky; top: 0;
      z-index: 2; font-size: 13px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 16px; white-space: nowrap; }
main { max-width: 1480px; margin: 0 auto; padding: 4px 32px 48px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 14px 20px 18px;
          margin: 18px 0; }
h2 { font-size: 17px; margin: 2px 0 10px; } h3 { font-size: 14px; margin: 16px 0 6px; }
.tag { display: inline-block; font-size: 11px; font-weight: 600; padding: 1px 7px; border-radius: 9px;
       background: #fff4d6; color: #8a5a00; vertical-align: 2px; margin-left: 6px; }
.wrap { overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 13px; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--head); font-weight: 600; white-space: nowrap; }
td { white-space: nowrap; }
td.num, th.num { text-align: right; }
th.group, td.group { border-left: 2px solid var(--line); }
tr.groups th { background: #e9edf5; text-align: center; border-bottom: 0; }
td.ci { color: var(--muted); font-size: 12px; }
td.reason { white-space: normal; min-width: 280px; }
table.prose td { white-space: normal; max-width: 560px; overflow-wrap: anywhere; }
table.prose td:first-child { white-space: nowrap; }
tr.noisy td { background: #fffbeb; }
tr.bad td, tr.failed td, tr.crashed td, tr.timeout td { background: #fff1f0; }
tr.skipped td { background: #f8f9fb; color: var(--muted); }
tr.differs td { background: #eef4ff; }
tbody tr:hover td { background: #f0f3f9; }
.notes { color: var(--muted); font-size: 12.5px; margin: 8px 0 0; padding-left: 18px; }
figure { margin: 12px 0 4px; } figcaption { color: var(--muted); font-size: 12.5px; margin-top: 2px; }
figure svg { max-width: 100%; height: auto; display: block; }
details { margin: 4px 0; } summary { cursor: pointer; color: var(--accent); font-size: 13px; }
pre { background: #1d2433; color: #e8ebf2; padding: 10px 12px; border-radius: 6px; overflow-x: auto;
      font-size: 12px; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 0 0 24px; }
"""


def _html_table(table: Table, css_class: str = "") -> str:
    starts, column = set(), 0
    for _, span in table.groups:
        starts.add(column)
        column += span
    starts.discard(0)

    def classes(i: int, *extra: tuple[str, bool]) -> str:
        names = [name for name, on in (("num", i in table.numeric), ("group", i in starts), *extra) if on]
        return f' class="{" ".join(names)}"' if names else ""

    head = "".join(f"<th{classes(i)}>{esc(h)}</th>" for i, h in enumerate(table.headers))
    if table.groups:
        column, cells = 0, []
        for label, span in table.groups:
            cells.append(f'<th colspan="{span}"{classes(column)}>{esc(label)}</th>')
            column += span
        head = f'<tr class="groups">{"".join(cells)}</tr><tr>{head}</tr>'
    else:
        head = f"<tr>{head}</tr>"
    body = []
    for index, row in enumerate(table.rows):
        row_class = table.row_classes[index] if index < len(table.row_classes) else ""
        cells = []
        for i, cell in enumerate(row):
            extra = (("ci", i in table.muted), ("reason", table.headers[i] == "reason"))
            cells.append(f"<td{classes(i, *extra)}>{esc(cell)}</td>")
        body.append(f'<tr{f" class={chr(34)}{esc(row_class)}{chr(34)}" if row_class else ""}>{"".join(cells)}</tr>')
    css_class = " ".join(filter(None, [css_class, "prose" if table.wrap else ""]))
    return (f'<div class="wrap"><table class="{esc(css_class)}"><thead>{head}</thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _grid_table(grid: Grid, grouped: bool) -> Table:
    """The overview; grouped: a header row of framework names above short column names (HTML)."""
    numeric = {i for i, a in enumerate(grid.align) if a == "right"}
    if not grouped:
        return Table(grid.headers, grid.rows, numeric=numeric)
    headers = grid.headers[:grid.key_columns] + list(FRAMEWORK_COLUMNS) * len(grid.labels)
    groups = [("", grid.key_columns)] + [(label, len(FRAMEWORK_COLUMNS)) for label in grid.labels]
    return Table(headers, grid.rows, numeric=numeric, groups=groups)


def _notes(lines: Sequence[str]) -> str:
    return f'<ul class="notes">{"".join(f"<li>{esc(line)}</li>" for line in lines)}</ul>' if lines else ""


def inline_svg(svg: str, prefix: str, title: str) -> str:
    """An SVG document made fit to sit inside HTML: no prolog or comments, ids unique to this chart."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = re.sub(r'((?:xlink:)?href)="#([^"]+)"', lambda m: f'{m.group(1)}="#{prefix}{m.group(2)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})", svg)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{esc(title)}" ', 1)


def _figure(chart: Chart, index: int) -> str:
    return (f"<figure>{inline_svg(chart.svg, f'c{index}-', chart.title)}"
            f"<figcaption>{esc(chart.caption)}</figcaption></figure>")


def _html(ctx: _Context) -> str:
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    facts = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in overview_facts(ctx.records, ctx.sources))
    nav = ['<a href="#overview">Overview</a>']
    parts = []
    grid = ctx.grid
    parts.append(f'<section id="overview"><h2>Overview</h2>{_html_table(_grid_table(grid, grouped=True), "overview")}'
                 f"{_notes(grid.notes)}</section>")
    for number, task in enumerate(ctx.tasks, start=1):
        anchor = f"task-{number}"
        nav.append(f'<a href="#{anchor}">{esc(task)}</a>')
        tag = '<span class="tag">synthetic</span>' if ctx.synthetic(task) else ""
        table = task_table(ctx.task_rows(task), ctx.label_of, ctx.many_devices, ctx.many_batches)
        chart = ctx.chart_for(task)
        figure = _figure(chart, ctx.charts.index(chart)) if chart else ""
        parts.append(f'<section id="{anchor}"><h2>{esc(task)}{tag}</h2>{_html_table(table, "summary")}'
                     f"{_notes(_task_notes(ctx, task))}{figure}</section>")
    for chart in ctx.other_charts:
        anchor = f"chart-{ctx.charts.index(chart)}"
        nav.append(f'<a href="#{anchor}">{esc(chart.title.split(" ")[0])}</a>')
        parts.append(f'<section id="{anchor}"><h2>{esc(chart.title)}</h2>'
                     f"{_figure(chart, ctx.charts.index(chart))}</section>")
    if not any(c.title.startswith("Accuracy") for c in ctx.charts) and any(r["n_ok"] for r in ctx.rows):
        parts.append(f'<section id="accuracy"><h2>Accuracy against time-to-accuracy</h2>'
                     f"{_notes([NO_TTA])}</section>")
    device = device_table(ctx.records)
    if device is not None:
        nav.append('<a href="#device">Device</a>')
        parts.append(f'<section id="device"><h2>Device memory, energy and timing</h2>{_html_table(device)}'
                     f"{_notes(DEVICE_NOTES + not_measured_reasons(ctx.records))}</section>")
    scenarios = scenario_table(ctx.records)
    if scenarios is not None:
        nav.append('<a href="#scenarios">Scenarios</a>')
        parts.append(f'<section id="scenarios"><h2>MLPerf scenarios (LoadGen)</h2>{_html_table(scenarios[0])}'
                     f"{_notes(scenarios[1])}</section>")
    nav.append('<a href="#environment">Environment</a>')
    parts.append(f'<section id="environment"><h2>Environment</h2>{_html_table(environment_table(ctx.records))}'
                 f"<h3>Fairness profile</h3>{_html_table(fairness_table(ctx.records, ctx.label_of))}"
                 f"{_notes(['Highlighted: a setting that differs between frameworks.'])}</section>")
    failures, tails = failures_table(ctx.records)
    if failures.rows:
        nav.append('<a href="#not-measured">Not measured</a>')
        logs = "".join(f"<details><summary>stderr of {esc(row[0])} ({esc(row[1])})</summary><pre>{esc(tail)}</pre>"
                       f"</details>" for row, tail in zip(failures.rows, tails) if tail)
        parts.append(f'<section id="not-measured"><h2>Not measured</h2>{_html_table(failures)}{logs}</section>')
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
{PAGE_META}
<title>dlbench report</title>
<style>{CSS}</style>
</head>
<body>
<header><h1>dlbench report</h1><dl>{facts}</dl></header>
<nav>{"".join(nav)}</nav>
<main>
{chr(10).join(parts)}
</main>
<footer>dlbench {esc(dlbench.__version__)} · generated {esc(generated)}</footer>
</body>
</html>
"""


def _task_notes(ctx: _Context, task: str) -> list[str]:
    notes = ["Medians over repeats; 95% CI over repeats (min–max below six repeats), or over timed blocks "
             "for a single repeat. Latency: SingleStream at batch 1."]
    if any(r["noisy"] for r in ctx.task_rows(task)):
        notes.append("~ noisy: IQR/median above 10% over blocks or repeats.")
    if any(r.get("disturbed") for r in ctx.task_rows(task)):
        notes.append("~ disturbed: steal or other processes' load during the timed blocks (the flags column says "
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
    lines += ["", "## Overview", "", _md_table(_grid_table(grid, grouped=False)), ""]
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
    device = device_table(ctx.records)
    if device is not None:
        lines += ["", "## Device memory, energy and timing", "", _md_table(device), ""]
        lines += [f"- {md(note)}" for note in DEVICE_NOTES + not_measured_reasons(ctx.records)]
    scenarios = scenario_table(ctx.records)
    if scenarios is not None:
        lines += ["", "## MLPerf scenarios (LoadGen)", "", _md_table(scenarios[0]), ""]
        lines += [f"- {md(note)}" for note in scenarios[1]]
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
