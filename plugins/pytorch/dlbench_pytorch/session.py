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

from dlbench import BlockHook, Setup, cpu_model, torch_strict_float32, torch_thread_budget
from dlbench_pytorch import models, tuned



class TorchSession:
    """A ``dlbench.contract.Session``: everything is built and moved to the device in ``__init__``."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        spec, data = setup.spec, setup.data
        self._threads = torch_thread_budget(torch, setup.threads)
        self.device = torch.device("cuda" if setup.device == "gpu" else "cpu")
        if self.device.type == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError("device gpu requested but torch.cuda.is_available() is False")
            self._tf32 = torch_strict_float32(torch)
        torch.manual_seed(setup.seed)  # weights and dropout masks (and CUDA's generators too)

        self.binary = spec.outputs == 1
        self.net = models.build(spec, data.input_shape).to(self.device)
        self.tuned = setup.variant == "tuned"  # the performance guides' settings (dlbench_pytorch.tuned)
        if self.tuned:
            self.net = tuned.prepare_model(torch, self.net, spec)
        self.loss_fn: nn.Module = nn.BCEWithLogitsLoss() if self.binary else nn.CrossEntropyLoss()
        recipe = setup.spec.recipe
        self.optimizer = torch.optim.Adam(models.trainable(self.net), lr=recipe.learning_rate,
                                          betas=(recipe.beta_1, recipe.beta_2), eps=recipe.epsilon)
        # compile: torch.compile is lazy, so the first train(1) carries the compile time; predict compiles
        # its inference graph on its first call. evaluate (accuracy checks) runs the eager module.
        self.compiled = setup.variant == "compile"
        self.forward: nn.Module = torch.compile(self.net) if self.compiled else self.net
        self._inference = tuned.inference_forward(torch, self.net, spec) if self.tuned else self.forward
        # amp-bf16: eager under torch.autocast(bfloat16) in train, evaluate and predict; weights, Adam and the
        # loss stay float32 (autocast runs the loss in float32)
        self.amp = setup.variant == "amp-bf16"
        self._autocast = (lambda: torch.autocast(self.device.type, dtype=torch.bfloat16)) if self.amp \
            else contextlib.nullcontext

        # The whole training set goes to the device once, here, off the clock.
        self.x_train = self.stage(data.x_train)
        self.y_train = self._labels(data.y_train)
        self._staged = {id(data.x_val): (data.x_val, self.stage(data.x_val), self._labels(data.y_val)),
                        id(data.x_test): (data.x_test, self.stage(data.x_test), self._labels(data.y_test))}
        self.batch_size = setup.batch_size
        self.batches_per_epoch = len(data.x_train) // setup.batch_size
        if self.batches_per_epoch < 1:
            raise ValueError(f"batch size {setup.batch_size} exceeds the {len(data.x_train)} training samples")
        # The harness's batch order (setup.stream): each epoch's permutation goes to the device once and
        # every step slices its batch from it, so no host round trip happens inside the loop.
        self.stream = setup.stream
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.int64)
        if self.device.type == "cuda":  # the worker records it when the session has it
            self.peak_device_memory_mb = lambda: torch.cuda.max_memory_allocated(self.device) / 2**20
            self.reset_peak_device_memory = lambda: torch.cuda.reset_peak_memory_stats(self.device) or True
            self.device_timer = _CudaEvents  # the harness times each block with CUDA events too

    # --- the contract -------------------------------------------------------------------------------
    def param_count(self) -> int:
        return models.count_trainable(self.net)

    def train(self, steps: int, hook: Optional[BlockHook] = None) -> None:
        if not self.net.training:
            self.forward.train()  # the compiled wrapper's train() reaches the wrapped module too
        net, loss_fn, optimizer = self.forward, self.loss_fn, self.optimizer
        x_train, y_train, size = self.x_train, self.y_train, self.batch_size
        for epoch, cursor in self.stream.positions(steps, hook):  # the hook runs between two steps
            if not self.net.training:  # the harness may have evaluated inside the hook (time-to-accuracy)
                net.train()
            if epoch != self._epoch:
                self._epoch, self._order = epoch, self._permutation(epoch)
            index = self._order[cursor * size:(cursor + 1) * size]
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
        self._eval_mode()
        with torch.inference_mode(), self._autocast():
            return self._inference(staged)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def describe(self) -> Mapping[str, Any]:
        info: dict[str, Any] = {
            "threads": self._threads["threads"],
            "interop_threads": self._threads["interop_threads"],
            "precision": "bfloat16 autocast (torch.autocast on forward and loss: Linear, Conv and the LSTM in "
                         "bfloat16 by autocast's op lists, the loss in float32; float32 weights, gradients and "
                         "Adam)" if self.amp else "float32",
            "compute_dtype": "bfloat16" if self.amp else "float32",
            "compile": "torch.compile(mode=default)" if self.compiled else "none",
            "compile_scope": ("training forward+backward (first train call) and predict (first call); "
                              "evaluate runs the eager module") if self.compiled else "none",
            "sync": "torch.cuda.synchronize" if self.device.type == "cuda"
            else "none: CPU eager ops are synchronous",
            "layout": models.describe_layout(self.setup.spec),
            "framework_versions": {"torch": torch.__version__},
            "device_name": _device_name(self.device),
            "seed": f"torch.manual_seed({self.setup.seed}) before building (weights, dropout masks)",
            "batch_order": "the harness's stream (setup.stream): each epoch's permutation copied to the device "
                           "once, batches sliced from it",
            "optimizer": f"torch.optim.Adam: {self.setup.spec.recipe.describe()}, default implementation",
            "loss": "BCEWithLogitsLoss" if self.binary else "CrossEntropyLoss",
            "lstm_bias": "bias_hh frozen at zero (torch has two bias vectors, Keras one)",
            "data": "whole training set resident on the device; batches gathered by index",
            "recipe": self.setup.spec.recipe.record(),  # read from the zoo spec, never restated
        }
        if self.tuned:
            info["tuning"] = tuned.settings(self.setup.spec) or {"none": "the guides have nothing for this model"}
            if "channels_last" in info["tuning"]:
                info["layout"] = "NCHW shape in torch.channels_last memory format (NHWC strides); flatten in C,H,W order"
            if "compiled_inference" in info["tuning"]:
                info["compile"] = "torch.compile(mode=default) of the inference forward (predict); training eager"
        if self.device.type == "cpu":
            info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
            info["tf32"] = "not applicable on CPU"
        else:
            info["cuda"] = torch.version.cuda
            info["cudnn"] = torch.backends.cudnn.version()
            info["tf32"] = self._tf32
            info["cudnn_benchmark"] = bool(torch.backends.cudnn.benchmark)
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

    def _permutation(self, epoch: int) -> torch.Tensor:
        return torch.tensor(self.stream.epoch(epoch), dtype=torch.int64, device=self.device)  # a copy

    def _eval_mode(self) -> None:
        if self.net.training:
            self.forward.eval()


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()


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
