"""Which machine a record was measured on, and which records may be compared at all.

Every record carries ``machine``: the node it ran on (``node_id``: ``local`` for the local executor,
the Ray node id on a cluster), its hostname, CPU and GPU models and core count, and ``kind``, the
label that tables group by. Two records of different kinds come from different hardware: their
throughputs are never divided by each other.
"""

from __future__ import annotations

import os
import platform
import socket
from typing import Any, Mapping

from dlbench.machine.cpu import cpu_model, gpu_names
from dlbench.version import __version__, git_commit

LOCAL_NODE = "local"


def gpu_model(entry: str) -> str:
    """``"NVIDIA H100 80GB HBM3, 550.54.15"`` (nvidia-smi's name and driver) -> the model name only."""
    return str(entry).split(",", 1)[0].strip()


def kind_of_env(env: Mapping[str, Any]) -> str:
    """A short label for the hardware in ``env`` (``dlbench.machine.identity.capture()``): CPU model x cores [+ GPUs]."""
    cpu = str(env.get("cpu") or "unknown CPU")
    cores = env.get("cores")
    label = f"{cpu} x{cores}" if cores else cpu
    gpus = [gpu_model(g) for g in env.get("gpu") or [] if str(g).strip()]
    if gpus:
        names = list(dict.fromkeys(gpus))
        label += " + " + ", ".join(f"{gpus.count(n)}x {n}" for n in names)
    return label


def facts(env: Mapping[str, Any], node_id: str = LOCAL_NODE) -> dict[str, Any]:
    """The ``machine`` field of a record measured on the machine that ``env`` describes."""
    return {"node_id": node_id, "hostname": env.get("hostname", ""), "cpu": env.get("cpu", ""),
            "cores": env.get("cores"), "gpu": [gpu_model(g) for g in env.get("gpu") or []],
            "kind": kind_of_env(env)}


def kind_of(record: Mapping[str, Any]) -> str:
    """The machine kind of a record: its ``machine.kind``, else derived from its ``env`` (older records)."""
    machine = record.get("machine")
    if isinstance(machine, Mapping) and machine.get("kind"):
        return str(machine["kind"])
    env = record.get("env")
    return kind_of_env(env) if isinstance(env, Mapping) and env.get("cpu") else ""


def capture() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 1,
        "gpu": gpu_names(),
        "dlbench_version": __version__,
        "git_commit": git_commit(),
        "hostname": socket.gethostname(),
    }
