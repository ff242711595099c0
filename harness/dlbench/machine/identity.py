"""Which machine a number was measured on, and which numbers may be compared at all.

A CPU model name is not an identity on cloud machines (two different VMs both say "AMD EPYC, 2 cores",
host name "vm"), so ``Machine`` is the CPU model with its family/model/stepping, the instruction-set
features that decide a framework's kernels (AVX2, AVX-512, bfloat16, AMX), the cores, the memory and the
GPUs with their memory: built once from the environment (``capture``), read back from any record, old
ones included (what they did not record reads as unknown, never as equal).

Two numbers may be compared only under one *comparability key*: the same machine, the same thread budget,
the same device and the same measurement environment (glibc's malloc thresholds and CPU pinning, which
moved PyTorch CNN inference 3.4x; docs/noise.md). Tables, reports, the published site, the peak cache
and ``dlbench compare`` all group and compare by ``key_of(record)``; ``differences`` says in words what
separates two keys.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import socket
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterable, Mapping, Optional

from dlbench.machine.cpu import cpu_features, cpu_model, cpu_signature, gpu_inventory, gpu_names, memory_gib
from dlbench.version import __version__, git_commit

LOCAL_NODE = "local"
UNRECORDED = "unrecorded"


def gpu_model(entry: Any) -> str:
    """``"NVIDIA H100 80GB HBM3, 550.54.15"`` (nvidia-smi's name and driver) or an inventory entry -> the model."""
    if isinstance(entry, Mapping):
        return str(entry.get("name") or "")
    return str(entry).split(",", 1)[0].strip()


@dataclass(frozen=True)
class Machine:
    """The hardware: what a number's machine is, whoever's host it was."""

    cpu: str
    signature: str = ""  # family/model/stepping ('' where not recorded)
    features: Optional[tuple[str, ...]] = None  # None: the record predates the field (unknown, not "none")
    cores: int = 0
    memory_gib: Optional[int] = None
    gpus: tuple[str, ...] = ()  # "NVIDIA H200 (141 GiB)", or the model alone in older records

    @classmethod
    def here(cls) -> "Machine":
        return cls.from_facts(hardware())

    @classmethod
    def from_facts(cls, facts: Mapping[str, Any]) -> "Machine":
        """From a record's ``machine`` or ``env`` (any dlbench version)."""
        cores = facts.get("cores")
        features = facts.get("cpu_features")
        return cls(cpu=str(facts.get("cpu") or ""), signature=str(facts.get("cpu_signature") or ""),
                   features=tuple(features) if isinstance(features, (list, tuple)) else None,
                   cores=cores if isinstance(cores, int) and not isinstance(cores, bool) else 0,
                   memory_gib=facts.get("memory_gib") if isinstance(facts.get("memory_gib"), int) else None,
                   gpus=_gpus(facts))

    def as_facts(self) -> dict[str, Any]:
        return {"cpu": self.cpu, "cpu_signature": self.signature, "cpu_features": list(self.features or ()),
                "cores": self.cores, "memory_gib": self.memory_gib, "gpus": list(self.gpus)}

    @cached_property
    def label(self) -> str:
        """Short and human: ``AMD EPYC (family 25 model 17) · avx512f avx512_bf16 · 2 cores · 24 GiB``."""
        cpu = self.cpu or "unknown CPU"
        parts = [f"{cpu} ({self.signature})" if self.signature else cpu]
        if self.features is not None:
            parts.append(_isa(self.features))
        parts.append(f"{self.cores} cores")
        if self.memory_gib:
            parts.append(f"{self.memory_gib} GiB")
        parts += [f"{self.gpus.count(g)}× {g}" for g in dict.fromkeys(self.gpus)]
        return " · ".join(parts)

    def differences(self, other: "Machine") -> list[str]:
        """What tells the two apart, each as 'what: this vs that'; [] for the same machine."""
        found = []
        for name, mine, theirs in (("CPU", self.cpu, other.cpu), ("CPU signature", self.signature, other.signature),
                                   ("cores", self.cores, other.cores), ("memory GiB", self.memory_gib,
                                                                        other.memory_gib),
                                   ("GPUs", ", ".join(self.gpus) or "none", ", ".join(other.gpus) or "none")):
            if mine != theirs:
                found.append(f"{name} {mine or UNRECORDED} vs {theirs or UNRECORDED}")
        if self.features != other.features:
            found.append(f"CPU features {_isa(self.features)} vs {_isa(other.features)}")
        return found


def _isa(features: Optional[Iterable[str]]) -> str:
    if features is None:
        return "features unrecorded"
    shown = [f for f in features if f not in ("fma",)]
    return " ".join(shown) if shown else "no AVX2"


def _gpus(facts: Mapping[str, Any]) -> tuple[str, ...]:
    inventory = facts.get("gpus")
    if isinstance(inventory, list) and all(isinstance(g, (Mapping, str)) for g in inventory):
        return tuple(_gpu_label(g) for g in inventory)
    names = facts.get("gpu") if isinstance(facts.get("gpu"), list) else []
    return tuple(gpu_model(g) for g in names if str(g).strip())


def _gpu_label(entry: Any) -> str:
    if isinstance(entry, Mapping):
        memory = entry.get("memory_mib")
        name = str(entry.get("name") or "unknown GPU")
        return f"{name} ({round(memory / 1024)} GiB)" if isinstance(memory, (int, float)) and memory else name
    return str(entry)


@dataclass(frozen=True)
class ComparabilityKey:
    """What two numbers must share to be compared: machine, thread budget, device, measurement environment."""

    machine: Machine
    threads: int
    device: str
    environment: str  # "malloc 1 GiB · pinned", or "unrecorded" for records that did not say

    @cached_property  # asked for every record of a large publish
    def id(self) -> str:
        """A folder name: readable, and unique through a hash of the whole key."""
        digest = hashlib.sha1(repr(self).encode()).hexdigest()[:8]
        slug = re.sub(r"[^a-z0-9]+", "-", f"{self.machine.cpu} {self.machine.cores}c {self.threads}t "
                                           f"{self.device}".lower()).strip("-")[:48]
        return f"{slug or 'machine'}-{digest}"

    @cached_property
    def label(self) -> str:
        return " · ".join([self.machine.label, *self._own_parts()])

    def _own_parts(self) -> list[str]:
        environment = self.environment if self.environment != UNRECORDED else "environment unrecorded"
        return [f"{self.threads} thread{'s' * (self.threads != 1)}", self.device, environment]

    def differences(self, other: "ComparabilityKey") -> list[str]:
        """What separates two keys, in words ('threads 2 vs 1', 'CPU features avx512f vs avx2'); [] if equal."""
        found = self.machine.differences(other.machine)
        for name, mine, theirs in (("threads", self.threads, other.threads), ("device", self.device, other.device),
                                   ("environment", self.environment, other.environment)):
            if mine != theirs:
                found.append(f"{name} {mine} vs {theirs}")
        return found


def key_of(record: Mapping[str, Any]) -> ComparabilityKey:
    """The comparability key of a record, from its ``machine`` (else ``env``), budget, device and environment."""
    machine = record.get("machine") if isinstance(record.get("machine"), Mapping) else None
    env = record.get("env") if isinstance(record.get("env"), Mapping) else {}
    facts = {**env, **machine} if machine and machine.get("cpu") else env
    threads = record.get("threads")
    return ComparabilityKey(Machine.from_facts(facts), threads if isinstance(threads, int) else 0,
                            str(record.get("device") or "cpu"), environment_of(record))


def environment_of(record: Mapping[str, Any]) -> str:
    """The measurement environment a record ran in, as a short label; old records read from machine_state."""
    described = record.get("worker_environment")
    if isinstance(described, Mapping):
        return environment_label(described.get("allocator"), described.get("cpus"), record_cores(record),
                                 str(described.get("name") or ""))
    state = record.get("machine_state")
    if isinstance(state, Mapping) and "allocator" in state:
        allocator = {k: v for k, v in (state.get("allocator") or {}).items() if v}
        return environment_label(allocator, state.get("affinity"), record_cores(record))
    return UNRECORDED


def record_cores(record: Mapping[str, Any]) -> int:
    for facts in (record.get("machine"), record.get("env")):
        if isinstance(facts, Mapping) and isinstance(facts.get("cores"), int):
            return facts["cores"]
    return 0


def environment_label(allocator: Any, cpus: Any, cores: int, name: str = "") -> str:
    """``malloc 1 GiB · pinned``: glibc's thresholds (or glibc's own adaptive ones) and whether it was pinned."""
    values = sorted({str(v) for v in (allocator or {}).values() if v}) if isinstance(allocator, Mapping) else []
    if not values:
        memory = "glibc malloc"
    elif values == [str(2**30)]:
        memory = "malloc 1 GiB"
    else:
        memory = "malloc " + "/".join(values)
    pinned = isinstance(cpus, list) and bool(cpus) and (not cores or len(cpus) < cores)
    parts = ([name] if name and name != "dlbench" else []) + [memory, "pinned" if pinned else "unpinned"]
    return " · ".join(parts)


def short_labels(keys: Iterable[ComparabilityKey]) -> dict[ComparabilityKey, str]:
    """Each key named by what differs among ``keys`` only (a table's machine column; the device has its own
    column, as it is part of the case); one key -> its machine label."""
    keys = list(dict.fromkeys(keys))
    if len(keys) <= 1:
        return {key: key.machine.label for key in keys}
    machines = len({k.machine for k in keys}) > 1
    parts = {"threads": len({k.threads for k in keys}) > 1, "environment": len({k.environment for k in keys}) > 1}
    labels = {}
    for key in keys:
        shown = [key.machine.label] if machines else []
        if parts["threads"]:
            shown.append(f"{key.threads} thread{'s' * (key.threads != 1)}")
        if parts["environment"]:
            shown.append(key.environment)
        labels[key] = " · ".join(shown)
    return labels


def hardware() -> dict[str, Any]:
    """This machine's facts as ``Machine.from_facts`` reads them."""
    return {"cpu": cpu_model(), "cpu_signature": cpu_signature(), "cpu_features": cpu_features(),
            "cores": os.cpu_count() or 1, "memory_gib": memory_gib(), "gpus": gpu_inventory()}


def capture() -> dict[str, Any]:
    """The run's ``env``: software versions and this machine's identity (``Machine.from_facts`` reads it back)."""
    return {"python": platform.python_version(), "platform": platform.platform(), **hardware(), "gpu": gpu_names(),
            "dlbench_version": __version__, "git_commit": git_commit(), "hostname": socket.gethostname()}


def facts(env: Mapping[str, Any], node_id: str = LOCAL_NODE) -> dict[str, Any]:
    """The ``machine`` field of a record measured on the machine that ``env`` describes."""
    machine = Machine.from_facts(env)
    return {"node_id": node_id, "hostname": env.get("hostname", ""), **machine.as_facts(),
            "gpu": [gpu_model(g) for g in env.get("gpu") or []], "kind": machine.label}
