"""One prepared case: model, optimiser, loss and the training stream, all resident on the device.

The training loop is the hand-written one every tutorial shows (``zero_grad(set_to_none=True)``,
forward, loss, backward, step) on batches gathered from a per-epoch permutation: no ``.item()``, no
host synchronisation inside it. The plugin never times anything; the harness does, around ``sync``.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np
import torch
from torch import nn

from dlbench import BlockHook, Setup, cpu_model, torch_strict_float32, torch_thread_budget
from dlbench_pytorch import models



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
        self.loss_fn: nn.Module = nn.BCEWithLogitsLoss() if self.binary else nn.CrossEntropyLoss()
        recipe = setup.spec.recipe
        self.optimizer = torch.optim.Adam(models.trainable(self.net), lr=recipe.learning_rate,
                                          betas=(recipe.beta_1, recipe.beta_2), eps=recipe.epsilon)
        # compile: torch.compile is lazy, so the first train(1) carries the compile time; predict compiles
        # its inference graph on its first call. evaluate (accuracy checks) runs the eager module.
        self.compiled = setup.variant == "compile"
        self.forward: nn.Module = torch.compile(self.net) if self.compiled else self.net

        # The whole training set goes to the device once, here, off the clock.
        self.x_train = self.stage(data.x_train)
        self.y_train = self._labels(data.y_train)
        self._staged = {id(data.x_val): (data.x_val, self.stage(data.x_val), self._labels(data.y_val)),
                        id(data.x_test): (data.x_test, self.stage(data.x_test), self._labels(data.y_test))}
        self.batch_size = setup.batch_size
        self.batches_per_epoch = len(data.x_train) // setup.batch_size
        if self.batches_per_epoch < 1:
            raise ValueError(f"batch size {setup.batch_size} exceeds the {len(data.x_train)} training samples")
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(setup.seed)
        self._order = self._permutation()
        self._cursor = 0  # batches of the current permutation already used
        if self.device.type == "cuda":  # the worker records it when the session has it
            self.peak_device_memory_mb = lambda: torch.cuda.max_memory_allocated(self.device) / 2**20

    # --- the contract -------------------------------------------------------------------------------
    def param_count(self) -> int:
        return models.count_trainable(self.net)

    def train(self, steps: int, hook: Optional[BlockHook] = None) -> None:
        if not self.net.training:
            self.forward.train()  # the compiled wrapper's train() reaches the wrapped module too
        every = hook.steps if hook is not None else 0
        net, loss_fn, optimizer = self.forward, self.loss_fn, self.optimizer
        x_train, y_train, size = self.x_train, self.y_train, self.batch_size
        for step in range(1, steps + 1):
            if self._cursor == self.batches_per_epoch:
                self._order, self._cursor = self._permutation(), 0
            index = self._order[self._cursor * size:(self._cursor + 1) * size]
            self._cursor += 1
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(x_train[index]), y_train[index])
            loss.backward()
            optimizer.step()
            if every and step % every == 0:
                hook()  # the harness may evaluate inside the hook (time-to-accuracy): back to train mode
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
        with torch.inference_mode():
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
        if tensor.dim() == 4:  # NHWC -> NCHW, materialised contiguous
            tensor = tensor.permute(0, 3, 1, 2).contiguous()
            tensor = tensor.to(device=self.device, dtype=torch.float32)
        else:
            tensor = tensor.to(device=self.device, dtype=torch.int64 if not tensor.is_floating_point()
                               else torch.float32)
        return tensor

    def predict(self, staged: torch.Tensor) -> torch.Tensor:
        self._eval_mode()
        with torch.inference_mode():
            return self.forward(staged)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def describe(self) -> Mapping[str, Any]:
        info: dict[str, Any] = {
            "threads": self._threads["threads"],
            "interop_threads": self._threads["interop_threads"],
            "precision": "float32",
            "compile": "torch.compile(mode=default)" if self.compiled else "none",
            "compile_scope": ("training forward+backward (first train call) and predict (first call); "
                              "evaluate runs the eager module") if self.compiled else "none",
            "sync": "torch.cuda.synchronize" if self.device.type == "cuda"
            else "none: CPU eager ops are synchronous",
            "layout": models.describe_layout(self.setup.spec),
            "framework_versions": {"torch": torch.__version__},
            "device_name": _device_name(self.device),
            "seed": f"torch.manual_seed({self.setup.seed}) before building; shuffling with a "
                    f"torch.Generator seeded {self.setup.seed}, new permutation per epoch, last partial batch dropped",
            "optimizer": f"torch.optim.Adam: {self.setup.spec.recipe.describe()}, default implementation",
            "loss": "BCEWithLogitsLoss" if self.binary else "CrossEntropyLoss",
            "lstm_bias": "bias_hh frozen at zero (torch has two bias vectors, Keras one)",
            "data": "whole training set resident on the device; batches gathered by index",
        }
        if self.device.type == "cpu":
            info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        else:
            info["cuda"] = torch.version.cuda
            info["cudnn"] = torch.backends.cudnn.version()
            info["tf32"] = self._tf32
            info["cudnn_benchmark"] = bool(torch.backends.cudnn.benchmark)
        return info

    # --- helpers --------------------------------------------------------------------------------------
    def _labels(self, y: np.ndarray) -> torch.Tensor:
        labels = torch.from_numpy(np.ascontiguousarray(y))
        if self.binary:  # shaped like the model's (N, 1) logits, so the loss needs no squeeze per step
            return labels.to(device=self.device, dtype=torch.float32).reshape(-1, 1)
        return labels.to(device=self.device, dtype=torch.int64)

    def _permutation(self) -> torch.Tensor:
        return torch.randperm(len(self.x_train), generator=self._generator, device=self.device)

    def _eval_mode(self) -> None:
        if self.net.training:
            self.forward.eval()


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()

