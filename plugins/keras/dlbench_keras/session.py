"""One prepared Keras case: the model, its optimiser, its training stream, and how to time it fairly."""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np

from dlbench import BlockHook, Setup, check_batch_size, device_memory, fairness_profile
from dlbench_keras import adam, pipeline, runtime, tuned
from dlbench_keras.variants import Variant
from dlbench_keras.models import build_model, trainable_params


class KerasSession:
    """``train`` runs ONE ``model.fit`` (or one custom loop) for all its steps; see ``train``."""

    def __init__(self, setup: Setup, variant: Variant) -> None:
        self.setup, self.variant, self.spec = setup, variant, setup.spec
        check_batch_size(setup)
        self.rt = runtime.load(variant.backend, setup.device, setup.threads, setup.seed)
        keras = self.rt.keras
        data = setup.data
        self.binary = self.spec.outputs == 1
        self.model = _with_policy(keras, variant.precision,
                                  lambda: build_model(keras, self.spec, tuple(data.input_shape), setup.seed))
        if self.binary:
            loss = keras.losses.BinaryCrossentropy(from_logits=True)
            metric = keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")  # logit > 0 <=> p > 0.5
        else:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            metric = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.loss_fn = loss
        recipe = setup.spec.recipe
        self.optimizer = adam.recipe_adam(keras, self.rt.tf, recipe)
        self.model.compile(optimizer=self.optimizer, loss=loss, metrics=[metric], jit_compile=self._jit())
        self.stream = setup.stream  # the harness's batch order; each train() call takes its steps' rows
        self.arrays = pipeline.HostArrays(self.rt.tf, data.x_train, self._labels(data.y_train),
                                          pipeline.budget_for_data(setup.threads, setup.environment))
        if variant.loop == "custom":
            self._step = self._custom_step()
            self.optimizer.build(self.model.trainable_variables)
        self._hook_callback = _make_hook_callback(keras)
        self._predictor = tuned.Predictor(self.rt.tf, self.model) if variant.tuned else None
        memory = device_memory(setup.device, self.rt.tf or self.rt.torch or self.rt.jax)  # None on the CPU
        if memory is not None:
            self.peak_device_memory_mb, self.reset_peak_device_memory = memory.peak_mb, memory.reset

    # -- the contract ----------------------------------------------------------------------------------------
    def param_count(self) -> int:
        return trainable_params(self.model)

    def train(self, steps: int, hook: Optional[BlockHook] = None) -> None:
        """``steps`` optimiser steps in ONE ``model.fit`` (or one custom loop); ``hook()`` after every ``hook.steps``.

        A ``fit`` call per block would cost tens of milliseconds each (callbacks, iterator, first prefetch).
        The hook runs from ``on_train_batch_begin`` of the batch after each block (and ``on_epoch_end`` for
        the last block), so the callback changes nothing in how fit runs the steps: on the jax and torch
        backends an ``on_train_batch_end`` override would turn off Keras' asynchronous batch-end dispatch
        (on TensorFlow fit converts the logs after every step anyway), and per-block "epochs" would add
        Keras' epoch-end work to every block.
        """
        if steps <= 0:
            return
        every = hook.steps if hook is not None and hook.steps > 0 else 0
        if self.variant.loop == "custom":
            self._train_custom(steps, hook, every)
            return
        callbacks = [self._hook_callback(hook, steps)] if every else []
        rows = self.stream.take(steps)
        data = self.arrays.dataset(rows) if self.rt.tf is not None else self.arrays.numpy_batches(rows)
        self.model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=callbacks, shuffle=False)

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """``model.evaluate`` in inference mode, batches of 1024; the loss is the mean over samples."""
        logs = self.model.evaluate(x, self._labels(y), batch_size=self.setup.spec.recipe.eval_batch_size, verbose=0, return_dict=True)
        return float(logs["loss"]), float(logs["accuracy"])

    def stage(self, x: np.ndarray) -> Any:
        x = np.ascontiguousarray(x, dtype=np.int32 if self.spec.modality == "text" else np.float32)
        if self.rt.tf is not None:
            with self.rt.tf.device("/GPU:0" if self.setup.device == "gpu" else "/CPU:0"):
                return self.rt.tf.identity(self.rt.tf.constant(x))
        return self.rt.keras.ops.convert_to_tensor(x)

    def predict(self, staged: Any) -> Any:
        if self._predictor is not None:  # tuned: the guides' direct, compiled call (dlbench_keras.tuned)
            return self._predictor(staged)
        out = self.model.predict_on_batch(staged)  # compiled (tf.function) forward, training=False; numpy out
        return out if self.variant.precision == "float32" else out.astype(np.float32)  # float32 logits, as the loss

    def sync(self) -> None:
        if self.rt.jax is not None:  # JAX dispatches asynchronously, on the CPU too
            self.rt.jax.block_until_ready([v.value for v in self.model.trainable_variables])
            return
        if self.setup.device != "gpu":
            return  # CPU: fit, the custom step and predict_on_batch return only after the work is done
        if self.rt.tf is not None:
            self.rt.tf.test.experimental.sync_devices()
        elif self.rt.torch is not None:
            self.rt.torch.cuda.synchronize()

    def describe(self) -> Mapping[str, Any]:
        rt, variant, setup = self.rt, self.variant, self.setup
        recipe, reduced = setup.spec.recipe, variant.precision != "float32"
        return fairness_profile(
            setup, framework="keras", variant=variant.name, backend=variant.backend,
            training_loop=("model.fit, one call per train() (steps_per_epoch=steps, epochs=1); the hook runs from a "
                           "callback between batches" if variant.loop == "fit" else
                           "custom: GradientTape train step in a tf.function, python loop"),
            threads="; ".join(dict.fromkeys([rt.threads, rt.interop_threads]  # every pool the backend starts
                                            + ([pipeline.data_threads(self.arrays.threads)] if rt.tf is not None
                                               else []))),
            interop_threads=rt.interop_threads,
            compute_dtype="bfloat16" if reduced else "float32",
            precision=(f"{variant.precision} dtype policy, bfloat16 compute in every layer, the LSTM included; "
                       "float32 variables, loss and returned logits") if reduced else "",
            compile=_compile_mode(variant), sync=_sync_method(variant.backend, setup.device == "gpu"), layout="NHWC",
            framework_versions=dict(rt.versions), device=setup.device, device_name=rt.device_name,
            predict_method=("model(x, training=False) in tf.function (XLA for small batches)" if variant.tuned else
                            "model.predict_on_batch (compiled forward, training=False, returns numpy)"),
            tuning=_tuning(variant), evaluate_method=f"model.evaluate(batch_size={recipe.eval_batch_size})",
            data_pipeline=("tf.data per train() call over the harness stream's index rows: host tensors gathered, "
                           "prefetch AUTOTUNE" if rt.tf is not None else
                           "python generator of numpy batches gathered by the harness stream's index rows"),
            loss=type(self.loss_fn).__name__ + "(from_logits=True)", optimizer=adam.describe(rt.tf),
            seed=(f"keras.utils.set_random_seed({setup.seed})" if variant.backend == "tensorflow" else
                  f"random, numpy{', torch' if variant.backend == 'torch' else ''} seeded {setup.seed}")
            + f"; initialiser and dropout seeds derived from {setup.seed}",
            batches="setup.stream.take(steps) per train call", tf32=rt.tf32 or "")

    # -- helpers ---------------------------------------------------------------------------------------------
    def _jit(self) -> Any:
        if self.variant.backend == "jax":
            return "auto"  # Keras resolves it to True: the jax backend always runs jax.jit
        return self.variant.xla  # explicit: Keras' "auto" picks XLA on a GPU and not on CPU; torch.compile on torch

    def _labels(self, y: np.ndarray) -> np.ndarray:
        if self.binary:
            return np.asarray(y, dtype=np.float32).reshape(-1, 1)
        return np.asarray(y, dtype=np.int64)

    def _custom_step(self) -> Any:
        tf, model, loss_fn, optimizer = self.rt.tf, self.model, self.loss_fn, self.optimizer

        @tf.function(jit_compile=self.variant.xla)
        def train_step(x: Any, y: Any) -> Any:
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                loss = loss_fn(y, logits)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        return train_step

    def _train_custom(self, steps: int, hook: Optional[BlockHook], every: int) -> None:
        batches = iter(self.arrays.dataset(self.stream.take(steps)))
        for done in range(1, steps + 1):
            x, y = next(batches)
            self._step(x, y)
            if every and done % every == 0:
                hook()


def _make_hook_callback(keras: Any) -> Any:
    class BlockHookCallback(keras.callbacks.Callback):
        """Calls the harness's hook after every ``hook.steps`` batches of a one-epoch ``fit``.

        ``on_train_batch_begin(batch)`` runs when ``batch`` steps are done, before the next is dispatched;
        the block that ends the epoch is reported from ``on_epoch_end``. Calls: ``steps // hook.steps``.
        """

        def __init__(self, hook: BlockHook, steps: int) -> None:
            super().__init__()
            self.hook, self.steps = hook, steps

        def on_train_batch_begin(self, batch: int, logs: Optional[dict] = None) -> None:
            if batch and batch % self.hook.steps == 0:
                # JAX backend: fit keeps the newest weights outside the model between epochs; put them back
                # so that the hook's sync() waits on them and its evaluate() sees them.
                state_sync = getattr(self.model, "jax_state_sync", None)
                if state_sync is not None:
                    state_sync()
                self.hook()

        def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
            if self.steps % self.hook.steps == 0:
                self.hook()

    return BlockHookCallback


def _with_policy(keras: Any, policy: str, build: Any) -> Any:
    """Build under the Keras dtype policy ``policy``; the global policy is restored (a shared test process)."""
    if policy == "float32":
        return build()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        return build()
    finally:
        keras.config.set_dtype_policy(previous)


def _compile_mode(variant: Variant) -> str:
    if variant.backend == "tensorflow":
        return "XLA jit_compile" if variant.xla else "tf.function"
    if variant.backend == "jax":
        return "XLA (jax.jit): jit_compile='auto' resolves to True on the jax backend"
    return "torch.compile of the train step (jit_compile=True)" if variant.xla else "none (eager torch)"


def _sync_method(backend: str, on_gpu: bool) -> str:
    if backend == "jax":
        return ("jax.block_until_ready(trainable variables), after Keras' jax_state_sync at each block end "
                "(JAX dispatches asynchronously on a GPU; on the CPU the thread budget turns it off)")
    if on_gpu:
        return "tf.test.experimental.sync_devices()" if backend == "tensorflow" else "torch.cuda.synchronize()"
    return (f"none needed: on CPU {'TF' if backend == 'tensorflow' else 'torch'} executes synchronously (fit, "
            "compiled calls and predict_on_batch return after the work is done)")


def _tuning(variant: Variant) -> Any:
    if variant.tuned:
        return tuned.settings()
    if variant.backend == "torch" and variant.xla:
        return {"jit_compile": "model.compile(jit_compile=True): the train step runs torch.compile; "
                               + tuned.JIT_COMPILE_GUIDE}
    return None
