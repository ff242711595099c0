"""How the SUT serves Server queries: one at a time (``single``) or gathered into batches (``batched``).

``batched`` is what serving systems and MLPerf submitters do (NVIDIA's harness, Triton's dynamic batcher):
the queries that wait are gathered into one ``predict`` call of at most ``max_batch`` samples, and the
gatherer waits at most ``timeout_us`` after the first query arrived for more to come. A query that has
waited longer than the timeout (it queued behind a batch being served) goes out with the next batch at
once, with whatever else is queued.

Shapes. Tracing frameworks (Keras' tf.function, JAX's jit, torch.compile) compile once per input shape,
and a compile on LoadGen's clock would break the latency bound. So a batch is padded with its own samples
to the next *bucket*: the powers of two below ``max_batch``, and ``max_batch`` itself (NVIDIA's harness
keeps a CUDA graph per batch size the same way). Every bucket is compiled before LoadGen's test starts.
The padding is the same rule for every framework and is counted in the record (``padded_samples``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

SERVE_MODES = ("single", "batched")
DEFAULT_MAX_BATCH = (8, 32, 128)  # the Server search's grid when --max-batch is not given
TIMEOUT_SHARE_OF_BOUND = 0.1  # the grid's non-zero timeout: a tenth of the latency bound


@dataclass(frozen=True)
class ServePolicy:
    """One way of serving Server queries: the mode and, when batched, the batch cap and the gather timeout."""

    mode: str = "single"
    max_batch: int = 1
    timeout_us: float = 0.0

    @property
    def batched(self) -> bool:
        return self.mode == "batched"

    @property
    def timeout_s(self) -> float:
        return self.timeout_us / 1e6

    def buckets(self) -> tuple[int, ...]:
        """The batch sizes ``predict`` ever sees: powers of two below ``max_batch``, and ``max_batch``."""
        sizes = [1]
        while sizes[-1] * 2 < self.max_batch:
            sizes.append(sizes[-1] * 2)
        if sizes[-1] != self.max_batch:
            sizes.append(self.max_batch)
        return tuple(sizes)

    def bucket(self, samples: int) -> int:
        """The smallest bucket that holds ``samples`` (never more than ``max_batch``)."""
        return next((size for size in self.buckets() if size >= samples), self.max_batch)

    def describe(self) -> dict[str, Any]:
        if not self.batched:
            return {"mode": "single", "max_batch": 1, "batch_timeout_us": 0}
        return {"mode": "batched", "max_batch": self.max_batch, "batch_timeout_us": self.timeout_us}

    def label(self) -> str:
        """``single`` or ``batched <=32, 1000 µs`` for tables and log folder names."""
        return "single" if not self.batched else f"batched <={self.max_batch}, {self.timeout_us:g} µs"


SINGLE = ServePolicy()


def serve_grid(mode: str, max_batch: Sequence[int], timeout_us: Sequence[float],
               bound_ms: float) -> list[ServePolicy]:
    """The policies the Server search tries, most promising first (the first gets the full QPS search).

    ``single``: one. ``batched``: every max batch x timeout given, or the defaults (8, 32, 128) x (0, a tenth
    of the bound); the largest batch without a timeout leads: greedy batching adapts the batch to the
    queue, so it is the likeliest best, and the others then only have to beat it.
    """
    if mode != "batched":
        return [SINGLE]
    batches = sorted(set(max_batch or DEFAULT_MAX_BATCH), reverse=True)
    timeouts = sorted(set(timeout_us)) if timeout_us else [0.0, round(TIMEOUT_SHARE_OF_BOUND * bound_ms * 1000)]
    return [ServePolicy("batched", int(b), float(t)) for t in timeouts for b in batches]
