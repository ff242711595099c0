"""The model zoo as data: one framework-neutral spec per model, with analytic counts.

Every plugin builds its models from these specs, and the harness checks the plugin's parameter count
against ``ModelSpec.param_count`` before timing anything: parity is checked, not claimed.

Conventions shared by every framework (the Keras defaults, which the tutorials use):
- the last Dense layer outputs logits; the loss is computed from logits (sparse categorical
  cross-entropy for 10 classes, binary cross-entropy for one output);
- kernels glorot-uniform, biases zero; LSTM recurrent kernel orthogonal, forget-gate bias 1, one bias
  vector per gate (a framework with two, like torch, freezes the second at zero); embeddings
  uniform(-0.05, 0.05); batch norm gamma 1, beta 0, momentum 0.99 (running = 0.99 * running + 0.01 *
  batch), epsilon 1e-3;
- Adam, lr 1e-3, betas (0.9, 0.999), epsilon 1e-7; float32 everywhere;
- convolutions and pools are 'valid' with stride 1 (conv) and stride = pool size (pool);
- dropout is active in training only; SpatialDropout1D drops whole embedding channels per sample;
- Keras' LSTM ``recurrent_dropout`` has no torch twin, so no model uses it (the IMDb tutorial's
  ``dropout=0.2, recurrent_dropout=0.2`` is dropped for every framework).

FLOPs count multiply-adds of dense, convolution and recurrent layers as 2 FLOPs each, forward pass, one
sample; pools, activations, normalisation and embeddings are ignored. Training is counted as 3x forward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Optional, Union

from dlbench.errors import UnknownName


@dataclass(frozen=True)
class Flatten:
    kind: str = "flatten"


@dataclass(frozen=True)
class Dense:
    units: int
    activation: str = "linear"  # "relu" | "linear"
    kind: str = "dense"


@dataclass(frozen=True)
class Dropout:
    rate: float
    kind: str = "dropout"


@dataclass(frozen=True)
class Conv2D:
    filters: int
    kernel: int
    activation: str = "linear"
    use_bias: bool = True
    kind: str = "conv2d"


@dataclass(frozen=True)
class MaxPool2D:
    pool: int
    kind: str = "maxpool2d"


@dataclass(frozen=True)
class BatchNorm:
    momentum: float = 0.99
    epsilon: float = 1e-3
    kind: str = "batchnorm"


@dataclass(frozen=True)
class Activation:
    activation: str
    kind: str = "activation"


@dataclass(frozen=True)
class Embedding:
    vocab: int
    dim: int
    kind: str = "embedding"


@dataclass(frozen=True)
class SpatialDropout1D:
    rate: float
    kind: str = "spatial_dropout1d"


@dataclass(frozen=True)
class Conv1D:
    filters: int
    kernel: int
    activation: str = "linear"
    kind: str = "conv1d"


@dataclass(frozen=True)
class MaxPool1D:
    pool: int
    kind: str = "maxpool1d"


@dataclass(frozen=True)
class LSTM:
    units: int  # returns the last hidden state only
    kind: str = "lstm"


Layer = Union[Flatten, Dense, Dropout, Conv2D, MaxPool2D, BatchNorm, Activation, Embedding,
              SpatialDropout1D, Conv1D, MaxPool1D, LSTM]


@dataclass(frozen=True)
class Recipe:
    """How every framework trains and evaluates a zoo model: one source, read by every plugin from the spec."""

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    eval_batch_size: int = 1024  # evaluate() works through the test set in batches of this size
    precision: str = "float32"
    loss_from_logits: bool = True  # the last Dense outputs logits; the loss applies softmax/sigmoid itself
    kernel_init: str = "glorot_uniform"  # dense, convolution and LSTM input kernels
    bias_init: str = "zeros"
    recurrent_init: str = "orthogonal"  # LSTM recurrent kernel
    embedding_init: tuple[float, float] = (-0.05, 0.05)  # uniform(low, high)
    lstm_forget_bias: float = 1.0  # Keras' unit_forget_bias
    lstm_biases_per_gate: int = 1  # Keras' one bias vector per gate; a framework with two freezes or excludes one

    def describe(self) -> str:
        return (f"{self.optimizer}(learning_rate={self.learning_rate:g}, beta_1={self.beta_1:g}, "
                f"beta_2={self.beta_2:g}, epsilon={self.epsilon:g})")

    def record(self) -> dict[str, object]:
        """The recipe as plain JSON values: what ``describe()["recipe"]`` must equal (the kit checks it)."""
        from dataclasses import asdict

        values = asdict(self)
        values["embedding_init"] = list(self.embedding_init)
        return values


RECIPE = Recipe()
# The precisions a case may compute in: the recipe's float32 everywhere (every default variant), or bfloat16
# compute with the recipe's float32 weights, optimiser and loss (the reduced-precision variants: amp-bf16,
# mixed-bf16, bf16). ``describe()["precision"]`` starts with one of them; ``compute_dtype`` is that one.
COMPUTE_PRECISIONS = ("float32", "bfloat16")


@dataclass(frozen=True)
class ModelSpec:
    """A zoo model: its layers and what it is for. Counts depend on the task's input shape."""

    name: str
    modality: str  # "image" | "text": which tasks it can run on
    layers: tuple[Layer, ...]
    summary: str
    origin: str
    targets: Mapping[str, float] = field(default_factory=dict)  # task -> validation accuracy target
    training_loop: str = "standard"  # "custom": the tutorial used a hand-written loop (mlp64)
    recipe: Recipe = RECIPE  # optimiser, its hyper-parameters, evaluation batch, precision
    server_latency_ms: float = 10.0  # MLPerf Server p99 bound for --inference loadgen (mlperf.conf default)

    @property
    def loss(self) -> str:
        return "binary_crossentropy" if self.outputs == 1 else "sparse_categorical_crossentropy"

    @property
    def outputs(self) -> int:
        last = self.layers[-1]
        if not isinstance(last, Dense):
            raise ValueError(f"model {self.name}: the last layer must be Dense (the classifier), got {last.kind}")
        return last.units

    def shapes(self, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        """Output shape of every layer for one sample, e.g. [(26, 26, 32), (13, 13, 32), ...]."""
        shapes, shape = [], tuple(input_shape)
        for layer in self.layers:
            shape = _output_shape(layer, shape)
            shapes.append(shape)
        return shapes

    def param_count(self, input_shape: tuple[int, ...]) -> int:
        """Trainable parameters (batch-norm running statistics are not trainable)."""
        total, shape = 0, tuple(input_shape)
        for layer in self.layers:
            total += _params(layer, shape)
            shape = _output_shape(layer, shape)
        return total

    def flops_per_sample(self, input_shape: tuple[int, ...]) -> int:
        """Forward FLOPs of one sample (2 per multiply-add of dense, conv and LSTM layers)."""
        total, shape = 0, tuple(input_shape)
        for layer in self.layers:
            out = _output_shape(layer, shape)
            total += _flops(layer, shape, out)
            shape = out
        return total

    def expected_initial_loss(self, num_classes: int) -> float:
        """Loss of an untrained model that guesses uniformly: ln(classes), or ln 2 for one output."""
        return math.log(2.0) if self.outputs == 1 else math.log(num_classes)


def _output_shape(layer: Layer, shape: tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(layer, Flatten):
        return (math.prod(shape),)
    if isinstance(layer, Dense):
        return (*shape[:-1], layer.units)
    if isinstance(layer, Conv2D):
        h, w, _ = shape
        return (h - layer.kernel + 1, w - layer.kernel + 1, layer.filters)
    if isinstance(layer, MaxPool2D):
        h, w, c = shape
        return (h // layer.pool, w // layer.pool, c)
    if isinstance(layer, Embedding):
        return (*shape, layer.dim)
    if isinstance(layer, Conv1D):
        length, _ = shape
        return (length - layer.kernel + 1, layer.filters)
    if isinstance(layer, MaxPool1D):
        length, c = shape
        return (length // layer.pool, c)
    if isinstance(layer, LSTM):
        return (layer.units,)
    return shape  # dropout, batch norm, activation


def _params(layer: Layer, shape: tuple[int, ...]) -> int:
    if isinstance(layer, Dense):
        return shape[-1] * layer.units + layer.units
    if isinstance(layer, Conv2D):
        return layer.kernel * layer.kernel * shape[-1] * layer.filters + (layer.filters if layer.use_bias else 0)
    if isinstance(layer, BatchNorm):
        return 2 * shape[-1]
    if isinstance(layer, Embedding):
        return layer.vocab * layer.dim
    if isinstance(layer, Conv1D):
        return layer.kernel * shape[-1] * layer.filters + layer.filters
    if isinstance(layer, LSTM):
        return 4 * (layer.units * (shape[-1] + layer.units) + layer.units)
    return 0


def _flops(layer: Layer, shape: tuple[int, ...], out: tuple[int, ...]) -> int:
    if isinstance(layer, Dense):
        return 2 * math.prod(shape[:-1]) * shape[-1] * layer.units
    if isinstance(layer, Conv2D):
        return 2 * out[0] * out[1] * layer.kernel * layer.kernel * shape[-1] * layer.filters
    if isinstance(layer, Conv1D):
        return 2 * out[0] * layer.kernel * shape[-1] * layer.filters
    if isinstance(layer, LSTM):
        steps, features = shape
        return 2 * steps * 4 * layer.units * (features + layer.units)
    return 0


IMAGE_TARGETS = {"fashion_mnist": 0.88, "mnist": 0.98, "digits": 0.95, "synthetic_images": 0.95}
LINEAR_TARGETS = {"fashion_mnist": 0.82, "mnist": 0.92, "digits": 0.90, "synthetic_images": 0.95}
TEXT_TARGETS = {"imdb": 0.85, "synthetic_text": 0.95}

VOCAB = 10_000
MAXLEN = 100

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("softmax", "image", (Flatten(), Dense(10)),
                  "softmax regression", "the baseline classifier of the MNIST tutorials",
                  LINEAR_TARGETS),
        ModelSpec("mlp", "image", (Flatten(), Dense(128, "relu"), Dropout(0.2), Dense(10)),
                  "MLP 128 + dropout 0.2", "MNIST MLP, 10 epochs",
                  {**IMAGE_TARGETS, "fashion_mnist": 0.85}),
        ModelSpec("mlp64", "image", (Flatten(), Dense(64, "relu"), Dense(10)),
                  "MLP 64, custom training loop", "subclassed-model tutorial (GradientTape + tf.function)",
                  {**IMAGE_TARGETS, "fashion_mnist": 0.85}, training_loop="custom"),
        ModelSpec("cnn", "image",
                  (Conv2D(32, 3, "relu"), MaxPool2D(2), Flatten(), Dense(64, "relu"), Dense(10)),
                  "conv32 + dense64", "MNIST CNN, 5 epochs, validation split 0.1", IMAGE_TARGETS),
        ModelSpec("cnn_dropout", "image",
                  (Conv2D(32, 3, "relu"), MaxPool2D(2), Dropout(0.25), Flatten(), Dense(128, "relu"),
                   Dropout(0.5), Dense(10)),
                  "conv32 + dense128 with dropout", "MNIST CNN with dropout", IMAGE_TARGETS),
        ModelSpec("cnn3", "image",
                  (Conv2D(32, 3, "relu"), MaxPool2D(2), Conv2D(64, 3, "relu"), MaxPool2D(2),
                   Conv2D(64, 3, "relu"), Flatten(), Dense(64, "relu"), Dense(10)),
                  "three convolutions + dense64", "three-conv CNN", IMAGE_TARGETS),
        ModelSpec("cnn_bn", "image",
                  (Conv2D(32, 3, use_bias=False), BatchNorm(), Activation("relu"), MaxPool2D(2), Flatten(),
                   Dense(64, "relu"), Dense(10)),
                  "conv32 + batch norm + dense64", "batch-norm concept", IMAGE_TARGETS),
        ModelSpec("lstm", "text",
                  (Embedding(VOCAB, 128), SpatialDropout1D(0.4), LSTM(100), Dense(1)),
                  "embedding128 + LSTM100", "IMDb sentiment, maxlen 100", TEXT_TARGETS,
                  server_latency_ms=50.0),
        ModelSpec("cnn_lstm", "text",
                  (Embedding(VOCAB, 128), Dropout(0.25), Conv1D(64, 5, "relu"), MaxPool1D(4), LSTM(70),
                   Dense(1)),
                  "embedding128 + conv1d64 + LSTM70", "IMDb CNN+LSTM", TEXT_TARGETS,
                  server_latency_ms=25.0),
    )
}


def get_model(name: str) -> ModelSpec:
    """The spec named ``name``; UnknownName lists the valid names."""
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownName("model", name, MODELS) from None


def target_for(spec: ModelSpec, task: str) -> Optional[float]:
    """The validation accuracy that counts as 'trained' for time-to-accuracy, if one is defined."""
    return spec.targets.get(task)
