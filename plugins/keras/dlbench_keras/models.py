"""A zoo spec -> a functional ``keras.Model``, by a dispatch on each layer's ``kind``.

Every initialiser is spelled out even where it is the Keras default, so the spec's conventions
(dlbench.zoo) are visible here. Each initialiser and dropout layer gets its own seed derived from the
case seed: the model is the same on every backend and does not depend on global random state. Layers
are numbered in the order ``ModelSpec.walk`` gives (a residual block's layers right after it), so a model
without residual blocks gets the seeds it had when the zoo was a plain list. Keras is passed in, never
imported here: ``BUILDERS`` and ``ACTIVATIONS`` are what ``KerasFramework.supports`` reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from dlbench import ModelSpec

ACTIVATIONS = frozenset({"relu", "tanh", "sigmoid", "gelu"})  # Keras' "gelu" is the exact (erf) one by default
Apply = Callable[[Any], Any]  # a Keras layer, or a function of Keras tensors


@dataclass
class _Build:
    keras: Any
    seed: int
    count: int = 0  # layers numbered so far, in ModelSpec.walk order

    def next_seed(self) -> int:
        seed = self.seed * 1000 + self.count * 10
        self.count += 1
        return seed


def build_model(keras: Any, spec: ModelSpec, input_shape: tuple[int, ...], seed: int) -> Any:
    """The Keras model for ``spec`` on one sample of ``input_shape``; it outputs logits."""
    inputs = keras.Input(shape=input_shape, dtype="int32" if spec.modality == "text" else "float32", name="inputs")
    outputs = _apply(_Build(keras, seed), spec.layers, inputs, "")
    return keras.Model(inputs, outputs, name=spec.name)


def _apply(b: _Build, layers: tuple[Any, ...], x: Any, prefix: str) -> Any:
    for index, layer in enumerate(layers):
        make = BUILDERS.get(layer.kind)
        if make is None:
            raise NotImplementedError(f"keras plugin: no builder for layer kind {layer.kind!r}")
        x = make(b, layer, b.next_seed(), f"{prefix}{index}_{layer.kind}")(x)
    return x


def _activation(name: str) -> Any:
    if name != "linear" and name not in ACTIVATIONS:
        raise ValueError(f"activation {name!r} is not supported by the keras plugin")
    return None if name == "linear" else name


def _dense(b, layer, seed, name):
    init = b.keras.initializers
    kernels = {"glorot_uniform": lambda: init.GlorotUniform(seed=seed), "zeros": init.Zeros}
    if layer.kernel_init not in kernels:
        raise ValueError(f"kernel_init {layer.kernel_init!r} is not supported by the keras plugin")
    return b.keras.layers.Dense(layer.units, activation=_activation(layer.activation),
                                kernel_initializer=kernels[layer.kernel_init](),
                                bias_initializer=init.Zeros(), name=name)


def _conv2d(b, layer, seed, name):
    init = b.keras.initializers
    return b.keras.layers.Conv2D(layer.filters, layer.kernel, strides=layer.strides, padding=layer.padding,
                                 data_format="channels_last", activation=_activation(layer.activation),
                                 use_bias=layer.use_bias, kernel_initializer=init.GlorotUniform(seed=seed),
                                 bias_initializer=init.Zeros(), name=name)


def _conv1d(b, layer, seed, name):
    init = b.keras.initializers
    return b.keras.layers.Conv1D(layer.filters, layer.kernel, strides=1, padding="valid",
                                 activation=_activation(layer.activation),
                                 kernel_initializer=init.GlorotUniform(seed=seed),
                                 bias_initializer=init.Zeros(), name=name)


def _lstm(b, layer, seed, name):
    init = b.keras.initializers
    # No dropout / recurrent_dropout (see dlbench.zoo); one bias vector per gate, forget gate at 1.
    return b.keras.layers.LSTM(layer.units, activation="tanh", recurrent_activation="sigmoid",
                               kernel_initializer=init.GlorotUniform(seed=seed),
                               recurrent_initializer=init.Orthogonal(seed=seed + 1),
                               bias_initializer=init.Zeros(), unit_forget_bias=True,
                               return_sequences=False, name=name)


def _embedding(b, layer, seed, name):
    init = b.keras.initializers.RandomUniform(minval=-0.05, maxval=0.05, seed=seed)
    return b.keras.layers.Embedding(layer.vocab, layer.dim, embeddings_initializer=init, name=name)


def _batchnorm(b, layer, seed, name):
    init = b.keras.initializers
    return b.keras.layers.BatchNormalization(momentum=layer.momentum, epsilon=layer.epsilon,
                                             gamma_initializer=init.Ones(), beta_initializer=init.Zeros(),
                                             moving_mean_initializer=init.Zeros(),
                                             moving_variance_initializer=init.Ones(), name=name)


def _global_avgpool(b, layer, seed, name):
    layers = b.keras.layers
    return lambda x: (layers.GlobalAveragePooling2D if len(x.shape) == 4 else layers.GlobalAveragePooling1D)(
        name=name)(x)


def _layernorm(b, layer, seed, name):
    init = b.keras.initializers
    return b.keras.layers.LayerNormalization(axis=-1, epsilon=layer.epsilon, gamma_initializer=init.Ones(),
                                             beta_initializer=init.Zeros(), name=name)


def _position_embedding(b, layer, seed, name):
    return _position_embedding_class(b.keras)(seed, name=name)


def _attention(b, layer, seed, name):
    """Keras' MultiHeadAttention; its four kernels drawn again with the zoo's glorot limit, each its own seed.

    Keras clones one initialiser for the four projections (a seeded one would make them equal) and computes
    glorot fans on the 3-D einsum kernels ((dim, heads, key_dim): fan_in 4 * dim here), so the zoo's
    per-matrix limit sqrt(6 / (dim + heads * key_dim)) is drawn here, once the layer is built.
    """
    keras = b.keras
    attention = keras.layers.MultiHeadAttention(layer.heads, layer.key_dim, use_bias=True,
                                                bias_initializer=keras.initializers.Zeros(), name=name)

    def apply(x: Any) -> Any:
        out = attention(x, x)
        limit = math.sqrt(6.0 / (int(x.shape[-1]) + layer.heads * layer.key_dim))
        projections = (attention.query_dense, attention.key_dense, attention.value_dense, attention.output_dense)
        for offset, dense in enumerate(projections):
            draw = keras.initializers.RandomUniform(-limit, limit, seed=seed + offset)
            dense.kernel.assign(draw(tuple(dense.kernel.shape)))
        return out

    return apply


def _residual(b, layer, seed, name):
    keras = b.keras

    def apply(x: Any) -> Any:
        out = _apply(b, layer.body, x, f"{name}_body")
        short = _apply(b, layer.shortcut, x, f"{name}_shortcut") if layer.shortcut else x
        summed = keras.layers.Add(name=f"{name}_add")([out, short])
        if layer.activation == "linear":
            return summed
        return keras.layers.Activation(_activation(layer.activation), name=f"{name}_{layer.activation}")(summed)

    return apply


@lru_cache(maxsize=None)
def _position_embedding_class(keras: Any) -> type:
    """A learned (length, dim) table added to the embeddings (Keras core has none; keras_hub's is the same sum)."""

    class PositionEmbedding(keras.layers.Layer):
        def __init__(self, seed: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.seed = seed

        def build(self, input_shape: Any) -> None:
            init = keras.initializers.RandomUniform(minval=-0.05, maxval=0.05, seed=self.seed)
            self.table = self.add_weight(shape=tuple(input_shape[1:]), initializer=init, name="table")

        def call(self, x: Any) -> Any:
            return x + keras.ops.cast(self.table, x.dtype)

    return PositionEmbedding


BUILDERS: dict[str, Callable[[_Build, Any, int, str], Apply]] = {
    "flatten": lambda b, layer, seed, name: b.keras.layers.Flatten(name=name),
    "dense": _dense,
    "dropout": lambda b, layer, seed, name: b.keras.layers.Dropout(layer.rate, seed=seed, name=name),
    "conv2d": _conv2d,
    "maxpool2d": lambda b, layer, seed, name: b.keras.layers.MaxPooling2D(layer.pool, padding="valid", name=name),
    "batchnorm": _batchnorm,
    "activation": lambda b, layer, seed, name: b.keras.layers.Activation(_activation(layer.activation), name=name),
    "embedding": _embedding,
    "spatial_dropout1d": lambda b, layer, seed, name: b.keras.layers.SpatialDropout1D(layer.rate, seed=seed,
                                                                                      name=name),
    "conv1d": _conv1d,
    "maxpool1d": lambda b, layer, seed, name: b.keras.layers.MaxPooling1D(layer.pool, padding="valid", name=name),
    "lstm": _lstm,
    "global_avgpool": _global_avgpool,
    "layernorm": _layernorm,
    "position_embedding": _position_embedding,
    "attention": _attention,
    "residual": _residual,
}


def trainable_params(model: Any) -> int:
    """Trainable parameters only: batch norm's moving statistics are not counted, as in the spec."""
    total = 0
    for weight in model.trainable_weights:
        count = 1
        for dim in weight.shape:
            count *= int(dim)
        total += count
    return total
