"""Module globals of the probe plugin (probe_plugin.py): which process imported it, which cases it has seen."""

import os

LOADED_BY = os.getpid()  # a fork server's pid when it preloaded this module, else the worker's own
CASES: list[str] = []
