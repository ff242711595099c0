"""A plugin whose hook name is misspelt: pluggy's check_pending must reject it loudly."""

from dlbench.hookspecs import hookimpl


@hookimpl
def dlbench_register_framework(register):  # missing the final 's'
    raise AssertionError("never called")
