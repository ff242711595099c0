"""The core's architecture, checked: no import cycles, lower packages never import higher ones, and the old
module paths that plugins, guides and scripts used either still import or are listed here as moved.

    python tests/test_architecture.py [CHECKOUT]   # the cycles, layer breaches and longest functions of a checkout

Imports are read from the source (``ast``), inside functions too: a lazy import is still a dependency.
``from package import name`` counts as an import of ``package.name`` when that is a module.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"dlbench": "harness", "dlbench_pytorch": "plugins/pytorch", "dlbench_keras": "plugins/keras",
           "dlbench_jax": "plugins/jax"}

# Lower first. A module may import from its own layer's package and from any lower layer, never from a higher
# one. The front (dlbench/__init__.py) is above all: it re-exports from everywhere for plugin authors.
LAYERS = [
    ("errors", "version"),
    ("zoo", "results", "stats", "stream"),
    ("contract", "hookspecs"),
    ("data",),
    ("machine",),
    ("plugins",),
    ("loadgen",),
    ("measure",),
    ("running",),
    ("report",),
    ("publish",),
    ("cli",),
    ("testing",),
]

# Old module paths that code outside the core used (plugins, the guide, benchmarks, docs): still importable.
KEPT = ["dlbench.hookspecs", "dlbench.contract", "dlbench.zoo", "dlbench.data", "dlbench.errors", "dlbench.results",
        "dlbench.stream", "dlbench.testing", "dlbench.testing.datafiles", "dlbench.testing.raycluster",
        "dlbench.testing.conformance", "dlbench.cli"]
# Old module paths that moved when the core was grouped by concern (issue 26): old -> new.
MOVED = {
    "dlbench.stats": "dlbench.stats.estimators",  # a package now; the estimators live in its module
    "dlbench.env": "dlbench.machine.environment",  # capture() is dlbench.machine.identity.capture
    "dlbench.machine": "dlbench.machine.state",  # a package now; default_threads/pinning: machine.environment
    "dlbench.peak": "dlbench.machine.peak",
    "dlbench.devices": "dlbench.machine.devices",
    "dlbench.doctor": "dlbench.machine.doctor",
    "dlbench.executors.machines": "dlbench.machine.identity",
    "dlbench.probes": "dlbench.plugins.torch_setup",  # cpu_model, gpu_names: dlbench.machine.cpu
    "dlbench.threadbudget": "dlbench.plugins.jax_setup",
    "dlbench.plugins": "dlbench.plugins.registry",  # a package now
    "dlbench.guarded": "dlbench.plugins.guarded",
    "dlbench.fairness": "dlbench.plugins.fairness",
    "dlbench.worker": "dlbench.measure.worker",
    "dlbench.timing": "dlbench.measure.timing",
    "dlbench.metrics": "dlbench.measure.metrics",
    "dlbench.parity": "dlbench.measure.parity",
    "dlbench.profiles": "dlbench.measure.profiles",
    "dlbench.energy": "dlbench.measure.energy",
    "dlbench.devicemeters": "dlbench.measure.device_meters",
    "dlbench.threadmeter": "dlbench.measure.thread_meter",
    "dlbench.plan": "dlbench.running.plan",
    "dlbench.runner": "dlbench.running.runner",  # RunOptions: running.options; run_worker: running.launch
    "dlbench.rundir": "dlbench.running.rundir",
    "dlbench.executors": "dlbench.running.executors",
    "dlbench.executors.shipping": "dlbench.data.shipping",
    "dlbench.listing": "dlbench.cli.listing",
    "dlbench.sampling_cli": "dlbench.cli.sampling",
    "dlbench.data.commands": "dlbench.cli.data",
    "dlbench.loadgen.options": "dlbench.cli.loadgen",
    "dlbench.report.commands": "dlbench.cli.report",
    "dlbench.report._format": "dlbench.report.format",
    "dlbench.report.site": "dlbench.report.folder",  # the page parts it shared: dlbench.report.html
    "dlbench.report.decide": "dlbench.stats.decide",
    "dlbench.report.steps": "dlbench.stats.changepoints",
    "dlbench.report.publish": "dlbench.publish.site",
    "dlbench.report.publish_pages": "dlbench.publish.pages",
    "dlbench.report.history": "dlbench.publish.history",
    "dlbench.report.linechart": "dlbench.publish.linechart",
    "dlbench.report.privacy": "dlbench.publish.privacy",
    "dlbench.report.samples": "dlbench.testing.samples",
    "dlbench.report.publish_samples": "dlbench.testing.history_samples",
}


def modules(checkout: Path = ROOT) -> dict[str, Path]:
    """Every module of the core and the built-in plugins in ``checkout``: dotted name -> file."""
    found = {}
    for package, folder in SOURCES.items():
        base = checkout / folder
        for path in (base / package).rglob("*.py"):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] in ("__init__", "__main__"):
                parts = parts[:-1] if parts[-1] == "__init__" else parts
            found[".".join(parts)] = path
    return found


def import_graph(found: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ``found`` it imports (anywhere in its source)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in found.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                submodules = [f"{module}.{alias.name}" for alias in node.names if f"{module}.{alias.name}" in found]
                targets = submodules if len(submodules) == len(node.names) else [module, *submodules]
            else:
                continue
            graph[name].update(t for t in targets if t in found and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "dlbench" or len(parts) == 1:
        return None  # a plugin, or the front
    for number, names in enumerate(LAYERS):
        if parts[1] in names:
            return number
    raise AssertionError(f"{module}: its package {parts[1]!r} is in no layer of LAYERS; add it where it belongs")


def breaches(graph: dict[str, set[str]]) -> list[str]:
    """Imports from a lower layer up into a higher one."""
    found = []
    for module, targets in sorted(graph.items()):
        mine = layer_of(module)
        for target in sorted(targets):
            theirs = layer_of(target)
            if mine is not None and theirs is not None and theirs > mine:
                found.append(f"{module} (layer {mine}) imports {target} (layer {theirs})")
    return found


MAX_FUNCTION_LINES = 60  # a function longer than this is split (issue 26): it no longer fits one reading


def longest_functions(found: dict[str, Path], count: int = 6) -> list[tuple[int, str]]:
    """The ``count`` longest functions (lines, ``module:function``), longest first."""
    lengths = []
    for name, path in found.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lengths.append((node.end_lineno - node.lineno + 1, f"{name}:{node.name}"))
    return sorted(lengths, reverse=True)[:count]


def test_no_function_is_longer_than_the_limit() -> None:
    longest = longest_functions(modules(), count=1)[0]
    assert longest[0] <= MAX_FUNCTION_LINES, f"{longest[1]} has {longest[0]} lines: split it"


def test_no_import_cycles_in_the_core_or_the_builtin_plugins() -> None:
    found = cycles(import_graph(modules()))
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_lower_packages_never_import_higher_ones() -> None:
    found = breaches(import_graph(modules()))
    assert not found, "\n".join(found)


def test_every_package_of_the_core_has_a_layer() -> None:
    for name in modules():
        layer_of(name)


def test_the_checker_finds_a_cycle_and_a_breach() -> None:
    """The checks above can fail: a planted cycle and a planted upward import are found."""
    graph = {"dlbench.stats.a": {"dlbench.cli.main"}, "dlbench.cli.main": {"dlbench.stats.a"}}
    assert cycles(graph) == [["dlbench.cli.main", "dlbench.stats.a"]]
    assert breaches(graph) == ["dlbench.stats.a (layer 1) imports dlbench.cli.main (layer 11)"]


@pytest.mark.parametrize("name", KEPT)
def test_old_paths_used_outside_the_core_still_import(name: str) -> None:
    importlib.import_module(name)


def test_moved_paths_are_gone_and_their_new_homes_import() -> None:
    """Each moved path is listed with its new home; neither half of the list may go stale."""
    code = ("import importlib, json, sys\n"
            f"moved = {MOVED!r}\n"
            "out = {}\n"
            "for old, new in moved.items():\n"
            "    importlib.import_module(new)\n"
            "    try:\n"
            "        module = importlib.import_module(old)\n"
            "    except ModuleNotFoundError:\n"
            "        out[old] = 'gone'\n"
            "    else:\n"
            "        out[old] = 'package' if hasattr(module, '__path__') else 'module'\n"
            "print(json.dumps(out))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    import json

    states = json.loads(done.stdout)
    # a path that is now a package (its old module's content moved into it) must not be a module any more
    stale = {old: state for old, state in states.items() if state == "module"}
    assert not stale, f"listed as moved but still a module: {stale}"


def main(argv: list[str]) -> int:
    checkout = Path(argv[0]).resolve() if argv else ROOT
    graph = import_graph(modules(checkout))
    found = cycles(graph)
    print(f"{checkout}: {len(graph)} modules with imports, {sum(map(len, graph.values()))} imports, "
          f"{len(found)} cycle(s)")
    for component in found:
        print("  cycle: " + " <-> ".join(component))
        for module in component:
            for target in sorted(graph[module] & set(component)):
                print(f"    {module} -> {target}")
    try:
        layered = breaches(graph)
    except AssertionError as exc:  # an old layout: packages the layers do not know
        print(f"layers: not checked ({exc})")
    else:
        print(f"{len(layered)} layer breach(es)" + "".join(f"\n  {line}" for line in layered))
    print("longest functions: " + ", ".join(f"{name} {lines}" for lines, name in longest_functions(modules(checkout))))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
