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
from dlbench.guarded import GuardedSession
from dlbench.zoo import ModelSpec

INITIAL_LOSS_TOLERANCE = 0.5  # relative: |loss - ln(classes)| <= 0.5 * ln(classes)


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
    if not math.isfinite(initial_loss) or abs(initial_loss - expected_loss) > INITIAL_LOSS_TOLERANCE * expected_loss:
        raise CaseFailed(f"parity: first-batch loss {initial_loss:.4g} is not near the expected "
                         f"{expected_loss:.4g} (ln of the class count); check the model's initialisation")
    return Parity(params, initial_loss, expected_loss)
