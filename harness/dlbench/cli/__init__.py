"""The ``dlbench`` command line: one module per subcommand (``run``, ``listing``, ``doctor``, ``report`` for
table/report/compare/export/publish, ``data``), the option groups ``run`` shares with features (``sampling``,
``loadgen``), and ``args`` for what every parser shares. ``main`` is the console script's entry point.
"""

from dlbench.cli.main import main

__all__ = ["main"]
