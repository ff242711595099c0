"""Energy over the timed blocks: an NVML or RAPL counter where one exists, sampled power where not.

A GPU case reads NVML (the ``nvidia-ml-py`` package, imported here lazily): the board's total-energy
counter (Volta and later, millijoules), else its power draw sampled on a background thread while a
timed block runs and integrated (trapezoids). A CPU case reads Linux RAPL package counters under
``/sys/class/powercap`` when they are readable. Where none of this works the record says
``"method": "not measured"`` with the reason, and the joules fields stay null: never 0.

Every meter has ``start()``/``stop()`` around each timed block (the same calls the block clock makes
on the thread meter) and keeps, per block, the host seconds and the joules between them. Counters are
read outside the timed windows' clock reads, so reading them costs the measurement nothing.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

NOT_MEASURED = "not measured"
SAMPLE_HZ = 50.0  # power samples per second when the GPU has no energy counter
POWERCAP = Path("/sys/class/powercap")
NVML_HINT = "pip install nvidia-ml-py (or dlbench[gpu])"


@dataclass
class BlockEnergy:
    """Per timed block: host seconds and joules, in the order the blocks ran (the warm-up first)."""

    seconds: list[float] = field(default_factory=list)
    joules: list[float] = field(default_factory=list)


class EnergyMeter:
    """A cumulative energy reading, turned into per-block joules by ``start``/``stop``."""

    method = NOT_MEASURED
    source = ""  # what is measured: "GPU 0 board (NVIDIA H100 80GB HBM3)", "CPU packages package-0"
    sample_hz: Optional[float] = None

    def __init__(self) -> None:
        self.blocks = BlockEnergy()
        self._open: Optional[tuple[float, float]] = None

    def read_joules(self) -> float:
        raise NotImplementedError

    def start(self) -> None:
        self._open = (time.perf_counter(), self.read_joules())

    def stop(self) -> None:
        if self._open is None:  # a block whose start was never seen (or a second stop)
            return
        began, before = self._open
        after = self.read_joules()
        self.blocks.seconds.append(time.perf_counter() - began)
        self.blocks.joules.append(max(0.0, after - before))
        self._open = None

    def cancel(self) -> None:
        """Forget an open block (one the timing code started and never ended)."""
        self._open = None

    def close(self) -> None:
        """Stop any background work; the readings stay."""

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"method": self.method, "source": self.source}
        if self.sample_hz:
            info["sample_hz"] = self.sample_hz
        return info


class Unmeasured(EnergyMeter):
    """No counter and no power reading here; ``reason`` says why, for the record."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"method": NOT_MEASURED, "reason": self.reason}


class NvmlCounter(EnergyMeter):
    """``nvmlDeviceGetTotalEnergyConsumption``: millijoules since the driver loaded (Volta and later)."""

    method = "nvml-energy-counter"

    def __init__(self, nvml: Any, handle: Any, source: str) -> None:
        super().__init__()
        self.nvml, self.handle, self.source = nvml, handle, source

    def read_joules(self) -> float:
        return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1000.0


class SampledPower(EnergyMeter):
    """Power in watts read ``hz`` times a second on a background thread, only while a block is open.

    The thread idles between blocks (it waits on an event), so it takes nothing from the untimed work,
    and takes the GIL only briefly: one NVML call per sample. ``read_power`` is any callable giving watts.
    """

    method = "sampled-power"

    def __init__(self, read_power: Callable[[], float], source: str, hz: float = SAMPLE_HZ,
                 method: str = "nvml-power-sampling") -> None:
        super().__init__()
        self.read_power, self.source, self.sample_hz, self.method = read_power, source, hz, method
        self._joules = 0.0
        self._last: Optional[tuple[float, float]] = None  # (time, watts) of the latest sample
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._sample, name="dlbench-power", daemon=True)
        self._thread.start()

    def _take(self) -> None:
        now, watts = time.perf_counter(), float(self.read_power())
        with self._lock:
            if self._last is not None:
                then, before = self._last
                if now <= then:  # the other reader got in first with a later sample
                    return
                self._joules += (now - then) * (watts + before) / 2.0
            self._last = (now, watts)

    def _sample(self) -> None:
        period = 1.0 / self.sample_hz
        while not self._closed:
            if not self._running.wait(timeout=0.5):
                continue
            try:
                self._take()
            except Exception:  # a failed reading leaves a gap; the integral bridges it
                pass
            time.sleep(period)

    def read_joules(self) -> float:
        self._take()  # a sample at the block boundary itself
        with self._lock:
            return self._joules

    def start(self) -> None:
        with self._lock:
            self._last = None  # nothing is integrated across the untimed gap between blocks
        super().start()
        self._running.set()

    def stop(self) -> None:
        super().stop()
        self._running.clear()

    def cancel(self) -> None:
        super().cancel()
        self._running.clear()

    def close(self) -> None:
        self._closed = True
        self._running.set()
        self._thread.join(timeout=2.0)


class RaplCounter(EnergyMeter):
    """Linux RAPL package counters (microjoules; they wrap at ``max_energy_range_uj``), all packages summed.

    Package energy is the whole CPU socket's, other processes included: quote it for a quiet machine.
    """

    method = "rapl"

    def __init__(self, domains: list[tuple[Path, int]], source: str) -> None:
        super().__init__()
        self.domains, self.source = domains, source
        self._last = [self._raw(path) for path, _ in domains]
        self._total_uj = 0

    @staticmethod
    def _raw(path: Path) -> int:
        return int(path.read_text().strip())

    def read_joules(self) -> float:
        for index, (path, wrap) in enumerate(self.domains):
            value = self._raw(path)
            delta = value - self._last[index]
            if delta < 0:  # the counter wrapped around
                delta += wrap
            self._total_uj += delta
            self._last[index] = value
        return self._total_uj / 1e6


def rapl_domains(root: Path = POWERCAP) -> tuple[list[tuple[Path, int]], str]:
    """(readable package counters with their wrap values, why none when the list is empty)."""
    if not root.is_dir():
        return [], f"no RAPL: {root} does not exist (a VM, a container without it, or not Linux)"
    packages = []
    for zone in sorted(root.glob("*-rapl:*")):
        if not re.fullmatch(r"[a-z]+-rapl:\d+", zone.name):  # top-level zones only (subzones are inside them)
            continue
        try:
            name = (zone / "name").read_text().strip()
        except OSError:
            name = ""
        if name.startswith("package"):
            packages.append((zone, name))
    if not packages:
        return [], f"no RAPL package zone under {root}"
    domains, problems = [], []
    for zone, name in packages:
        counter = zone / "energy_uj"
        try:
            int(counter.read_text().strip())
            wrap = int((zone / "max_energy_range_uj").read_text().strip())
        except PermissionError:
            problems.append(f"{counter} is readable by root only (since Linux 5.10); sudo chmod a+r it")
            continue
        except (OSError, ValueError) as exc:
            problems.append(f"{counter} could not be read ({type(exc).__name__})")
            continue
        domains.append((counter, wrap))
    if problems:  # a partial sum would under-count: all packages or nothing
        return [], "; ".join(problems)
    return domains, ""


def rapl_meter(root: Path = POWERCAP) -> EnergyMeter:
    domains, why = rapl_domains(root)
    if not domains:
        return Unmeasured(why)
    names = ", ".join(path.parent.name for path, _ in domains)
    return RaplCounter(domains, f"CPU package counters ({names}); the whole socket, other processes included")


def import_nvml() -> tuple[Any, str]:
    """(the initialised pynvml module, "") or (None, why not)."""
    try:
        import pynvml
    except ImportError:
        return None, f"NVML not available: the nvidia-ml-py package is not installed ({NVML_HINT})"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound without a driver, DriverNotLoaded, ...
        return None, f"NVML could not start: {exc} (no NVIDIA driver?)"
    return pynvml, ""


def _nvml_handle(nvml: Any) -> tuple[Any, str]:
    """The NVML handle of the GPU this process uses: the first of CUDA_VISIBLE_DEVICES, else GPU 0."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    if visible.startswith(("GPU-", "MIG-")):
        return nvml.nvmlDeviceGetHandleByUUID(visible), visible
    index = int(visible) if visible.isdigit() else 0
    return nvml.nvmlDeviceGetHandleByIndex(index), f"GPU {index}"


def nvml_meter(hz: float = SAMPLE_HZ) -> EnergyMeter:
    """The GPU's energy counter, else its sampled power, else ``Unmeasured`` with the reason."""
    nvml, why = import_nvml()
    if nvml is None:
        return Unmeasured(why)
    try:
        handle, which = _nvml_handle(nvml)
        name = nvml.nvmlDeviceGetName(handle)
        source = f"{which} board ({name.decode() if isinstance(name, bytes) else name})"
    except Exception as exc:
        return Unmeasured(f"NVML found no GPU to read: {exc}")
    try:
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        return NvmlCounter(nvml, handle, source)
    except Exception:  # NVMLError_NotSupported before Volta
        pass
    try:
        nvml.nvmlDeviceGetPowerUsage(handle)
    except Exception as exc:
        return Unmeasured(f"NVML reads neither an energy counter nor the power of {source}: {exc}")
    return SampledPower(lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0, source, hz)


def meter_for(device: str) -> EnergyMeter:
    """The best meter for a case on ``device``: NVML on ``gpu``, RAPL on ``cpu``."""
    return nvml_meter() if device == "gpu" else rapl_meter()


def joules_per_1k(meter: EnergyMeter, timed: list[int], samples_per_s: Optional[float]) -> Optional[float]:
    """Joules per 1,000 samples: mean power over the ``timed`` blocks divided by the throughput.

    ``timed`` are indices into the meter's blocks (the warm-ups left out); None when nothing was measured.
    """
    if isinstance(meter, Unmeasured) or not samples_per_s:
        return None
    kept = [i for i in timed if i < len(meter.blocks.joules)]
    seconds = sum(meter.blocks.seconds[i] for i in kept)
    joules = sum(meter.blocks.joules[i] for i in kept)
    if seconds <= 0 or joules <= 0:
        return None
    return 1000.0 * (joules / seconds) / samples_per_s
