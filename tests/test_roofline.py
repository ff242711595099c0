"""A case against its device's own ceilings: the roofline position and regime (pure functions), the GPU
ceilings' measurement code (run here on the CPU, the same code a GPU runs), % peak in the case's precision,
and ``--batch-size auto`` finding the knee (a real run with a tiny budget, and its stopping rules)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

from conftest import read_records, run_dlbench
from dlbench.machine import gpu_peak
from dlbench.measure.batch_sweep import out_of_memory, sweep
from dlbench.measure.roofline import classify, training_bytes_per_sample, training_intensity
from dlbench.report.device import device_table
from dlbench.report.plots import batch_curve_svg, batch_curves
from dlbench.report.table import comparison_table
from dlbench.report.trust import peak_pct, roofline_position
from dlbench.zoo import Dense, Flatten, ModelSpec, get_model

IMAGE = (28, 28, 1)


# -- the roofline, pure ------------------------------------------------------------------------------------------
def test_regime_is_compute_memory_or_overhead_bound() -> None:
    peak, bandwidth = 60_000.0, 4_800.0  # GFLOP/s, GB/s: ridge at 12.5 FLOP/B (an H200's float32 order)
    compute = classify(30_000.0, 50.0, peak, bandwidth)
    assert compute.regime == "compute-bound" and compute.bound_gflops == peak and compute.share == 0.5
    memory = classify(20_000.0, 5.0, peak, bandwidth)
    assert memory.regime == "memory-bound" and memory.bound_gflops == 24_000.0 and memory.ridge == 12.5
    overhead = classify(48.0, 8.0, peak, bandwidth)  # eager mlp at batch 128: far below both ceilings
    assert overhead.regime == "overhead-bound" and overhead.share < 0.01
    assert classify(None, 8.0, peak, bandwidth) is None and classify(48.0, 8.0, 0.0, bandwidth) is None


def test_intensity_counts_activations_and_parameter_traffic_per_sample() -> None:
    spec = ModelSpec("tiny", "image", (Flatten(), Dense(10)), "softmax", "test")
    activations = 784 + 784 + 10  # the input, the flattened input, the logits
    parameters = 784 * 10 + 10
    assert training_bytes_per_sample(spec, IMAGE, 128) == 6 * activations * 4 + 40 * parameters / 128
    assert training_bytes_per_sample(spec, IMAGE, 128, "bfloat16") == 6 * activations * 2 + 40 * parameters / 128
    mlp = get_model("mlp")  # weights shared by a bigger batch: more FLOPs per byte, towards the ridge
    assert training_intensity(mlp, IMAGE, 128) < training_intensity(mlp, IMAGE, 2048) < 20


def _gpu_record(compute_dtype: str, library: str = "torch", **metrics) -> dict:
    return {"case_id": f"x/{compute_dtype}/mlp/digits/gpu/128", "framework": "x", "variant": compute_dtype,
            "model": "mlp", "task": "digits", "device": "gpu", "batch_size": 128, "repeat": 0, "status": "ok",
            "fairness": {"compute_dtype": compute_dtype, "tf32": "off: fp32_precision='ieee'",
                         "framework_versions": {"keras": "3", library: "2"}},
            "env": {"peak": {"gemm_gflops": 100.0, "mem_bandwidth_gbs": 10.0},  # the host CPU's: not a GPU's
                    "gpu_peak": {"torch": {"float32_gflops": 50_000.0, "tf32_gflops": 400_000.0,
                                           "bfloat16_gflops": 800_000.0, "copy_gbs": 4_000.0},
                                 "jax": {"error": "jax: no GPU"}}},
            "metrics": {"train_samples_per_s": 1000.0, "train_gflops_per_s": 400.0, "train_flops_per_byte": 8.0,
                        **metrics}}


def test_a_gpu_case_is_judged_against_its_librarys_ceiling_in_its_precision() -> None:
    assert peak_pct(_gpu_record("float32")) == pytest.approx(0.8)  # 400 of float32's 50,000, not the CPU's 100
    assert peak_pct(_gpu_record("bfloat16")) == pytest.approx(0.05)  # against bfloat16's 800,000
    assert peak_pct(_gpu_record("float32", library="jax")) is None  # its library measured nothing: no claim
    position = roofline_position(_gpu_record("float32"))
    assert position.regime == "overhead-bound" and position.bound_gflops == 32_000.0
    cpu = {**_gpu_record("float32"), "device": "cpu"}
    assert peak_pct(cpu) == pytest.approx(400.0) and roofline_position(cpu).ridge == 10.0  # the CPU's own
    row = device_table([_gpu_record("float32")], always=True).rows[0]
    assert row[-3:] == ["0.80%", "8", "overhead-bound"]
    assert "0.80% O" in comparison_table([_gpu_record("float32")]) and "O overhead-bound" in \
        comparison_table([_gpu_record("float32")])


# -- the ceilings' measurement, on the CPU ------------------------------------------------------------------------
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_the_ceiling_probe_measures_every_precision_and_the_copy() -> None:
    """The code a GPU runs (machine.gpu_peak), in its own process, on the CPU with small sizes."""
    facts = gpu_peak.measure("torch", "cpu", n=128, copy_bytes=4 << 20, seconds=0.05, timeout=120)
    assert all(facts[field] > 0 for field in gpu_peak.FIELDS), facts
    assert facts["library"].startswith("torch ") and facts["device"] == "cpu"
    assert gpu_peak.ceiling_for({"torch": facts}, "torch", "bfloat16") == facts["bfloat16_gflops"]
    assert gpu_peak.ceiling_for({"torch": facts}, "torch", "float32", "off: ieee") == facts["float32_gflops"]
    assert "error" in gpu_peak.measure("nosuch", "cpu", n=8, copy_bytes=1024, timeout=60)


# -- --batch-size auto -----------------------------------------------------------------------------------------------
class LaunchBoundSession:
    """A step costs max(1 ms of launches, 2 us per sample) of real sleeping: throughput rises to batch 512, then
    stays flat; or it runs out of memory from ``oom_from`` on."""

    def __init__(self, batch: int, oom_from: int = 1 << 30) -> None:
        if batch >= oom_from:
            raise RuntimeError(f"CUDA out of memory. Tried to allocate {batch} MiB")
        self.step_s = max(0.001, 2e-6 * batch)

    def train(self, steps: int) -> None:
        time.sleep(self.step_s * steps)

    def sync(self) -> None:
        pass


def test_the_sweep_stops_where_doubling_stops_paying_or_memory_runs_out() -> None:
    quick = {"collect": lambda: None}  # nothing on a device to free between these sessions
    found = sweep(LaunchBoundSession, samples=60_000, start=128, block_s=0.02, **quick)
    assert found["knee"] == 512 and [p["batch_size"] for p in found["curve"]] == [128, 256, 512, 1024]
    assert "under 5%" in found["stopped"]
    oom = sweep(lambda batch: LaunchBoundSession(batch, oom_from=512), samples=60_000, start=128, block_s=0.02,
                **quick)
    assert oom["knee"] == 256 and oom["stopped"].startswith("out of memory at batch 512: CUDA out of memory")
    small = sweep(LaunchBoundSession, samples=300, start=128, block_s=0.02, **quick)
    assert small["knee"] == 256 and "beyond the 300 training samples" in small["stopped"]
    assert out_of_memory(RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate"))
    assert not out_of_memory(ValueError("shapes do not match"))


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_batch_size_auto_runs_at_the_knee_and_records_the_curve(tmp_path: Path) -> None:
    """amp-bf16: the worker's bfloat16 path too (parity's wider band, the profile's precision; Keras' mixed-bf16
    runs through the worker in tests/test_gpu_paths.py)."""
    out = tmp_path / "run"
    done = run_dlbench("run", "-f", "pytorch", "--variant", "amp-bf16", "-m", "mlp", "-t", "digits", "--batch-size",
                       "auto", "--profile", "smoke", "--steps", "8", "--threads", "1", "--out", str(out), timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    [record] = read_records(out)
    sweep_found = record["metrics"]["batch_sweep"]
    assert record["status"] == "ok" and record["batch_size_requested"] == "auto"
    assert record["case_id"].endswith("/auto") and record["batch_size"] == sweep_found["knee"]
    batches = [point["batch_size"] for point in sweep_found["curve"]]
    assert batches[0] == 128 and all(b == 2 * a for a, b in zip(batches, batches[1:])) and sweep_found["stopped"]
    assert sweep_found["knee"] in batches and record["metrics"]["train_flops_per_byte"] > 0
    assert f"{record['batch_size']} (auto)" in done.stdout  # the table says which batch it ran
    fairness = record["fairness"]
    assert fairness["compute_dtype"] == "bfloat16" and fairness["precision"].startswith("bfloat16")
    assert fairness["tf32"] == "not applicable on CPU"
    curves = batch_curves([record])
    if len(batches) > 1:
        assert curves[("digits", "mlp")]["pytorch/amp-bf16"][0][0] == 128
        assert batch_curve_svg(curves).startswith("<?xml")


def test_bad_batch_size_is_one_line() -> None:
    done = run_dlbench("run", "-f", "pytorch", "-m", "mlp", "--batch-size", "big", timeout=60)
    assert done.returncode == 2 and "--batch-size must be a whole number" in done.stderr
    assert "Traceback" not in done.stderr
