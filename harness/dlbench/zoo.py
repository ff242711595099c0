"""The model zoo as data: one framework-neutral spec per model, with analytic counts.

Every plugin builds its models from these specs, and the harness checks the plugin's parameter count
against ``ModelSpec.param_count`` before timing anything: parity is checked, not claimed. A layer is a
frozen dataclass with a ``kind`` string (what a plugin dispatches on) and its own analytic shape,
parameter and FLOP counts; a ``Residual`` holds two more lists of layers, built the same way.

Conventions shared by every framework (the Keras defaults, which the tutorials use):
- the last Dense layer outputs logits; the loss is computed from logits (sparse categorical
  cross-entropy for 10 classes, binary cross-entropy for one output);
- kernels glorot-uniform (unless a Dense says ``kernel_init="zeros"``), biases zero; LSTM recurrent kernel
  orthogonal, forget-gate bias 1, one bias vector per gate (a framework with two, like torch, freezes the second at zero); embeddings
  uniform(-0.05, 0.05); batch norm gamma 1, beta 0, momentum 0.99 (running = 0.99 * running + 0.01 *
  batch), epsilon 1e-3, unless the layer says otherwise (resnet20: 0.9 and 1e-5, the ResNet papers');
- Adam, lr 1e-3, betas (0.9, 0.999), epsilon 1e-7; float32 everywhere;
- convolutions are 'valid' with stride 1 unless the layer says ``padding="same"`` or ``strides``; 'same'
  pads as TensorFlow and XLA do: output ceil(size / stride), total padding max((out - 1) * stride + kernel
  - size, 0) split with the odd pixel at the bottom/right; pools are 'valid' with stride = pool size;
- a convolution followed by batch norm has no bias (``use_bias=False``): batch norm's beta is its bias;
- ``Residual``: activation(body(x) + shortcut(x)); an empty shortcut is the identity; resnet20's
  stride-2 blocks project with a 1x1 stride-2 convolution and batch norm (He et al.'s option B);
- ``GlobalAvgPool``: the mean over every axis but the channels (an image's H and W, a sequence's tokens);
- ``LayerNorm``: over the last axis, gamma 1, beta 0, epsilon 1e-6 (the Transformer's and Flax's);
- ``SelfAttention``: ``heads`` heads of ``key_dim``; query, key, value and output projections are dense
  layers with biases, kernels glorot-uniform over the (model dim, heads * key_dim) matrix (fan_in +
  fan_out = dim + heads * key_dim for all four), biases zero; scores scaled by 1/sqrt(key_dim), softmax,
  no mask, no dropout; it outputs the model dim;
- ``PositionEmbedding``: a learned (length, dim) table added to the token embeddings, initialised like
  embeddings, uniform(-0.05, 0.05);
- the transformer's head starts at zero (ViT's zero-initialised head, Dosovitskiy et al. 2021): with glorot,
  its untrained logit is a random constant of standard deviation about 1 (the GELU's positive mean and the
  near-uniform attention give every token a shared component that the last layer norm scales up), so the
  first loss ranged 0.67-1.09 over seeds, outside the parity check's ln 2 +- 50% for one seed in ten. At zero
  it is ln 2 exactly, and the check no longer sees the body's initialisation (the parameter count and
  benchmarks/zoo_same_function.py do);
- activations: relu, tanh, sigmoid and gelu, which is the exact x * Phi(x) (erf), never the tanh
  approximation (Flax's default); 'linear' is none;
- dropout is active in training only; SpatialDropout1D drops whole embedding channels per sample;
- Keras' LSTM ``recurrent_dropout`` has no torch twin, so no model uses it (the IMDb tutorial's
  ``dropout=0.2, recurrent_dropout=0.2`` is dropped for every framework).

FLOPs count multiply-adds of dense, convolution, recurrent and attention layers (its four projections and
its two length x length products) as 2 FLOPs each, forward pass, one sample; pools, activations,
normalisation, softmax, embeddings and the residual sum are ignored. Training is counted as 3x forward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Collection, Iterator, Mapping, Optional, Union

from dlbench.errors import UnknownName

Shape = tuple[int, ...]


class _Counts:
    """Analytic counts of a layer that changes nothing it is not told to: the defaults of every kind."""

    def output_shape(self, shape: Shape) -> Shape:
        return shape

    def params(self, shape: Shape) -> int:
        """Trainable parameters for one input of ``shape`` (batch-norm running statistics do not count)."""
        return 0

    def flops(self, shape: Shape) -> int:
        """Forward FLOPs for one input of ``shape`` (2 per multiply-add, see the module docstring)."""
        return 0

    def children(self) -> tuple["Layer", ...]:
        """Layers nested inside this one (a residual block's body and shortcut)."""
        return ()


@dataclass(frozen=True)
class Flatten(_Counts):
    kind: str = "flatten"

    def output_shape(self, shape: Shape) -> Shape:
        return (math.prod(shape),)


@dataclass(frozen=True)
class Dense(_Counts):
    units: int
    activation: str = "linear"  # "relu" | "gelu" | "tanh" | "sigmoid" | "linear"
    kernel_init: str = "glorot_uniform"  # "glorot_uniform" | "zeros" (the transformer's head, as ViT's)
    kind: str = "dense"

    def output_shape(self, shape: Shape) -> Shape:
        return (*shape[:-1], self.units)  # on a sequence: the same dense layer for every token

    def params(self, shape: Shape) -> int:
        return shape[-1] * self.units + self.units

    def flops(self, shape: Shape) -> int:
        return 2 * math.prod(shape[:-1]) * shape[-1] * self.units


@dataclass(frozen=True)
class Dropout(_Counts):
    rate: float
    kind: str = "dropout"


@dataclass(frozen=True)
class Conv2D(_Counts):
    filters: int
    kernel: int
    activation: str = "linear"
    use_bias: bool = True
    padding: str = "valid"  # "valid" | "same" (TensorFlow's: the odd pixel of padding at the bottom/right)
    strides: int = 1
    kind: str = "conv2d"

    def output_shape(self, shape: Shape) -> Shape:
        h, w, _ = shape
        if self.padding == "same":
            return (-(-h // self.strides), -(-w // self.strides), self.filters)
        if self.padding != "valid":
            raise ValueError(f"conv2d padding must be 'valid' or 'same', got {self.padding!r}")
        return ((h - self.kernel) // self.strides + 1, (w - self.kernel) // self.strides + 1, self.filters)

    def params(self, shape: Shape) -> int:
        return self.kernel * self.kernel * shape[-1] * self.filters + (self.filters if self.use_bias else 0)

    def flops(self, shape: Shape) -> int:
        h, w, _ = self.output_shape(shape)
        return 2 * h * w * self.kernel * self.kernel * shape[-1] * self.filters


@dataclass(frozen=True)
class MaxPool2D(_Counts):
    pool: int
    kind: str = "maxpool2d"

    def output_shape(self, shape: Shape) -> Shape:
        h, w, c = shape
        return (h // self.pool, w // self.pool, c)


class _ScaleShift(_Counts):
    """A normalisation's trainable gamma and beta, one of each per channel (the last axis)."""

    def params(self, shape: Shape) -> int:
        return 2 * shape[-1]


@dataclass(frozen=True)
class BatchNorm(_ScaleShift):
    momentum: float = 0.99
    epsilon: float = 1e-3
    kind: str = "batchnorm"


@dataclass(frozen=True)
class Activation(_Counts):
    activation: str
    kind: str = "activation"


@dataclass(frozen=True)
class Embedding(_Counts):
    vocab: int
    dim: int
    kind: str = "embedding"

    def output_shape(self, shape: Shape) -> Shape:
        return (*shape, self.dim)

    def params(self, shape: Shape) -> int:
        return self.vocab * self.dim


@dataclass(frozen=True)
class SpatialDropout1D(_Counts):
    rate: float
    kind: str = "spatial_dropout1d"


@dataclass(frozen=True)
class Conv1D(_Counts):
    filters: int
    kernel: int
    activation: str = "linear"
    kind: str = "conv1d"

    def output_shape(self, shape: Shape) -> Shape:
        return (shape[0] - self.kernel + 1, self.filters)

    def params(self, shape: Shape) -> int:
        return self.kernel * shape[-1] * self.filters + self.filters

    def flops(self, shape: Shape) -> int:
        return 2 * self.output_shape(shape)[0] * self.kernel * shape[-1] * self.filters


@dataclass(frozen=True)
class MaxPool1D(_Counts):
    pool: int
    kind: str = "maxpool1d"

    def output_shape(self, shape: Shape) -> Shape:
        length, c = shape
        return (length // self.pool, c)


@dataclass(frozen=True)
class LSTM(_Counts):
    units: int  # returns the last hidden state only
    kind: str = "lstm"

    def output_shape(self, shape: Shape) -> Shape:
        return (self.units,)

    def params(self, shape: Shape) -> int:
        return 4 * (self.units * (shape[-1] + self.units) + self.units)

    def flops(self, shape: Shape) -> int:
        steps, features = shape
        return 2 * steps * 4 * self.units * (features + self.units)


@dataclass(frozen=True)
class GlobalAvgPool(_Counts):
    """The mean over every axis but the channels: (H, W, C) -> (C,), (L, C) -> (C,)."""

    kind: str = "global_avgpool"

    def output_shape(self, shape: Shape) -> Shape:
        return (shape[-1],)


@dataclass(frozen=True)
class LayerNorm(_ScaleShift):
    epsilon: float = 1e-6
    kind: str = "layernorm"


@dataclass(frozen=True)
class PositionEmbedding(_Counts):
    """A learned (length, dim) table added to a sequence of embeddings; length and dim are the input's."""

    kind: str = "position_embedding"

    def params(self, shape: Shape) -> int:
        length, dim = shape
        return length * dim


@dataclass(frozen=True)
class SelfAttention(_Counts):
    """Multi-head self-attention over a (length, dim) sequence; query/key/value/output dense with biases."""

    heads: int
    key_dim: int
    kind: str = "attention"

    def params(self, shape: Shape) -> int:
        dim, inner = shape[-1], self.heads * self.key_dim
        return 3 * (dim * inner + inner) + inner * dim + dim

    def flops(self, shape: Shape) -> int:
        length, dim = shape
        inner = self.heads * self.key_dim
        projections = 2 * length * dim * inner * 4
        return projections + 2 * (2 * length * length * inner)  # scores q.k and the weighted sum of values


@dataclass(frozen=True)
class Residual(_Counts):
    """activation(body(x) + shortcut(x)); an empty shortcut is the identity. Both branches end in one shape."""

    body: tuple["Layer", ...]
    shortcut: tuple["Layer", ...] = ()
    activation: str = "linear"
    kind: str = "residual"

    def output_shape(self, shape: Shape) -> Shape:
        out, short = _through(self.body, shape), _through(self.shortcut, shape)
        if out != short:
            raise ValueError(f"residual block: the body outputs {out}, the shortcut {short}; they must match")
        return out

    def params(self, shape: Shape) -> int:
        return _sum_over(self.body, shape, "params") + _sum_over(self.shortcut, shape, "params")

    def flops(self, shape: Shape) -> int:
        return _sum_over(self.body, shape, "flops") + _sum_over(self.shortcut, shape, "flops")

    def children(self) -> tuple["Layer", ...]:
        return (*self.body, *self.shortcut)


Layer = Union[Flatten, Dense, Dropout, Conv2D, MaxPool2D, BatchNorm, Activation, Embedding, SpatialDropout1D,
              Conv1D, MaxPool1D, LSTM, GlobalAvgPool, LayerNorm, PositionEmbedding, SelfAttention, Residual]
# The kinds of the first zoo (softmax .. cnn_lstm); a plugin written for it knows these and no others.
FIRST_KINDS = frozenset({"flatten", "dense", "dropout", "conv2d", "maxpool2d", "batchnorm", "activation",
                         "embedding", "spatial_dropout1d", "conv1d", "maxpool1d", "lstm"})
FIRST_ACTIVATIONS = frozenset({"relu", "tanh", "sigmoid"})


def _through(layers: tuple[Layer, ...], shape: Shape) -> Shape:
    for layer in layers:
        shape = layer.output_shape(shape)
    return shape


def _sum_over(layers: tuple[Layer, ...], shape: Shape, count: str) -> int:
    """The sum of each layer's ``count`` ("params" or "flops") for the shape that reaches it."""
    total = 0
    for layer in layers:
        total += getattr(layer, count)(shape)
        shape = layer.output_shape(shape)
    return total


def _walk(layers: tuple[Layer, ...]) -> Iterator[Layer]:
    for layer in layers:
        yield layer
        yield from _walk(layer.children())


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
    kernel_init: str = "glorot_uniform"  # dense, convolution, LSTM input and attention projection kernels
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

    def shapes(self, input_shape: Shape) -> list[Shape]:
        """Output shape of every layer for one sample, e.g. [(26, 26, 32), (13, 13, 32), ...]."""
        shapes, shape = [], tuple(input_shape)
        for layer in self.layers:
            shape = layer.output_shape(shape)
            shapes.append(shape)
        return shapes

    def param_count(self, input_shape: Shape) -> int:
        """Trainable parameters (batch-norm running statistics are not trainable)."""
        return _sum_over(self.layers, tuple(input_shape), "params")

    def flops_per_sample(self, input_shape: Shape) -> int:
        """Forward FLOPs of one sample (2 per multiply-add of dense, conv, LSTM and attention layers)."""
        return _sum_over(self.layers, tuple(input_shape), "flops")

    def expected_initial_loss(self, num_classes: int) -> float:
        """Loss of an untrained model that guesses uniformly: ln(classes), or ln 2 for one output."""
        return math.log(2.0) if self.outputs == 1 else math.log(num_classes)

    def walk(self) -> Iterator[Layer]:
        """Every layer, nested ones (a residual block's body and shortcut) right after their block."""
        return _walk(self.layers)

    def layer_kinds(self) -> frozenset[str]:
        return frozenset(layer.kind for layer in self.walk())

    def activations(self) -> frozenset[str]:
        """The activation functions the model uses ('linear' is none)."""
        return frozenset(name for layer in self.walk()
                         if (name := getattr(layer, "activation", "linear")) != "linear")

    def missing(self, kinds: Collection[str], activations: Collection[str]) -> list[str]:
        """What a builder that knows ``kinds`` and ``activations`` lacks for this model (empty: it can build it).

        A plugin's ``supports(spec)`` is ``not spec.missing(BUILDERS, ACTIVATIONS)`` over its dispatch tables.
        """
        return ([f"layer kind {kind!r}" for kind in sorted(self.layer_kinds() - set(kinds))]
                + [f"activation {name!r}" for name in sorted(self.activations() - set(activations))])


IMAGE_TARGETS = {"fashion_mnist": 0.88, "mnist": 0.98, "digits": 0.95, "synthetic_images": 0.95}
LINEAR_TARGETS = {"fashion_mnist": 0.82, "mnist": 0.92, "digits": 0.90, "synthetic_images": 0.95}
TEXT_TARGETS = {"imdb": 0.85, "synthetic_text": 0.95}
# resnet20 runs on the MNIST-like tasks as they are (28x28x1), on CIFAR-10 and on its synthetic twin (32x32x3)
RESNET_TARGETS = {"fashion_mnist": 0.90, "mnist": 0.98, "digits": 0.95, "cifar10": 0.75, "synthetic_rgb": 0.95}
TRANSFORMER_TARGETS = {"imdb": 0.82, "synthetic_text": 0.95}

VOCAB = 10_000
MAXLEN = 100
RESNET_BN = BatchNorm(momentum=0.9, epsilon=1e-5)  # the ResNet papers' (torch's 0.1 is 1 - 0.9)


def _conv_bn(filters: int, kernel: int, strides: int = 1) -> tuple[Layer, ...]:
    return (Conv2D(filters, kernel, use_bias=False, padding="same", strides=strides), RESNET_BN)


def _basic_block(filters: int, strides: int) -> Residual:
    """He et al.'s basic block: two 3x3 convolutions; a 1x1 projection where the block downsamples."""
    body = (*_conv_bn(filters, 3, strides), Activation("relu"), *_conv_bn(filters, 3))
    return Residual(body, _conv_bn(filters, 1, strides) if strides > 1 else (), "relu")


def resnet20_layers(classes: int = 10) -> tuple[Layer, ...]:
    """The CIFAR ResNet of He et al. 2016 (n = 3): a 3x3 stem, three stages of three blocks, pool, dense."""
    stages = [_basic_block(filters, 2 if block == 0 and filters > 16 else 1)
              for filters in (16, 32, 64) for block in range(3)]
    return (*_conv_bn(16, 3), Activation("relu"), *stages, GlobalAvgPool(), Dense(classes))


def transformer_layers(dim: int = 128, heads: int = 4, hidden: int = 512, blocks: int = 2) -> tuple[Layer, ...]:
    """A pre-norm encoder: x + attention(norm(x)), then x + feed-forward(norm(x)), per block."""
    encoder = [Residual((LayerNorm(), SelfAttention(heads, dim // heads))) if part == 0
               else Residual((LayerNorm(), Dense(hidden, "gelu"), Dense(dim)))
               for _ in range(blocks) for part in (0, 1)]
    return (Embedding(VOCAB, dim), PositionEmbedding(), *encoder, LayerNorm(), GlobalAvgPool(),
            Dense(1, kernel_init="zeros"))


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
        ModelSpec("resnet20", "image", resnet20_layers(),
                  "ResNet-20: 3 stages x 3 basic blocks, 16/32/64 filters",
                  "He et al. 2016, CIFAR ResNet (n = 3), projection shortcuts", RESNET_TARGETS,
                  server_latency_ms=15.0),  # MLPerf's ResNet-50 Server bound
        ModelSpec("transformer", "text", transformer_layers(),
                  "encoder: embedding 128 + positions, 2 pre-norm blocks (4 heads, GELU 512), mean pool",
                  "Transformer encoder classifier (Vaswani et al. 2017; pre-norm as in Xiong et al. 2020)",
                  TRANSFORMER_TARGETS, server_latency_ms=25.0),
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
