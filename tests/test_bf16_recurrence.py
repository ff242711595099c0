"""The bf16 variants run their LSTM in bfloat16, its state included, as their describe() says (docs/gpu.md,
"Reduced precision": measured over 10 seeds, this costs no accuracy beyond seed-to-seed noise, so no layer is
kept in float32)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

JAX_CODE = """
import json
import jax, jax.numpy as jnp, numpy as np
from dlbench_jax.modules import LSTM
x = jax.random.normal(jax.random.PRNGKey(1), (4, 30, 8))
params = LSTM(16, jnp.float32).init(jax.random.PRNGKey(0), x)
out = {}
for name, dtype in (("float32", jnp.float32), ("bfloat16", jnp.bfloat16)):
    h = LSTM(16, dtype).apply(params, x)
    out[name] = {"h_dtype": str(h.dtype), "h": np.asarray(h, np.float32).tolist()}
print(json.dumps(out))
"""


@pytest.mark.skipif(not (importlib.util.find_spec("jax") and importlib.util.find_spec("dlbench_jax")),
                    reason="the JAX plugin is missing")
def test_jax_bf16_lstm_runs_in_bfloat16_state_included() -> None:
    import numpy as np

    done = subprocess.run([sys.executable, "-c", JAX_CODE], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    full, low = out["float32"], out["bfloat16"]
    assert full["h_dtype"] == "float32"
    assert low["h_dtype"] == "bfloat16", f"the bf16 LSTM's state is {low['h_dtype']}: update describe() and docs/gpu.md"
    assert not np.array_equal(low["h"], full["h"])
    np.testing.assert_allclose(low["h"], full["h"], atol=0.05)


@pytest.mark.skipif(not importlib.util.find_spec("torch"), reason="torch is not installed")
def test_torch_amp_bf16_runs_the_lstm_in_bfloat16() -> None:
    import torch

    from dlbench.contract import Setup
    from dlbench.data import load_task
    from dlbench.zoo import get_model
    from dlbench_pytorch.framework import TorchFramework
    from dlbench_pytorch.modules import LastHidden

    data = load_task("synthetic_text")
    session = TorchFramework().prepare(Setup(get_model("lstm"), data, "cpu", "amp-bf16", 0, 1, 32))
    seen: list[torch.dtype] = []
    for module in session.net.modules():
        if isinstance(module, LastHidden):
            module.register_forward_hook(lambda _module, _inputs, output: seen.append(output.dtype))
    session.predict(session.stage(data.x_test[:4]))
    assert seen == [torch.bfloat16], f"the LSTM under amp-bf16 returned {seen}: update describe() and docs/gpu.md"
    assert "LSTM in bfloat16" in session.describe()["precision"]
