"""The framework-against-framework table: a row per task x model, a column group per framework, with the
marks and notes that say how far each number can be trusted (rows from ``summary.summarise``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Optional

from dlbench.report import format as f
from dlbench.report.summary import summarise
from dlbench.report.trust import legend, peak_cell
from dlbench.results import batch_label

if TYPE_CHECKING:
    import pandas as pd

OWN_ORDER_MARK = "^"  # trained on the plugin's own batch order, not the harness's stream
OVER_BUDGET_MARK = "!"  # more busy threads than the thread budget


@dataclass
class Grid:
    """A rendered comparison table before tabulate/HTML: header, rows of strings, notes below."""

    headers: list[str]
    rows: list[list[str]]
    align: list[str]
    notes: list[str] = field(default_factory=list)
    not_measured: list[str] = field(default_factory=list)
    key_columns: int = 2  # task, model (, device, batch): the columns before the framework groups
    labels: list[str] = field(default_factory=list)  # one group of FRAMEWORK_COLUMNS per label


FRAMEWORK_COLUMNS = ("acc", "train/s", "infer/s", "p50 ms", "% peak", "speed")


def framework_labels(summary: "pd.DataFrame") -> dict[tuple[str, str], str]:
    """(framework, variant) -> column label: the framework, or framework/variant when it ran several."""
    variants: dict[str, list[str]] = {}
    for fw, variant in zip(summary["framework"], summary["variant"]):
        variants.setdefault(str(fw), [])
        if str(variant) not in variants[str(fw)]:
            variants[str(fw)].append(str(variant))
    return {(fw, v): (fw if len(variants[fw]) == 1 else f"{fw}/{v}") for fw in sorted(variants) for v in variants[fw]}


@dataclass
class _Marks:
    """Which marks the table used, so that its notes explain exactly those."""

    noisy: bool = False
    own_order: bool = False
    over_budget: bool = False


def comparison_grid(summary: "pd.DataFrame") -> Grid:
    """One row per task x model (x device x batch when those vary), a column group per framework."""
    labels = framework_labels(summary)
    varies = {column: column in summary and summary[column].nunique() > 1
              for column in ("machine", "device", "batch_size")}  # a row per machine: no ratio across them
    batch_auto = bool(summary["batch_auto"].any())
    varies["batch_size"] = varies["batch_size"] or batch_auto
    headers = (["machine"] if varies["machine"] else []) + ["task", "model"] + \
        (["device"] if varies["device"] else []) + (["batch"] if varies["batch_size"] else [])
    key_columns = len(headers)
    for label in dict.fromkeys(labels.values()):
        headers += [f"{label} {column}" for column in FRAMEWORK_COLUMNS]
    grid = Grid(headers, [], ["left"] * key_columns + ["right"] * (len(headers) - key_columns),
                key_columns=key_columns, labels=list(dict.fromkeys(labels.values())))
    by_row, synthetic = _rows_by_key(summary, labels, grid)
    marks = _Marks()
    for key, cells in by_row.items():
        machine, task, model, device, batch = key
        line = ([str(machine)] if varies["machine"] else []) + \
            [f"{task} (synthetic)" if synthetic[key] else str(task), str(model)]
        line += ([str(device)] if varies["device"] else []) + ([str(batch)] if varies["batch_size"] else [])
        speeds = [f.number(c["train_samples_per_s"]) for c in cells.values() if c["n_ok"]]
        fastest = max((s for s in speeds if s is not None), default=None)
        for label in dict.fromkeys(labels.values()):
            line += _framework_cells(cells.get(label), fastest, marks)
        grid.rows.append(line)
    _add_notes(grid, labels, varies["machine"], batch_auto, marks, by_row, any(synthetic.values()))
    return grid


def _rows_by_key(summary: "pd.DataFrame", labels: dict[tuple[str, str], str],
                 grid: Grid) -> tuple[dict[tuple, dict[str, dict[str, Any]]], dict[tuple, bool]]:
    """Summary rows grouped into table rows (machine, task, model, device, batch) -> framework label -> row."""
    by_row: dict[tuple, dict[str, dict[str, Any]]] = {}
    synthetic: dict[tuple, bool] = {}
    for row in summary.to_dict("records"):
        key = (row.get("machine", ""), row["task"], row["model"], row["device"],
               batch_label(row["batch_size"], bool(row.get("batch_auto"))))
        by_row.setdefault(key, {})[labels[(str(row["framework"]), str(row["variant"]))]] = row
        synthetic[key] = synthetic.get(key, False) or bool(row["synthetic"])
        if row["error"]:
            grid.not_measured.append(f"{row['case_id']}: {row['status'] if not row['n_ok'] else 'partly ok'}"
                                     f" — {row['error']}")
    return by_row, synthetic


def _framework_cells(cell: Optional[dict[str, Any]], fastest: Optional[float], marks: _Marks) -> list[str]:
    """One framework's column group on one row: accuracy, rates with their marks, latency, % peak, speed."""
    if cell is None:
        return [""] * len(FRAMEWORK_COLUMNS)
    if not cell["n_ok"]:
        return [str(cell["status"])] + [f.DASH] * (len(FRAMEWORK_COLUMNS) - 1)
    mark = "~" if cell["noisy"] or cell.get("disturbed") else ""
    marks.noisy = marks.noisy or bool(cell["noisy"])
    if str(cell.get("batch_order", "unknown")) not in ("harness", "unknown"):
        mark, marks.own_order = OWN_ORDER_MARK + mark, True
    if cell.get("over_thread_budget") is True:
        mark, marks.over_budget = OVER_BUDGET_MARK + mark, True
    train = f.number(cell["train_samples_per_s"])
    relative = train / fastest if train is not None and fastest else None
    return [f.percent(cell["accuracy"]),
            mark + f.rate(train) if train is not None else f.DASH,
            mark + f.rate(cell["infer_samples_per_s"]) if f.number(cell["infer_samples_per_s"]) is not None else f.DASH,
            f.ms(cell["latency_p50_ms"]),
            peak_cell(cell.get("train_peak_pct"), str(cell.get("regime") or "")),
            f.ratio(relative)]


def _add_notes(grid: Grid, labels: dict[tuple[str, str], str], many_machines: bool, batch_auto: bool,
               marks: _Marks, by_row: dict[tuple, dict[str, dict[str, Any]]], any_synthetic: bool) -> None:
    """The notes under the table: every column, and every mark the table used."""
    grid.notes.append("acc: test accuracy after the training budget; train/s: steady-state training samples/s; "
                      "infer/s: Offline inference samples/s; p50 ms: SingleStream latency at batch 1 (medians "
                      "over repeats)")
    if len(set(labels.values())) > 1:
        grid.notes.append("speed: training samples/s relative to the fastest framework on the row")
    if batch_auto:
        grid.notes.append("(auto): the batch --batch-size auto chose, the knee of training samples/s against batch "
                          "size (doubling from 128 until the gain fell under 5%); its curve is in the records")
    if many_machines:
        grid.notes.append("machine: the results span several machines, thread budgets or measurement environments "
                          "(allocator, pinning); each row is one of them, and no ratio is taken across them")
    if marks.noisy:
        grid.notes.append("~ noisy: IQR/median above 10% over timed blocks or repeats; differences within that "
                          "spread are not meaningful")
    grid.notes += legend([row for cells in by_row.values() for row in cells.values()],
                         label=lambda row: f"{row['framework']} {row['model']} on {row['task']}")
    if marks.own_order:
        grid.notes.append(f"{OWN_ORDER_MARK} own order: the plugin drew its own training batches instead of the "
                          "harness's stream, so it did not see the same batches as the others")
    if marks.over_budget:
        grid.notes.append(f"{OVER_BUDGET_MARK} over budget: the case kept more threads' worth of CPU busy during "
                          "the timed blocks than the thread budget allows, the machine's load divided out "
                          "(metrics.threads_observed.concurrency)")
    if any_synthetic:
        grid.notes.append("(synthetic): generated data; its accuracy says little about real tasks")


def comparison_table(records: Iterable[dict[str, Any]], fmt: str = "github") -> str:
    """The end-of-run table: a row per model x task, per framework accuracy, throughput, latency, speed.

    ``fmt`` is any tabulate format (github, pipe, simple, grid, latex, html, ...). Failed and skipped
    cases are listed below the table with their reasons.
    """
    from tabulate import tabulate, tabulate_formats

    if fmt not in tabulate_formats:
        raise ValueError(f"unknown table format {fmt!r}; choose from {', '.join(sorted(tabulate_formats))}")
    records = list(records)
    if not records:
        return "no results"
    grid = comparison_grid(summarise(records))
    rows, headers = grid.rows, grid.headers
    if fmt in ("github", "pipe"):  # a '|' in a name would split the markdown cell
        rows = [[cell.replace("|", "\\|") for cell in row] for row in rows]
        headers = [h.replace("|", "\\|") for h in headers]
    parts = []
    if rows:
        parts.append(tabulate(rows, headers, tablefmt=fmt, colalign=grid.align, disable_numparse=True))
    footer = list(grid.notes)
    if grid.not_measured:
        footer.append("Not measured:")
        footer += [f"  - {line}" for line in grid.not_measured]
    if fmt in ("html", "unsafehtml"):
        import html

        footer = [f"<p>{html.escape(line)}</p>" for line in footer]
    parts.append("\n".join(footer))
    if fmt not in ("html", "unsafehtml"):
        from dlbench.report.device import device_text

        parts.append(device_text(records, fmt))  # "" unless a case measured device memory, energy or events
    from dlbench.report.scenarios import scenario_section

    parts.append(scenario_section(records, fmt))  # "" unless a case ran --inference loadgen
    return "\n\n".join(part for part in parts if part)
