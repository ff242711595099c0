"""One prepared case: model, optimiser, loss and the training stream, all resident on the device.

The training loop is the hand-written one every tutorial shows (``zero_grad(set_to_none=True)``,
forward, loss, backward, step) on batches gathered from a per-epoch permutation: no ``.item()``, no
host synchronisation inside it. The plugin never times anything; the harness does, around ``sync``.
"""

from __future__ import annotations

import contextlib
from typing import Any, Mapping, Optional

import numpy as np
import torch
from torch import nn

from dlbench import (BlockHook, DeviceOrder, FrameworkUnavailable, Setup, check_batch_size, device_memory,
                     fairness_profile, torch_strict_float32, torch_thread_budget)
from dlbench_pytorch import models, tuned


class TorchSession:
    """A ``dlbench.contract.Session``: everything is built and moved to the device in ``__init__``."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        spec, data = setup.spec, setup.data
        self.batch_size, self.batches_per_epoch = setup.batch_size, check_batch_size(setup)
        self._threads = torch_thread_budget(torch, setup.threads)
        self.device = torch.device("cuda" if setup.device == "gpu" else "cpu")
        if self.device.type == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError("device gpu requested but torch.cuda.is_available() is False")
            self._tf32 = torch_strict_float32(torch)
        # amp-bf16: eager under torch.autocast(bfloat16) in train, evaluate and predict; weights, Adam and the
        # loss stay float32 (autocast runs the loss in float32). Refused before anything is built where the
        # CPU's oneDNN has no bfloat16 LSTM (AVX2-only CPUs).
        self.amp = setup.variant == "amp-bf16"
        if self.amp and self.device.type == "cpu" and any(layer.kind == "lstm" for layer in spec.layers):
            _refuse_bf16_lstm_without_kernel(spec.name)
        self._autocast = (lambda: torch.autocast(self.device.type, dtype=torch.bfloat16)) if self.amp \
            else contextlib.nullcontext
        torch.manual_seed(setup.seed)  # weights and dropout masks (and CUDA's generators too)

        self.binary = spec.outputs == 1
        self.net = models.build(spec, data.input_shape).to(self.device)
        self.tuned = setup.variant == "tuned"  # the performance guides' settings for the device (tuned.py)
        if self.tuned:
            self.net = tuned.prepare_model(torch, self.net, spec, setup.device)
        self.loss_fn: nn.Module = nn.BCEWithLogitsLoss() if self.binary else nn.CrossEntropyLoss()
        recipe = setup.spec.recipe
        self.optimizer = torch.optim.Adam(models.trainable(self.net), lr=recipe.learning_rate,
                                          betas=(recipe.beta_1, recipe.beta_2), eps=recipe.epsilon,
                                          **(tuned.adam_options(setup.device) if self.tuned else {}))
        # compile: torch.compile is lazy, so the first train(1) carries the compile time; predict compiles
        # its inference graph on its first call. evaluate (accuracy checks) runs the eager module.
        self.compiled = setup.variant == "compile"
        self.forward: nn.Module = (torch.compile(self.net) if self.compiled else
                                   tuned.training_forward(torch, self.net, setup.device) if self.tuned else self.net)
        self._inference = tuned.inference_forward(torch, self.net, spec, setup.device, self.forward) \
            if self.tuned else self.forward
        self._step_begins = tuned.step_marker(torch, setup.device) if self.tuned else None

        # The whole training set goes to the device once, here, off the clock.
        self.x_train = self.stage(data.x_train)
        self.y_train = self._labels(data.y_train)
        self._staged = {id(data.x_val): (data.x_val, self.stage(data.x_val), self._labels(data.y_val)),
                        id(data.x_test): (data.x_test, self.stage(data.x_test), self._labels(data.y_test))}
        # The harness's batch order: each epoch's permutation goes to the device once and every step slices
        # its batch from it, so no host round trip happens inside the loop.
        self.order = DeviceOrder(setup.stream, lambda rows: torch.tensor(rows, dtype=torch.int64, device=self.device))
        memory = device_memory(setup.device, torch)  # the worker records the peaks when the session has them
        if memory is not None:
            self.peak_device_memory_mb, self.reset_peak_device_memory = memory.peak_mb, memory.reset
            self.device_timer = _CudaEvents  # the harness times each block with CUDA events too

    # --- the contract -------------------------------------------------------------------------------
    def param_count(self) -> int:
        return models.count_trainable(self.net)

    def train(self, steps: int, hook: Optional[BlockHook] = None) -> None:
        if not self.net.training:
            self.forward.train()  # the compiled wrapper's train() reaches the wrapped module too
        net, loss_fn, optimizer = self.forward, self.loss_fn, self.optimizer
        x_train, y_train, size, begins = self.x_train, self.y_train, self.batch_size, self._step_begins
        for order, cursor in self.order.steps(steps, hook):  # the hook runs between two steps
            if not self.net.training:  # the harness may have evaluated inside the hook (time-to-accuracy)
                net.train()
            index = order[cursor * size:(cursor + 1) * size]
            if begins is not None:
                begins()  # CUDA graphs: a new training step begins (tuned on the GPU)
            optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                loss = loss_fn(net(x_train[index]), y_train[index])
            loss.backward()
            optimizer.step()
        if not self.net.training:
            net.train()

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        cached = self._staged.get(id(x))
        if cached is not None and cached[0] is x:
            inputs, labels = cached[1], cached[2]
        else:
            inputs, labels = self.stage(x), self._labels(y)
        self._eval_mode()
        total_loss = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        with torch.inference_mode(), self._autocast():
            step = self.setup.spec.recipe.eval_batch_size
            for start in range(0, len(inputs), step):
                out = self.net(inputs[start:start + step])
                target = labels[start:start + step]
                if self.binary:
                    total_loss += nn.functional.binary_cross_entropy_with_logits(out, target, reduction="sum")
                    correct += ((out > 0) == (target > 0.5)).sum()
                else:
                    total_loss += nn.functional.cross_entropy(out, target, reduction="sum")
                    correct += (out.argmax(1) == target).sum()
        n = max(len(inputs), 1)
        return total_loss.item() / n, correct.item() / n  # .item() synchronises

    def stage(self, x: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(x))
        if tensor.dim() == 4:  # NHWC -> NCHW, materialised contiguous (channels-last strides when tuned)
            tensor = tensor.permute(0, 3, 1, 2)
            tensor = tuned.stage_images(torch, tensor, self.setup.spec) if self.tuned else tensor.contiguous()
            tensor = tensor.to(device=self.device, dtype=torch.float32)
        else:
            tensor = tensor.to(device=self.device, dtype=torch.int64 if not tensor.is_floating_point()
                               else torch.float32)
        return tensor

    def predict(self, staged: torch.Tensor) -> torch.Tensor:
        """Logits in float32 whatever the compute dtype (amp-bf16 casts its bfloat16 logits, as the loss is)."""
        self._eval_mode()
        if self._step_begins is not None:
            self._step_begins()
        with torch.inference_mode(), self._autocast():
            out = self._inference(staged)
        return out.float() if self.amp else out

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def describe(self) -> Mapping[str, Any]:
        on_gpu, setup = self.device.type == "cuda", self.setup
        info = fairness_profile(
            setup, threads=self._threads["threads"], interop_threads=self._threads["interop_threads"],
            compute_dtype="bfloat16" if self.amp else "float32",
            precision="autocast on forward and loss (Linear, Conv and the LSTM in bfloat16 by autocast's op lists, "
                      "the loss in float32; float32 weights, gradients, Adam and returned logits)" if self.amp else "",
            compile="torch.compile(mode=default)" if self.compiled else "none",
            compile_scope=("training forward+backward (first train call) and predict (first call); evaluate runs "
                           "the eager module") if self.compiled else "none",
            sync="torch.cuda.synchronize" if on_gpu else "none: CPU eager ops are synchronous",
            layout=models.describe_layout(setup.spec), framework_versions={"torch": torch.__version__},
            device_name=torch.cuda.get_device_name(self.device) if on_gpu else "",
            seed=f"torch.manual_seed({setup.seed}) before building (weights, dropout masks)",
            batches="each epoch's permutation copied to the device once, batches sliced from it",
            optimizer="torch.optim.Adam(fused=True)" if self.tuned and on_gpu else "torch.optim.Adam, default implementation",
            loss="BCEWithLogitsLoss" if self.binary else "CrossEntropyLoss",
            lstm_bias="bias_hh frozen at zero (torch has two bias vectors, Keras one)",
            data="whole training set resident on the device; batches gathered by index",
            tf32=self._tf32 if on_gpu else "", **_backend_facts(self.device))
        if self.tuned:
            info.update(tuned.describe(setup.spec, setup.device))
        return info

    def excluded_parameters(self) -> dict[str, np.ndarray]:
        """Parameters kept out of training and of ``param_count`` (the LSTM's second bias): the kit checks
        that they never move."""
        return {name: p.detach().cpu().numpy().copy() for name, p in self.net.named_parameters()
                if not p.requires_grad}

    # --- helpers --------------------------------------------------------------------------------------
    def _labels(self, y: np.ndarray) -> torch.Tensor:
        labels = torch.from_numpy(np.ascontiguousarray(y))
        if self.binary:  # shaped like the model's (N, 1) logits, so the loss needs no squeeze per step
            return labels.to(device=self.device, dtype=torch.float32).reshape(-1, 1)
        return labels.to(device=self.device, dtype=torch.int64)

    def _eval_mode(self) -> None:
        if self.net.training:
            self.forward.eval()


def _backend_facts(device: torch.device) -> dict[str, Any]:
    if device.type == "cpu":
        return {"cpu_capability": torch.backends.cpu.get_cpu_capability()}
    return {"cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark)}


def _refuse_bf16_lstm_without_kernel(model: str) -> None:
    """FrameworkUnavailable, before anything is built or timed, when oneDNN cannot run a bfloat16 LSTM here.

    oneDNN has bfloat16 RNN kernels only with AVX-512 (or AMX); on an AVX2-only CPU (or under
    ``ONEDNN_MAX_CPU_ISA=AVX2``) autocast's LSTM fails with "could not create a primitive descriptor". A
    one-step LSTM forward and backward is the question asked, so the answer is the library's own.
    """
    import os

    lstm = nn.LSTM(1, 1, batch_first=True)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, _ = lstm(torch.zeros(1, 1, 1))
        out.float().sum().backward()
    except RuntimeError as exc:
        first = (str(exc).strip().splitlines() or [""])[0].split(". Run workload")[0]
        isa = os.environ.get("ONEDNN_MAX_CPU_ISA")
        raise FrameworkUnavailable(
            f"amp-bf16 cannot run {model} on this CPU: oneDNN has no bfloat16 LSTM kernel here (it needs AVX-512 or "
            f"AMX; torch CPU capability {torch.backends.cpu.get_cpu_capability()}"
            f"{', ONEDNN_MAX_CPU_ISA=' + isa if isa else ''}): {first}") from None


class _CudaEvents:
    """The harness's device timer on CUDA: an event recorded at a block's start and one at its end."""

    name = "cuda events (torch.cuda.Event.elapsed_time)"

    def __init__(self) -> None:
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def start(self) -> None:
        self._start.record()

    def stop(self) -> float:
        """Device seconds between the two events; waits for the end event, off the host's clock."""
        self._end.record()
        self._end.synchronize()
        return self._start.elapsed_time(self._end) / 1000.0
