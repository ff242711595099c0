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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(TASKS))
    parser.add_argument("--steps", type=int, default=300, help="timed training batches")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--infer-batch-size", type=int, default=128)
    parser.add_argument("--infer-seconds", type=float, default=3.0)
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--task", help="data set (default: fashion_mnist)")
    args = parser.parse_args()

    os.environ.setdefault("JAX_PLATFORMS", "cuda" if args.device == "gpu" else "cpu")
    if args.device == "cpu":  # XLA's CPU pools are sized from NPROC when its client is made
        os.environ.setdefault("NPROC", str(args.threads))
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from flax import linen as nn

    jax.config.update("jax_default_matmul_precision", "highest")
    from dlbench.data import load_task

    task = args.task or TASKS[args.model]
    data = load_task(task)
    model = build(nn, args.model)
    x_train, y_train = jax.device_put(data.x_train), jax.device_put(data.y_train.astype(np.int32))
    x_test = jax.device_put(data.x_test[:args.infer_batch_size])
    key, init_key = jax.random.split(jax.random.PRNGKey(0))
    params = model.init(init_key, x_train[:1], False)["params"]
    tx = optax.adam(1e-3, eps=1e-7)
    opt_state = tx.init(params)
    bs = args.batch_size

    @jax.jit
    def train_step(params, opt_state, perm, i, key):
        index = jax.lax.dynamic_slice_in_dim(perm, i * bs, bs)
        x, y = x_train[index], y_train[index]

        def loss(p):
            logits = model.apply({"params": p}, x, True, rngs={"dropout": key})
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        grads = jax.grad(loss)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    predict = jax.jit(lambda p, x: model.apply({"params": p}, x, False))
    per_epoch = len(data.x_train) // bs
    state = {"params": params, "opt": opt_state, "step": 0, "perm": None}

    def train(steps: int) -> None:
        for _ in range(steps):
            epoch, i = divmod(state["step"], per_epoch)
            if i == 0 or state["perm"] is None:
                state["perm"] = jax.random.permutation(jax.random.fold_in(key, epoch), len(data.x_train))
            state["params"], state["opt"] = train_step(state["params"], state["opt"], state["perm"], i,
                                                       jax.random.fold_in(key, state["step"]))
            state["step"] += 1

    warmup = max(5, args.steps // 10)
    train(warmup)
    jax.block_until_ready(state["params"])
    block = max(1, args.steps // 10)
    ends = [time.perf_counter()]
    for done in range(0, args.steps, block):
        train(min(block, args.steps - done))
        jax.block_until_ready(state["params"])
        ends.append(time.perf_counter())
    train_rate = args.steps * bs / (ends[-1] - ends[0])
    block_rates = [min(block, args.steps - i * block) * bs / (t1 - t0)
                   for i, (t0, t1) in enumerate(zip(ends, ends[1:]))]

    params = state["params"]
    for _ in range(5):
        out = predict(params, x_test)
    jax.block_until_ready(out)
    calls, start = 0, time.perf_counter()
    infer_blocks, block_start, block_calls = [], start, 0
    while time.perf_counter() - start < args.infer_seconds:
        out = predict(params, x_test)
        calls += 1
        block_calls += 1
        if calls % 64 == 0 or args.device == "cpu":
            jax.block_until_ready(out)  # keep the queue short, so the clock tracks the device
        now = time.perf_counter()
        if args.device == "cpu" and now - block_start >= 0.1:
            infer_blocks.append(block_calls * x_test.shape[0] / (now - block_start))
            block_start, block_calls = now, 0
    jax.block_until_ready(out)
    infer_rate = calls * x_test.shape[0] / (time.perf_counter() - start)
    print(json.dumps({"model": args.model, "task": task, "train_samples_per_s": train_rate,
                      "train_block_median_samples_per_s": statistics.median(block_rates),
                      "train_blocks": block_rates, "infer_blocks": infer_blocks,
                      "infer_samples_per_s": infer_rate, "steps": args.steps, "warmup": warmup,
                      "threads": args.threads, "batch_size": bs, "infer_batch_size": int(x_test.shape[0]),
                      "jax": jax.__version__, "device": args.device}))


if __name__ == "__main__":
    main()
