"""A zoo spec -> a keras.Sequential, by a generic walk over the spec's layers.

Every initialiser is spelled out even where it is the Keras default, so the spec's conventions
(dlbench.zoo) are visible here. Each initialiser and dropout layer gets its own seed derived from the
case seed: the model is the same on every backend and does not depend on global random state.
"""

from __future__ import annotations

from typing import Any, Callable

from dlbench import ModelSpec


def build_model(keras: Any, spec: ModelSpec, input_shape: tuple[int, ...], seed: int) -> Any:
    """The Keras model for ``spec`` on one sample of ``input_shape``; it outputs logits."""
    text = spec.modality == "text"
    layers = [keras.Input(shape=input_shape, dtype="int32" if text else "float32", name="inputs")]
    for index, layer in enumerate(spec.layers):
        make = _BUILDERS.get(layer.kind)
        if make is None:
            raise NotImplementedError(f"keras plugin: no builder for layer kind {layer.kind!r}")
        layers.append(make(keras, layer, seed * 1000 + index * 10, f"{index}_{layer.kind}"))
    return keras.Sequential(layers, name=spec.name)


def _activation(name: str) -> Any:
    return None if name == "linear" else name


def _dense(keras, layer, seed, name):
    init = keras.initializers
    return keras.layers.Dense(layer.units, activation=_activation(layer.activation),
                              kernel_initializer=init.GlorotUniform(seed=seed),
                              bias_initializer=init.Zeros(), name=name)


def _conv2d(keras, layer, seed, name):
    init = keras.initializers
    return keras.layers.Conv2D(layer.filters, layer.kernel, strides=1, padding="valid",
                               data_format="channels_last", activation=_activation(layer.activation),
                               use_bias=layer.use_bias, kernel_initializer=init.GlorotUniform(seed=seed),
                               bias_initializer=init.Zeros(), name=name)


def _conv1d(keras, layer, seed, name):
    init = keras.initializers
    return keras.layers.Conv1D(layer.filters, layer.kernel, strides=1, padding="valid",
                               activation=_activation(layer.activation),
                               kernel_initializer=init.GlorotUniform(seed=seed),
                               bias_initializer=init.Zeros(), name=name)


def _lstm(keras, layer, seed, name):
    init = keras.initializers
    # No dropout / recurrent_dropout (see dlbench.zoo); one bias vector per gate, forget gate at 1.
    return keras.layers.LSTM(layer.units, activation="tanh", recurrent_activation="sigmoid",
                             kernel_initializer=init.GlorotUniform(seed=seed),
                             recurrent_initializer=init.Orthogonal(seed=seed + 1),
                             bias_initializer=init.Zeros(), unit_forget_bias=True,
                             return_sequences=False, name=name)


def _embedding(keras, layer, seed, name):
    init = keras.initializers.RandomUniform(minval=-0.05, maxval=0.05, seed=seed)
    return keras.layers.Embedding(layer.vocab, layer.dim, embeddings_initializer=init, name=name)


def _batchnorm(keras, layer, seed, name):
    init = keras.initializers
    return keras.layers.BatchNormalization(momentum=layer.momentum, epsilon=layer.epsilon,
                                           gamma_initializer=init.Ones(), beta_initializer=init.Zeros(),
                                           moving_mean_initializer=init.Zeros(),
                                           moving_variance_initializer=init.Ones(), name=name)


_BUILDERS: dict[str, Callable[[Any, Any, int, str], Any]] = {
    "flatten": lambda keras, layer, seed, name: keras.layers.Flatten(name=name),
    "dense": _dense,
    "dropout": lambda keras, layer, seed, name: keras.layers.Dropout(layer.rate, seed=seed, name=name),
    "conv2d": _conv2d,
    "maxpool2d": lambda keras, layer, seed, name: keras.layers.MaxPooling2D(layer.pool, padding="valid",
                                                                            name=name),
    "batchnorm": _batchnorm,
    "activation": lambda keras, layer, seed, name: keras.layers.Activation(layer.activation, name=name),
    "embedding": _embedding,
    "spatial_dropout1d": lambda keras, layer, seed, name: keras.layers.SpatialDropout1D(layer.rate, seed=seed,
                                                                                        name=name),
    "conv1d": _conv1d,
    "maxpool1d": lambda keras, layer, seed, name: keras.layers.MaxPooling1D(layer.pool, padding="valid",
                                                                            name=name),
    "lstm": _lstm,
}

SUPPORTED_KINDS = frozenset(_BUILDERS)


def trainable_params(model: Any) -> int:
    """Trainable parameters only: batch norm's moving statistics are not counted, as in the spec."""
    total = 0
    for weight in model.trainable_weights:
        count = 1
        for dim in weight.shape:
            count *= int(dim)
        total += count
    return total
