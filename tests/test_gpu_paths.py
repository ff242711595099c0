"""Every GPU path that can be exercised without a GPU: device listing and its reasons, energy meters
(NVML absent -> "not measured", RAPL readability), the device-side wiring of the worker, the bf16
variants on the CPU, the device table. Nothing GPU-only is faked: where this machine has no GPU the
tests check the reasons it gives; tests/test_conformance_gpu.py and benchmarks/gpu_check.sh run the
GPU itself where there is one.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import read_records, run_dlbench
from dlbench.measure import energy
from dlbench.machine.devices import (DeviceCheck, checks_of, jax_gpu, nvidia_driver, run_probe, tensorflow_gpu,
                             torch_cuda_build, torch_gpu)
from dlbench.report.device import device_table

HAS = {name: importlib.util.find_spec(name) is not None for name in ("torch", "jax", "keras", "pynvml")}


# -- devices and why not --------------------------------------------------------------------------------------
def test_list_devices_says_why_each_gpu_is_missing() -> None:
    done = run_dlbench("list", "devices", timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Devices"), done.stdout
    rows = [line.split(None, 4) for line in lines[3:] if line.strip()]
    if HAS["torch"]:
        assert "pytorch" in {row[0] for row in rows}, done.stdout
    for framework, backend, device, usable, why in rows:
        assert device in ("cpu", "gpu") and usable in ("yes", "no"), rows
        if usable == "no":
            assert len(why) > 20, f"{framework}/{backend}: no reason given for {device}"
    gpu_rows = {(row[0], row[1]): row for row in rows if row[2] == "gpu"}
    if HAS["torch"]:
        version, cuda = torch_cuda_build()
        row = gpu_rows[("pytorch", "-")]
        if cuda is None:
            assert row[3] == "no" and f"CPU-only build installed (torch {version})" in row[4], row
        if not nvidia_driver()[0]:
            assert row[3] == "no" and "no NVIDIA driver" in row[4], row


def test_list_all_includes_devices_and_frameworks_agree() -> None:
    done = run_dlbench("list", timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Devices (what each framework sees here, or why not)" in done.stdout
    from dlbench.plugins.registry import load_registry

    for name, framework in load_registry().frameworks.items():
        checks = checks_of(framework)
        assert list(framework.devices()) == [d for d in ("cpu", "gpu") if any(c.device == d and c.available
                                                                              for c in checks)], name


@pytest.mark.skipif(not HAS["torch"], reason="torch is not installed")
def test_torch_gpu_reason_matches_the_installed_build() -> None:
    version, cuda = torch_cuda_build()
    import torch  # the truth the file-based reading must agree with, read after it

    assert version == __import__("importlib.metadata").metadata.version("torch")
    assert cuda == torch.version.cuda
    check = torch_gpu()
    assert check.available == torch.cuda.is_available()
    if not check.available:
        assert "CPU-only" in check.detail or "driver" in check.detail or "sees no GPU" in check.detail


def test_other_frameworks_give_their_build_or_driver_reason() -> None:
    for check, dist, cpu_only in ((jax_gpu(), "jax", "CPU-only jaxlib"), (tensorflow_gpu(), "tensorflow-cpu",
                                                                          "CPU-only build installed (tensorflow-cpu")):
        assert isinstance(check, DeviceCheck) and check.device == "gpu"
        if not check.available:
            assert check.detail
            if not nvidia_driver()[0]:
                assert "no NVIDIA driver" in check.detail or "not installed" in check.detail, check
    from dlbench.machine.devices import distribution_version

    if distribution_version("tensorflow-cpu"):
        assert "CPU-only build installed (tensorflow-cpu" in tensorflow_gpu().detail
    if distribution_version("jax") and not distribution_version("jax-cuda12-plugin", "jax-cuda13-plugin"):
        assert "CPU-only jaxlib installed" in jax_gpu().detail


def test_a_plugin_without_device_checks_is_listed_from_devices() -> None:
    from fake_plugins import FakeFramework

    checks = checks_of(FakeFramework())
    assert [(c.device, c.available) for c in checks] == [("cpu", True), ("gpu", False)]
    assert "gives no reason" in checks[1].detail


def test_run_probe_returns_the_frameworks_own_words() -> None:
    assert run_probe("import json; print(json.dumps({'available': True, 'name': 'x'}))") == {"available": True,
                                                                                            "name": "x"}
    answer = run_probe("raise RuntimeError('CUDA driver version is insufficient for CUDA runtime version')")
    assert answer["error"] == "RuntimeError: CUDA driver version is insufficient for CUDA runtime version"


# -- energy -------------------------------------------------------------------------------------------------------
def test_without_nvidia_ml_py_a_gpu_case_says_not_measured() -> None:
    code = ("import sys, json; sys.modules['pynvml'] = None\n"
            "from dlbench.measure import energy\n"
            "m = energy.meter_for('gpu'); print(json.dumps(m.describe()))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    info = json.loads(done.stdout.strip().splitlines()[-1])
    assert info["method"] == "not measured" and "nvidia-ml-py" in info["reason"], info


@pytest.mark.skipif(not HAS["pynvml"] or nvidia_driver()[0], reason="needs nvidia-ml-py and no NVIDIA driver")
def test_nvml_without_a_driver_says_not_measured() -> None:
    meter = energy.meter_for("gpu")
    assert isinstance(meter, energy.Unmeasured)
    assert meter.describe()["method"] == "not measured" and "NVML could not start" in meter.reason


def _powercap(root: Path, packages: int = 1, value: int = 1_000_000, wrap: int = 2**32) -> Path:
    for index in range(packages):
        zone = root / f"intel-rapl:{index}"
        (zone / f"intel-rapl:{index}:0").mkdir(parents=True)  # a subzone (core), never summed on its own
        (zone / f"intel-rapl:{index}:0" / "name").write_text("core\n")
        (zone / "name").write_text(f"package-{index}\n")
        (zone / "energy_uj").write_text(f"{value}\n")
        (zone / "max_energy_range_uj").write_text(f"{wrap}\n")
    (root / "intel-rapl:0:0").mkdir(exist_ok=True)  # sysfs links subzones at the top level too
    return root


def test_rapl_counters_are_summed_with_wraparound(tmp_path: Path) -> None:
    root = _powercap(tmp_path / "powercap", packages=2, wrap=10_000_000)
    meter = energy.rapl_meter(root)
    assert isinstance(meter, energy.RaplCounter) and "intel-rapl:0, intel-rapl:1" in meter.source
    meter.start()
    (root / "intel-rapl:0" / "energy_uj").write_text("3000000\n")  # +2 J
    (root / "intel-rapl:1" / "energy_uj").write_text("500000\n")  # wrapped: +9.5 J
    meter.stop()
    assert meter.blocks.joules == [pytest.approx(11.5)]
    assert meter.describe()["method"] == "rapl"


def test_rapl_absent_or_unreadable_is_not_measured(tmp_path: Path) -> None:
    missing = energy.rapl_meter(tmp_path / "nowhere")
    assert isinstance(missing, energy.Unmeasured) and "does not exist" in missing.reason
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no RAPL package zone" in energy.rapl_meter(empty).reason
    root = _powercap(tmp_path / "broken", packages=2)
    (root / "intel-rapl:1" / "energy_uj").unlink()
    (root / "intel-rapl:1" / "energy_uj").mkdir()  # reading it fails (IsADirectoryError), whoever we are
    broken = energy.rapl_meter(root)
    assert isinstance(broken, energy.Unmeasured) and "intel-rapl:1/energy_uj could not be read" in broken.reason
    if os.geteuid() != 0:  # root reads mode-000 files, so the permission path is testable for users only
        locked = _powercap(tmp_path / "locked")
        (locked / "intel-rapl:0" / "energy_uj").chmod(0)
        assert "readable by root only" in energy.rapl_meter(locked).reason


def test_sampled_power_integrates_only_inside_blocks() -> None:
    meter = energy.SampledPower(lambda: 100.0, "a constant 100 W source", hz=200.0, method="test")
    try:
        meter.start()
        time.sleep(0.2)
        meter.stop()
        time.sleep(0.2)  # between blocks: not integrated
        meter.start()
        time.sleep(0.1)
        meter.stop()
    finally:
        meter.close()
    first, second = meter.blocks.joules
    assert first == pytest.approx(100.0 * meter.blocks.seconds[0], rel=0.05)
    assert second == pytest.approx(100.0 * meter.blocks.seconds[1], rel=0.05)
    assert energy.joules_per_1k(meter, [0, 1], samples_per_s=500.0) == pytest.approx(200.0, rel=0.05)


def test_a_cpu_case_records_not_measured_never_zero(fake_run) -> None:
    process, records = fake_run("-m", "mlp", "-t", "synthetic_images", "--variant", "sleep")
    assert process.returncode == 0, process.stderr
    metrics = records[0]["metrics"]
    if energy.rapl_domains()[0]:
        pytest.skip("this machine has readable RAPL counters: the CPU case is measured")
    assert metrics["energy"]["method"] == "not measured" and metrics["energy"]["reason"]
    assert metrics["train_j_per_1k_samples"] is None and metrics["infer_j_per_1k_samples"] is None
    assert "peak_device_memory_mb" not in metrics and "device_timer" not in metrics


# -- the worker's device-side wiring (a test plugin, not a device) ---------------------------------------------------
@pytest.mark.parametrize("variant, agreement", [("agree", 1.0), ("lag", 0.5)])
def test_worker_records_timer_agreement_and_memory_per_phase(tmp_path: Path, variant: str, agreement: float) -> None:
    out = tmp_path / "out"
    done = run_dlbench("run", "-f", "timed", "--variant", variant, "-m", "mlp", "-t", "synthetic_images",
                       "--profile", "smoke", "--out", str(out), plugins="timed_plugin", timeout=120)
    assert done.returncode == 0, done.stderr
    metrics = read_records(out)[0]["metrics"]
    assert metrics["device_timer"] == "test timer (host clock; not a device)"
    assert metrics["train_event_agreement"] == pytest.approx(agreement, rel=0.02)
    assert metrics["infer_event_agreement"] == pytest.approx(agreement, rel=0.02)
    lo, hi = metrics["train_event_agreement_range"]
    assert lo <= metrics["train_event_agreement"] <= hi
    assert metrics["train_event_samples_per_s"] == pytest.approx(metrics["train_samples_per_s"] * agreement,
                                                                 rel=0.1)
    # training counted 2 "MiB" a step since the reset after set-up; inference 0.5 a call since the next reset
    assert metrics["train_peak_device_memory_mb"] == 2.0 * (metrics["train_steps"] + metrics["timing_extra_steps"])
    infer = metrics["infer_peak_device_memory_mb"]  # 0.5 per predict call since the reset after training
    assert infer > 0 and (infer * 2) % 1 == 0 and infer != metrics["train_peak_device_memory_mb"]
    assert metrics["peak_device_memory_mb"] == max(infer, metrics["train_peak_device_memory_mb"])


# -- reduced precision on the CPU ------------------------------------------------------------------------------------
@pytest.mark.skipif(not HAS["torch"], reason="torch is not installed")
def test_torch_amp_bf16_computes_in_bfloat16() -> None:
    import torch

    from dlbench.contract import Setup
    from dlbench.data import load_task
    from dlbench.zoo import get_model
    from dlbench_pytorch.framework import TorchFramework

    data = load_task("digits")
    outs = {}
    for variant in ("eager", "amp-bf16"):
        session = TorchFramework().prepare(Setup(get_model("mlp"), data, "cpu", variant, 0, 1, 32))
        outs[variant] = session.predict(session.stage(data.x_test[:8]))
        assert session.describe()["compute_dtype"] == ("bfloat16" if variant == "amp-bf16" else "float32")
    assert outs["eager"].dtype == torch.float32 and outs["amp-bf16"].dtype == torch.float32  # logits in float32
    assert not torch.equal(outs["amp-bf16"], outs["eager"]), "amp-bf16 computed exactly what float32 did"
    torch.testing.assert_close(outs["amp-bf16"], outs["eager"], atol=0.1, rtol=0.05)


@pytest.mark.skipif(not (HAS["jax"] and importlib.util.find_spec("dlbench_jax")), reason="the JAX plugin is missing")
def test_jax_bf16_differs_from_float32_by_rounding_only() -> None:
    """The cnn's predictions, and the LSTM cell's state (bfloat16 too, as describe() says: docs/gpu.md), in one
    JAX process (a fresh one: the kit suites size JAX's thread pools in the test process)."""
    code = """
import json, numpy as np
import jax, jax.numpy as jnp
from dlbench.contract import Setup
from dlbench.data import load_task
from dlbench.zoo import get_model
from dlbench_jax import JaxFramework
from dlbench_jax.modules import LSTM
data = load_task("digits")
out = {}
for variant in ("jit", "bf16"):
    session = JaxFramework().prepare(Setup(get_model("cnn"), data, "cpu", variant, 0, 1, 32))
    out[variant] = np.asarray(session.predict(session.stage(data.x_test[:8]))).tolist()
    out[variant + "_dtype"] = session.describe()["compute_dtype"]
x = jax.random.normal(jax.random.PRNGKey(1), (4, 30, 8))
params = LSTM(16, jnp.float32).init(jax.random.PRNGKey(0), x)
for name, dtype in (("lstm_float32", jnp.float32), ("lstm_bfloat16", jnp.bfloat16)):
    h = LSTM(16, dtype).apply(params, x)
    out[name] = {"h_dtype": str(h.dtype), "h": np.asarray(h, np.float32).tolist()}
print(json.dumps(out))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    import numpy as np

    full, low = np.array(out["jit"]), np.array(out["bf16"])
    assert out["jit_dtype"] == "float32" and out["bf16_dtype"] == "bfloat16"
    assert not np.array_equal(full, low), "the bf16 variant computed exactly what float32 did: not in bfloat16"
    np.testing.assert_allclose(low, full, atol=0.1)
    lstm_full, lstm_low = out["lstm_float32"], out["lstm_bfloat16"]
    assert lstm_full["h_dtype"] == "float32"
    assert lstm_low["h_dtype"] == "bfloat16", f"the bf16 LSTM's state is {lstm_low['h_dtype']}: update describe()"
    assert not np.array_equal(lstm_low["h"], lstm_full["h"])
    np.testing.assert_allclose(lstm_low["h"], lstm_full["h"], atol=0.05)


@pytest.mark.skipif(not HAS["keras"], reason="keras is needed")
def test_bf16_variants_run_through_the_worker(tmp_path: Path) -> None:
    """A worker per case: parity passes (tolerance for bfloat16), the fairness profile says bfloat16.

    (PyTorch's amp-bf16 runs through the worker in tests/test_roofline.py's --batch-size auto run, JAX's bf16 in
    benchmarks/gpu_check.sh; their sessions go through the kit in tests/test_conformance_bf16.py.)"""
    out = tmp_path / "out"
    done = run_dlbench("run", "-f", "keras", "-m", "mlp", "-t", "digits", "--variant", "mixed-bf16", "--profile",
                       "smoke", "--steps", "8", "--threads", "2", "--out", str(out), timeout=300)
    records = read_records(out)
    assert {(r["framework"], r["variant"]) for r in records} == {("keras", "mixed-bf16")}, done.stdout
    for record in records:
        assert record["status"] == "ok", (record["case_id"], record.get("error"), record.get("stderr_tail"))
        assert record["fairness"]["compute_dtype"] == "bfloat16", record["fairness"]
        assert record["fairness"]["tf32"] == "not applicable on CPU"
        assert "bfloat16" in record["fairness"]["precision"] or "mixed_bfloat16" in record["fairness"]["precision"]


# -- tables --------------------------------------------------------------------------------------------------------
def _record(case: str, **metrics) -> dict:
    framework, variant, model, task, device, batch = case.split("/")
    return {"schema_version": 1, "case_id": case, "framework": framework, "variant": variant, "model": model,
            "task": task, "device": device, "batch_size": int(batch), "repeat": 0, "status": "ok",
            "metrics": {"train_samples_per_s": 1000.0, "infer_samples_per_s": 5000.0,
                        "latency_ms": {"p50": 0.5, "p99": 0.9}, **metrics}}


def test_device_table_shows_what_was_measured_and_says_not_measured_elsewhere() -> None:
    cpu = _record("pytorch/eager/mlp/digits/cpu/128",
                  energy={"method": "not measured", "reason": "no RAPL here"},
                  train_j_per_1k_samples=None, infer_j_per_1k_samples=None)
    assert device_table([cpu]) is None  # nothing measured: no table
    gpu = _record("pytorch/eager/mlp/digits/gpu/128",
                  energy={"method": "nvml-energy-counter", "source": "GPU 0 board"},
                  train_j_per_1k_samples=12.5, infer_j_per_1k_samples=0.8, train_peak_device_memory_mb=300.0,
                  infer_peak_device_memory_mb=40.0, peak_device_memory_mb=300.0, device_timer="cuda events",
                  train_event_agreement=0.9991)
    table = device_table([cpu, gpu])
    rows = {row[0]: row for row in table.rows}
    assert rows[gpu["case_id"]][5:11] == ["300.0", "40.0", "12.5", "0.80", "nvml-energy-counter", "0.9991"]
    assert rows[cpu["case_id"]][7:10] == ["not measured", "not measured", "not measured"]
    from dlbench.report.table import comparison_table

    text = comparison_table([cpu, gpu])
    assert "Device memory, energy and timing" in text and "nvml-energy-counter" in text
    assert "energy not measured: no RAPL here" in text
