"""All timing: blocked training timing, Offline and SingleStream inference, time-to-accuracy.

Rules (the plugin never times itself):
- the clock is read only after ``session.sync()``, at block boundaries, never around single async steps;
- the first training step is timed alone (tracing, compilation, autotune) and kept out of steady state;
- the first timed block of a ``train`` call is a warm-up and discarded;
- validation for time-to-accuracy runs between blocks, on the time-to-accuracy clock but off the
  throughput clock; model set-up happens before the clock starts.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from dlbench.contract import Session, TaskData
from dlbench.measure.profiles import Profile, blocks_plan
from dlbench.stats.estimators import ci_half_width, percentile

clock = time.perf_counter


@dataclass
class _BlockClock:
    """The hook handed to ``Session.train``: sync, read the clock, maybe validate, restart the clock."""

    session: Session
    steps: int
    validate_every: int = 0  # blocks between validations (0: never)
    validate: Any = None  # callable returning validation accuracy
    durations: list[float] = field(default_factory=list)
    validations: list[tuple[float, float]] = field(default_factory=list)  # (clock time, accuracy)
    started: float = 0.0
    meter: Any = None  # a dlbench.measure.thread_meter.ThreadMeter: per-thread CPU time over the timed blocks

    def begin(self) -> None:
        if self.meter is not None:
            self.meter.start()
        self.started = clock()

    def __call__(self) -> None:
        self.session.sync()
        now = clock()
        self.durations.append(now - self.started)
        if self.meter is not None:
            self.meter.stop()  # read off the clock: between `now` and the next block's start
        if self.validate_every and len(self.durations) % self.validate_every == 0:
            self.validations.append((clock(), self.validate()))
            now = clock()  # evaluation stays off the throughput clock
        if self.meter is not None:
            self.meter.start()
            now = clock()
        self.started = now


@dataclass
class TrainingResult:
    first_step_s: float
    block_steps: int  # steps of a (merged) block of ``rates``
    rates: list[float]  # samples/s of the timed blocks after the warm-up, short ones merged (merge_short_blocks)
    steps: int
    tta_s: Optional[float]
    val_accuracy: float
    end_s: float  # wall time of the whole training, from the first step
    raw_block_steps: int = 0  # steps of a block as timed; differs from block_steps when blocks were merged
    raw_rates: list[float] = field(default_factory=list)  # samples/s of every timed block, as timed


def merge_short_blocks(durations: list[float], min_block_s: float) -> list[tuple[int, float]]:
    """(blocks, seconds) of consecutive timed blocks grouped until each group lasts ``min_block_s``.

    A training budget too small for ``min_blocks`` blocks of ``min_block_s`` (fast models in the quick
    profile: 20-30 ms blocks) gives blocks whose spread is the scheduler's and the hook's, not the
    framework's; grouping equal-step neighbours gives blocks as long as every other block of the case
    without dropping a timed step. A short remainder joins the last group; blocks already long enough stay.
    """
    groups: list[tuple[int, float]] = []
    count, seconds = 0, 0.0
    for duration in durations:
        count, seconds = count + 1, seconds + duration
        if seconds >= min_block_s:
            groups.append((count, seconds))
            count, seconds = 0, 0.0
    if count:
        if groups:
            last_count, last_seconds = groups.pop()
            groups.append((last_count + count, last_seconds + seconds))
        else:
            groups.append((count, seconds))
    return groups


def _calibrate(session: Session, budget: int, min_block_s: float) -> tuple[float, int]:
    """(seconds per step, steps used): doubling calls until one lasts min_block_s / 2 or 1/5 of the budget is used."""
    used, count = 0, 1
    while True:
        start = clock()
        session.train(count)
        session.sync()
        elapsed = clock() - start
        used += count
        if elapsed >= min_block_s / 2 or used + 2 * count > budget // 5:
            return elapsed / count, used
        count *= 2


def measure_training(session: Session, data: TaskData, batch_size: int, steps: int, profile: Profile,
                     target: Optional[float], meter: Any = None) -> TrainingResult:
    """Train exactly ``steps`` steps in timed blocks, validating now and then for time-to-accuracy."""

    def validate() -> float:
        return session.evaluate(data.x_val, data.y_val)[1]

    start = clock()
    session.train(1)
    session.sync()
    first_step_s = clock() - start
    done = 1
    step_s, used = _calibrate(session, steps - done, profile.min_block_s)
    done += used

    validations: list[tuple[float, float]] = []
    block_steps, blocks = blocks_plan(steps - done, step_s, profile)
    hook = _BlockClock(session, block_steps, meter=meter)
    if target is not None and profile.tta_evaluations:
        hook.validate_every = max(1, blocks // profile.tta_evaluations)
        hook.validate = validate
    if blocks * block_steps and steps > done:
        hook.begin()
        session.train(blocks * block_steps, hook)
        done += blocks * block_steps
        validations = hook.validations
    if steps > done:
        session.train(steps - done)  # the remainder, so every framework trains exactly `steps` steps
        session.sync()
    val_accuracy = validate()
    end = clock()
    validations.append((end, val_accuracy))
    reached = None
    if target is not None:
        reached = next((t - start for t, acc in validations if acc >= target), None)
    timed = [seconds for seconds in hook.durations[1:] if seconds > 0]  # the first block of a call is a warm-up
    raw_rates = [block_steps * batch_size / seconds for seconds in timed]
    groups = merge_short_blocks(timed, profile.min_block_s)
    rates = [count * block_steps * batch_size / seconds for count, seconds in groups]
    merged_steps = block_steps * (groups[0][0] if groups else 1)
    return TrainingResult(first_step_s, merged_steps, rates, steps, reached, val_accuracy, end - start,
                          raw_block_steps=block_steps, raw_rates=raw_rates)


def top_up_training(session: Session, result: TrainingResult, batch_size: int, profile: Profile,
                    meter: Any = None) -> int:
    """More timed blocks: until ``profile.min_timed_s`` is timed, then (adaptive sampling) until the
    estimator's 95% CI half-width is under ``profile.ci_target`` or ``profile.max_timed_s`` is spent.

    Runs after accuracy was measured, so accuracy still comes from exactly the budget's steps.
    Returns the extra steps run; their block rates are appended to ``result.rates``. Each ``train`` call
    spends one untimed warm-up block, so the blocks come in chunks (at least 3, about half the blocks
    held so far), each cut to what is left of the cap.
    """
    have_s = sum(result.raw_block_steps * batch_size / rate for rate in result.raw_rates)
    extra = 0
    while want_more(result.rates, have_s, profile.min_timed_s, profile.max_timed_s, profile):
        step_s = batch_size / statistics.median(result.rates) if result.rates else result.first_step_s
        block_steps = max(1, math.ceil(profile.min_block_s / max(step_s, 1e-9)))
        block_s = block_steps * step_s
        if have_s < profile.min_timed_s:
            blocks = max(profile.min_blocks, math.ceil((profile.min_timed_s - have_s) / profile.min_block_s))
        else:
            left = math.floor((profile.max_timed_s - have_s) / max(block_s, 1e-9))
            blocks = min(max(3, len(result.rates) // 2), max(left, 1))
        hook = _BlockClock(session, block_steps, meter=meter)
        hook.begin()
        session.train((blocks + 1) * block_steps, hook)
        timed = [seconds for seconds in hook.durations[1:] if seconds > 0]
        result.rates.extend(block_steps * batch_size / seconds for seconds in timed)
        result.raw_rates.extend(block_steps * batch_size / seconds for seconds in timed)
        have_s += sum(timed)
        extra += (blocks + 1) * block_steps
        if not timed:  # a session that does not call the hook: no more blocks will come of asking again
            break
    return extra


def want_more(rates: list[float], have_s: float, min_s: float, max_s: float, profile: Profile) -> bool:
    """The stopping rule of adaptive sampling: time more blocks while fewer than ``min_s`` seconds are timed,
    or while the estimator's CI half-width is above the target and fewer than ``max_s`` seconds are timed."""
    if have_s < min_s:
        return True
    if not profile.ci_target or have_s >= max_s:
        return False
    return len(rates) < 2 or ci_half_width(rates, profile.estimator) > profile.ci_target


@dataclass
class OfflineResult:
    block_samples_per_s: list[float]
    first_call_s: float


def measure_offline(session: Session, x: np.ndarray, batch_size: int, profile: Profile,
                    meter: Any = None) -> OfflineResult:
    """MLPerf Offline: throughput of ``predict`` on one large staged batch, in synced blocks."""
    batch = _batch_of(x, batch_size)
    staged = session.stage(batch)
    start = clock()
    session.predict(staged)
    session.sync()
    first = clock() - start
    start = clock()
    session.predict(staged)
    session.sync()
    call_s = max(clock() - start, 1e-9)
    calls = max(1, math.ceil(profile.infer_min_block_s / call_s))
    rates: list[float] = []
    timed_s = 0.0
    while len(rates) < profile.infer_blocks + 1 or want_more(rates[1:], timed_s, 0.0, profile.infer_max_timed_s,
                                                                profile):
        if meter is not None:
            meter.start()
        start = clock()
        for _ in range(calls):
            session.predict(staged)
        session.sync()
        elapsed = clock() - start
        rates.append(calls * batch_size / elapsed)
        timed_s += elapsed if len(rates) > 1 else 0.0  # the first block is a warm-up
        if meter is not None:
            meter.stop()
    return OfflineResult(rates[1:], first)


def measure_latency(session: Session, x: np.ndarray, profile: Profile) -> dict[str, float]:
    """MLPerf SingleStream: one query of batch 1 at a time, each timed to completion (sync included)."""
    queries = [session.stage(x[i: i + 1]) for i in range(min(16, len(x)))]
    for staged in queries[:4]:  # warm-up
        session.predict(staged)
        session.sync()
    latencies: list[float] = []
    began = clock()
    while True:
        elapsed = clock() - began
        if len(latencies) >= profile.latency_min_count and elapsed >= profile.latency_min_s:
            break
        if elapsed >= profile.latency_max_s and len(latencies) >= 10:
            break
        staged = queries[len(latencies) % len(queries)]
        start = clock()
        session.predict(staged)
        session.sync()
        latencies.append((clock() - start) * 1000.0)
    return {"p50": percentile(latencies, 50), "p90": percentile(latencies, 90), "p99": percentile(latencies, 99),
            "mean": sum(latencies) / len(latencies), "count": len(latencies)}


def _batch_of(x: np.ndarray, size: int) -> np.ndarray:
    if len(x) >= size:
        return x[:size]
    return np.concatenate([x] * math.ceil(size / len(x)))[:size]

