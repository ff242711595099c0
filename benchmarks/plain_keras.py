"""Plain Keras, as a tutorial writes it: the yardstick dlbench's keras plugin is compared against.

    python benchmarks/plain_keras.py MODEL --steps N --threads T --batch-size 128

No dlbench code except ``dlbench.data.load_task``, so both see identical arrays. The model is written
by hand; training is ``model.fit(x, y, batch_size=...)`` with a callback that reads perf_counter between
batches; inference is a loop of ``model.predict_on_batch`` on one batch of the test set, staged once as a tensor.
Prints one JSON line: {"train_samples_per_s": ..., "infer_samples_per_s": ..., ...}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time

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

    class BatchTimer(keras.callbacks.Callback):
        """perf_counter between batches: in on_train_batch_begin (= the end of the previous batch) and once
        at the epoch end. Not in on_train_batch_end: on the jax and torch backends overriding it turns off
        Keras' asynchronous batch-end dispatch, so the timer would change what it times."""

        def __init__(self, stop_after: int) -> None:
            super().__init__()
            self.stop_after, self.ends = stop_after, []

        def on_train_batch_begin(self, batch, logs=None):
            self.ends.append(time.perf_counter())
            if len(self.ends) >= self.stop_after:  # this is the last batch to run
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            if self.model.stop_training:
                self.ends.append(time.perf_counter())

    bs = args.batch_size
    # Full batches only, as dlbench does: a partial last batch makes Keras retrace its train function once
    # (a compile cost, not steady state) in the middle of the timed batches.
    per_epoch = len(data.x_train) // bs
    x_train, y_train = data.x_train[: per_epoch * bs], data.y_train[: per_epoch * bs]
    timer = BatchTimer(args.steps)
    model.fit(x_train, y_train, batch_size=bs, epochs=math.ceil(args.steps / per_epoch), verbose=0,
              callbacks=[timer])
    warmup = args.warmup or max(5, args.steps // 10)
    ends = timer.ends[warmup:]  # ends[i]: when batch warmup + i - 1 had finished
    train_rate = (len(ends) - 1) * bs / (ends[-1] - ends[0])  # wall time, epoch ends included
    # The same batches in blocks of >= 0.15 s, median over blocks (how dlbench's quick profile summarises;
    # it leaves out the rare slow block, e.g. the one holding Keras' work at an epoch end).
    step_s = statistics.median(b - a for a, b in zip(ends, ends[1:]))
    per_block = max(1, math.ceil(0.15 / step_s))
    block_rates = [per_block * bs / (ends[i + per_block] - ends[i]) for i in range(0, len(ends) - per_block, per_block)]

    # Staged once, before the clock, as dlbench's Offline does (and MLPerf's: samples are in memory before a
    # test); a numpy batch would make every predict_on_batch call convert it again (1.09-1.29x slower).
    batch = tf.convert_to_tensor(data.x_test[:bs])
    for _ in range(5):
        model.predict_on_batch(batch)
    calls, start = 0, time.perf_counter()
    infer_blocks, block_start, block_calls = [], start, 0  # ~0.1 s blocks, as dlbench's Offline
    while time.perf_counter() - start < args.infer_seconds:
        model.predict_on_batch(batch)
        calls += 1
        block_calls += 1
        now = time.perf_counter()
        if now - block_start >= 0.1:
            infer_blocks.append(block_calls * bs / (now - block_start))
            block_start, block_calls = now, 0
    infer_rate = calls * bs / (time.perf_counter() - start)
    print(json.dumps({"model": args.model, "task": task, "train_samples_per_s": train_rate,
                      "infer_samples_per_s": infer_rate, "train_blocks": block_rates, "infer_blocks": infer_blocks,
                      "train_samples_per_s_block_median": statistics.median(block_rates) if block_rates else None, "steps": len(timer.ends) - 1, "warmup": warmup,
                      "threads": args.threads, "batch_size": bs, "keras": keras.__version__,
                      "tensorflow": tf.__version__}))


if __name__ == "__main__":
    main()
