"""The ways to run Keras that dlbench knows (backend, training loop, XLA, precision, tuned), by name.

A module of its own, below both the framework object and the session, which each need it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    """One way to run Keras: which backend, which training loop, XLA or not."""

    name: str
    backend: str  # "tensorflow" | "torch" | "jax"
    loop: str  # "fit" (model.fit) | "custom" (GradientTape step in a tf.function)
    xla: bool  # jit_compile=True (XLA on tensorflow, torch.compile on torch; jax always jits)
    precision: str = "float32"  # the Keras dtype policy: "float32" or "mixed_bfloat16"
    tuned: bool = False  # predict as the Keras/TF guides recommend (dlbench_keras.tuned)


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("fit", "tensorflow", "fit", False),  # first = default: model.fit, as the tutorials do
        Variant("custom", "tensorflow", "custom", False),
        Variant("fit-xla", "tensorflow", "fit", True),
        Variant("custom-xla", "tensorflow", "custom", True),
        Variant("tuned", "tensorflow", "fit", False, tuned=True),
        Variant("mixed-bf16", "tensorflow", "fit", False, "mixed_bfloat16"),  # bf16 compute, float32 weights
        Variant("jax-fit", "jax", "fit", False),
        Variant("torch-fit", "torch", "fit", False),
        Variant("torch-fit-jit", "torch", "fit", True),  # jit_compile=True: torch.compile of the train step
    )
}


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown keras variant {name!r}; choose from {', '.join(VARIANTS)}") from None
