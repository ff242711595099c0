"""A plugin that misbehaves at registration: a non-framework, a duplicate name, and a misspelt hook."""

from dlbench.hookspecs import hookimpl


class NotAFramework:
    name = "broken"


@hookimpl
def dlbench_register_frameworks(register):
    register(NotAFramework())
