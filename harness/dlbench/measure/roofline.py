"""Where a case sits on its device's roofline, and which wall it is up against.

The roofline model bounds a kernel's speed by ``min(peak FLOP/s, intensity x bandwidth)``, intensity being
FLOPs per byte moved. A training step is many kernels, so dlbench applies it to the whole step, with the
zoo's analytic counts:

- FLOPs per training sample: 3x the forward FLOPs (dlbench.zoo, the convention of every "% peak");
- bytes per training sample: every activation written and read once forward (2 x the activations of one
  sample, the input included) and three times that in training (the 3x again), in the compute dtype's
  bytes; plus the parameters' traffic of one step shared by the batch: 10 float32 passes over the
  parameters (forward read, backward read and gradient write, Adam reading parameters, gradients and two
  moments and writing three), divided by the batch size. An estimate of traffic to memory (caches and
  fusion move less), so it places a case, it does not time it.

The regime compares the achieved GFLOP/s with the bound at the case's intensity: below ``FAR`` (10%) of it
the case is **overhead-bound** (launches, dispatch, Python: the device is mostly idle, far below both
ceilings); otherwise **memory-bound** left of the ridge point (peak / bandwidth) and **compute-bound** right
of it. Pure functions; the ceilings come from dlbench.machine.peak (CPU) and dlbench.machine.gpu_peak (GPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

FAR = 0.10  # below this share of the roofline bound a case is overhead-bound
PARAMETER_PASSES = 10  # float32 passes over the parameters per training step (forward, backward, Adam)
TRAINING_FACTOR = 3  # training = 3x forward, for FLOPs and for activation traffic alike
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
REGIMES = ("compute-bound", "memory-bound", "overhead-bound")
MARKS = {"compute-bound": "C", "memory-bound": "M", "overhead-bound": "O"}


def training_bytes_per_sample(spec: Any, input_shape: tuple[int, ...], batch_size: int,
                              compute_dtype: str = "float32") -> float:
    """Bytes moved to and from memory per training sample at ``batch_size`` (see the module's estimate)."""
    activations = math.prod(input_shape) + sum(math.prod(shape) for shape in spec.shapes(input_shape))
    activation_bytes = TRAINING_FACTOR * 2 * activations * DTYPE_BYTES.get(compute_dtype, 4)
    parameter_bytes = PARAMETER_PASSES * 4 * spec.param_count(input_shape) / max(batch_size, 1)
    return float(activation_bytes + parameter_bytes)


def training_intensity(spec: Any, input_shape: tuple[int, ...], batch_size: int,
                       compute_dtype: str = "float32") -> float:
    """Training FLOPs per byte moved at ``batch_size``: where the case sits on the roofline's x axis."""
    flops = TRAINING_FACTOR * spec.flops_per_sample(input_shape)
    return flops / training_bytes_per_sample(spec, input_shape, batch_size, compute_dtype)


@dataclass(frozen=True)
class Position:
    """A case on its device's roofline: the regime, the bound at its intensity, and its share of it."""

    regime: str
    intensity: float  # FLOPs per byte
    bound_gflops: float  # min(peak, intensity x bandwidth)
    share: float  # achieved / bound
    ridge: float  # peak / bandwidth: the intensity where memory stops being the wall

    def record(self) -> dict[str, Any]:
        return {"regime": self.regime, "flops_per_byte": round(self.intensity, 3),
                "bound_gflops": round(self.bound_gflops, 2), "share_of_bound": round(self.share, 5),
                "ridge_flops_per_byte": round(self.ridge, 3)}


def classify(achieved_gflops: float, intensity: float, peak_gflops: float, bandwidth_gbs: float,
             far: float = FAR) -> Optional[Position]:
    """The regime of a case achieving ``achieved_gflops`` at ``intensity`` FLOPs/byte under these ceilings;
    None when a number is missing or not positive."""
    numbers = (achieved_gflops, intensity, peak_gflops, bandwidth_gbs)
    if any(not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0 for v in numbers):
        return None
    ridge = peak_gflops / bandwidth_gbs
    bound = min(peak_gflops, intensity * bandwidth_gbs)
    share = achieved_gflops / bound
    regime = "overhead-bound" if share < far else "memory-bound" if intensity < ridge else "compute-bound"
    return Position(regime, intensity, bound, share, ridge)
