"""The torch modules the zoo needs that ``torch.nn`` has no exact twin for; imported when a model is built."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn


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


class Mean(nn.Module):
    """The mean over ``dims``: global average pooling of NCHW images (2, 3) or of (N, L, C) sequences (1)."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class Residual(nn.Module):
    """activation(body(x) + shortcut(x)); no shortcut module is the identity."""

    def __init__(self, body: nn.Module, shortcut: Optional[nn.Module], activation: Optional[nn.Module]) -> None:
        super().__init__()
        self.body, self.shortcut, self.activation = body, shortcut, activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x) + (x if self.shortcut is None else self.shortcut(x))
        return out if self.activation is None else self.activation(out)


class PositionEmbedding(nn.Module):
    """A learned (length, dim) table added to (N, L, dim) embeddings; uniform(-0.05, 0.05) like embeddings."""

    def __init__(self, length: int, dim: int, init: tuple[float, float]) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.empty(length, dim))
        nn.init.uniform_(self.table, *init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.table


class SelfAttention(nn.Module):
    """Multi-head self-attention on (N, L, dim) with ``torch.nn.functional.scaled_dot_product_attention``.

    Four ``nn.Linear`` projections with biases (``nn.MultiheadAttention`` keeps query, key and value in one
    (3 * inner, dim) matrix, whose glorot limit would differ from the zoo's per-projection one).
    """

    def __init__(self, dim: int, heads: int, key_dim: int) -> None:
        super().__init__()
        self.heads, self.key_dim = heads, key_dim
        inner = heads * key_dim
        self.query, self.key, self.value = (nn.Linear(dim, inner) for _ in range(3))
        self.output = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, _ = x.shape

        def heads(projection: nn.Linear) -> torch.Tensor:  # (N, heads, L, key_dim)
            return projection(x).view(n, length, self.heads, self.key_dim).transpose(1, 2)

        attended = nn.functional.scaled_dot_product_attention(heads(self.query), heads(self.key), heads(self.value))
        return self.output(attended.transpose(1, 2).reshape(n, length, self.heads * self.key_dim))
