"""A GPU's own ceilings, measured by the framework that runs the case: the denominator of a GPU case's "% peak".

A GPU case's % peak used to be taken against the host CPU's numpy GEMM, which says nothing about the GPU.
Here each library that runs GPU cases (torch for the PyTorch plugin and Keras on torch; jax for the JAX
plugin and Keras on JAX) measures, on the first GPU, in a fresh ``python -m dlbench.machine.gpu_peak``
process (the core never imports a framework itself):

- dense GEMM, square ``n x n`` products, in float32 with TF32 off, in TF32 (float32 storage, TF32 tensor
  cores), and in bfloat16: the best call of ~``seconds`` of calls, 2 n^3 FLOPs each;
- device-to-device copy bandwidth: a ``copy_bytes`` buffer copied on the device (torch ``dst.copy_(src)``,
  jax ``x + 1``), counted as read + write, best call.

A case's % peak is then against the ceiling of the precision it ran in (``ceiling_for``): bfloat16 compute
against the bfloat16 GEMM, float32 with TF32 off (every dlbench float32 case) against the float32 one. The
same code measures the CPU (``device="cpu"``, small sizes) so the tests run it without a GPU. Results are
cached per machine and library, keeping the highest value seen ($DLBENCH_CACHE/machine/).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

LIBRARIES = ("torch", "jax")  # the libraries a GPU case computes with (Keras runs on one of them)
PRECISIONS = ("float32", "tf32", "bfloat16")
GPU_SIZES = (8192, 1 << 30)  # GEMM n, copy bytes: large enough to fill an H100/H200
FIELDS = tuple(f"{p}_gflops" for p in PRECISIONS) + ("copy_gbs",)


def _best(call: Callable[[], Any], wait: Callable[[Any], Any], seconds: float) -> float:
    """The fastest of at least three calls (and ~``seconds`` of calls), after one warm-up: a ceiling."""
    wait(call())
    best, calls, began = float("inf"), 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - began < seconds:
        start = time.perf_counter()
        wait(call())
        best = min(best, time.perf_counter() - start)
        calls += 1
    return best


def measure_torch(device: str, n: int, copy_bytes: int, seconds: float) -> dict[str, Any]:
    import torch

    dev = torch.device("cuda" if device == "gpu" else "cpu")
    wait = (lambda _: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda _: None)
    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    out: dict[str, Any] = {"library": f"torch {torch.__version__}", "n": n, "copy_bytes": copy_bytes,
                           "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"}
    flops = 2.0 * n**3
    _tf32(torch, False)
    out["float32_gflops"] = flops / _best(lambda: a @ b, wait, seconds) / 1e9
    _tf32(torch, True)
    out["tf32_gflops"] = flops / _best(lambda: a @ b, wait, seconds) / 1e9
    _tf32(torch, False)
    a16, b16 = a.bfloat16(), b.bfloat16()
    out["bfloat16_gflops"] = flops / _best(lambda: a16 @ b16, wait, seconds) / 1e9
    a = b = a16 = b16 = None  # the matrices free their device memory before the copy test
    src = torch.ones(copy_bytes // 4, device=dev)
    dst = torch.empty_like(src)
    out["copy_gbs"] = 2 * copy_bytes / _best(lambda: dst.copy_(src), wait, seconds) / 1e9
    return out


def _tf32(torch: Any, on: bool) -> None:
    try:
        torch.backends.cuda.matmul.fp32_precision = "tf32" if on else "ieee"
    except AttributeError:  # torch < 2.9
        torch.backends.cuda.matmul.allow_tf32 = on


def measure_jax(device: str, n: int, copy_bytes: int, seconds: float) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    wait = jax.block_until_ready
    key_a, key_b = jax.random.split(jax.random.PRNGKey(0))
    a, b = jax.random.normal(key_a, (n, n), jnp.float32), jax.random.normal(key_b, (n, n), jnp.float32)
    out: dict[str, Any] = {"library": f"jax {jax.__version__}", "n": n, "copy_bytes": copy_bytes,
                           "device_name": jax.devices()[0].device_kind}
    flops = 2.0 * n**3
    for name, precision, x, y in (("float32", jax.lax.Precision.HIGHEST, a, b),  # true float32, no TF32
                                  ("tf32", jax.lax.Precision.DEFAULT, a, b),  # XLA's TF32 dot on NVIDIA GPUs
                                  ("bfloat16", jax.lax.Precision.DEFAULT, a.astype(jnp.bfloat16),
                                   b.astype(jnp.bfloat16))):
        product = jax.jit(lambda p, q, precision=precision: jnp.matmul(p, q, precision=precision))
        out[f"{name}_gflops"] = flops / _best(lambda: product(x, y), wait, seconds) / 1e9
    del a, b
    src = jnp.ones(copy_bytes // 4, jnp.float32)
    add_one = jax.jit(lambda x: x + 1.0)  # reads and writes every byte once: what a copy moves
    out["copy_gbs"] = 2 * copy_bytes / _best(lambda: add_one(src), wait, seconds) / 1e9
    return out


MEASURERS = {"torch": measure_torch, "jax": measure_jax}


def measure(library: str, device: str = "gpu", n: Optional[int] = None, copy_bytes: Optional[int] = None,
            seconds: float = 0.3, timeout: float = 180.0) -> dict[str, Any]:
    """The ceilings of ``library`` on ``device``, measured in a fresh process; ``{"error": why}`` on failure."""
    n = n or GPU_SIZES[0]
    copy_bytes = copy_bytes or GPU_SIZES[1]
    env = dict(os.environ)
    if library == "jax":
        env.update(JAX_PLATFORMS="cuda" if device == "gpu" else "cpu", XLA_PYTHON_CLIENT_PREALLOCATE="false")
    command = [sys.executable, "-m", "dlbench.machine.gpu_peak", library, device, str(n), str(copy_bytes),
               str(seconds)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"{library}: no result within {timeout:g} s"}
    except OSError as exc:
        return {"error": f"{library}: could not start ({exc})"}
    try:
        facts = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": f"{library}: {(done.stderr.strip().splitlines() or ['no output'])[-1]}"}
    return {**{k: round(v, 2) if isinstance(v, float) else v for k, v in facts.items()}, "device": device,
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _cache_path(library: str) -> Path:
    from dlbench.data.cache import cache_dir
    from dlbench.machine.identity import ComparabilityKey, Machine

    key = ComparabilityKey(Machine.here(), 0, "gpu", "gpu ceilings")
    return cache_dir() / "machine" / f"gpu-peak-{key.id}-{library}.json"


def cached(library: str) -> Optional[dict[str, Any]]:
    from dlbench.machine.ceilings import read_ceiling

    return read_ceiling(_cache_path(library), "float32_gflops")


def remember(library: str, facts: dict[str, Any]) -> dict[str, Any]:
    """Store ``facts`` keeping, field by field, the highest value seen: a busy GPU only measures low."""
    from dlbench.machine.ceilings import keep_highest

    return keep_highest(_cache_path(library), facts, FIELDS, cached(library))


def installed() -> list[str]:
    """The LIBRARIES importable here (found without importing them)."""
    import importlib.util

    return [library for library in LIBRARIES if importlib.util.find_spec(library) is not None]


def ceilings(libraries: Any, remeasure: bool = False) -> dict[str, Any]:
    """library -> its GPU ceilings (cached, or measured now) or {"error": why}; {} without a GPU library."""
    found: dict[str, Any] = {}
    for library in libraries:
        facts = None if remeasure else cached(library)
        if facts is None:
            measured = measure(library)
            facts = remember(library, measured) if "error" not in measured else measured
        found[library] = facts
    return found


def ceiling_for(gpu_peak: Any, library: str, compute_dtype: str, tf32: str = "") -> Optional[float]:
    """The GEMM ceiling (GFLOP/s) a case is judged against: its library's, in the precision it computed in."""
    facts = gpu_peak.get(library) if isinstance(gpu_peak, dict) and library else None
    if not isinstance(facts, dict):
        return None
    precision = "bfloat16" if compute_dtype == "bfloat16" else \
        "tf32" if tf32 and not str(tf32).lower().startswith(("off", "not applicable")) else "float32"
    value = facts.get(f"{precision}_gflops")
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    library, device = argv[0], argv[1]
    n, copy_bytes = int(argv[2]), int(argv[3])
    seconds = float(argv[4]) if len(argv) > 4 else 0.3
    print(json.dumps(MEASURERS[library](device, n, copy_bytes, seconds)))
    return 0


def library_of(versions: Any) -> Optional[str]:
    """Which LIBRARIES entry computed a case, from its ``framework_versions`` (Keras names its backend's too)."""
    names = set(versions) if isinstance(versions, dict) else set()
    return next((library for library in LIBRARIES if library in names), None)


if __name__ == "__main__":
    sys.exit(main())
