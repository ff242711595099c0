"""The pages of a published site, each rendered from its own inputs (so unchanged inputs mean no re-render).

    index.html                   runs, machines, changes found, the latest comparison table per machine
    changes.html                 every regression and improvement found, newest first
    m/<machine>/<case>.html      one case on one machine: its history against date and against version
    cases/<case>.html            the same case on every machine side by side (``--across-machines``)

Every page is static HTML with inline SVG and CSS, no script, and a CSP that forbids any network load,
like ``dlbench report``. Every string from a results file is escaped.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from dlbench.version import __version__
from dlbench.report import format as f
from dlbench.machine.identity import ComparabilityKey
from dlbench.publish.history import SHOWN, TRACKED, Change, Collection, History, Point, Run
from dlbench.publish.linechart import MAX_DOTS, Marker, Series, line_chart
from dlbench.report.plots import PALETTE
from dlbench.report.html import CSS, PAGE_META, esc
from dlbench.stats.estimators import median, median_ci

_SPECIAL = re.compile("[&<>\"']")
EXTRA_CSS = """
.panels { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 8px 18px; }
.machines { display: grid; gap: 8px 18px; }
.machines h3 { margin: 4px 0; }
svg.hchart { max-width: 100%; height: auto; display: block; }
td.wide { white-space: normal; min-width: 260px; }
td.regression { color: #b42318; font-weight: 600; } td.improvement { color: #067647; font-weight: 600; }
.muted { color: var(--muted); }
"""
FORMATS = {"train_samples_per_s": f.rate, "infer_samples_per_s": f.rate, "latency_p50_ms": f.ms,
           "accuracy": f.percent}
TITLES = {**{m: t for m, (t, _) in TRACKED.items()}, **SHOWN}


@dataclass
class Link:
    text: str
    href: str


def case_slug(case: str) -> str:
    """A file name for a case id, unique through a hash (two ids may differ only in punctuation)."""
    readable = "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in case)[:80]
    return f"{readable}-{hashlib.sha1(case.encode()).hexdigest()[:6]}"


def case_page(machine: ComparabilityKey, case: str) -> str:
    return f"m/{machine.id}/{case_slug(case)}.html"


def across_page(case: str) -> str:
    return f"cases/{case_slug(case)}.html"


# ---------------------------------------------------------------- building blocks

def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = (),
          row_classes: Sequence[str] = (), cell_classes: Optional[dict[int, Sequence[str]]] = None,
          prefix: str = "", row_ids: Sequence[str] = ()) -> str:
    """An HTML table whose cells are text or Links (hrefs relative to the site root, given ``prefix``)."""
    def cell(value: Any, i: int, r: int) -> str:
        names = ["num"] if i in numeric else []
        if cell_classes and i in cell_classes:
            names.append(cell_classes[i][r])
        attr = f' class="{esc(" ".join(names))}"' if names else ""
        if isinstance(value, Link):
            return f'<td{attr}><a href="{esc(prefix + value.href)}">{esc(value.text)}</a></td>'
        return f"<td{attr}>{_esc_cell(value)}</td>"

    def attributes(r: int) -> str:
        found = [("id", row_ids[r] if r < len(row_ids) else ""), ("class", row_classes[r] if r < len(row_classes) else "")]
        return "".join(f' {name}="{esc(value)}"' for name, value in found if value)

    head = "".join(f'<th{" class=num" if i in numeric else ""}>{esc(h)}</th>' for i, h in enumerate(headers))
    body = "".join(f"<tr{attributes(r)}>" + "".join(cell(v, i, r) for i, v in enumerate(row)) + "</tr>"
                   for r, row in enumerate(rows))
    return f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _esc_cell(value: Any) -> str:
    """``esc``, skipped for the many cells (numbers, dates) with nothing to escape: a 500-run page has 7,000."""
    text = str(value)
    return esc(text) if _SPECIAL.search(text) else text


def page(title: str, facts: Sequence[tuple[str, str]], nav: Sequence[tuple[str, str]], body: str,
         prefix: str = "") -> str:
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    links = "".join(f'<a href="{esc(href)}">{esc(text)}</a>' for text, href in nav)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
{PAGE_META}
<title>{esc(title)}</title>
<style>{CSS}{EXTRA_CSS}</style>
</head>
<body>
<header><h1>{esc(title)}</h1><dl>{dl}</dl></header>
<nav><a href="{esc(prefix)}index.html">Index</a><a href="{esc(prefix)}changes.html">All changes</a>{links}</nav>
<main>
{body}
</main>
<footer>dlbench {esc(__version__)} · dlbench publish</footer>
</body>
</html>
"""


def section(anchor: str, heading: str, content: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(heading)}</h2>{content}</section>'


def _ci_text(value: tuple[float, Optional[float], Optional[float]], metric: str) -> str:
    return f.interval(value[1], value[2], FORMATS[metric])


def _change_cells(change: Change) -> list[str]:
    fmt = FORMATS[change.metric]
    return [TITLES[change.metric], change.kind, fmt(change.before), fmt(change.after), f.change(change.change)]


def _versions_text(change: Change) -> str:
    return "; ".join(change.versions_changed) or "no version changed (the machine, its load or dlbench's code did)"


# ---------------------------------------------------------------- charts

def _tip(point: Point, metric: str, framework: str) -> str:
    value = point.values[metric]
    ci = _ci_text(value, metric)
    version = point.versions.get(framework, "")
    return (f"{point.date} · run {point.run_id} · {framework} {version}: {FORMATS[metric](value[0])}"
            + (f" (95% CI {ci})" if ci else ""))


def date_panels(history: History, color: str = PALETTE[0], title_suffix: str = "") -> list[str]:
    """Each watched metric and the accuracy against the run date, with CI bands and change markers."""
    framework = str(history.keys["framework"])
    panels = []
    for metric in (*TRACKED, *SHOWN):
        points = [p for p in history.points if metric in p.values]
        tips = [_tip(p, metric, framework) for p in points] if len(points) <= MAX_DOTS else []  # no dots, no tips
        series = Series(metric, color, [p.time for p in points], [p.values[metric][0] for p in points],
                        [p.values[metric][1] for p in points], [p.values[metric][2] for p in points], tips)
        markers = [Marker(history.points[c.index].time, c.kind,
                          f"{c.kind} {f.change(c.change)} from run {c.run_id}: {_versions_text(c)}")
                   for c in history.changes if c.metric == metric]
        panels.append(line_chart(TITLES[metric] + title_suffix, [series] if points else [],
                                 percent=metric == "accuracy", markers=markers, empty="not measured in any run"))
    return panels


def version_panels(history: History) -> list[str]:
    """Each metric against the framework version (in the order versions first appeared): median over the
    runs of that version, band: CI over those runs (one run: its own CI)."""
    framework = str(history.keys["framework"])
    versions = list(dict.fromkeys(p.versions.get(framework, "?") for p in history.points))
    panels = []
    for metric in (*TRACKED, *SHOWN):
        xs, ys, lo, hi, tips = [], [], [], [], []
        for i, version in enumerate(versions):
            values = [p.values[metric] for p in history.points
                      if metric in p.values and p.versions.get(framework, "?") == version]
            if not values:
                continue
            medians = [v[0] for v in values]
            ci = median_ci(medians) if len(values) > 1 else (values[0][1], values[0][2])
            xs.append(float(i))
            ys.append(median(medians))
            lo.append(ci[0])
            hi.append(ci[1])
            tips.append(f"{framework} {version}: {FORMATS[metric](ys[-1])} over {len(values)} run(s)")
        markers = [Marker(float(versions.index(new)), c.kind, f"{c.kind} {f.change(c.change)} from run {c.run_id}")
                   for c in history.changes if c.metric == metric
                   and (new := history.points[c.index].versions.get(framework, "?"))
                   != history.points[c.index - 1].versions.get(framework, "?")]
        series = [Series(metric, PALETTE[0], xs, ys, lo, hi, tips)] if xs else []
        panels.append(line_chart(f"{TITLES[metric]} by {framework} version", series, percent=metric == "accuracy",
                                 categories=versions, markers=markers, empty="not measured in any run"))
    return panels


def _panels(svgs: Sequence[str]) -> str:
    return '<div class="panels">' + "".join(f"<figure>{svg}</figure>" for svg in svgs) + "</div>"


# ---------------------------------------------------------------- pages

def render_case(history: History, threshold: float, hosts: Sequence[str], across: bool) -> str:
    prefix = "../../"
    points = history.points
    framework = str(history.keys["framework"])
    latest = points[-1]
    facts = [("machine", history.machine.label), ("runs", f"{len(points)}, {points[0].date} to {latest.date}"),
             ("latest versions", ", ".join(f"{k} {v}" for k, v in latest.versions.items()) or "—"),
             ("run-to-run noise", ", ".join(f"{TITLES[m].split(' (')[0]} ±{100 * v:.1f}%"
                                            for m, v in history.noise.items()) or "fewer than 3 runs"),
             ("change threshold", f"{100 * threshold:g}% and 95% CIs apart")]
    if hosts:
        facts.insert(1, ("hosts", ", ".join(hosts)))
    nav = [("Changes in this case", "#changes"), ("Against date", "#by-date"), ("Against version", "#by-version"),
           ("Runs", "#runs")]
    if across:
        nav.append(("Other machines", prefix + across_page(history.case)))
    if history.changes:
        rows = [[c.date, Link(c.run_id, f"#run-{c.index}"), *_change_cells(c), _versions_text(c)]
                for c in history.changes]
        changes = table(["began", "run", "metric", "kind", "before", "after", "change", "versions changed"],
                        rows, numeric=(4, 5, 6), cell_classes={3: [c.kind for c in history.changes],
                                                              7: ["wide"] * len(rows)})
    else:
        changes = (f'<p class="muted">No change beyond the run-to-run noise and the {100 * threshold:g}% '
                   f"threshold in {len(points)} run(s).</p>")
    runs = []
    for i in reversed(range(len(points))):
        p = points[i]
        row: list[Any] = [p.date, p.run_id, p.versions.get(framework, "—"), f"{p.n_ok}/{p.n}"]
        for metric in (*TRACKED, *SHOWN):
            value = p.values.get(metric)
            row += [FORMATS[metric](value[0]) if value else f.DASH, _ci_text(value, metric) if value else ""]
        row.append(p.error or ("noisy" if p.noisy else ""))
        runs.append(row)
    headers = ["date", "run", "version", "ok"]
    for metric in (*TRACKED, *SHOWN):
        headers += [TITLES[metric].split(" (")[0], "95% CI"]
    ci_columns = {i: ["ci"] * len(runs) for i, h in enumerate(headers) if h == "95% CI"}
    run_table = table(headers + ["notes"], runs, numeric=tuple(range(3, 12)), cell_classes=ci_columns,
                      row_classes=["" if p.n_ok else "bad" for p in reversed(points)],
                      row_ids=[f"run-{i}" for i in reversed(range(len(points)))])
    body = (section("changes", "Changes found", changes)
            + section("by-date", "Against date", _panels(date_panels(history))
                      + '<ul class="notes"><li>Line: the run\'s median; band: its 95% CI (over repeats, or over timed '
                        "blocks for a single repeat; latency needs --repeat 2 or more); dashed lines: changes found "
                        "(red slower, green faster).</li></ul>")
            + section("by-version", f"Against {framework} version", _panels(version_panels(history)))
            + section("runs", "Runs", run_table))
    tag = " (synthetic)" if history.synthetic else ""
    return page(f"{history.case}{tag}", facts, nav, body, prefix)


def render_across(case: str, histories: Sequence[History]) -> str:
    prefix = "../"
    rows = []
    for h in histories:
        latest = h.points[-1]
        row: list[Any] = [Link(h.machine.label, case_page(h.machine, case)), len(h.points), latest.date]
        row += [FORMATS[m](latest.values[m][0]) if m in latest.values else f.DASH for m in (*TRACKED, *SHOWN)]
        row.append(", ".join(f"{k} {v}" for k, v in latest.versions.items()))
        row.append(sum(c.kind == "regression" for c in h.changes))
        rows.append(row)
    summary = table(["machine", "runs", "latest run", *[TITLES[m].split(" (")[0] for m in (*TRACKED, *SHOWN)],
                     "latest versions", "regressions"], rows, numeric=(1, 3, 4, 5, 6, 7), prefix=prefix)
    columns = "".join(f'<div><h3>{esc(h.machine.label)}</h3>'
                      + "".join(f"<figure>{svg}</figure>" for svg in date_panels(h, PALETTE[i % len(PALETTE)]))
                      + "</div>" for i, h in enumerate(histories))
    grid = (f'<div class="machines" style="grid-template-columns: repeat({len(histories)}, minmax(380px, 1fr))">'
            f"{columns}</div>")
    body = (section("summary", "Latest run on each machine", summary)
            + section("side-by-side", "Side by side", '<div class="wrap">' + grid + "</div>"
                      + '<ul class="notes"><li>Each machine keeps its own history: numbers are never mixed '
                        "across machines.</li></ul>"))
    return page(f"{case} on {len(histories)} machines", [("case", case)], [], body, prefix)


def render_changes(changes: Sequence[Change], machines: dict[str, ComparabilityKey], threshold: float) -> str:
    rows = [[c.date, machines[c.machine].label, Link(c.case, case_page(machines[c.machine], c.case)),
             *_change_cells(c), f"{c.previous_run_id} → {c.run_id}", _versions_text(c)] for c in changes]
    content = (table(["began", "machine", "case", "metric", "kind", "before", "after", "change", "runs",
                      "versions changed"], rows, numeric=(5, 6, 7),
                     cell_classes={4: [c.kind for c in changes], 9: ["wide"] * len(rows)})
               if rows else '<p class="muted">No change found.</p>')
    notes = ('<ul class="notes"><li>A change is a step in a case\'s history (one machine) where the median of the '
             f"runs after it differs by more than {100 * threshold:g}% from the runs before, with their 95% CIs "
             "apart; it needs two runs on each side. "
             "Versions changed: between the last run before and the first run after.</li></ul>")
    regressions = sum(c.kind == "regression" for c in changes)
    return page("Changes found", [("regressions", str(regressions)), ("improvements", str(len(changes) - regressions))],
                [], section("changes", "Regressions and improvements, newest first", content + notes))


def render_index(collection: Collection, threshold: float, keep_hostnames: bool, across: bool,
                 latest_tables: dict[str, str]) -> str:
    """The site's front page: recent changes, the latest results per machine, the machines, the runs."""
    runs, changes, machines = collection.runs, collection.changes, collection.machines
    times = [r.time for r in runs if r.time]
    facts = [("runs", f"{len(runs)} on {len(machines)} machine(s)"),
             ("cases", str(len({case for _, case in collection.histories}))),
             ("measured", f"{runs[0].date} to {runs[-1].date}" if times else "unknown"),
             ("changes", f"{sum(c.kind == 'regression' for c in changes)} regressions, "
                         f"{sum(c.kind == 'improvement' for c in changes)} improvements "
                         f"(threshold {100 * threshold:g}%)"),
             ("privacy", "host names kept (--keep-hostnames)" if keep_hostnames
              else "host names, user names and paths left out")]
    nav = [("Recent changes", "#changes"), ("Latest", "#latest"), ("Machines", "#machines"), ("Runs", "#runs")]
    host = ["hosts"] if keep_hostnames else []
    body = (section("changes", "Recent changes", _recent_changes(changes, machines))
            + section("latest", "Latest results", _latest_results(collection, across, latest_tables)
                      + '<ul class="notes"><li>Every case at its latest run on that machine.</li></ul>')
            + section("machines", "Machines", table(["machine", "runs", "first run", "last run", "cases", *host],
                                                    _machine_rows(runs, machines, keep_hostnames), numeric=(1, 4))
                      + '<ul class="notes"><li>A machine here is a comparability key: the CPU (model, signature, '
                        "instruction-set features), cores, memory, GPUs, the thread budget, the device and the "
                        "measurement environment (allocator, pinning); histories never mix them.</li></ul>")
            + section("runs", "Runs", table(["date", "run", "machine", "framework versions", "profile", "cases",
                                             "status", *host], _run_rows(runs, keep_hostnames), numeric=(5,))))
    return page("dlbench benchmark history", facts, nav, body)


def _recent_changes(changes: Sequence[Change], machines: dict[str, ComparabilityKey]) -> str:
    recent = changes[:20]
    if not recent:
        return '<p class="muted">No regression or improvement found in any history.</p>'
    rows = [[c.date, machines[c.machine].label, Link(c.case, case_page(machines[c.machine], c.case)),
             *_change_cells(c), _versions_text(c)] for c in recent]
    return (table(["began", "machine", "case", "metric", "kind", "before", "after", "change", "versions changed"],
                  rows, numeric=(5, 6, 7), cell_classes={4: [c.kind for c in recent], 8: ["wide"] * len(recent)})
            + (f'<p><a href="changes.html">All {len(changes)} changes</a></p>' if len(changes) > 20 else ""))


def _latest_results(collection: Collection, across: bool, latest_tables: dict[str, str]) -> str:
    """Per machine: its latest comparison table, and each case's history in one row."""
    latest = []
    for machine_id, machine in collection.machines.items():
        histories = [h for (m, _), h in collection.histories.items() if m == machine_id]
        if not histories:
            continue
        rows = []
        for h in sorted(histories, key=lambda h: h.case):
            last = h.points[-1]
            regressions = sum(c.kind == "regression" for c in h.changes)
            row: list[Any] = [Link(h.case, case_page(machine, h.case)), len(h.points), last.date]
            row += [FORMATS[m](last.values[m][0]) if m in last.values else f.DASH for m in (*TRACKED, *SHOWN)]
            row += [f"{regressions} / {len(h.changes) - regressions}"]
            if across:
                row.append(Link("machines", across_page(h.case)))
            rows.append(row)
        headers = ["case", "runs", "latest run", *[TITLES[m].split(" (")[0] for m in (*TRACKED, *SHOWN)],
                   "regressions / improvements"] + (["side by side"] if across else [])
        latest.append(f"<h3>{esc(machine.label)}</h3>{latest_tables.get(machine_id, '')}"
                      f"<h3>History of each case</h3>{table(headers, rows, numeric=(1, 3, 4, 5, 6))}")
    return "".join(latest)


def _machine_rows(runs: Sequence[Run], machines: dict[str, ComparabilityKey], keep_hostnames: bool) -> list[list]:
    rows = []
    for machine_id, machine in machines.items():
        own = [r for r in runs if r.machine.id == machine_id]
        row = [machine.label, len(own), own[0].date if own else "", own[-1].date if own else "",
               len({c for r in own for c in r.cases})]
        if keep_hostnames:
            row.append(", ".join(sorted({h for r in own for h in r.hosts})))
        rows.append(row)
    return rows


def _run_rows(runs: Sequence[Run], keep_hostnames: bool) -> list[list]:
    rows = []
    for run in reversed(runs):
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(run.statuses.items()))
        row = [run.date, run.run_id, run.machine.label, ", ".join(f"{k} {v}" for k, v in sorted(run.versions.items())),
               "/".join(sorted(run.profiles)), len(run.cases), statuses]
        if keep_hostnames:
            row.append(", ".join(sorted(run.hosts)))
        rows.append(row)
    return rows


def latest_table(rows: list[dict[str, Any]]) -> str:
    """The comparison table (as in ``dlbench report``) of every case at its latest run."""
    import pandas as pd

    from dlbench.report.html import grid_table, html_table, notes_html
    from dlbench.report.summary import SUMMARY_COLUMNS
    from dlbench.report.table import comparison_grid
    from dlbench.zoo import MODELS

    zoo = list(MODELS)
    rows = sorted(rows, key=lambda r: (str(r["task"]), zoo.index(r["model"]) if r["model"] in zoo else len(zoo),
                                       str(r["model"]), str(r["framework"]), str(r["variant"]), str(r["device"]),
                                       r["batch_size"]))
    grid = comparison_grid(pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)))
    return html_table(grid_table(grid, grouped=True), "overview") + notes_html(grid.notes)


def host_list(runs: Sequence[Run], machine: ComparabilityKey) -> list[str]:
    return sorted({h for r in runs if r.machine == machine for h in r.hosts})
