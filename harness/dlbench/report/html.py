"""The HTML every page of dlbench is made of (the one-run report and the published site): the page head, the
stylesheet, escaping, tables and notes. Every string that comes from a results file passes ``esc``.
"""

from __future__ import annotations

import html
import re
from typing import Any, Sequence

from dlbench.report.sections import Table
from dlbench.report.table import FRAMEWORK_COLUMNS, Grid
# Every page dlbench writes: no script and no network (the CSP forbids both), so it renders the same from
# disk or any static host.
PAGE_META = """<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


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


def html_table(table: Table, css_class: str = "") -> str:
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


def grid_table(grid: Grid, grouped: bool) -> Table:
    """The overview; grouped: a header row of framework names above short column names (HTML)."""
    numeric = {i for i, a in enumerate(grid.align) if a == "right"}
    if not grouped:
        return Table(grid.headers, grid.rows, numeric=numeric)
    headers = grid.headers[:grid.key_columns] + list(FRAMEWORK_COLUMNS) * len(grid.labels)
    groups = [("", grid.key_columns)] + [(label, len(FRAMEWORK_COLUMNS)) for label in grid.labels]
    return Table(headers, grid.rows, numeric=numeric, groups=groups)


def notes_html(lines: Sequence[str]) -> str:
    return f'<ul class="notes">{"".join(f"<li>{esc(line)}</li>" for line in lines)}</ul>' if lines else ""


def inline_svg(svg: str, prefix: str, title: str) -> str:
    """An SVG document made fit to sit inside HTML: no prolog or comments, ids unique to this chart."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = re.sub(r'((?:xlink:)?href)="#([^"]+)"', lambda m: f'{m.group(1)}="#{prefix}{m.group(2)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})", svg)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{esc(title)}" ', 1)
