"""Feeding the harness's batch order (``setup.stream``) to Keras, one ``fit`` call at a time.

TensorFlow backend: the arrays are held once as tensors on the host; each ``train`` call builds a small
tf.data pipeline over exactly the index rows the stream hands out for that call (``stream.take(steps)``),
gathering each batch and prefetching -- the design of Keras' own array adapter (what ``model.fit(x, y)``
builds internally), minus its per-``fit`` cost of copying the arrays again. Only the steps of the call
are in the pipeline, so prefetching never draws a batch that a later call would skip.

Other backends: a plain Python generator over numpy, which Keras converts per batch, as it does for
arrays on those backends.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np


class HostArrays:
    """The training set as host tensors, made once per session (``tf`` is None off the TF backend)."""

    def __init__(self, tf: Any, x: np.ndarray, y: np.ndarray, threads: int = 0) -> None:
        self.tf, self.x, self.y = tf, x, y
        self.threads = threads  # the case's thread budget, applied to tf.data's own pool (0: tf.data's defaults)
        if tf is not None:
            with tf.device("/CPU:0"):  # tf.data runs on the host; keep its inputs there
                self.xs, self.ys = tf.constant(x), tf.constant(y)

    def dataset(self, rows: np.ndarray) -> Any:
        """A ``tf.data.Dataset`` of the (x, y) batches indexed by ``rows`` (steps, batch), in that order."""
        tf = self.tf
        xs, ys = self.xs, self.ys
        with tf.device("/CPU:0"):
            order = tf.constant(rows, dtype=tf.int64)
        dataset = (tf.data.Dataset.from_tensor_slices(order)
                   .map(lambda idx: (tf.gather(xs, idx), tf.gather(ys, idx)), num_parallel_calls=tf.data.AUTOTUNE)
                   .prefetch(tf.data.AUTOTUNE))
        return dataset.with_options(data_options(tf, self.threads)) if self.threads else dataset

    def numpy_batches(self, rows: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The same batches as numpy arrays, for the jax and torch backends."""
        for idx in rows:
            yield self.x[idx], self.y[idx]


def data_options(tf: Any, threads: int) -> Any:
    """tf.data's share of the thread budget: the map and prefetch run on a private pool of ``threads`` threads
    (tf.data.ThreadingOptions), each gather op on one thread, and AUTOTUNE tunes its parallelism for a CPU
    budget of ``threads`` cores instead of every core it can see (tf.data.experimental.AutotuneOptions)."""
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    options.threading.max_intra_op_parallelism = 1
    options.autotune.cpu_budget = threads
    return options


def budget_for_data(threads: int, environment: str) -> int:
    """tf.data's share of the budget: all of it in dlbench's environment; in a user's, 0 (tf.data's defaults, a
    pool and an AUTOTUNE budget of every core), which is what ``model.fit(x, y)`` gets in a tutorial script that
    sets TensorFlow's intra- and inter-op threads. On one thread of a 2-core VM that costs the Keras mlp ~9% more
    CPU a sample and splits its runs between ~53k and ~72k samples/s, the tutorial loop's too (docs/fidelity.md)."""
    return 0 if environment == "user" else threads


def data_threads(threads: int) -> str:
    """How ``data_options`` applied the budget (0: not at all), for ``describe()["threads"]``."""
    if not threads:
        return ("tf.data: its defaults (the user's environment): a private pool and AUTOTUNE's CPU budget of every "
                "core, as model.fit(x, y) gets them")
    return (f"tf.data Options: threading.private_threadpool_size={threads}, threading.max_intra_op_parallelism=1, "
            f"autotune.cpu_budget={threads}")
