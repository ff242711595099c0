"""Parity before timing: a case whose model is not the zoo's model is failed, never timed.

Two checks, cheap and framework-neutral: the trainable parameter count equals the spec's analytic
count, and the loss on the first training batch, before any step, is near ln(classes) (ln 2 for one
sigmoid output), which any correctly initialised classifier gives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dlbench.contract import TaskData
from dlbench.errors import CaseFailed
from dlbench.plugins.guarded import GuardedSession
from dlbench.zoo import ModelSpec

INITIAL_LOSS_TOLERANCE = 0.5  # relative: |loss - ln(classes)| <= 0.5 * ln(classes) in float32
# Extra relative slack per compute dtype (describe()'s "compute_dtype"): a bfloat16 forward pass rounds to 8
# significant bits, i.e. relative error 2**-8 per operation; 16 of them bound the logits' error of these models.
PRECISION_SLACK = {"float32": 0.0, "bfloat16": 16 * 2.0 ** -8, "float16": 16 * 2.0 ** -11}


def loss_tolerance(compute_dtype: str) -> float:
    """The relative tolerance of the first-batch loss for a session computing in ``compute_dtype``."""
    return INITIAL_LOSS_TOLERANCE + PRECISION_SLACK.get(compute_dtype, PRECISION_SLACK["bfloat16"])


@dataclass(frozen=True)
class Parity:
    params: int
    initial_loss: float
    expected_initial_loss: float


def check_parity(session: GuardedSession, spec: ModelSpec, data: TaskData, batch_size: int) -> Parity:
    """The parity figures of the case, or CaseFailed saying which check failed and by how much."""
    expected_params = spec.param_count(data.input_shape)
    params = session.param_count()
    if params != expected_params:
        raise CaseFailed(f"parity: plugin {session.plugin} built {spec.name} with {params:,} trainable parameters, "
                         f"the zoo spec has {expected_params:,}")
    initial_loss, _ = session.evaluate(data.x_train[:batch_size], data.y_train[:batch_size])
    expected_loss = spec.expected_initial_loss(data.num_classes)
    compute_dtype = str(session.describe().get("compute_dtype", "float32"))
    tolerance = loss_tolerance(compute_dtype)
    if not math.isfinite(initial_loss) or abs(initial_loss - expected_loss) > tolerance * expected_loss:
        raise CaseFailed(f"parity: first-batch loss {initial_loss:.4g} is not near the expected "
                         f"{expected_loss:.4g} (ln of the class count, within {tolerance:.0%} in {compute_dtype}); "
                         "check the model's initialisation")
    return Parity(params, initial_loss, expected_loss)
