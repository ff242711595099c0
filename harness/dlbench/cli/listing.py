"""``dlbench list``: the installed frameworks (with plugin and versions), devices, the zoo and the tasks."""

from __future__ import annotations

import argparse
from typing import Any, Optional

# The tables import what they read (plugins, data, the zoo, tabulate) when asked: building the parser stays cheap.


def frameworks_table() -> str:
    from tabulate import tabulate

    from dlbench.plugins.registry import load_registry
    from dlbench.running.plan import framework_states

    registry = load_registry()
    states = framework_states(registry)
    rows = []
    for name, state in states.items():
        owner = registry.owner[name]
        rows.append([name, state.version or "-", ", ".join(state.variants), ", ".join(state.devices),
                     _plugin_label(owner), state.problem or "ok"])
    for plugin in registry.plugins:
        if plugin.error:
            rows.append(["-", "-", "", "", _plugin_label(plugin), plugin.error])
    return "Frameworks\n" + tabulate(rows, ["framework", "version", "variants (default first)", "devices",
                                            "plugin (distribution)", "status"], tablefmt="simple")


def devices_table() -> str:
    """Per framework (and backend) each device: whether it is usable here, what was seen or why not."""
    from tabulate import tabulate

    from dlbench.machine.devices import checks_of
    from dlbench.plugins.registry import load_registry

    registry = load_registry()
    rows = []
    for name, framework in registry.frameworks.items():
        try:
            checks = checks_of(framework)
        except Exception as exc:  # one plugin's broken probe must not hide the others
            rows.append([name, "", "?", "error", f"{type(exc).__name__}: {exc}"])
            continue
        for check in checks:
            rows.append([name, check.backend or "-", check.device, "yes" if check.available else "no", check.detail])
    return "Devices (what each framework sees here, or why not)\n" + tabulate(
        rows, ["framework", "backend", "device", "usable", "seen / why not"], tablefmt="simple")


def _plugin_label(plugin) -> str:
    origin = " ".join(part for part in (plugin.dist, plugin.dist_version) if part)
    return f"{plugin.name} ({origin})" if origin else plugin.name


def models_table() -> str:
    from tabulate import tabulate

    from dlbench.zoo import MODELS

    rows = []
    for spec in MODELS.values():
        shape = (28, 28, 1) if spec.modality == "image" else (100,)
        layers = " > ".join(type(layer).__name__ for layer in spec.layers)
        rows.append([spec.name, spec.modality, f"{spec.param_count(shape):,}",
                     f"{spec.flops_per_sample(shape) / 1e6:.2f}", spec.summary, layers])
    return "Models (counts for 28x28x1 images / 100-token texts)\n" + tabulate(
        rows, ["model", "tasks", "params", "MFLOPs/sample", "what", "layers"], tablefmt="simple")


def tasks_table(data_dir: Optional[str] = None) -> str:
    from tabulate import tabulate

    from dlbench.data import TASKS, task_status

    rows = []
    for name in TASKS:
        status = task_status(name, data_dir)
        task = status.task
        where = status.where if status.found else f"not found: {task.how_to_get}"
        rows.append([name, task.modality, "yes" if task.synthetic else "no", "yes" if status.found else "no", where])
    return "Tasks\n" + tabulate(rows, ["task", "kind", "synthetic", "found", "where / how to get it"],
                                tablefmt="simple")


def add_command(commands: Any) -> None:
    listing = commands.add_parser("list", help="show frameworks, models and tasks",
                                  description="Show installed framework plugins, the model zoo and the tasks.")
    listing.add_argument("what", nargs="?", default="all", choices=["all", "frameworks", "devices", "models", "tasks"])
    listing.add_argument("--data-dir", metavar="DIR")
    listing.set_defaults(func=cmd_list)


def cmd_list(args: argparse.Namespace) -> int:
    sections = {"frameworks": frameworks_table, "devices": devices_table, "models": models_table,
                "tasks": lambda: tasks_table(args.data_dir)}
    chosen = list(sections) if args.what == "all" else [args.what]
    print("\n\n".join(sections[name]() for name in chosen))
    return 0
