"""``--batch-size auto``: the batch where the device is really working, found before the case is measured.

At the seed recipes' batch 128 a GPU mostly waits for kernel launches: a table at that batch alone tells a
GPU user the wrong story. The sweep doubles the batch from the profile's start until training throughput
rises by less than ``GAIN`` (5%) over the previous batch, memory runs out, or the batch outgrows the training
set; the **knee** is the last batch whose doubling still paid. Each batch gets a fresh session (the same
plugin, seed and stream rules), a warm-up (compilation, allocations) and a few timed blocks of at least
``block_s`` seconds; the median block is the batch's rate. The whole curve is recorded
(``metrics.batch_sweep``) and the case is then measured as usual at the knee, in the same process (a jitted
or compiled step for that shape is already built). Everything here is off the case's clock.
"""

from __future__ import annotations

import gc
import statistics
import time
from typing import Any, Callable, Optional

GAIN = 0.05  # stop when doubling the batch raises training samples/s by less than this
MAX_BATCH = 65536
BLOCKS = 3
OUT_OF_MEMORY = ("out of memory", "resource_exhausted", "resource exhausted", "oom when allocating",
                 "outofmemoryerror", "cuda_error_out_of_memory", "failed to allocate")


def out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` (or what it wraps) is a framework saying the device ran out of memory."""
    seen: Optional[BaseException] = error
    while seen is not None:
        text = f"{type(seen).__name__}: {seen}".lower()
        if any(marker in text for marker in OUT_OF_MEMORY):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def rate_at(session: Any, batch_size: int, block_s: float) -> float:
    """Training samples/s of ``session``: warm-up, steps calibrated to ``block_s``, median of BLOCKS blocks."""
    session.train(2)
    session.sync()
    steps = 1
    while True:
        start = time.perf_counter()
        session.train(steps)
        session.sync()
        elapsed = time.perf_counter() - start
        if elapsed >= block_s or steps >= 4096:
            break
        steps = min(4096, max(steps * 2, int(steps * block_s / max(elapsed, 1e-6))))
    rates = []
    for _ in range(BLOCKS):
        start = time.perf_counter()
        session.train(steps)
        session.sync()
        rates.append(batch_size * steps / (time.perf_counter() - start))
    return statistics.median(rates)


def sweep(make_session: Callable[[int], Any], samples: int, start: int, block_s: float,
          gain: float = GAIN, collect: Callable[[], Any] = gc.collect) -> dict[str, Any]:
    """Double the batch from ``start`` (see the module); ``make_session(batch)`` prepares a fresh session, and
    ``collect`` frees the last one's device buffers (cycles included) before the next is made.

    Returns {"start", "knee", "curve": [{"batch_size", "train_samples_per_s"}], "stopped", "rule", "seconds"}; "knee" is
    None when even ``start`` ran out of memory. Any other error propagates: the case fails as it would have.
    """
    curve: list[dict[str, Any]] = []
    knee, knee_rate, stopped, batch, began = None, 0.0, "", start, time.perf_counter()
    while True:
        if batch > min(samples, MAX_BATCH):
            stopped = f"batch {batch} is beyond the {samples} training samples" if batch > samples else \
                f"batch {batch} is beyond {MAX_BATCH}"
            break
        try:
            rate = rate_at(make_session(batch), batch, block_s)
        except Exception as exc:  # noqa: BLE001 - only out-of-memory ends the sweep quietly
            if not out_of_memory(exc):
                raise
            stopped = f"out of memory at batch {batch}: {str(exc).strip().splitlines()[0][:200]}"
            del exc
            break
        finally:
            collect()  # the last session's device buffers go before the next one's are made
        curve.append({"batch_size": batch, "train_samples_per_s": rate})
        if knee is not None and rate < (1 + gain) * knee_rate:
            stopped = f"batch {batch} trains {rate / knee_rate - 1:+.1%} faster than batch {knee}, under {gain:.0%}"
            break
        knee, knee_rate, batch = batch, rate, batch * 2
    return {"start": start, "knee": knee, "curve": curve, "stopped": stopped,
            "rule": f"double the batch from {start} until training samples/s rises by less than {gain:.0%} "
                    "(or memory or the training set runs out); the knee is the last batch whose doubling paid",
            "block_s": block_s, "seconds": round(time.perf_counter() - began, 3)}
