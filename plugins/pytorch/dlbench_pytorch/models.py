"""Zoo spec -> ``torch.nn.Sequential``, initialised as the zoo prescribes (the Keras defaults).

Layouts: images enter as NCHW (the session transposes the harness' NHWC arrays once, at prepare);
token ids enter as (N, L). Sequences are kept as (N, L, C), the layout of ``nn.Embedding`` and of a
``batch_first`` LSTM, and transposed to (N, C, L) around Conv1D / MaxPool1D, as torch wants there.
Flatten flattens NCHW in C, H, W order (Keras flattens H, W, C): the parameter count is the same and
the model is an equally valid member of the family; weights are not meant to be exchanged.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from dlbench import ModelSpec

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


class Transpose12(nn.Module):
    """(N, L, C) <-> (N, C, L)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)


class SpatialDropout1d(nn.Module):
    """Keras' SpatialDropout1D on (N, L, C): drops whole channels per sample (noise shape (N, 1, C))."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = torch.empty(x.shape[0], 1, x.shape[2], dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


class LastHidden(nn.Module):
    """An LSTM over (N, L, C) that returns the last hidden state (N, units), like Keras' default LSTM."""

    def __init__(self, features: int, units: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, units, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x)
        return h[-1]


def build(spec: ModelSpec, input_shape: tuple[int, ...]) -> nn.Sequential:
    """The spec's model for one sample of ``input_shape`` (channels-last, as the harness states shapes)."""
    modules: list[nn.Module] = []
    shape = tuple(input_shape)  # the spec's (Keras) shape of one sample: channels last
    channels_first_seq = False  # whether a sequence tensor is currently (N, C, L)

    def want_seq(channels_first: bool) -> None:
        nonlocal channels_first_seq
        if channels_first != channels_first_seq:
            modules.append(Transpose12())
            channels_first_seq = channels_first

    for layer, out in zip(spec.layers, spec.shapes(input_shape)):
        is_seq = len(shape) == 2  # (L, C) in the spec: a sequence of feature vectors
        if layer.kind == "flatten":
            modules.append(nn.Flatten())
        elif layer.kind == "dense":
            if len(shape) == 3:
                raise ValueError(f"{spec.name}: Dense on an image tensor needs a Flatten first")
            if is_seq:
                want_seq(False)
            modules.append(_dense(shape[-1], layer.units))
            _activation(modules, layer.activation)
        elif layer.kind == "dropout":
            modules.append(nn.Dropout(layer.rate))
        elif layer.kind == "conv2d":
            conv = nn.Conv2d(shape[-1], layer.filters, layer.kernel, bias=layer.use_bias)
            _glorot_zero(conv)
            modules.append(conv)
            _activation(modules, layer.activation)
        elif layer.kind == "maxpool2d":
            modules.append(nn.MaxPool2d(layer.pool))
        elif layer.kind == "batchnorm":
            # Keras' running = momentum * running + (1 - momentum) * batch is torch's momentum = 1 - momentum.
            kwargs = dict(eps=layer.epsilon, momentum=1.0 - layer.momentum)
            if len(shape) == 3:
                modules.append(nn.BatchNorm2d(shape[-1], **kwargs))
            else:
                if is_seq:
                    want_seq(True)
                modules.append(nn.BatchNorm1d(shape[-1], **kwargs))
        elif layer.kind == "activation":
            _activation(modules, layer.activation)
        elif layer.kind == "embedding":
            embedding = nn.Embedding(layer.vocab, layer.dim)
            nn.init.uniform_(embedding.weight, -0.05, 0.05)
            modules.append(embedding)
            channels_first_seq = False
        elif layer.kind == "spatial_dropout1d":
            want_seq(False)
            modules.append(SpatialDropout1d(layer.rate))
        elif layer.kind == "conv1d":
            want_seq(True)
            conv1d = nn.Conv1d(shape[-1], layer.filters, layer.kernel)
            _glorot_zero(conv1d)
            modules.append(conv1d)
            _activation(modules, layer.activation)
        elif layer.kind == "maxpool1d":
            want_seq(True)
            modules.append(nn.MaxPool1d(layer.pool))
        elif layer.kind == "lstm":
            want_seq(False)
            recurrent = LastHidden(shape[-1], layer.units)
            _init_lstm(recurrent.lstm, layer.units)
            modules.append(recurrent)
        else:
            raise ValueError(f"{spec.name}: layer {layer!r} is not supported by the pytorch plugin")
        shape = out
    return nn.Sequential(*modules)


def _dense(features: int, units: int) -> nn.Linear:
    linear = nn.Linear(features, units)
    _glorot_zero(linear)
    return linear


def _glorot_zero(module: nn.Module) -> None:
    # torch's fan_in/fan_out for (out, in, *k) equal Keras' for (*k, in, out): the same glorot limit.
    nn.init.xavier_uniform_(module.weight)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def _activation(modules: list[nn.Module], name: str) -> None:
    if name == "linear":
        return
    try:
        modules.append(ACTIVATIONS[name]())
    except KeyError:
        raise ValueError(f"activation {name!r} is not supported by the pytorch plugin") from None


def _init_lstm(lstm: nn.LSTM, units: int) -> None:
    """Keras' LSTM init on torch's parameters.

    Keras draws glorot-uniform over the whole (input, 4*units) kernel and orthogonal over the whole
    (units, 4*units) recurrent kernel; torch stores their transposes, (4*units, input) and
    (4*units, units), whose fans are the same, so initialising the whole matrices gives the same
    distributions (an orthogonal matrix's transpose is orthogonal). Gate order: torch i, f, g, o
    equals Keras i, f, c, o, so the forget-gate bias is rows units:2*units.
    """
    nn.init.xavier_uniform_(lstm.weight_ih_l0)
    nn.init.orthogonal_(lstm.weight_hh_l0)
    with torch.no_grad():
        lstm.bias_ih_l0.zero_()
        lstm.bias_ih_l0[units:2 * units] = 1.0  # Keras' unit_forget_bias
        lstm.bias_hh_l0.zero_()
    # torch adds two bias vectors (bias_ih + bias_hh) where Keras has one: bias_hh stays at zero and is
    # frozen (requires_grad False), so the trainable count and the function equal the spec's.
    lstm.bias_hh_l0.requires_grad_(False)


def trainable(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def count_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in trainable(model))


def describe_layout(spec: ModelSpec) -> Optional[str]:
    if spec.modality == "image":
        return "NCHW contiguous (the harness' NHWC arrays transposed once at prepare); flatten in C,H,W order"
    return "token ids (N, L) int64; sequences (N, L, C), transposed to (N, C, L) around Conv1D/MaxPool1D"
