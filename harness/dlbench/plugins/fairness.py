"""The fairness profile a session's ``describe()`` returns: typed, with required keys the kit checks.

Every record carries it (``record["fairness"]``) so a reader can see how each framework was driven. The
recipe part (optimiser hyper-parameters, loss, initialisers, evaluation batch) is not written by the plugin:
``fairness_profile`` copies it from the zoo spec, so it cannot drift from what the spec says, and it fills in
the wording every plugin would otherwise restate (the batch order, TF32 on the CPU, the compute dtype).
What only the plugin knows (how the thread budget was applied, its compile mode, how ``sync`` waits, the
memory layout, the versions, the precision it computes in) it passes in; the kit checks each required key
is there and non-empty, that ``recipe`` equals the spec's and that ``precision`` is one the zoo allows
(``dlbench.zoo.COMPUTE_PRECISIONS``: float32, or bfloat16 compute with float32 weights).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, TypedDict

from dlbench.zoo import COMPUTE_PRECISIONS

REQUIRED_KEYS = ("threads", "precision", "compile", "sync", "layout", "framework_versions", "recipe")
# What fairness_profile always writes: the required keys and those every built-in plugin recorded by hand.
COMMON_KEYS = REQUIRED_KEYS + ("compute_dtype", "tf32", "optimizer", "loss", "batch_order", "device_name", "seed")
HARNESS_ORDER = "the harness's stream (setup.stream)"


class FairnessProfile(TypedDict, total=False):
    """``describe()``'s mapping. Required: ``REQUIRED_KEYS``; any other key is free-form and recorded too."""

    threads: str  # how the thread budget was applied, e.g. "torch.set_num_threads(2) -> 2 intra-op threads"
    precision: str  # starts with a COMPUTE_PRECISIONS entry ("float32", "bfloat16"), may add how ("; TF32 off")
    compute_dtype: str  # that entry alone: what the case computed in
    compile: str  # "none", "torch.compile(mode=default)", "XLA jit_compile", ...
    sync: str  # how sync() waits, or why it need not
    layout: str  # NHWC / NCHW / channels-last, how sequences are laid out
    framework_versions: Mapping[str, str]
    recipe: Mapping[str, Any]  # spec.recipe.record(), filled in by fairness_profile
    tf32: str  # how TF32 was kept off on a GPU (or that it is on, for the TF32 variants); "not applicable on CPU"
    optimizer: str  # the implementation, then the recipe's hyper-parameters
    loss: str  # the implementation, then the spec's loss
    batch_order: str  # whose batch order train() used, and how it gathers the batches
    device_name: str
    seed: str  # what the seed fixed, and how
    tuning: Mapping[str, str]  # tuned variants: setting -> the performance guide it comes from


def precision_of(text: str) -> str:
    """The COMPUTE_PRECISIONS entry ``text`` starts with ("bfloat16 autocast ..." -> "bfloat16"), else ''."""
    for name in sorted(COMPUTE_PRECISIONS, key=len, reverse=True):
        if text.startswith(name) and (len(text) == len(name) or not text[len(name)].isalnum()):
            return name
    return ""


def fairness_profile(setup: Any, *, threads: str, compile: str, sync: str, layout: str,
                     framework_versions: Mapping[str, str], precision: str = "", compute_dtype: str = "",
                     tf32: str = "", optimizer: str = "", loss: str = "", batches: str = "", device_name: str = "",
                     seed: str = "", tuning: Optional[Mapping[str, str]] = None, **more: Any) -> FairnessProfile:
    """A complete profile for ``setup``: the plugin's facts plus the recipe read from the spec.

    ``compute_dtype`` (default the recipe's float32) is what the case computes in; ``precision`` says how
    ("autocast on forward and loss; float32 weights") and is prefixed with it unless it already starts with
    an allowed precision. ``optimizer`` and ``loss`` name the implementation (the recipe's values follow);
    ``batches`` says how train() gathers the harness's batches; ``tf32`` defaults to "not applicable on
    CPU" on the CPU. Keys given in ``more`` are recorded too and win over the defaults.
    """
    recipe, spec = setup.spec.recipe, setup.spec
    dtype = compute_dtype or precision_of(precision) or recipe.precision
    if precision_of(precision):
        said = precision
    else:
        said = f"{dtype}: {precision}" if precision else dtype
    spec_loss = spec.loss + (" from logits" if recipe.loss_from_logits else "")
    profile: dict[str, Any] = {
        "threads": threads, "precision": said, "compute_dtype": dtype, "compile": compile, "sync": sync,
        "layout": layout, "framework_versions": dict(framework_versions), "recipe": recipe.record(),
        "tf32": tf32 or ("not applicable on CPU" if setup.device == "cpu" else "not said by the plugin"),
        "optimizer": f"{optimizer}: {recipe.describe()}" if optimizer else recipe.describe(),
        "loss": f"{loss} ({spec_loss})" if loss else spec_loss,
        "batch_order": f"{HARNESS_ORDER}: {batches}" if batches else HARNESS_ORDER,
        "device_name": device_name or (_cpu_name() if setup.device == "cpu" else "not said by the plugin"),
        "seed": seed or f"seed {setup.seed}",
    }
    if tuning is not None:
        profile["tuning"] = dict(tuning)
    profile.update(more)
    return profile  # type: ignore[return-value]


def _cpu_name() -> str:
    from dlbench.machine.cpu import cpu_model

    return cpu_model()


def profile_problems(profile: Mapping[str, Any], spec: Any) -> list[str]:
    """What is missing from a ``describe()`` result or disagrees with the spec (empty when it is complete)."""
    problems = [f"no {key!r}" for key in REQUIRED_KEYS
                if key not in profile or profile[key] is None or not str(profile[key]).strip()
                or (isinstance(profile[key], Mapping) and not profile[key])]
    recipe = spec.recipe
    if "recipe" in profile and profile["recipe"] and dict(profile["recipe"]) != recipe.record():
        wrong = sorted(k for k, v in recipe.record().items() if dict(profile["recipe"]).get(k) != v)
        problems.append(f"'recipe' differs from the spec's in {', '.join(wrong) or 'extra keys'} "
                        "(build describe() with dlbench.fairness_profile(setup, ...))")
    precision = str(profile.get("precision", ""))
    allowed = " or ".join(repr(p) for p in COMPUTE_PRECISIONS)
    if precision and not precision_of(precision):
        problems.append(f"'precision' is {precision!r}: it must start with {allowed} (what the case computes in)")
    dtype = profile.get("compute_dtype")
    if dtype is not None and precision_of(precision) and dtype != precision_of(precision):
        problems.append(f"'compute_dtype' is {dtype!r} but 'precision' says {precision_of(precision)!r}")
    return problems
