"""A Keras training run as the keras.io examples write it, written apart from dlbench and from plain_keras.py.

    python benchmarks/tutorial_keras.py MODEL --steps N --threads T [--batch-size 128]

The second yardstick of benchmarks/fidelity_keras.py (``--loop tutorial``): the models in the functional API
with softmax (sigmoid) outputs, ``compile(optimizer="adam", loss="sparse_categorical_crossentropy")``,
TensorFlow's intra-op (and inter-op) threads set, and one ``model.fit(x, y, batch_size=...)``, shuffled as
fit does by default (``--order slices``: ``shuffle=False``, consecutive slices): the first N batches' worth of
samples when N is under an epoch, else whole epochs (the last short batch of each included).
Inference: ``model.predict_on_batch`` on one numpy batch of the test set.
It shares nothing with dlbench but ``dlbench.data.load_task`` (the same arrays) and the clock marks
(benchmarks/clock_marks.py), read by a callback between batches and after every call, from which the
fidelity protocol cuts blocks. Prints one JSON line.
"""

from __future__ import annotations

import json
import math
import os

from clock_marks import Marks, loop_arguments, marked_calls

TASKS = {"cnn": "fashion_mnist", "mlp": "fashion_mnist", "lstm": "synthetic_text"}


def build(keras, name: str):
    layers = keras.layers
    if name == "lstm":
        inputs = keras.Input(shape=(100,), dtype="int32")
        x = layers.Embedding(10000, 128)(inputs)
        x = layers.SpatialDropout1D(0.4)(x)
        x = layers.LSTM(100)(x)
        return keras.Model(inputs, layers.Dense(1, activation="sigmoid")(x))
    inputs = keras.Input(shape=(28, 28, 1))
    if name == "cnn":
        x = layers.Conv2D(32, kernel_size=(3, 3), activation="relu")(inputs)
        x = layers.MaxPooling2D(pool_size=(2, 2))(x)
        x = layers.Dense(64, activation="relu")(layers.Flatten()(x))
    else:
        x = layers.Dropout(0.2)(layers.Dense(128, activation="relu")(layers.Flatten()(inputs)))
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


def marking_callback(keras, batch_sizes: list[int]):
    """Marks the clocks at each batch's start (the previous one's end) and at each epoch's end; Keras' work
    between epochs falls in a mark of no steps. ``batch_sizes``: the samples of each batch of an epoch."""

    class Marking(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.marks, self.previous = Marks(), None

        def on_train_batch_begin(self, batch, logs=None):
            done = self.previous is not None
            self.marks.add(int(done), batch_sizes[self.previous] if done else 0)
            self.previous = batch

        def on_epoch_end(self, epoch, logs=None):
            self.marks.add(1, batch_sizes[self.previous])
            self.previous = None

    return Marking()


def main() -> None:
    args = loop_arguments(__doc__.splitlines()[0], TASKS)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import keras

    from dlbench.data import load_task

    data = load_task(TASKS[args.model])
    keras.utils.set_random_seed(0)
    model = build(keras, args.model)
    loss = "binary_crossentropy" if args.model == "lstm" else "sparse_categorical_crossentropy"
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    bs = args.batch_size
    per_epoch = math.ceil(len(data.x_train) / bs)
    n = min(len(data.x_train), args.steps * bs) if args.steps < per_epoch else len(data.x_train)
    sizes = [min(bs, n - start) for start in range(0, n, bs)]
    callback = marking_callback(keras, sizes)
    if args.evaluate_first:  # as after a first epoch's validation (validation_split=0.1), at evaluate's default batch
        model.evaluate(data.x_val, data.y_val, verbose=0)
    model.fit(data.x_train[:n], data.y_train[:n], batch_size=bs, epochs=math.ceil(args.steps / len(sizes)),
              shuffle=args.order == "shuffled", verbose=0, callbacks=[callback])
    batch = data.x_test[:bs]
    infer_marks = marked_calls(lambda: model.predict_on_batch(batch), args.infer_seconds, bs)
    warmup = max(5, args.steps // 10)  # the rates leave out the first steps
    marks = callback.marks
    print(json.dumps({"model": args.model, "train_samples_per_s": marks.whole_rate(warmup),
                      "infer_samples_per_s": infer_marks.whole_rate(), "train_marks": marks,
                      "infer_marks": infer_marks, "steps": marks.steps, "warmup": warmup, "threads": args.threads,
                      "batch_size": bs, "order": args.order, "evaluated_first": args.evaluate_first,
                      "keras": keras.__version__,
                      "tensorflow": tf.__version__}))


if __name__ == "__main__":
    main()
