"""Plain Keras, as a tutorial writes it: the yardstick dlbench's keras plugin is compared against.

    python benchmarks/plain_keras.py MODEL --steps N --threads T --batch-size 128

No dlbench code except ``dlbench.data.load_task``, so both see identical arrays. The model is written
by hand; training is ``model.fit(x, y, batch_size=...)`` with a callback that marks the clocks between
batches (benchmarks/clock_marks.py); inference is a loop of ``model.predict_on_batch`` on one batch of the
test set, staged once as a tensor, marked after every call.
Prints one JSON line: {"train_samples_per_s": ..., "infer_samples_per_s": ..., "train_marks": ..., ...}.
"""

from __future__ import annotations

import argparse
import json
import math
import os

from clock_marks import Marks, marked_calls

TASKS = {"softmax": "fashion_mnist", "mlp": "fashion_mnist", "mlp64": "fashion_mnist", "cnn": "fashion_mnist",
         "cnn_dropout": "fashion_mnist", "cnn3": "fashion_mnist", "cnn_bn": "fashion_mnist",
         "lstm": "synthetic_text", "cnn_lstm": "synthetic_text"}


def build(keras, name: str):
    layers = keras.layers
    if name == "softmax":
        body = [keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(10)]
    elif name == "mlp":
        body = [keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(128, activation="relu"),
                layers.Dropout(0.2), layers.Dense(10)]
    elif name == "mlp64":
        body = [keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(64, activation="relu"), layers.Dense(10)]
    elif name == "cnn":
        body = [keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
                layers.Flatten(), layers.Dense(64, activation="relu"), layers.Dense(10)]
    elif name == "cnn_dropout":
        body = [keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
                layers.Dropout(0.25), layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dropout(0.5),
                layers.Dense(10)]
    elif name == "cnn3":
        body = [keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
                layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
                layers.Conv2D(64, 3, activation="relu"), layers.Flatten(), layers.Dense(64, activation="relu"),
                layers.Dense(10)]
    elif name == "cnn_bn":
        body = [keras.Input((28, 28, 1)), layers.Conv2D(32, 3, use_bias=False), layers.BatchNormalization(),
                layers.Activation("relu"), layers.MaxPooling2D(2), layers.Flatten(),
                layers.Dense(64, activation="relu"), layers.Dense(10)]
    elif name == "lstm":
        body = [keras.Input((100,), dtype="int32"), layers.Embedding(10000, 128), layers.SpatialDropout1D(0.4),
                layers.LSTM(100), layers.Dense(1)]
    elif name == "cnn_lstm":
        body = [keras.Input((100,), dtype="int32"), layers.Embedding(10000, 128), layers.Dropout(0.25),
                layers.Conv1D(64, 5, activation="relu"), layers.MaxPooling1D(4), layers.LSTM(70), layers.Dense(1)]
    else:
        raise SystemExit(f"unknown model {name!r}; choose from {', '.join(TASKS)}")
    return keras.Sequential(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(TASKS))
    parser.add_argument("--steps", type=int, default=300, help="training batches")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--infer-seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=int, default=0, help="batches discarded (default: 10%% of steps, >= 5)")
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import keras

    from dlbench.data import load_task

    task = TASKS[args.model]
    data = load_task(task)
    keras.utils.set_random_seed(0)
    model = build(keras, args.model)
    binary = task == "synthetic_text"
    if binary:
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.BinaryCrossentropy(from_logits=True),
                      metrics=[keras.metrics.BinaryAccuracy(threshold=0.0)])
    else:
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])

    bs = args.batch_size
    # Full batches only, as dlbench does: a partial last batch makes Keras retrace its train function once
    # (a compile cost, not steady state) in the middle of the timed batches.
    per_epoch = len(data.x_train) // bs
    x_train, y_train = data.x_train[: per_epoch * bs], data.y_train[: per_epoch * bs]
    marker = batch_marker(keras, args.steps, bs)
    model.fit(x_train, y_train, batch_size=bs, epochs=math.ceil(args.steps / per_epoch), verbose=0,
              callbacks=[marker])
    warmup = args.warmup or max(5, args.steps // 10)  # the first batches, left out of the rates

    # Staged once, before the clock, as dlbench's Offline does (and MLPerf's: samples are in memory before a
    # test); a numpy batch would make every predict_on_batch call convert it again (1.09-1.29x slower).
    batch = tf.convert_to_tensor(data.x_test[:bs])
    infer_marks = marked_calls(lambda: model.predict_on_batch(batch), args.infer_seconds, bs)
    print(json.dumps({"model": args.model, "task": task, "train_samples_per_s": marker.marks.whole_rate(warmup),
                      "infer_samples_per_s": infer_marks.whole_rate(), "train_marks": marker.marks,
                      "infer_marks": infer_marks, "steps": marker.marks.steps, "warmup": warmup,
                      "threads": args.threads, "batch_size": bs, "keras": keras.__version__,
                      "tensorflow": tf.__version__}))


def batch_marker(keras, stop_after: int, batch_size: int):
    """A callback marking the clocks in on_train_batch_begin (= the end of the previous batch) and at the
    epoch end, stopping fit after ``stop_after`` batches. Not in on_train_batch_end: on the jax and torch
    backends overriding it turns off Keras' asynchronous batch-end dispatch, so the marks would change what
    they time. Keras' work between epochs falls in a mark of no steps, so it stays in the block holding it."""

    class BatchMarker(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.marks, self.begun = Marks(), False

        def on_train_batch_begin(self, batch, logs=None):
            self.marks.add(int(self.begun), batch_size * int(self.begun))  # the previous batch has finished
            self.begun = True
            if self.marks.steps + 1 >= stop_after:  # this is the last batch to run
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            self.marks.add(1, batch_size)
            self.begun = False

    return BatchMarker()


if __name__ == "__main__":
    main()
