"""What a case measures beside the clock: energy, device-timer agreement, device memory peaks per phase.

The worker hands the timing code one meter per phase (``CaseMeters.around``); the block clock calls its
``start()`` right before it reads the clock at a block's start and ``stop()`` right after it read the clock
(after ``sync()``) at the block's end, as for the thread meter. Within those calls the device timer goes
innermost (its events bracket the host's clock reads as tightly as possible), then the energy meter.

Device timer: a session may offer ``device_timer()`` returning an object with ``start()``, ``stop() ->
seconds`` (device time between the two; it waits for the stop event) and ``name`` (torch: CUDA events).
Per timed block the record keeps host seconds / device seconds: 1.0 means the host clock measured the
device's work; below 1 a ``sync()`` returned before the work was done.

CPU clock: per block, the process's CPU seconds (all its threads) and minor page faults, read innermost with
the host clock. A block's rate on the CPU clock (samples per CPU second) hardly moves when other processes
take the core (a wall-clock rate does), so the fidelity benchmarks compare it with a plain loop's
(docs/fidelity.md); faults per step say which allocator regime a process ran in (docs/noise.md, section 3).

Memory: a session may offer ``peak_device_memory_mb()`` and ``reset_peak_device_memory() -> bool``; the
peak is read after training (with its evaluations) and after inference, reset in between.
"""

from __future__ import annotations

import resource
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from dlbench.measure import energy
from dlbench.plugins.guarded import GuardedSession, plugin_call


@dataclass
class _Timed:
    """Per block, in the order blocks ran: host seconds, device seconds (device timer), the process's CPU
    seconds and minor page faults."""

    host: list[float] = field(default_factory=list)
    device: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    faults: list[int] = field(default_factory=list)


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class _PhaseMeter:
    """The meter one timing call gets: fans ``start``/``stop`` out and remembers which blocks were its own."""

    def __init__(self, owner: "CaseMeters", inner: Any, phase: str) -> None:
        self.owner, self.inner, self.phase = owner, inner, phase
        self.blocks: list[int] = []  # indices into the owner's per-block lists, the warm-up first
        self._open = False

    def start(self) -> None:
        if self.inner is not None:
            self.inner.start()
        self.owner.energy.start()
        self.owner.timer_start()
        self._open = True

    def stop(self) -> None:
        if not self._open:
            return
        self.owner.timer_stop()
        self.owner.energy.stop()
        if self.inner is not None:
            self.inner.stop()
        self._open = False
        self.blocks.append(len(self.owner.timed.host) - 1)


class CaseMeters:
    """One case's energy meter, device timer and memory peaks; gives each timing phase its meter."""

    def __init__(self, session: GuardedSession, device: str) -> None:
        self.session = session
        self.energy = energy.meter_for(device)
        self.timed = _Timed()
        self.phases: dict[str, list[_PhaseMeter]] = {}
        make_timer = session.optional("device_timer")
        self.timer = make_timer() if make_timer is not None else None
        self.peaks: dict[str, Optional[float]] = {}
        self.reset_ok: Optional[bool] = None
        self._host_started = 0.0
        self._cpu_started, self._faults_started = 0.0, 0
        self._timer_open = False
        self.reset_peak()  # the peak of set-up and parity checks is not the training's

    # -- block boundaries ---------------------------------------------------------------------------------
    def around(self, inner: Any, phase: str) -> _PhaseMeter:
        meter = _PhaseMeter(self, inner, phase)
        self.phases.setdefault(phase, []).append(meter)
        return meter

    def timer_start(self) -> None:
        if self.timer is not None:
            plugin_call(self.session.plugin, "device_timer().start", self.timer.start)
            self._timer_open = True
        self._faults_started, self._cpu_started = _minor_faults(), time.process_time()
        self._host_started = time.perf_counter()

    def timer_stop(self) -> None:
        host = time.perf_counter() - self._host_started
        self.timed.cpu.append(time.process_time() - self._cpu_started)
        self.timed.faults.append(_minor_faults() - self._faults_started)
        device = float("nan")
        if self.timer is not None and self._timer_open:
            device = float(plugin_call(self.session.plugin, "device_timer().stop", self.timer.stop))
            self._timer_open = False
        self.timed.host.append(host)
        self.timed.device.append(device)

    def settle(self) -> None:
        """After a phase: the block the timing code opened after its last hook, never ended, is dropped."""
        for meters in self.phases.values():
            for meter in meters:
                meter._open = False
        self.energy.cancel()
        self._timer_open = False

    # -- memory -------------------------------------------------------------------------------------------
    def reset_peak(self) -> None:
        reset = self.session.optional("reset_peak_device_memory")
        self.reset_ok = bool(reset()) if reset is not None else False

    def phase_peak(self, phase: str) -> None:
        """Record the device memory peak since the last reset as ``phase``'s, then reset it."""
        peak = self.session.optional("peak_device_memory_mb")
        if peak is None:  # a CPU session: peak RSS covers it
            return
        value = peak()
        if value is None:  # a session that has the method but no device memory (a CPU case)
            return
        value = float(value)
        first = not self.peaks
        # without a reset, only the first phase's peak is its own; the later ones include it
        self.peaks[phase] = value if (self.reset_ok or first) else None
        if value is not None:
            self.peaks["_overall"] = max(value, self.peaks.get("_overall") or 0.0)
        self.reset_peak()

    # -- the record ---------------------------------------------------------------------------------------
    def timed_blocks(self, *phases: str) -> list[int]:
        """Indices of the phases' timed blocks: every timing call's first block is its warm-up."""
        return [i for phase in phases for meter in self.phases.get(phase, []) for i in meter.blocks[1:]]

    def metrics(self, train_rate: Optional[float], infer_rate: Optional[float],
                train_rates: list[float], infer_rates: list[float],
                batch_sizes: tuple[int, int] = (0, 0)) -> dict[str, Any]:
        """The record's fields of these meters; ``batch_sizes``: training's and Offline's, for faults per step/call."""
        self.energy.close()
        train_blocks, infer_blocks = self.timed_blocks("train", "top_up"), self.timed_blocks("infer")
        info = self.energy.describe()
        out: dict[str, Any] = {
            "train_j_per_1k_samples": energy.joules_per_1k(self.energy, train_blocks, train_rate),
            "infer_j_per_1k_samples": energy.joules_per_1k(self.energy, infer_blocks, infer_rate),
        }
        for prefix, blocks in (("train", train_blocks), ("infer", infer_blocks)):
            seconds = sum(self.energy.blocks.seconds[i] for i in blocks if i < len(self.energy.blocks.seconds))
            joules = sum(self.energy.blocks.joules[i] for i in blocks if i < len(self.energy.blocks.joules))
            if seconds > 0 and info["method"] != energy.NOT_MEASURED:
                info[f"{prefix}_mean_power_w"] = joules / seconds
                info[f"{prefix}_timed_s"] = seconds
                if joules <= 0:
                    info.setdefault("reason", "the counter did not advance over the timed blocks (too short?)")
        out["energy"] = info
        out.update(self._cpu_clock("train", train_blocks, train_rates, batch_sizes[0], "step"))
        out.update(self._cpu_clock("infer", infer_blocks, infer_rates, batch_sizes[1], "call"))
        if self.timer is not None:
            out["device_timer"] = str(getattr(self.timer, "name", type(self.timer).__name__))
            for prefix, blocks, rates in (("train", train_blocks, train_rates), ("infer", infer_blocks, infer_rates)):
                out.update(self._agreement(prefix, blocks, rates))
        if self.peaks:
            out["train_peak_device_memory_mb"] = self.peaks.get("train")
            out["infer_peak_device_memory_mb"] = self.peaks.get("infer")
            if self.peaks.get("_overall") is not None:
                out["peak_device_memory_mb"] = self.peaks["_overall"]
            if not self.reset_ok:
                out["device_memory_note"] = ("the framework cannot reset its peak: the inference peak is not "
                                             "separable from training's")
        return out

    def _cpu_clock(self, prefix: str, blocks: list[int], rates: list[float], batch: int, unit: str) -> dict[str, Any]:
        """Per block CPU seconds, the blocks' rates on the CPU clock, the CPU share of the wall time, faults per
        step (or call); nothing when the blocks and the rates do not line up."""
        if not blocks or len(blocks) != len(rates) or max(blocks) >= len(self.timed.cpu):
            return {}
        cpu = [self.timed.cpu[i] for i in blocks]
        samples = [rate * self.timed.host[i] for rate, i in zip(rates, blocks)]
        host = sum(self.timed.host[i] for i in blocks)
        out: dict[str, Any] = {f"{prefix}_blocks_cpu_s": cpu,
                               f"{prefix}_cpu_blocks": [n / s for n, s in zip(samples, cpu) if s > 0],
                               f"{prefix}_cpu_share": sum(cpu) / host if host > 0 else None}
        if batch and sum(samples) > 0:
            out[f"{prefix}_faults_per_{unit}"] = sum(self.timed.faults[i] for i in blocks) * batch / sum(samples)
        return out

    def _agreement(self, prefix: str, blocks: list[int], rates: list[float]) -> dict[str, Any]:
        pairs = [(self.timed.host[i], self.timed.device[i]) for i in blocks
                 if self.timed.device[i] == self.timed.device[i] and self.timed.device[i] > 0]
        if not pairs:
            return {}
        ratios = [host / device for host, device in pairs]
        out: dict[str, Any] = {f"{prefix}_event_agreement": statistics.median(ratios),
                               f"{prefix}_event_agreement_range": [min(ratios), max(ratios)]}
        if len(rates) == len(ratios):  # host samples/s of the same blocks, in the same order
            out[f"{prefix}_event_samples_per_s"] = statistics.median(r * a for r, a in zip(rates, ratios))
        return out
