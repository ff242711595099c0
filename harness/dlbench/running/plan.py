"""Expanding a selection into cases: framework x variant x model x task x device x batch size.

Only compatible pairs are planned (an image model never meets a text task) and, when no task is named,
each model runs on its matrix tasks (the profile's choice, else the tasks it has an accuracy target for:
softmax never meets CIFAR-10 unless asked to); cases whose data is missing are kept as 'skipped' with how
to get the data; a selection that plans nothing says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence, Union

from dlbench.data import TASKS, task_status
from dlbench.errors import UsageError
from dlbench.measure.profiles import Profile, get_profile, matrix_tasks
from dlbench.plugins.registry import Registry
from dlbench.zoo import FIRST_ACTIVATIONS, FIRST_KINDS, MODELS, ModelSpec

DEVICES = ("cpu", "gpu")


@dataclass(frozen=True)
class Case:
    framework: str
    variant: str
    model: str
    task: str
    device: str
    batch_size: Union[int, str]  # "auto": the worker finds the knee (measure.batch_sweep) and records it

    @property
    def id(self) -> str:
        return "/".join(str(v) for v in asdict(self).values())


@dataclass
class Selection:
    """What the user asked for; empty lists mean 'everything available'."""

    frameworks: Sequence[str] = ()
    models: Sequence[str] = ()
    tasks: Sequence[str] = ()
    variants: Sequence[str] = ()  # () = each framework's default; ("all",) = every variant
    device: str = "all"
    batch_sizes: Sequence[Union[int, str]] = (128,)
    data_dir: Optional[str] = None
    profile: str = "quick"  # with no task named, each model runs on the profile's tasks for it (profiles.matrix_tasks)


@dataclass
class FrameworkState:
    name: str
    version: str = ""
    variants: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    problem: str = ""  # why it cannot run here


@dataclass
class Plan:
    cases: list[Case]
    skipped: list[tuple[Case, str]]
    notes: list[str]
    frameworks: dict[str, FrameworkState]


def framework_states(registry: Registry) -> dict[str, FrameworkState]:
    """Ask every registered framework what it is, without letting one broken plugin stop the rest."""
    states = {}
    for name, framework in registry.frameworks.items():
        state = FrameworkState(name)
        try:
            state.version = str(framework.version())
            state.variants = [str(v) for v in framework.variants()]
            state.devices = [str(d) for d in framework.devices()]
            if not state.variants or not state.devices:
                state.problem = f"plugin {registry.owner[name].name} reports no variants or no devices"
        except Exception as exc:  # FrameworkUnavailable carries the install hint
            state.problem = str(exc) or type(exc).__name__
        states[name] = state
    return states


def _check_names(kind: str, asked: Sequence[str], valid: Sequence[str]) -> None:
    for name in asked:
        if name not in valid:
            raise UsageError(f"unknown {kind} {name!r}; choose from {', '.join(valid) or 'none'}")


def make_plan(registry: Registry, selection: Selection) -> Plan:
    """The cases to run, in an order that keeps frameworks of the same model side by side."""
    states = framework_states(registry)
    broken = {p.name: p.error for p in registry.plugins if p.error}
    for name in selection.frameworks:
        if name not in states:
            hint = f" (plugin {name} is broken: {broken[name]})" if name in broken else ""
            raise UsageError(f"unknown framework {name!r}{hint}; choose from {', '.join(states) or 'none installed'}")
    _check_names("model", selection.models, list(MODELS))
    _check_names("task", selection.tasks, list(TASKS))
    if selection.device not in (*DEVICES, "all"):
        raise UsageError(f"unknown device {selection.device!r}; choose from cpu, gpu, all")

    notes: list[str] = [f"plugin {name} not loaded: {error}" for name, error in broken.items()]
    chosen = list(selection.frameworks) or list(states)
    usable = []
    for name in chosen:
        if states[name].problem:
            if selection.frameworks:
                raise UsageError(f"framework {name} cannot run here: {states[name].problem}")
            notes.append(f"{name}: not available ({states[name].problem})")
        else:
            usable.append(name)
    if not usable:
        raise UsageError("no framework installed: pip install 'dlbench[torch]' or 'dlbench[keras]'"
                         + (f" ({'; '.join(notes)})" if notes else ""))

    all_variants = sorted({v for n in usable for v in states[n].variants})
    if selection.variants and list(selection.variants) != ["all"]:
        _check_names("variant", selection.variants, all_variants + ["all", "default"])

    models = list(selection.models) or list(MODELS)
    tasks = list(selection.tasks) or list(TASKS)
    status = {task: task_status(task, selection.data_dir) for task in tasks}
    pairs = _pairs(models, tasks, get_profile(selection.profile) if not selection.tasks else None)
    cases: list[Case] = []
    skipped: list[tuple[Case, str]] = []
    for task in tasks:
        for model in models:
            if (model, task) not in pairs:
                continue
            for batch_size in selection.batch_sizes:
                for name in usable:
                    framework = registry.frameworks[name]
                    if not framework.supports(MODELS[model]):
                        notes.append(not_implemented(name, MODELS[model]))
                        continue
                    for variant in _variants(states[name], selection.variants):
                        for device in _devices(states[name], selection.device):
                            case = Case(name, variant, model, task, device, batch_size)
                            if status[task].found:
                                cases.append(case)
                            else:
                                skipped.append((case, f"no data for {task}: {status[task].task.how_to_get}"))
    if not cases and not skipped:
        raise UsageError(_why_empty(registry, selection, usable, states, models, tasks))
    return Plan(cases, skipped, sorted(set(notes), key=notes.index), {n: states[n] for n in chosen})


def _pairs(models: list[str], tasks: list[str], profile: Optional[Profile]) -> set[tuple[str, str]]:
    """(model, task) pairs of one modality; with no task named (``profile`` given), only each model's matrix tasks."""
    return {(m, t) for m in models for t in tasks if MODELS[m].modality == TASKS[t].modality
            and (profile is None or t in matrix_tasks(profile, MODELS[m]))}


def not_implemented(framework: str, spec: ModelSpec) -> str:
    """Why a framework's case is not planned: its supports() said no, and what the model has that is new."""
    new = spec.missing(FIRST_KINDS, FIRST_ACTIVATIONS)
    since = f"; {spec.name} needs {', '.join(new)}, new since the first zoo" if new else ""
    return f"{framework} does not implement {spec.name} (its supports() is False{since})"


def _variants(state: FrameworkState, asked: Sequence[str]) -> list[str]:
    """The variants to run: "default" is each framework's first (how its tutorials run it), "all" every one."""
    if not asked:
        return state.variants[:1]
    if list(asked) == ["all"]:
        return state.variants
    wanted = [state.variants[0] if v == "default" else v for v in asked]
    return [v for v in dict.fromkeys(wanted) if v in state.variants]


def _devices(state: FrameworkState, asked: str) -> list[str]:
    if asked == "all":
        return [d for d in DEVICES if d in state.devices]
    return [asked] if asked in state.devices else []


def _why_empty(registry: Registry, selection: Selection, usable: list[str], states: dict[str, FrameworkState],
               models: list[str], tasks: list[str]) -> str:
    if not any(MODELS[m].modality == TASKS[t].modality for m in models for t in tasks):
        kinds = ", ".join(f"{m} ({MODELS[m].modality})" for m in models)
        return (f"no model fits the tasks: {kinds} vs {', '.join(f'{t} ({TASKS[t].modality})' for t in tasks)}; "
                "image models run on image tasks, text models on text tasks")
    if selection.device != "all" and not any(selection.device in states[n].devices for n in usable):
        return f"no selected framework sees a {selection.device} here (devices: " + \
            ", ".join(f"{n}: {'/'.join(states[n].devices)}" for n in usable) + ")"
    unsupported = [not_implemented(n, MODELS[m]) for n in usable for m in models
                   if not registry.frameworks[n].supports(MODELS[m])]
    if unsupported:
        return "the selection plans no case: " + "; ".join(unsupported)
    if selection.variants:
        return (f"no selected framework has variant {', '.join(selection.variants)}; variants: "
                + "; ".join(f"{n}: {', '.join(states[n].variants)}" for n in usable))
    return "the selection plans no case"
