"""The validation split every framework shares: 10% of the training set, fixed by seed."""

from __future__ import annotations

import numpy as np

VALIDATION_FRACTION = 0.1


def split_validation(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_val, y_val) with a seeded random 10% held out."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(len(x) * VALIDATION_FRACTION))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]
