"""The bf16 variants run their LSTM in bfloat16, its state included, as their describe() says (docs/gpu.md,
"Reduced precision": measured over 10 seeds, this costs no accuracy beyond seed-to-seed noise, so no layer is
kept in float32); where the CPU has no bfloat16 LSTM kernel the case is refused with the reason, before
anything is timed. JAX's bfloat16 LSTM state is checked in tests/test_gpu_paths.py (one JAX process for both).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from conftest import read_records, run_dlbench

TORCH = importlib.util.find_spec("torch") is not None
AVX2_ONLY = {"ONEDNN_MAX_CPU_ISA": "AVX2"}  # oneDNN as on an AVX2-only CPU (a 2-core AMD EPYC without AVX-512)


@pytest.mark.skipif(not TORCH, reason="torch is not installed")
def test_torch_amp_bf16_runs_the_lstm_in_bfloat16() -> None:
    import torch

    from dlbench.contract import FrameworkUnavailable, Setup
    from dlbench.data import load_task
    from dlbench.zoo import get_model
    from dlbench_pytorch.framework import TorchFramework
    from dlbench_pytorch.modules import LastHidden

    data = load_task("synthetic_text")
    try:
        session = TorchFramework().prepare(Setup(get_model("lstm"), data, "cpu", "amp-bf16", 0, 1, 32))
    except FrameworkUnavailable as exc:  # this CPU has no bfloat16 LSTM: refused (the test below), not run
        pytest.skip(str(exc))
    seen: list[torch.dtype] = []
    for module in session.net.modules():
        if isinstance(module, LastHidden):
            module.register_forward_hook(lambda _module, _inputs, output: seen.append(output.dtype))
    logits = session.predict(session.stage(data.x_test[:4]))
    assert seen == [torch.bfloat16], f"the LSTM under amp-bf16 returned {seen}: update describe() and docs/gpu.md"
    assert logits.dtype == torch.float32, "predict() hands back float32 logits whatever the compute dtype"
    assert "LSTM in bfloat16" in session.describe()["precision"]


@pytest.mark.skipif(not TORCH, reason="torch is not installed")
def test_an_avx2_only_cpu_skips_the_bf16_lstm_with_the_reason(tmp_path: Path) -> None:
    """The first GPU machine's 2-core AVX2 CPU failed `make test` and recorded "plugin pytorch failed in evaluate:
    could not create a primitive descriptor for the LSTM"; now the run skips the case before timing anything,
    saying why (the kit skips such a case too: tests/test_conformance_kit.py). ``ONEDNN_MAX_CPU_ISA=AVX2`` gives
    oneDNN that CPU here."""
    out = tmp_path / "run"
    done = run_dlbench("run", "-f", "pytorch", "--variant", "amp-bf16", "-m", "lstm", "-t", "synthetic_text",
                       "--profile", "smoke", "--threads", "1", "--out", str(out), timeout=180, **AVX2_ONLY)
    assert done.returncode == 0, done.stderr[-2000:]
    [record] = read_records(out)
    assert record["status"] == "skipped", record
    assert "oneDNN has no bfloat16 LSTM kernel here" in record["error"] and "AVX2" in record["error"], record["error"]
    assert "primitive descriptor" in record["error"] and not record["metrics"]
