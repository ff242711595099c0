"""Zoo spec -> ``torch.nn.Sequential``, by a dispatch on each layer's ``kind``, initialised as the zoo prescribes.

Layouts: images enter as NCHW (the session transposes the harness' NHWC arrays once, at prepare);
token ids enter as (N, L). Sequences are kept as (N, L, C), the layout of ``nn.Embedding``, of a
``batch_first`` LSTM and of attention, and transposed to (N, C, L) around Conv1D / MaxPool1D, as torch
wants there. Flatten flattens NCHW in C, H, W order (Keras flattens H, W, C): the parameter count is the
same and the model is an equally valid member of the family; weights are not meant to be exchanged.

Cheap to import (torch is imported by ``build``): ``BUILDERS`` and ``ACTIVATIONS`` are what
``TorchFramework.supports`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from dlbench import ModelSpec

ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "gelu": "GELU"}  # torch.nn classes; GELU exact


@dataclass
class _Build:
    """One list of modules being built (a model, or a residual block's branch) and the tensor's layout."""

    shape: tuple[int, ...]  # the spec's (Keras) shape of one sample: channels last
    embedding_init: tuple[float, float]
    modules: list[Any] = field(default_factory=list)
    channels_first_seq: bool = False  # whether a sequence tensor is currently (N, C, L)

    @property
    def is_seq(self) -> bool:
        return len(self.shape) == 2  # (L, C) in the spec: a sequence of feature vectors

    def want_seq(self, channels_first: bool) -> None:
        if self.is_seq and channels_first != self.channels_first_seq:
            from dlbench_pytorch.modules import Transpose12

            self.modules.append(Transpose12())
            self.channels_first_seq = channels_first


def build(spec: ModelSpec, input_shape: tuple[int, ...]) -> Any:
    """The spec's ``nn.Sequential`` for one sample of ``input_shape`` (channels-last, as the harness states shapes)."""
    from torch import nn

    return nn.Sequential(*_build(spec.layers, _Build(tuple(input_shape), spec.recipe.embedding_init)).modules)


def _build(layers: tuple[Any, ...], b: _Build) -> _Build:
    for layer in layers:
        make = BUILDERS.get(layer.kind)
        if make is None:
            raise NotImplementedError(f"pytorch plugin: no builder for layer kind {layer.kind!r}")
        make(b, layer)
        b.shape = layer.output_shape(b.shape)
    return b


def _flatten(b: _Build, layer: Any) -> None:
    from torch import nn

    b.modules.append(nn.Flatten())


def _dense(b: _Build, layer: Any) -> None:
    from torch import nn

    if len(b.shape) == 3:
        raise ValueError("Dense on an image tensor needs a Flatten (or a global pool) first")
    b.want_seq(False)
    linear = _glorot_zero(nn.Linear(b.shape[-1], layer.units))
    if layer.kernel_init == "zeros":
        nn.init.zeros_(linear.weight)
    elif layer.kernel_init != "glorot_uniform":
        raise ValueError(f"kernel_init {layer.kernel_init!r} is not supported by the pytorch plugin")
    b.modules.append(linear)
    _activation(b, layer.activation)


def _conv2d(b: _Build, layer: Any) -> None:
    from torch import nn

    padding = _same_padding(b.shape, layer) if layer.padding == "same" else (0, 0, 0, 0)
    left, right, top, bottom = padding
    if (left, top) != (right, bottom):  # TensorFlow's 'same' puts the odd pixel at the bottom/right
        b.modules.append(nn.ZeroPad2d(padding))
        left = top = 0
    conv = nn.Conv2d(b.shape[-1], layer.filters, layer.kernel, stride=layer.strides, padding=(top, left),
                     bias=layer.use_bias)
    b.modules.append(_glorot_zero(conv))
    _activation(b, layer.activation)


def _same_padding(shape: tuple[int, ...], layer: Any) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) of TensorFlow's 'same' padding for an (H, W, C) input."""
    pads = []
    for size in shape[:2]:
        out = -(-size // layer.strides)
        total = max((out - 1) * layer.strides + layer.kernel - size, 0)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    return left, right, top, bottom


def _batchnorm(b: _Build, layer: Any) -> None:
    from torch import nn

    # Keras' running = momentum * running + (1 - momentum) * batch is torch's momentum = 1 - momentum.
    kwargs = dict(eps=layer.epsilon, momentum=round(1.0 - layer.momentum, 12))
    if len(b.shape) == 3:
        b.modules.append(nn.BatchNorm2d(b.shape[-1], **kwargs))
        return
    b.want_seq(True)
    b.modules.append(nn.BatchNorm1d(b.shape[-1], **kwargs))


def _embedding(b: _Build, layer: Any) -> None:
    from torch import nn

    embedding = nn.Embedding(layer.vocab, layer.dim)
    nn.init.uniform_(embedding.weight, *b.embedding_init)
    b.modules.append(embedding)
    b.channels_first_seq = False


def _spatial_dropout1d(b: _Build, layer: Any) -> None:
    from dlbench_pytorch.modules import SpatialDropout1d

    b.want_seq(False)
    b.modules.append(SpatialDropout1d(layer.rate))


def _conv1d(b: _Build, layer: Any) -> None:
    from torch import nn

    b.want_seq(True)
    b.modules.append(_glorot_zero(nn.Conv1d(b.shape[-1], layer.filters, layer.kernel)))
    _activation(b, layer.activation)


def _maxpool1d(b: _Build, layer: Any) -> None:
    from torch import nn

    b.want_seq(True)
    b.modules.append(nn.MaxPool1d(layer.pool))


def _lstm(b: _Build, layer: Any) -> None:
    from dlbench_pytorch.modules import LastHidden

    b.want_seq(False)
    recurrent = LastHidden(b.shape[-1], layer.units)
    _init_lstm(recurrent.lstm, layer.units)
    b.modules.append(recurrent)


def _global_avgpool(b: _Build, layer: Any) -> None:
    from dlbench_pytorch.modules import Mean

    b.want_seq(False)
    b.modules.append(Mean((2, 3) if len(b.shape) == 3 else (1,)))


def _layernorm(b: _Build, layer: Any) -> None:
    from torch import nn

    if len(b.shape) == 3:
        raise ValueError("layer kind 'layernorm' on NCHW images is not supported by the pytorch plugin")
    b.want_seq(False)
    b.modules.append(nn.LayerNorm(b.shape[-1], eps=layer.epsilon))  # weight 1, bias 0


def _position_embedding(b: _Build, layer: Any) -> None:
    from dlbench_pytorch.modules import PositionEmbedding

    b.want_seq(False)
    b.modules.append(PositionEmbedding(*b.shape, b.embedding_init))


def _attention(b: _Build, layer: Any) -> None:
    from dlbench_pytorch.modules import SelfAttention

    b.want_seq(False)
    attention = SelfAttention(b.shape[-1], layer.heads, layer.key_dim)
    for projection in (attention.query, attention.key, attention.value, attention.output):
        _glorot_zero(projection)  # each (dim, heads * key_dim) matrix: the zoo's glorot limit
    b.modules.append(attention)


def _residual(b: _Build, layer: Any) -> None:
    from torch import nn

    from dlbench_pytorch.modules import Residual

    b.want_seq(False)  # both branches start and end as (N, L, C) on sequences (NCHW on images)
    branches = []
    for layers in (layer.body, layer.shortcut):
        branch = _build(layers, _Build(b.shape, b.embedding_init))
        branch.want_seq(False)
        branches.append(nn.Sequential(*branch.modules) if layers else None)
    b.modules.append(Residual(branches[0], branches[1], _activation_module(layer.activation)))


def _pass(module: str, *fields: str) -> Callable[[_Build, Any], None]:
    """A builder for a torch.nn module made from the layer's ``fields`` alone (dropout, pools)."""

    def make(b: _Build, layer: Any) -> None:
        from torch import nn

        b.modules.append(getattr(nn, module)(*(getattr(layer, name) for name in fields)))

    return make


BUILDERS: dict[str, Callable[[_Build, Any], None]] = {
    "flatten": _flatten,
    "dense": _dense,
    "dropout": _pass("Dropout", "rate"),
    "conv2d": _conv2d,
    "maxpool2d": _pass("MaxPool2d", "pool"),
    "batchnorm": _batchnorm,
    "activation": lambda b, layer: _activation(b, layer.activation),
    "embedding": _embedding,
    "spatial_dropout1d": _spatial_dropout1d,
    "conv1d": _conv1d,
    "maxpool1d": _maxpool1d,
    "lstm": _lstm,
    "global_avgpool": _global_avgpool,
    "layernorm": _layernorm,
    "position_embedding": _position_embedding,
    "attention": _attention,
    "residual": _residual,
}


def _glorot_zero(module: Any) -> Any:
    from torch import nn

    # torch's fan_in/fan_out for (out, in, *k) equal Keras' for (*k, in, out): the same glorot limit.
    nn.init.xavier_uniform_(module.weight)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    return module


def _activation(b: _Build, name: str) -> None:
    module = _activation_module(name)
    if module is not None:
        b.modules.append(module)


def _activation_module(name: str) -> Any:
    from torch import nn

    if name == "linear":
        return None
    if name not in ACTIVATIONS:
        raise ValueError(f"activation {name!r} is not supported by the pytorch plugin")
    return getattr(nn, ACTIVATIONS[name])()


def _init_lstm(lstm: Any, units: int) -> None:
    """Keras' LSTM init on torch's parameters.

    Keras draws glorot-uniform over the whole (input, 4*units) kernel and orthogonal over the whole
    (units, 4*units) recurrent kernel; torch stores their transposes, (4*units, input) and
    (4*units, units), whose fans are the same, so initialising the whole matrices gives the same
    distributions (an orthogonal matrix's transpose is orthogonal). Gate order: torch i, f, g, o
    equals Keras i, f, c, o, so the forget-gate bias is rows units:2*units.
    """
    import torch
    from torch import nn

    nn.init.xavier_uniform_(lstm.weight_ih_l0)
    nn.init.orthogonal_(lstm.weight_hh_l0)
    with torch.no_grad():
        lstm.bias_ih_l0.zero_()
        lstm.bias_ih_l0[units:2 * units] = 1.0  # Keras' unit_forget_bias
        lstm.bias_hh_l0.zero_()
    # torch adds two bias vectors (bias_ih + bias_hh) where Keras has one: bias_hh stays at zero and is
    # frozen (requires_grad False), so the trainable count and the function equal the spec's.
    lstm.bias_hh_l0.requires_grad_(False)


def trainable(model: Any) -> list[Any]:
    return [p for p in model.parameters() if p.requires_grad]


def count_trainable(model: Any) -> int:
    return sum(p.numel() for p in trainable(model))


def describe_layout(spec: ModelSpec) -> Optional[str]:
    if spec.modality == "image":
        return ("NCHW contiguous (the harness' NHWC arrays transposed once at prepare); flatten in C,H,W order; "
                "'same' stride-2 convolutions padded bottom/right by nn.ZeroPad2d, as TensorFlow pads")
    return "token ids (N, L) int64; sequences (N, L, C), transposed to (N, C, L) around Conv1D/MaxPool1D"
