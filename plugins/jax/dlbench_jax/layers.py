"""Zoo layers -> Flax Linen calls, by a dispatch on each layer's ``kind``, inside ``Net.__call__`` (session.py).

Cheap to import (flax is passed in through ``Ctx``): ``BUILDERS`` and ``ACTIVATIONS`` are what
``JaxFramework.supports`` reads. Submodules are created in the calling Net's compact scope, so they are
named and initialised there (Dense_0, Conv_0, ...), residual blocks' layers included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

ACTIVATIONS = frozenset({"relu", "tanh", "sigmoid", "gelu"})  # gelu: exact (erf), not flax's tanh default


@dataclass(frozen=True)
class Ctx:
    nn: Any  # flax.linen
    jnp: Any  # jax.numpy
    dtype: Any  # computation dtype (bfloat16 in the bf16 variant); parameters stay float32
    train: bool

    def act(self, name: str, x: Any) -> Any:
        if name == "linear":
            return x
        if name not in ACTIVATIONS:
            raise ValueError(f"activation {name!r} is not supported by dlbench-jax")
        if name == "gelu":
            return self.nn.gelu(x, approximate=False)
        return {"relu": self.nn.relu, "tanh": self.jnp.tanh, "sigmoid": self.nn.sigmoid}[name](x)

    @property
    def glorot(self) -> Any:
        return self.nn.initializers.xavier_uniform()


def apply_layers(ctx: Ctx, layers: tuple[Any, ...], x: Any) -> Any:
    for layer in layers:
        make = BUILDERS.get(layer.kind)
        if make is None:
            raise NotImplementedError(f"jax plugin: no builder for layer kind {layer.kind!r}")
        x = make(ctx, layer, x)
    return x


def _dense(ctx: Ctx, layer: Any, x: Any) -> Any:
    kernels = {"glorot_uniform": ctx.glorot, "zeros": ctx.nn.initializers.zeros}
    if layer.kernel_init not in kernels:
        raise ValueError(f"kernel_init {layer.kernel_init!r} is not supported by dlbench-jax")
    return ctx.act(layer.activation, ctx.nn.Dense(layer.units, kernel_init=kernels[layer.kernel_init],
                                                  dtype=ctx.dtype)(x))


def _conv(ctx: Ctx, layer: Any, x: Any) -> Any:
    size = (layer.kernel,) * (x.ndim - 2)  # (H, W) for conv2d, (L,) for conv1d
    strides = (getattr(layer, "strides", 1),) * len(size)
    padding = getattr(layer, "padding", "valid").upper()  # XLA's SAME: the odd pixel at the bottom/right, as TF
    conv = ctx.nn.Conv(layer.filters, size, strides=strides, padding=padding, use_bias=getattr(layer, "use_bias", True),
                       kernel_init=ctx.glorot, dtype=ctx.dtype)
    return ctx.act(layer.activation, conv(x))


def _maxpool(ctx: Ctx, layer: Any, x: Any) -> Any:
    window = (layer.pool,) * (x.ndim - 2)
    return ctx.nn.max_pool(x, window, strides=window)


def _batchnorm(ctx: Ctx, layer: Any, x: Any) -> Any:
    # flax: running = momentum * running + (1 - momentum) * batch, like Keras
    return ctx.nn.BatchNorm(use_running_average=not ctx.train, momentum=layer.momentum, epsilon=layer.epsilon,
                            dtype=ctx.dtype)(x)


def _embedding(ctx: Ctx, layer: Any, x: Any) -> Any:
    from dlbench_jax.modules import embedding_init

    return ctx.nn.Embed(layer.vocab, layer.dim, embedding_init=embedding_init, dtype=ctx.dtype)(x)


def _lstm(ctx: Ctx, layer: Any, x: Any) -> Any:
    from dlbench_jax.modules import LSTM

    return LSTM(layer.units, ctx.dtype)(x)


def _layernorm(ctx: Ctx, layer: Any, x: Any) -> Any:
    return ctx.nn.LayerNorm(epsilon=layer.epsilon, dtype=ctx.dtype)(x)  # scale 1, bias 0, last axis


def _position_embedding(ctx: Ctx, layer: Any, x: Any) -> Any:
    from dlbench_jax.modules import PositionEmbedding

    return PositionEmbedding()(x)


def _attention(ctx: Ctx, layer: Any, x: Any) -> Any:
    # Flax initialises each DenseGeneral kernel as the flattened (dim, heads * key_dim) matrix: the zoo's glorot
    inner = layer.heads * layer.key_dim
    attention = ctx.nn.MultiHeadDotProductAttention(num_heads=layer.heads, qkv_features=inner,
                                                    out_features=x.shape[-1], kernel_init=ctx.glorot, use_bias=True,
                                                    dropout_rate=0.0, deterministic=True, dtype=ctx.dtype)
    return attention(x, x)


def _residual(ctx: Ctx, layer: Any, x: Any) -> Any:
    out = apply_layers(ctx, layer.body, x)
    short = apply_layers(ctx, layer.shortcut, x) if layer.shortcut else x
    return ctx.act(layer.activation, out + short)


BUILDERS: dict[str, Callable[[Ctx, Any, Any], Any]] = {
    "flatten": lambda ctx, layer, x: x.reshape(x.shape[0], -1),
    "dense": _dense,
    "dropout": lambda ctx, layer, x: ctx.nn.Dropout(layer.rate, deterministic=not ctx.train)(x),
    # whole channels per sample: the mask broadcasts over time
    "spatial_dropout1d": lambda ctx, layer, x: ctx.nn.Dropout(layer.rate, broadcast_dims=(1,),
                                                              deterministic=not ctx.train)(x),
    "conv2d": _conv,
    "conv1d": _conv,
    "maxpool2d": _maxpool,
    "maxpool1d": _maxpool,
    "batchnorm": _batchnorm,
    "activation": lambda ctx, layer, x: ctx.act(layer.activation, x),
    "embedding": _embedding,
    "lstm": _lstm,
    "global_avgpool": lambda ctx, layer, x: x.mean(axis=tuple(range(1, x.ndim - 1))),
    "layernorm": _layernorm,
    "position_embedding": _position_embedding,
    "attention": _attention,
    "residual": _residual,
}
