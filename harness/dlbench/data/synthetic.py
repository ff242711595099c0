"""Generated tasks: deterministic, learnable (labels depend on the input), always present."""

from __future__ import annotations

import numpy as np


def synthetic_images(n: int, seed: int, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """28x28 images: a class-specific bright square on noise; float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n).astype(np.int64)
    x = rng.uniform(0.0, 0.3, (n, 28, 28, 1)).astype(np.float32)
    for label in range(classes):
        row, col = divmod(label, 4)
        idx = y == label
        x[idx, 2 + 6 * row: 8 + 6 * row, 2 + 6 * col: 8 + 6 * col, 0] += 0.6
    return np.clip(x, 0.0, 1.0), y


def synthetic_rgb(n: int, seed: int, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """32x32x3 images, CIFAR-10's shape: a square whose place and colour both depend on the class, on RGB noise.

    Classes c and c + 5 share a place and differ in colour only, so a model must use the channels.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n).astype(np.int64)
    x = rng.uniform(0.0, 0.35, (n, 32, 32, 3)).astype(np.float32)
    colours = np.array([(0.6, 0.1, 0.1), (0.1, 0.6, 0.1)], dtype=np.float32)
    for label in range(classes):
        place, colour = label % 5, label // 5 % 2
        row, col = divmod(place, 3)
        idx = y == label
        x[idx, 4 + 12 * row: 12 + 12 * row, 2 + 10 * col: 10 + 10 * col, :] += colours[colour]
    return np.clip(x, 0.0, 1.0), y


def synthetic_text(n: int, seed: int, vocab: int, maxlen: int) -> tuple[np.ndarray, np.ndarray]:
    """Token sequences whose label says whether 'positive' tokens outnumber 'negative' ones."""
    rng = np.random.default_rng(seed)
    x = rng.integers(4, vocab, (n, maxlen)).astype(np.int32)
    positive, negative = np.arange(4, 54), np.arange(54, 104)
    y = rng.integers(0, 2, n).astype(np.int64)
    marks = rng.integers(3, 8, n)
    for i in range(n):
        words = positive if y[i] else negative
        places = rng.choice(maxlen, marks[i], replace=False)
        x[i, places] = rng.choice(words, marks[i])
    return x, y
