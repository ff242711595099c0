"""The ``tuned`` variant: what the Keras and TensorFlow guides recommend for inference, with sources.

The default (``fit``) predicts with ``model.predict_on_batch``, as the tutorials do. That call goes
through Keras' data adapter, runs the compiled predict function and converts the result to numpy: about
0.3-0.5 ms per call for any small model on this machine, whatever the model costs. The Keras API guide
says to call the model directly for inputs that fit in one batch; the TensorFlow guides say to wrap the
call in ``tf.function`` and, where it pays, compile it with XLA. Measured here (2 threads, docs/fairness.md):

- batch 1 (SingleStream): ``tf.function(jit_compile=True)`` of ``model(x, training=False)``: 0.15 ms for
  cnn against 0.43-0.50 ms for ``predict_on_batch``; XLA fuses the graph into one executable and skips
  TF's per-op executor;
- batch 1024 (Offline): XLA's CPU convolutions are 2-3x slower than TF's oneDNN kernels (cnn: 20-36k
  against 51-93k samples/s), so large batches use the same call in a plain ``tf.function``.

Training is ``model.fit`` as in the default variant.
"""

from __future__ import annotations

from typing import Any

LATENCY_BATCH = 16  # batches up to this size use the XLA-compiled call
GUIDES = {
    "direct_call": "Keras API docs, 'Model training APIs: predict' ('for small numbers of inputs that fit in one "
                   "batch, directly use __call__() for faster execution, e.g. model(x, training=False)')",
    "tf_function": "TensorFlow guide, 'Better performance with tf.function'",
    "xla_small_batches": "TensorFlow guide, 'XLA: Optimizing Compiler for Machine Learning' (jit_compile=True); "
                         f"used for batches <= {LATENCY_BATCH}, where it pays here",
}

# The GPU variants torch-fit-jit (and jax-fit, whose jit_compile="auto" is True): Keras' compile option.
JIT_COMPILE_GUIDE = ("Keras API docs, 'Model training APIs: compile' (jit_compile: XLA on the TensorFlow and JAX "
                     "backends, where 'auto' enables it; on torch 'auto' means eager and True runs torch.compile "
                     "with the inductor backend)")


class Predictor:
    """``model(x, training=False)`` in two compiled forms, picked by batch size; returns a TF tensor."""

    def __init__(self, tf: Any, model: Any) -> None:
        def forward(x: Any) -> Any:
            return model(x, training=False)

        self.small = tf.function(forward, jit_compile=True, autograph=False)
        self.large = tf.function(forward, jit_compile=False, autograph=False)

    def __call__(self, staged: Any) -> Any:
        return (self.small if staged.shape[0] <= LATENCY_BATCH else self.large)(staged)


def settings() -> dict[str, str]:
    return {"predict": "model(x, training=False) in tf.function: jit_compile=True for batches <= "
                       f"{LATENCY_BATCH}, plain for larger ones; returns a TF tensor (no numpy conversion)",
            **{key: value for key, value in GUIDES.items()}}
