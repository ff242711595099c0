"""The fairness profile a session's ``describe()`` returns: typed, with required keys the kit checks.

Every record carries it (``record["fairness"]``) so a reader can see how each framework was driven. The
recipe part (optimiser, loss, initialisers, evaluation batch, precision) is not written by the plugin:
``fairness_profile`` copies it from the zoo spec, so it cannot drift from what the spec says. What only
the plugin knows (how the thread budget was applied, its compile mode, how ``sync`` waits, the memory
layout, the versions) it passes in; the kit checks each required key is there and non-empty, that
``recipe`` equals the spec's and that ``precision`` starts with the spec's precision.
"""

from __future__ import annotations

from typing import Any, Mapping, TypedDict

REQUIRED_KEYS = ("threads", "precision", "compile", "sync", "layout", "framework_versions", "recipe")


class FairnessProfile(TypedDict, total=False):
    """``describe()``'s mapping. Required: ``REQUIRED_KEYS``; any other key is free-form and recorded too."""

    threads: str  # how the thread budget was applied, e.g. "torch.set_num_threads(2) -> 2 intra-op threads"
    precision: str  # starts with the spec's precision ("float32"), may add how ("; TF32 off")
    compile: str  # "none", "torch.compile(mode=default)", "XLA jit_compile", ...
    sync: str  # how sync() waits, or why it need not
    layout: str  # NHWC / NCHW / channels-last, how sequences are laid out
    framework_versions: Mapping[str, str]
    recipe: Mapping[str, Any]  # spec.recipe.record(), filled in by fairness_profile
    batch_order: str  # whose batch order train() used
    tuning: Mapping[str, str]  # tuned variants: setting -> the performance guide it comes from


def fairness_profile(setup: Any, *, threads: str, compile: str, sync: str, layout: str,
                     framework_versions: Mapping[str, str], precision: str = "", **more: Any) -> FairnessProfile:
    """A complete profile for ``setup``: the plugin's facts plus the recipe read from the spec.

    ``precision`` defaults to the spec's; a plugin may say more ("float32; TF32 off") but must start with it.
    """
    recipe = setup.spec.recipe
    profile: dict[str, Any] = {
        "threads": threads, "precision": precision or recipe.precision, "compile": compile, "sync": sync,
        "layout": layout, "framework_versions": dict(framework_versions), "recipe": recipe.record(),
        "optimizer": recipe.describe(), "loss": setup.spec.loss + (" from logits" if recipe.loss_from_logits else ""),
    }
    profile.update(more)
    return profile  # type: ignore[return-value]


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
    if precision and not precision.startswith(recipe.precision):
        problems.append(f"'precision' is {precision!r}, the spec says {recipe.precision!r}")
    return problems
