"""Only calls into a plugin are reported as the plugin's failure; the harness's own bugs stay the harness's."""

from __future__ import annotations

import pytest

from dlbench.errors import CaseFailed, PluginFailed
from dlbench.plugins.guarded import GuardedSession


class Session:
    """A minimal plugin session: train calls the hook every ``hook.steps`` steps, like the contract says."""

    def __init__(self, fail_in: str = "") -> None:
        self.fail_in = fail_in

    def train(self, steps, hook=None):
        if self.fail_in == "train":
            raise RuntimeError("out of cheese\nsecond line never shown")
        for step in range(1, steps + 1):
            if hook is not None and step % hook.steps == 0:
                hook()

    def evaluate(self, x, y):
        raise ValueError("shapes do not match")

    def describe(self):
        return {"threads": "1"}


class Hook:
    steps = 2

    def __init__(self, error: Exception | None = None) -> None:
        self.calls, self.error = 0, error

    def __call__(self):
        self.calls += 1
        if self.error is not None:
            raise self.error


def test_a_plugin_exception_names_the_plugin_and_the_call():
    with pytest.raises(PluginFailed, match=r"^plugin myfw failed in train: RuntimeError: out of cheese$"):
        GuardedSession(Session("train"), "myfw").train(4)
    with pytest.raises(CaseFailed, match="plugin myfw failed in evaluate: ValueError: shapes do not match"):
        GuardedSession(Session(), "myfw").evaluate([], [])


def test_a_bug_in_the_harness_hook_is_not_blamed_on_the_plugin():
    bug = ZeroDivisionError("division by zero in the block clock")
    with pytest.raises(ZeroDivisionError) as raised:
        GuardedSession(Session(), "myfw").train(4, Hook(bug))
    assert raised.value is bug and not isinstance(raised.value, PluginFailed)


def test_hooks_and_results_pass_through_unchanged():
    hook = Hook()
    guarded = GuardedSession(Session(), "myfw")
    guarded.train(6, hook)
    assert hook.calls == 3
    assert guarded.describe() == {"threads": "1"}
    assert guarded.optional("peak_device_memory_mb") is None


def test_a_build_error_naming_a_layer_kind_the_plugin_lacks_is_told_from_a_real_one():
    from dlbench.plugins.guarded import unknown_layer_kind
    from dlbench.zoo import get_model

    resnet, transformer = get_model("resnet20"), get_model("transformer")
    block = resnet.layers[3]  # a Residual: its repr quotes its body's kinds too
    lacking = {  # what the plugins written for the first zoo raise, and a plain dispatch miss
        "residual": ValueError(f"resnet20: layer {block!r} is not supported by the pytorch plugin"),
        "position_embedding": NotImplementedError("keras plugin: no builder for layer kind 'position_embedding'"),
        "attention": KeyError("attention"),
    }
    for kind, error in lacking.items():
        assert unknown_layer_kind(transformer if kind != "residual" else resnet, error) == kind
    real = [RuntimeError("CUDA out of memory while building 'conv2d'"),  # names a kind but lacks nothing
            ValueError("Dense on an image tensor needs a Flatten first"), KeyError("weights"),
            ValueError("layer 'lstm' is not supported"),  # a kind this model does not have
            None]
    for error in real:
        assert unknown_layer_kind(resnet, error) is None, error
