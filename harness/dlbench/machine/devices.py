"""Which devices a framework really sees here, and why not, asked without importing any framework.

``dlbench list`` must say "gpu: no, CPU-only build installed (torch 2.13.0+cpu)" rather than just leave
the GPU out. The core knows no framework: it offers what every plugin's probe needs (the NVIDIA
driver's state, an installed distribution's version, a probe run in a child process so the caller
never loads a framework or creates a CUDA context) and the ``DeviceCheck`` a plugin answers with from
its optional ``device_checks()`` method.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

PROBE_TIMEOUT_S = 120.0  # a first CUDA initialisation can take tens of seconds


@dataclass(frozen=True)
class DeviceCheck:
    """One device as one framework (and backend) sees it: usable or not, with what was seen or why not."""

    device: str  # "cpu" | "gpu"
    available: bool
    detail: str  # the device's name and versions when available; the reason (and the fix) when not
    backend: str = ""  # for frameworks with several backends (Keras: tensorflow, torch, jax)


def distribution_version(*names: str) -> Optional[str]:
    """The version of the first installed distribution among ``names``, or None (no import)."""
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


@functools.lru_cache(maxsize=1)
def nvidia_driver() -> tuple[bool, str]:
    """(usable, what was seen): an NVIDIA device node and the driver's version, or why there is none."""
    nodes = sorted(glob.glob("/dev/nvidia[0-9]*"))
    version = _driver_version()
    if nodes:
        return True, f"NVIDIA driver {version or '(version unknown)'}, {len(nodes)} device node(s)"
    if version:
        return False, f"NVIDIA driver {version} is loaded but there is no /dev/nvidia0 (not passed into this container?)"
    return False, "no NVIDIA driver (no /dev/nvidia0, no nvidia-smi)"


def _driver_version() -> str:
    try:  # "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.04  ..."
        words = Path("/proc/driver/nvidia/version").read_text().split()
        return next((w for w in words if w[:1].isdigit() and "." in w), "")
    except OSError:
        pass
    smi = shutil.which("nvidia-smi")
    if not smi:
        return ""
    try:
        out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = out.stdout.strip().splitlines() if out.returncode == 0 else []
    return lines[0].strip() if lines else ""


def run_probe(code: str, env: Optional[Mapping[str, str]] = None,
              timeout: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
    """Run ``code`` in a fresh Python whose last stdout line is a JSON object; that object.

    On failure: ``{"error": "<the last line of stderr>"}``, so a probe's reason reaches the user as the
    framework itself put it ("CUDA driver version is insufficient for CUDA runtime version", ...).
    """
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                              env=full_env)
    except subprocess.TimeoutExpired:
        return {"error": f"the probe did not answer within {timeout:.0f} s"}
    except OSError as exc:
        return {"error": f"the probe could not start: {exc}"}
    lines = done.stdout.strip().splitlines()
    if done.returncode == 0 and lines:
        try:
            answer = json.loads(lines[-1])
            if isinstance(answer, dict):
                return answer
        except ValueError:
            pass
    errors = [line.strip() for line in done.stderr.strip().splitlines() if line.strip()]
    return {"error": errors[-1] if errors else f"the probe exited with code {done.returncode}"}


def first_line(text: str, limit: int = 200) -> str:
    """The first non-empty line of a framework's message, shortened for a table cell."""
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[:limit - 3] + "..."


def gpu_reason(build_problem: str, probe: Optional[Mapping[str, Any]] = None) -> str:
    """Why a framework sees no GPU: the build's problem and the driver's, or the probe's own words."""
    driver_ok, driver = nvidia_driver()
    reasons = [r for r in (build_problem, "" if driver_ok else driver) if r]
    if not reasons and probe is not None:
        reasons.append(first_line(probe.get("error") or probe.get("reason") or "the framework reports no GPU"))
    return "; ".join(reasons) or "the framework reports no GPU"


def checks_of(framework: Any) -> list[DeviceCheck]:
    """The framework's ``device_checks()`` when it has one, else what its ``devices()`` list says."""
    method = getattr(framework, "device_checks", None)
    if callable(method):
        return [check for check in method() if isinstance(check, DeviceCheck)]
    seen = set(framework.devices())
    return [DeviceCheck(device, device in seen, "listed by devices()" if device in seen else
                        "not listed by devices() (the plugin gives no reason)") for device in ("cpu", "gpu")]


def usable(checks: Sequence[DeviceCheck]) -> list[str]:
    """The devices at least one check (one backend) can use, cpu first: what ``devices()`` returns."""
    return [device for device in ("cpu", "gpu") if any(c.device == device and c.available for c in checks)]


# -- the GPU as each framework sees it (every plugin that runs on torch, JAX or TensorFlow shares these) ---------

TORCH_CUDA_HINT = "pip install torch (PyPI's Linux wheel is built with CUDA) or make run GPU=1"
JAX_CUDA_HINT = "pip install -U 'jax[cuda12]' (or 'jax[cuda13]') or make run GPU=1"
TF_CUDA_HINT = "pip uninstall tensorflow-cpu && pip install 'tensorflow[and-cuda]', or make run GPU=1"

_TORCH_PROBE = """
import json, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import torch
    ok = torch.cuda.is_available()
    info = {"available": ok, "warnings": [str(w.message) for w in caught]}
    if ok:
        info["name"] = torch.cuda.get_device_name(0)
        info["count"] = torch.cuda.device_count()
        info["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
print(json.dumps(info))
"""
_JAX_PROBE = """
import json
import jax
try:
    gpus = jax.devices("gpu")
    info = {"available": bool(gpus), "name": gpus[0].device_kind if gpus else "", "count": len(gpus)}
except RuntimeError as exc:
    info = {"available": False, "error": str(exc).splitlines()[0]}
print(json.dumps(info))
"""
_TF_PROBE = """
import json
import tensorflow as tf
gpus = tf.config.list_physical_devices("GPU")
info = {"available": bool(gpus), "count": len(gpus)}
if gpus:
    info["name"] = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
print(json.dumps(info))
"""


def _package_file(package: str, relative: str) -> str:
    """A file of an installed package as text, found without importing the package ("" if absent)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return ""
    if spec is None or not spec.submodule_search_locations:
        return ""
    try:
        return (Path(list(spec.submodule_search_locations)[0]) / relative).read_text()
    except OSError:
        return ""


def torch_cuda_build() -> tuple[Optional[str], Optional[str]]:
    """(torch's version, the CUDA version it was built with, or None): read from files, torch not imported."""
    version = distribution_version("torch")
    found = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", _package_file("torch", "version.py"),
                      re.MULTILINE)
    return version, found.group(1) if found else None


def _probed(version: str, code: str, env: Optional[Mapping[str, str]] = None) -> DeviceCheck:
    answer = run_probe(code, env)
    if answer.get("available"):
        return DeviceCheck("gpu", True, f"{answer.get('name') or 'GPU'} ({answer.get('count', 1)} visible; {version})")
    said = (answer.get("warnings") or [answer.get("error") or "it reports no GPU"])[0]
    return DeviceCheck("gpu", False, f"{version} sees no GPU: {gpu_reason('', {'error': said})}")


@functools.lru_cache(maxsize=1)
def torch_gpu() -> DeviceCheck:
    """torch's view of the GPU: build first (a CPU-only wheel), then the driver, then CUDA itself (child)."""
    version, cuda = torch_cuda_build()
    if version is None:
        return DeviceCheck("gpu", False, "torch is not installed: pip install 'dlbench[torch]'")
    build = "" if cuda else f"CPU-only build installed (torch {version}): {TORCH_CUDA_HINT}"
    if build or not nvidia_driver()[0]:
        return DeviceCheck("gpu", False, gpu_reason(build))
    return _probed(f"torch {version}, CUDA {cuda}", _TORCH_PROBE)


@functools.lru_cache(maxsize=1)
def jax_gpu() -> DeviceCheck:
    """JAX's view: a CUDA plugin (jax-cuda12/13-plugin) installed, the driver, then ``jax.devices('gpu')``."""
    version = distribution_version("jax")
    if version is None:
        return DeviceCheck("gpu", False, "jax is not installed: pip install jax")
    plugin = distribution_version("jax-cuda12-plugin", "jax-cuda13-plugin")
    build = "" if plugin else f"CPU-only jaxlib installed (no jax-cuda12-plugin or jax-cuda13-plugin): {JAX_CUDA_HINT}"
    if build or not nvidia_driver()[0]:
        return DeviceCheck("gpu", False, gpu_reason(build))
    return _probed(f"jax {version}", _JAX_PROBE, {"JAX_PLATFORMS": ""})


@functools.lru_cache(maxsize=1)
def tensorflow_gpu() -> DeviceCheck:
    """TensorFlow's view: a CUDA build (not tensorflow-cpu), the driver, then the GPUs it lists (child)."""
    cpu_only = distribution_version("tensorflow-cpu")
    version = cpu_only or distribution_version("tensorflow", "tf-nightly")
    if version is None:
        return DeviceCheck("gpu", False, "tensorflow is not installed: pip install 'tensorflow[and-cuda]'")
    build = ""
    if cpu_only:
        build = f"CPU-only build installed (tensorflow-cpu {version}): {TF_CUDA_HINT}"
    elif re.search(r"is_cuda_build'\s*[,:]\s*False", _package_file("tensorflow", "python/platform/build_info.py")):
        build = f"tensorflow {version} was built without CUDA: {TF_CUDA_HINT}"
    if build or not nvidia_driver()[0]:
        return DeviceCheck("gpu", False, gpu_reason(build))
    return _probed(f"tensorflow {version}", _TF_PROBE)
