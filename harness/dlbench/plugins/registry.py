"""Finding plugins: a fresh pluggy manager per call, entry points loaded one by one so one broken
plugin is reported, not fatal."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from importlib import metadata
from typing import Optional

import pluggy

from dlbench import hookspecs
from dlbench.contract import Framework
from dlbench.errors import UnknownName

ENTRY_POINT_GROUP = "dlbench"
DISABLE_ENV = "DLBENCH_DISABLE_PLUGINS"  # comma-separated plugin names to skip
EXTRA_ENV = "DLBENCH_PLUGINS"  # comma-separated module names to load as plugins too (like PYTEST_PLUGINS)


@dataclass
class PluginInfo:
    """One entry point: where it came from, and what went wrong with it, if anything."""

    name: str
    dist: str = ""
    dist_version: str = ""
    error: str = ""
    frameworks: list[str] = field(default_factory=list)


@dataclass
class Registry:
    """Everything the plugins registered, plus the problems found while loading them."""

    frameworks: dict[str, Framework] = field(default_factory=dict)
    owner: dict[str, PluginInfo] = field(default_factory=dict)  # framework name -> plugin
    plugins: list[PluginInfo] = field(default_factory=list)

    def get(self, name: str) -> Framework:
        try:
            return self.frameworks[name]
        except KeyError:
            raise UnknownName("framework", name, self.frameworks) from None


def make_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    return manager


def load_registry(extra_plugins: tuple[object, ...] = ()) -> Registry:
    """Load every plugin of the ``dlbench`` entry-point group (plus ``extra_plugins``) and collect frameworks."""
    manager = make_manager()
    registry = Registry()
    disabled = set(_names(os.environ.get(DISABLE_ENV, "")))
    for entry_point in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        if entry_point.name in disabled or any(p.name == entry_point.name for p in registry.plugins):
            continue
        info = PluginInfo(entry_point.name)
        if entry_point.dist is not None:
            info.dist, info.dist_version = entry_point.dist.metadata["Name"], entry_point.dist.version
        registry.plugins.append(info)
        try:
            module = entry_point.load()
            manager.register(module, name=entry_point.name)
        except Exception as exc:  # a broken plugin must not stop the others
            info.error = f"import failed: {type(exc).__name__}: {exc}"
    for module_name in _names(os.environ.get(EXTRA_ENV, "")):
        if module_name in disabled:
            continue
        info = PluginInfo(module_name, dist=f"${EXTRA_ENV}")
        registry.plugins.append(info)
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            info.error = f"import failed: {type(exc).__name__}: {exc}"
            continue
        twice = _registered_as(manager, registry, module)
        if twice is not None:
            info.error = (f"registered twice: module {module_name} is also installed as plugin {twice.name}"
                          f"{f' (distribution {twice.dist})' if twice.dist else ''}; remove {module_name} from "
                          f"${EXTRA_ENV} (the installed plugin is used)")
            continue
        try:
            manager.register(module, name=module_name)
        except Exception as exc:
            info.error = f"registration failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    for index, plugin in enumerate(extra_plugins):
        info = PluginInfo(getattr(plugin, "__name__", f"extra{index}"))
        registry.plugins.append(info)
        try:
            manager.register(plugin, name=info.name)
        except Exception as exc:
            info.error = f"registration failed: {type(exc).__name__}: {exc}"
    try:
        manager.check_pending()  # a misspelled hook name fails loudly
    except pluggy.PluginValidationError as exc:
        bad = getattr(exc, "plugin", None)
        for info in registry.plugins:
            if bad is not None and manager.get_plugin(info.name) is bad:
                info.error = f"invalid hook: {exc}"
                manager.unregister(bad)
    _collect(manager, registry)
    return registry


def _registered_as(manager: pluggy.PluginManager, registry: Registry, module: object) -> Optional[PluginInfo]:
    """The plugin already registered with this very module object (an entry point naming it), if any."""
    if not manager.is_registered(module):
        return None
    name = manager.get_name(module)
    return next((info for info in registry.plugins if info.name == name), PluginInfo(str(name)))


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _collect(manager: pluggy.PluginManager, registry: Registry) -> None:
    by_name = {info.name: info for info in registry.plugins}
    for impl in manager.hook.dlbench_register_frameworks.get_hookimpls():
        info = by_name.get(impl.plugin_name) or PluginInfo(impl.plugin_name)

        def register(framework: Framework, _info: PluginInfo = info) -> None:
            problem = _malformed(framework)
            if problem:
                raise TypeError(f"registered {framework!r}, which {problem}")
            name = framework.name
            if name in registry.frameworks:
                raise ValueError(f"framework name {name!r} is already registered by plugin "
                                 f"{registry.owner[name].name!r}")
            registry.frameworks[name] = framework
            registry.owner[name] = _info
            _info.frameworks.append(name)

        try:
            impl.function(register=register)
        except Exception as exc:
            info.error = f"dlbench_register_frameworks failed: {type(exc).__name__}: {exc}"


def _malformed(framework: object) -> Optional[str]:
    name = getattr(framework, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        return "has no identifier-like string attribute 'name'"
    missing = [m for m in ("version", "variants", "devices", "supports", "prepare")
               if not callable(getattr(framework, m, None))]
    return f"lacks the methods {', '.join(missing)}" if missing else None
