"""The Flax modules the zoo needs that Linen has no exact twin for; imported when a model is built."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

GLOROT = nn.initializers.xavier_uniform()


def embedding_init(key: Any, shape: tuple, dtype: Any = jnp.float32) -> Any:
    return jax.random.uniform(key, shape, dtype, -0.05, 0.05)


class LSTM(nn.Module):
    """Keras' LSTM: one (input, 4u) kernel (glorot), one (u, 4u) recurrent kernel (orthogonal), ONE bias per
    gate (forget gate 1), gates i, f, c, o; returns the last hidden state. Flax's LSTMCell has the same
    count but initialises per-gate blocks, so glorot/orthogonal limits would differ from the zoo's."""

    units: int
    dtype: Any = jnp.float32  # computation dtype (bf16 variant); parameters stay float32

    @nn.compact
    def __call__(self, x: Any) -> Any:
        u = self.units
        kernel = self.param("kernel", GLOROT, (x.shape[-1], 4 * u)).astype(self.dtype)
        recurrent = self.param("recurrent_kernel", nn.initializers.orthogonal(), (u, 4 * u)).astype(self.dtype)
        bias = self.param("bias", lambda key, shape: jnp.zeros(shape).at[u:2 * u].set(1.0), (4 * u,)).astype(self.dtype)
        x = x.astype(self.dtype)

        def step(carry: Any, z: Any) -> Any:
            h, c = carry
            i, f, g, o = jnp.split(z + h @ recurrent, 4, axis=-1)
            c = nn.sigmoid(f) * c + nn.sigmoid(i) * jnp.tanh(g)
            h = nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), None

        zeros = jnp.zeros((x.shape[0], u), x.dtype)
        (h, _), _ = jax.lax.scan(step, (zeros, zeros), jnp.swapaxes(x @ kernel + bias, 0, 1))
        return h


class PositionEmbedding(nn.Module):
    """A learned (length, dim) table added to (N, L, dim) embeddings, initialised like embeddings."""

    @nn.compact
    def __call__(self, x: Any) -> Any:
        table = self.param("table", embedding_init, x.shape[1:])
        return x + table.astype(x.dtype)
