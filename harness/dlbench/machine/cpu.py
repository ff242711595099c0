"""What this machine's CPU, memory and GPUs are, read without importing any framework.

A cloud VM's CPU model name is often only "AMD EPYC": the family/model/stepping and the instruction-set
features tell one generation from the next, and the features decide which kernels a framework runs (oneDNN
uses AVX-512 or AMX for bfloat16 where they exist, and emulates or refuses without them).
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any, Optional

# The instruction-set features that change which kernels the frameworks run, in /proc/cpuinfo's spelling.
FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile",
            "amx_bf16", "amx_int8", "asimd", "sve", "bf16")
CPUINFO = "/proc/cpuinfo"


def _cpuinfo_fields(path: str = CPUINFO) -> dict[str, str]:
    """The first processor's ``key: value`` lines of /proc/cpuinfo ({} where there is none)."""
    fields: dict[str, str] = {}
    try:
        for line in Path(path).read_text().splitlines():
            if not line.strip():
                if fields:
                    break
                continue
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_model(path: str = CPUINFO) -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    return _cpuinfo_fields(path).get("model name") or platform.processor() or platform.machine()


def cpu_signature(path: str = CPUINFO) -> str:
    """``family 25 model 17 stepping 1`` (x86) or the implementer/part (Arm); '' where unknown."""
    fields = _cpuinfo_fields(path)
    if "cpu family" in fields:
        return f"family {fields['cpu family']} model {fields.get('model', '?')} stepping {fields.get('stepping', '?')}"
    if "CPU implementer" in fields:
        return f"implementer {fields['CPU implementer']} part {fields.get('CPU part', '?')}"
    return ""


def cpu_features(path: str = CPUINFO) -> list[str]:
    """Which of ``FEATURES`` the CPU has, in ``FEATURES`` order ([] where /proc/cpuinfo is unreadable)."""
    fields = _cpuinfo_fields(path)
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    return [name for name in FEATURES if name in flags]


def memory_gib(path: str = "/proc/meminfo") -> Optional[int]:
    """Physical memory in whole GiB (MemTotal, rounded), or None where unknown."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _nvidia_smi(query: str) -> list[list[str]]:
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [[part.strip() for part in line.split(",")] for line in out.stdout.splitlines() if line.strip()]


def gpu_names() -> list[str]:
    """GPU models as nvidia-smi names them (with the driver version); [] without an NVIDIA driver."""
    return [", ".join(row) for row in _nvidia_smi("name,driver_version")]


def gpu_inventory() -> list[dict[str, Any]]:
    """Each GPU's model and memory (MiB) as nvidia-smi reports them; [] without an NVIDIA driver."""
    inventory = []
    for row in _nvidia_smi("name,memory.total"):
        try:
            memory: Optional[int] = int(float(row[1]))
        except (IndexError, ValueError):
            memory = None
        inventory.append({"name": row[0], "memory_mib": memory})
    return inventory
