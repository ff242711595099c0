"""Publishing and comparing results: tables, the static report folder, run-to-run comparison, export.

Everything here reads result records (docs/results-schema.md) through :mod:`dlbench.results`; pandas,
tabulate, matplotlib and scipy are imported inside the functions that need them, so importing this
package stays as cheap as importing the core.
"""

from __future__ import annotations

from dlbench.report.commands import add_commands
from dlbench.report.compare import compare_records
from dlbench.report.export import to_pytest_benchmark
from dlbench.report.site import write_report
from dlbench.report.table import comparison_table, summarise

__all__ = ["add_commands", "compare_records", "comparison_table", "summarise", "to_pytest_benchmark",
           "write_report"]
