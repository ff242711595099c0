"""Plain JAX, as a careful user writes it: the yardstick dlbench's jax plugin is compared against.

    python benchmarks/plain_jax.py MODEL --steps N --threads T --batch-size 128 [--device gpu] [--task NAME]

No dlbench code except ``dlbench.data.load_task``, so both see identical arrays. The model is a Flax Linen
module written by hand with Flax's default initialisation; training is one ``@jax.jit`` step (forward,
loss, ``jax.grad``, optax Adam) on batches sliced inside the step from a per-epoch permutation, with the
training set resident on the device; inference is a loop of a jitted ``model.apply`` on one batch of the
test set. float32 matmuls at ``highest`` precision (no TF32), as dlbench's float32 cases. The clock is read
after ``jax.block_until_ready`` at each block boundary. Prints one JSON line like plain_pytorch.py.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

TASKS = {"mlp": "fashion_mnist", "cnn": "fashion_mnist"}


def build(nn, name: str):
    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool):
            x = x.reshape(x.shape[0], -1)
            x = nn.relu(nn.Dense(128)(x))
            x = nn.Dropout(0.2, deterministic=not train)(x)
            return nn.Dense(10)(x)

    class CNN(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool):
            x = nn.relu(nn.Conv(32, (3, 3), padding="VALID")(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
            x = x.reshape(x.shape[0], -1)
            x = nn.relu(nn.Dense(64)(x))
            return nn.Dense(10)(x)

    return {"mlp": MLP, "cnn": CNN}[name]()


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(TASKS))
    parser.add_argument("--steps", type=int, default=300, help="timed training batches")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--infer-batch-size", type=int, default=128)
    parser.add_argument("--infer-seconds", type=float, default=3.0)
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--task", help="data set (default: fashion_mnist)")
    return parser.parse_args()


def trainer(jax, optax, model, data, bs: int):
    """``train(steps)`` over per-epoch permutations with one jitted step, and the state it updates."""
    import numpy as np

    jnp = jax.numpy
    x_train, y_train = jax.device_put(data.x_train), jax.device_put(data.y_train.astype(np.int32))
    key, init_key = jax.random.split(jax.random.PRNGKey(0))
    params = model.init(init_key, x_train[:1], False)["params"]
    tx = optax.adam(1e-3, eps=1e-7)

    @jax.jit
    def train_step(params, opt_state, perm, i, key):
        index = jax.lax.dynamic_slice_in_dim(perm, i * bs, bs)
        x, y = x_train[index], y_train[index]

        def loss(p):
            logits = model.apply({"params": p}, x, True, rngs={"dropout": key})
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        updates, opt_state = tx.update(jax.grad(loss)(params), opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    per_epoch = len(data.x_train) // bs
    state = {"params": params, "opt": tx.init(params), "step": 0, "perm": jnp.arange(len(data.x_train))}

    def train(steps: int) -> None:
        for _ in range(steps):
            epoch, i = divmod(state["step"], per_epoch)
            if i == 0:
                state["perm"] = jax.random.permutation(jax.random.fold_in(key, epoch), len(data.x_train))
            state["params"], state["opt"] = train_step(state["params"], state["opt"], state["perm"], i,
                                                       jax.random.fold_in(key, state["step"]))
            state["step"] += 1

    return train, state


def timed_training(jax, train, state, steps: int, bs: int) -> tuple[float, list[float], int]:
    """(whole-run samples/s, per-block samples/s, warm-up steps): ten blocks, clock read after a device wait."""
    warmup = max(5, steps // 10)
    train(warmup)
    jax.block_until_ready(state["params"])
    block = max(1, steps // 10)
    ends = [time.perf_counter()]
    for done in range(0, steps, block):
        train(min(block, steps - done))
        jax.block_until_ready(state["params"])
        ends.append(time.perf_counter())
    rates = [min(block, steps - i * block) * bs / (t1 - t0) for i, (t0, t1) in enumerate(zip(ends, ends[1:]))]
    return steps * bs / (ends[-1] - ends[0]), rates, warmup


def timed_inference(jax, predict, params, x_test, seconds: float, on_cpu: bool) -> tuple[float, list[float]]:
    for _ in range(5):
        out = predict(params, x_test)
    jax.block_until_ready(out)
    calls, start = 0, time.perf_counter()
    blocks, block_start, block_calls = [], start, 0
    while time.perf_counter() - start < seconds:
        out = predict(params, x_test)
        calls += 1
        block_calls += 1
        if calls % 64 == 0 or on_cpu:
            jax.block_until_ready(out)  # keep the queue short, so the clock tracks the device
        now = time.perf_counter()
        if on_cpu and now - block_start >= 0.1:
            blocks.append(block_calls * x_test.shape[0] / (now - block_start))
            block_start, block_calls = now, 0
    jax.block_until_ready(out)
    return calls * x_test.shape[0] / (time.perf_counter() - start), blocks


def main() -> None:
    args = arguments()
    os.environ.setdefault("JAX_PLATFORMS", "cuda" if args.device == "gpu" else "cpu")
    if args.device == "cpu":  # XLA's CPU pools are sized from NPROC when its client is made
        os.environ.setdefault("NPROC", str(args.threads))
    import jax
    import optax
    from flax import linen as nn

    jax.config.update("jax_default_matmul_precision", "highest")
    from dlbench.data import load_task

    task = args.task or TASKS[args.model]
    data = load_task(task)
    model = build(nn, args.model)
    train, state = trainer(jax, optax, model, data, args.batch_size)
    train_rate, block_rates, warmup = timed_training(jax, train, state, args.steps, args.batch_size)
    predict = jax.jit(lambda p, x: model.apply({"params": p}, x, False))
    x_test = jax.device_put(data.x_test[:args.infer_batch_size])
    infer_rate, infer_blocks = timed_inference(jax, predict, state["params"], x_test, args.infer_seconds,
                                               args.device == "cpu")
    print(json.dumps({"model": args.model, "task": task, "train_samples_per_s": train_rate,
                      "train_block_median_samples_per_s": statistics.median(block_rates),
                      "train_blocks": block_rates, "infer_blocks": infer_blocks,
                      "infer_samples_per_s": infer_rate, "steps": args.steps, "warmup": warmup,
                      "threads": args.threads, "batch_size": args.batch_size,
                      "infer_batch_size": int(x_test.shape[0]), "jax": jax.__version__, "device": args.device}))


if __name__ == "__main__":
    main()
