"""The training stream: endless shuffled batches of the harness's arrays, built once per session.

TensorFlow backend: the arrays are held once as tensors on the host and a tf.data pipeline gathers each
batch from a fresh per-epoch permutation -- the design of Keras' own array adapter (what
``model.fit(x, y)`` builds internally), minus its per-``fit`` cost of copying the arrays again and
rebuilding the dataset. The permutation's seed comes from a ``tf.random.Generator`` whose state lives
outside the iterator, so every new iterator (every ``fit`` call) continues with new permutations instead
of replaying the first one. Only full batches are produced, so batch shapes never change.

Other backends: a plain Python generator over numpy, which Keras converts per batch, as it does for
arrays on those backends.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np


def tf_dataset(tf: Any, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> Any:
    """An infinite ``tf.data.Dataset`` of (x, y) batches of ``batch_size``, reshuffled every epoch."""
    n = len(x)
    per_epoch = n // batch_size
    if per_epoch < 1:
        raise ValueError(f"batch size {batch_size} is larger than the training set ({n} samples)")
    with tf.device("/CPU:0"):  # tf.data runs on the host; keep its inputs and RNG state there
        xs, ys = tf.constant(x), tf.constant(y)
        generator = tf.random.Generator.from_seed(seed)

    def one_epoch(_: Any) -> Any:
        order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64),
                                                         seed=generator.make_seeds(1)[:, 0])
        rows = tf.reshape(order[: per_epoch * batch_size], (per_epoch, batch_size))
        return tf.data.Dataset.from_tensor_slices(rows)

    dataset = (tf.data.Dataset.from_tensors(0).repeat()
               .flat_map(one_epoch)
               .map(lambda idx: (tf.gather(xs, idx), tf.gather(ys, idx)), num_parallel_calls=tf.data.AUTOTUNE)
               .prefetch(tf.data.AUTOTUNE))
    options = tf.data.Options()
    options.experimental_external_state_policy = tf.data.experimental.ExternalStatePolicy.IGNORE
    return dataset.with_options(options)


def numpy_batches(x: np.ndarray, y: np.ndarray, batch_size: int,
                  seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless (x, y) numpy batches from a fresh permutation per epoch (full batches only)."""
    n = len(x)
    per_epoch = n // batch_size
    if per_epoch < 1:
        raise ValueError(f"batch size {batch_size} is larger than the training set ({n} samples)")
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n)
        for start in range(0, per_epoch * batch_size, batch_size):
            idx = order[start: start + batch_size]
            yield x[idx], y[idx]
