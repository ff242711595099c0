"""A zoo spec as a Flax Linen module, trained by one jit-compiled step (forward, loss, grad, optax Adam).

The first ``train`` call traces and compiles the step (the harness reports it as compile time). JAX
dispatches asynchronously: ``train`` and ``predict`` return with work queued, ``sync`` blocks on it.
"""

from __future__ import annotations

from functools import lru_cache, partial
from importlib import metadata
from typing import Any, Mapping, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dlbench import BlockHook, DeviceOrder, Setup, check_batch_size, device_memory, fairness_profile
from dlbench_jax.layers import Ctx, apply_layers

jax.config.update("jax_default_matmul_precision", "highest")  # true float32 on GPUs too (no TF32)


class Net(nn.Module):
    """The spec's layers (channels-last, like the harness' arrays) applied by dlbench_jax.layers' dispatch."""

    layers: tuple
    dtype: Any = jnp.float32  # computation dtype: bfloat16 in the bf16 variant (parameters stay float32)

    @nn.compact
    def __call__(self, x: Any, train: bool) -> Any:
        x = apply_layers(Ctx(nn, jnp, self.dtype, train), self.layers, x)
        return x.astype(jnp.float32)  # logits (and so the loss) in float32 whatever the compute dtype


@lru_cache(maxsize=None)
def _optimizer(recipe: Any) -> optax.GradientTransformation:
    """The zoo recipe's Adam; cached so that the jitted step sees one (hashable) object per recipe."""
    return optax.adam(recipe.learning_rate, b1=recipe.beta_1, b2=recipe.beta_2, eps=recipe.epsilon)


# Pure functions, jitted once per process for each (net, batch size): Linen modules hash by value, so two
# sessions of one model share their compilations (the harness runs one session per process anyway).
def _apply(net: Net, params: Any, stats: Any, x: Any, train: bool, key: Any = None) -> Any:
    variables = {"params": params, **({"batch_stats": stats} if stats else {})}
    if not train:
        return net.apply(variables, x, False)
    return net.apply(variables, x, True, rngs={"dropout": key}, mutable=["batch_stats"])


def _losses(net: Net, logits: Any, y: Any) -> Any:
    if net.layers[-1].units == 1:
        return optax.sigmoid_binary_cross_entropy(logits[:, 0], y)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y)


def _train_step_fn(net: Net, batch: int, tx: Any, state: Any, x_all: Any, y_all: Any, order: Any, cursor: Any) -> Any:
    params, stats, opt_state, key, step = state
    index = jax.lax.dynamic_slice_in_dim(order, cursor * batch, batch)

    def loss(p: Any) -> Any:
        logits, updated = _apply(net, p, stats, x_all[index], True, jax.random.fold_in(key, step))
        return _losses(net, logits, y_all[index]).mean(), updated.get("batch_stats", stats)

    grads, stats = jax.grad(loss, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), stats, opt_state, key, step + 1


@partial(jax.jit, static_argnums=0)
def _eval_batch(net: Net, params: Any, stats: Any, x: Any, y: Any, valid: Any) -> Any:
    logits = _apply(net, params, stats, x, False)
    binary = net.layers[-1].units == 1
    hits = (logits[:, 0] > 0) == (y > 0.5) if binary else jnp.argmax(logits, -1) == y
    return jnp.sum(_losses(net, logits, y) * valid), jnp.sum(hits * valid)


_predict = jax.jit(partial(_apply, train=False), static_argnums=0)
# default (the Flax tutorials' @jax.jit train step) and tuned (JAX's guide: donate the state's buffers, so
# XLA updates parameters and Adam moments in place instead of allocating a new copy every step)
_train_step = jax.jit(_train_step_fn, static_argnums=(0, 1, 2))
_train_step_donated = jax.jit(_train_step_fn, static_argnums=(0, 1, 2), donate_argnums=3)
DONATION_GUIDE = "JAX documentation, FAQ 'Buffer donation' (jax.jit donate_argnums)"
GPU_FLAGS_GUIDE = ("JAX documentation, 'GPU performance tips', code generation flags: --xla_gpu_triton_gemm_any "
                   "(Triton for any GEMM it supports)")


def _init(net: Net, key: Any, x: Any) -> Any:
    """Runs once per session: compiled without XLA's optimisations, which take seconds on threefry's graph."""
    lowered = jax.jit(lambda k, sample: net.init(k, sample, False)).lower(key, x)
    return lowered.compile({"xla_backend_optimization_level": 0})(key, x)


class JaxSession:
    def __init__(self, setup: Setup, threads: str) -> None:
        self.setup, self.threads = setup, threads
        data, spec = setup.data, setup.spec
        self.batch, self.batches = setup.batch_size, check_batch_size(setup)
        self.binary = spec.outputs == 1
        self.device = jax.devices()[0]
        if (setup.device == "gpu") != (self.device.platform == "gpu"):
            raise RuntimeError(f"device {setup.device} requested, jax runs on {self.device.platform}")
        self.bf16 = setup.variant == "bf16"
        self.net = Net(tuple(spec.layers), jnp.bfloat16 if self.bf16 else jnp.float32)
        init_key, dropout_key = jax.random.split(jax.random.PRNGKey(setup.seed))
        variables = _init(self.net, init_key, self.stage(data.x_train[:1]))
        params, stats = variables["params"], variables.get("batch_stats", {})
        # (params, batch stats, Adam state, dropout key, step): passed to each step (donated when tuned),
        # replaced by its result
        self.tx = _optimizer(spec.recipe)
        self.state = (params, stats, self.tx.init(params), dropout_key, jnp.zeros((), jnp.int32))
        self.x_train, self.y_train = self.stage(data.x_train), self._labels(data.y_train)
        # the harness's batch order: each epoch's permutation goes to the device once, sliced inside the step
        self.order = DeviceOrder(setup.stream, lambda rows: jax.device_put(np.asarray(rows, np.int32)))
        self._last: Any = None  # the latest prediction, for sync()
        memory = device_memory(setup.device, jax)  # XLA's peak bytes in use (no reset); None on the CPU
        if memory is not None:
            self.peak_device_memory_mb, self.reset_peak_device_memory = memory.peak_mb, memory.reset

    # -- the contract --------------------------------------------------------------------------------------
    def param_count(self) -> int:
        return sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(self.state[0]))

    def train(self, steps: int, hook: Optional[BlockHook] = None) -> None:
        step = _train_step_donated if self.setup.variant == "tuned" else _train_step
        for order, cursor in self.order.steps(steps, hook):  # the hook runs between two steps
            self.state = step(self.net, self.batch, self.tx, self.state, self.x_train, self.y_train, order, cursor)

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        loss, hits = 0.0, 0.0
        step = self.setup.spec.recipe.eval_batch_size
        for start in range(0, len(x), step):
            xb, yb = x[start:start + step], y[start:start + step]
            size = min(step, 1 << max(5, (len(xb) - 1).bit_length()))  # few shapes, few compilations
            batch_loss, batch_hits = _eval_batch(self.net, self.state[0], self.state[1], self.stage(_pad(xb, size)),
                                                 self._labels(_pad(yb, size)), np.arange(size) < len(xb))
            loss, hits = loss + float(batch_loss), hits + float(batch_hits)
        return loss / max(len(x), 1), hits / max(len(x), 1)

    def stage(self, x: np.ndarray) -> Any:
        dtype = np.int32 if self.setup.spec.modality == "text" else np.float32
        return jax.device_put(np.asarray(x, dtype=dtype))

    def predict(self, staged: Any) -> Any:
        self._last = _predict(self.net, self.state[0], self.state[1], staged)
        return self._last

    def sync(self) -> None:
        jax.block_until_ready((self.state, self._last))

    def describe(self) -> Mapping[str, Any]:
        on_gpu = self.device.platform == "gpu"
        return fairness_profile(
            self.setup, threads=self.threads, compute_dtype="bfloat16" if self.bf16 else "float32",
            precision=("flax dtype=bfloat16: Dense, Conv, Embed, BatchNorm, LayerNorm, attention and the LSTM, its "
                       "state included; float32 parameters, logits, loss and optax Adam") if self.bf16
            else "jax_default_matmul_precision=highest",
            tf32="off: jax_default_matmul_precision=highest" if on_gpu else "",
            compile="jax.jit of the whole train step (forward, loss, grad, Adam update), traced and compiled by XLA in "
                    "the first train() call; evaluate and predict are jitted too",
            sync=("jax.block_until_ready on the training state and the last prediction (async dispatch on the GPU; "
                  "on the CPU computations run on the calling thread, see threads)"),
            layout="NHWC as given by the harness; flatten in H, W, C order; sequences (N, L, C)",
            framework_versions={d: metadata.version(d) for d in ("jax", "jaxlib", "flax", "optax")},
            device_name=self.device.device_kind if on_gpu else "",
            seed=f"jax.random.PRNGKey({self.setup.seed}) split for init and dropout (folded with the step)",
            batches="each epoch's permutation put on the device once, batches sliced inside the jitted step",
            optimizer="optax.adam", loss="sigmoid_binary_cross_entropy" if self.binary
            else "softmax_cross_entropy_with_integer_labels",
            lstm="own Linen cell: fused glorot kernel, orthogonal recurrent kernel, one bias per gate (Keras')",
            data="whole training set resident on the device; batches gathered by index inside the jitted step",
            tuning=self._tuning())

    def _tuning(self) -> Optional[dict[str, str]]:
        if self.setup.variant != "tuned":
            return None
        tuning = {"donated_buffers": "train step jitted with donate_argnums=state; " + DONATION_GUIDE}
        if self.device.platform == "gpu":
            tuning["triton_gemm_any"] = "XLA_FLAGS=--xla_gpu_triton_gemm_any=true; " + GPU_FLAGS_GUIDE
        return tuning

    def _labels(self, y: np.ndarray) -> Any:
        return jax.device_put(np.asarray(y, dtype=np.float32 if self.binary else np.int32))


def _pad(a: np.ndarray, size: int) -> np.ndarray:
    return np.concatenate([a, np.repeat(a[:1], size - len(a), axis=0)])
