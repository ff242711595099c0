"""PyTorch's set-up that every plugin running torch needs (the PyTorch plugin, Keras on torch), written once.

Plugins reach these through the public front (``from dlbench import torch_thread_budget, ...``). They take
the already-imported ``torch`` module: the core itself never imports a framework.
"""

from __future__ import annotations

from typing import Any


def torch_thread_budget(torch: Any, threads: int) -> dict[str, str]:
    """Apply the harness's thread budget to torch's intra-op (OpenMP/oneDNN) and inter-op pools; say how."""
    torch.set_num_threads(threads)
    how = f"torch.set_num_threads({threads})"
    try:
        torch.set_num_interop_threads(threads)
        interop = f"torch.set_num_interop_threads({threads})"
    except RuntimeError:  # only settable once per process, before any inter-op work
        interop = f"already fixed at {torch.get_num_interop_threads()} (set_num_interop_threads refused)"
    return {"threads": f"{how} -> {torch.get_num_threads()} intra-op threads",
            "interop_threads": f"{interop} -> {torch.get_num_interop_threads()}"}


def torch_strict_float32(torch: Any) -> str:
    """Turn TF32 off for CUDA matmuls, cuDNN convolutions and RNNs (cuDNN convolutions default to TF32)."""
    try:
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        torch.backends.cudnn.conv.fp32_precision = "ieee"
        torch.backends.cudnn.rnn.fp32_precision = "ieee"
        return "off: fp32_precision='ieee' for cuda matmul, cudnn conv and rnn"
    except AttributeError:  # torch < 2.9
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        return "off: allow_tf32=False for cuda matmul and cudnn"
