"""The recipe's Adam in Keras, with an embedding's sparse gradient summed per row before the moments.

On the TensorFlow backend the gradient of an embedding lookup is a ``tf.IndexedSlices`` with one row per
occurrence of a token in the batch, repeats included. Keras 3's Adam computes its second moment with
``ops.square(gradient)``, which squares those rows one by one before they are summed into the dense moment, so a
token seen k times in a batch gets the sum of its k squared gradients instead of the square of its summed gradient:
a smaller second moment and a larger step for every repeated token. Keras 2's optimizers summed duplicate rows
first; torch and optax see dense gradients. Measured on the zoo's transformer (docs/fairness.md,
finding 3): from the same weights on the same batches Keras left torch and JAX at the third step, and trained
synthetic text to 99.4-99.6% where they reached 97.6-98.8%. Summed here, as Keras 2 did, so every framework runs
the same Adam on the same gradient (dense gradients and other backends are untouched).
"""

from __future__ import annotations

from typing import Any


def describe(tf: Any) -> str:
    """The record's ``optimizer``: what ``recipe_adam`` built on this backend."""
    if tf is None:
        return "keras.optimizers.Adam"
    return ("keras.optimizers.Adam; an embedding's sparse gradient summed per row before the moments (tf.unique + "
            "unsorted_segment_sum, as Keras 2 did: Keras 3 on TensorFlow squares every occurrence)")


def recipe_adam(keras: Any, tf: Any, recipe: Any) -> Any:
    """Keras' Adam with the recipe's settings; on TensorFlow (``tf`` not None) duplicate sparse rows summed first."""
    settings = dict(learning_rate=recipe.learning_rate, beta_1=recipe.beta_1, beta_2=recipe.beta_2,
                    epsilon=recipe.epsilon)
    if tf is None:
        return keras.optimizers.Adam(**settings)

    class SummedRowsAdam(keras.optimizers.Adam):
        def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
            if isinstance(gradient, tf.IndexedSlices):
                rows, position = tf.unique(gradient.indices)
                gradient = tf.IndexedSlices(tf.math.unsorted_segment_sum(gradient.values, position, tf.size(rows)),
                                            rows, gradient.dense_shape)
            super().update_step(gradient, variable, learning_rate)

    return SummedRowsAdam(**settings)
