"""One run's report: its records summarised per case (``summary``), the framework-against-framework table
(``table``) with its trust marks (``trust``), sections for devices, MLPerf scenarios, environment and failures
(``device``, ``scenarios``, ``sections``), charts (``plots``), the report folder (``folder``: index.html,
report.md, results.csv), run-to-run comparison (``compare``) and export (``export``). Many runs over time are
``dlbench.publish``.

Everything here reads result records (docs/results-schema.md) through :mod:`dlbench.results`; pandas,
tabulate, matplotlib and scipy are imported inside the functions that need them, so importing this
package stays as cheap as importing the core.
"""
