"""Plain JAX, as a careful user writes it: the yardstick dlbench's jax plugin is compared against.

    python benchmarks/plain_jax.py MODEL --steps N --threads T --batch-size 128 [--device gpu] [--task NAME]

No dlbench code except ``dlbench.data.load_task``, so both see identical arrays. The model is a Flax Linen
module written by hand with Flax's default initialisation; training is one ``@jax.jit`` step (forward,
loss, ``jax.grad``, optax Adam) on batches sliced inside the step from a per-epoch permutation, with the
training set resident on the device; inference is a loop of a jitted ``model.apply`` on one batch of the
test set. float32 matmuls at ``highest`` precision (no TF32), as dlbench's float32 cases. Clock marks
(benchmarks/clock_marks.py) are read after ``jax.block_until_ready``: after every step and call on the CPU,
at a few block boundaries on a GPU. Prints one JSON line like plain_pytorch.py.
"""

from __future__ import annotations

import argparse
import json
import os

from clock_marks import marked_calls, marked_steps

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
    warmup = max(5, args.steps // 10)  # marked too; the rates leave these steps out
    every = 1 if args.device == "cpu" else max(1, args.steps // 10)
    marks = marked_steps(train, lambda: jax.block_until_ready(state["params"]), warmup + args.steps, every,
                         args.batch_size)
    predict = jax.jit(lambda p, x: model.apply({"params": p}, x, False))
    x_test = jax.device_put(data.x_test[:args.infer_batch_size])
    out: dict = {}

    def call() -> None:
        out["logits"] = predict(state["params"], x_test)

    infer_marks = marked_calls(call, args.infer_seconds, int(x_test.shape[0]), 1 if args.device == "cpu" else 64,
                               lambda: jax.block_until_ready(out["logits"]))  # a short queue on a device
    print(json.dumps({"model": args.model, "task": task, "train_samples_per_s": marks.whole_rate(warmup),
                      "infer_samples_per_s": infer_marks.whole_rate(), "train_marks": marks,
                      "infer_marks": infer_marks, "steps": args.steps, "warmup": warmup,
                      "threads": args.threads, "batch_size": args.batch_size,
                      "infer_batch_size": int(x_test.shape[0]), "jax": jax.__version__, "device": args.device}))

if __name__ == "__main__":
    main()
