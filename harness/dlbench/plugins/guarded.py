"""Calls into a plugin, and only those, turned into "plugin X failed in Y".

The worker hands the timing code a ``GuardedSession`` instead of the plugin's own session. An exception
raised by a plugin method becomes ``PluginFailed`` naming the plugin and the method; an exception raised
by the harness (its timing code, its block hook) passes through untouched, so a dlbench bug is reported
as a dlbench bug and never blamed on a plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from dlbench.contract import BlockHook
from dlbench.errors import PluginFailed

if TYPE_CHECKING:
    from dlbench.zoo import ModelSpec

# Words with which builders say that they lack something (our three plugins, and the ones before the zoo grew).
_LACKS = ("not supported", "unsupported", "unknown", "no builder", "not implemented")


class _HarnessError(Exception):
    """Carries an exception raised by the harness's hook out through the plugin's ``train``."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _GuardedHook:
    def __init__(self, hook: BlockHook) -> None:
        self.hook, self.steps = hook, hook.steps

    def __call__(self) -> None:
        try:
            self.hook()
        except Exception as exc:
            raise _HarnessError(exc) from exc


def plugin_call(plugin: str, what: str, function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)``; an exception from it fails the case in the plugin's name."""
    try:
        return function(*args)
    except _HarnessError as wrapped:
        raise wrapped.error from None
    except PluginFailed:
        raise
    except Exception as exc:
        raise PluginFailed(plugin, what, exc) from exc


class GuardedSession:
    """The plugin's session, every method guarded by ``plugin_call``; ``raw`` is the session itself."""

    def __init__(self, session: Any, plugin: str) -> None:
        self.raw, self.plugin = session, plugin
        self.steps_trained = 0  # optimiser steps asked of train(), to compare with what the stream handed out

    def param_count(self) -> int:
        return plugin_call(self.plugin, "param_count", self.raw.param_count)

    def train(self, steps: int, hook: Optional[BlockHook] = None) -> None:
        self.steps_trained += max(int(steps), 0)
        if hook is None:
            return plugin_call(self.plugin, "train", self.raw.train, steps)
        return plugin_call(self.plugin, "train", self.raw.train, steps, _GuardedHook(hook))

    def evaluate(self, x: Any, y: Any) -> tuple[float, float]:
        return plugin_call(self.plugin, "evaluate", self.raw.evaluate, x, y)

    def stage(self, x: Any) -> Any:
        return plugin_call(self.plugin, "stage", self.raw.stage, x)

    def predict(self, staged: Any) -> Any:
        return plugin_call(self.plugin, "predict", self.raw.predict, staged)

    def sync(self) -> None:
        return plugin_call(self.plugin, "sync", self.raw.sync)

    def describe(self) -> Mapping[str, Any]:
        return dict(plugin_call(self.plugin, "describe", self.raw.describe))

    def optional(self, name: str) -> Optional[Callable[[], Any]]:
        """A guarded optional method of the session (e.g. ``peak_device_memory_mb``), or None."""
        method = getattr(self.raw, name, None)
        if not callable(method):
            return None
        return lambda: plugin_call(self.plugin, name, method)


def unknown_layer_kind(spec: "ModelSpec", error: Optional[BaseException]) -> Optional[str]:
    """The layer kind of ``spec`` that ``error``, raised while building it, names as one the plugin cannot build.

    A builder's dispatch miss (``KeyError('residual')``), or an error that quotes one of the model's kinds and
    says it lacks it (``NotImplementedError``, or "not supported", "unknown", "no builder", ...). Anything else
    is a real build error and stays one. Among several quoted kinds (a layer's repr quotes its nested ones),
    a kind the first zoo did not have wins, then the last one named.
    """
    from dlbench.zoo import FIRST_KINDS

    if error is None:
        return None
    kinds = spec.layer_kinds()
    if isinstance(error, KeyError) and len(error.args) == 1 and error.args[0] in kinds:
        return str(error.args[0])
    text = str(error)
    named = [kind for kind in kinds if f"'{kind}'" in text or f'"{kind}"' in text]
    if not named or not (isinstance(error, NotImplementedError) or any(w in text.lower() for w in _LACKS)):
        return None
    return max(named, key=lambda kind: (kind not in FIRST_KINDS, text.rfind(kind)))
