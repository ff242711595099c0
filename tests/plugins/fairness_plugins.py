"""Softmax regression in numpy, in four behaviours, to show the kit catches what breaks fairness.

Variants: ``stream`` (trains on the harness's batch stream, applies its budget: passes), ``own-order``
(reshuffles on its own, as plugins did before the stream), ``extra-threads`` (starts three busy
compute threads beyond its budget), ``leaky-excluded`` (an extra bias it says is excluded from training
moves anyway). Loaded with ``DLBENCH_PLUGINS=fairness_plugins``.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from dlbench import BlockHook, Setup, fairness_profile, hookimpl

VARIANTS = ("stream", "own-order", "extra-threads", "leaky-excluded")
_SPINNERS: list[threading.Thread] = []


def _spin() -> None:
    """Hashing that releases the GIL (for data over 2 KiB): a real extra compute thread."""
    import hashlib

    data = bytes(1 << 22)
    while True:
        hashlib.sha256(data).digest()


class NumpyFairSession:
    def __init__(self, setup: Setup) -> None:
        from threadpoolctl import threadpool_limits

        self.limits = threadpool_limits(setup.threads)
        self.setup, self.variant, data = setup, setup.variant, setup.data
        rng = np.random.default_rng(setup.seed)
        features, classes = int(np.prod(data.input_shape)), setup.spec.outputs
        limit = np.sqrt(6.0 / (features + classes))
        self.params = [rng.uniform(-limit, limit, (features, classes)).astype(np.float32),
                       np.zeros(classes, np.float32)]
        self.excluded = np.zeros(classes, np.float32)  # a second bias, kept out of training (leaky: it is not)
        self.moments = [np.zeros_like(p) for p in self.params * 2]
        self.step = 0
        self.x, self.y = self.stage(data.x_train), data.y_train
        self.rng = np.random.default_rng(setup.seed + 99)  # own-order only
        if self.variant == "extra-threads" and not _SPINNERS:
            for _ in range(3):
                _SPINNERS.append(threading.Thread(target=_spin, daemon=True))
                _SPINNERS[-1].start()

    def param_count(self) -> int:
        return sum(p.size for p in self.params)

    def _indices(self, steps: int, hook: Optional[BlockHook]) -> Any:
        if self.variant != "own-order":
            yield from self.setup.stream.batches(steps, hook)
            return
        size = self.setup.batch_size
        for done in range(1, steps + 1):
            yield self.rng.permutation(len(self.x))[:size]
            if hook is not None and done % hook.steps == 0:
                hook()

    def train(self, steps: int, hook: Optional[BlockHook] = None) -> None:
        for index in self._indices(steps, hook):
            grads = self._gradients(self.x[index], self.y[index])
            self._adam(grads)
            if self.variant == "leaky-excluded":
                self.excluded -= 1e-3 * grads[1]

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        logits = self._logits(self.stage(x))
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(len(y)), y].mean()), float((logits.argmax(axis=1) == y).mean())

    def stage(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)

    def predict(self, staged: np.ndarray) -> np.ndarray:
        return self._logits(staged)

    def sync(self) -> None:
        pass

    def excluded_parameters(self) -> dict[str, np.ndarray]:
        return {"second_bias": self.excluded}

    def describe(self) -> Mapping[str, Any]:
        return fairness_profile(self.setup, threads=f"threadpoolctl.threadpool_limits({self.setup.threads})",
                                compile="none", sync="none: numpy is synchronous", layout="(N, features) float32",
                                framework_versions={"numpy": np.__version__})

    def _logits(self, x: np.ndarray) -> np.ndarray:
        return x @ self.params[0] + self.params[1] + self.excluded

    def _gradients(self, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        logits = self._logits(x)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(y)), y] -= 1.0
        return [x.T @ p / len(y), p.mean(axis=0)]

    def _adam(self, grads: list[np.ndarray]) -> None:
        recipe = self.setup.spec.recipe
        lr, b1, b2, eps = recipe.learning_rate, recipe.beta_1, recipe.beta_2, recipe.epsilon
        self.step += 1
        n = len(self.params)
        for i, (param, grad) in enumerate(zip(self.params, grads)):
            m, v = self.moments[i], self.moments[n + i]
            m[:] = b1 * m + (1 - b1) * grad
            v[:] = b2 * v + (1 - b2) * grad * grad
            param -= (lr * (m / (1 - b1 ** self.step)) / (np.sqrt(v / (1 - b2 ** self.step)) + eps)).astype(np.float32)


class NumpyFairFramework:
    name = "numpyfair"

    def version(self) -> str:
        return np.__version__

    def variants(self) -> Sequence[str]:
        return VARIANTS

    def devices(self) -> Sequence[str]:
        return ["cpu"]

    def supports(self, spec: Any) -> bool:
        return [layer.kind for layer in spec.layers] == ["flatten", "dense"] and spec.outputs > 1

    def prepare(self, setup: Setup) -> NumpyFairSession:
        return NumpyFairSession(setup)


@hookimpl
def dlbench_register_frameworks(register: Any) -> None:
    register(NumpyFairFramework())
