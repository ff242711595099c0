"""Do the three built-in plugins build the same function from a zoo spec? Copy JAX's weights into PyTorch and Keras.

    python benchmarks/zoo_same_function.py [--models resnet20,transformer] [--keras-backend tensorflow]
        [--training] [--train-steps N --seed S]

Parity in a run is checked by parameter counts and the first loss; this goes further for the models whose
conventions are easy to get subtly wrong ('same' padding with stride 2, residual sums, layer norm epsilon,
exact GELU, attention scaling and projections): it builds the model in all three, perturbs JAX's initial
weights and batch statistics (so batch norm and layer norm are not identities), copies them into the torch and
Keras models (in the order each builder creates its layers) and compares the eval-mode outputs on one batch.
Prints the largest absolute difference per framework; exit 1 when one exceeds --tolerance. With --training it
also compares, torch against Keras on one batch of 128, the gradients (the same function must give the same
gradients) and the first step of each framework's own Adam (lr 1e-3, eps 1e-7): Keras adds epsilon to
sqrt(v) before the bias correction (Kingma and Ba's "epsilon hat"), torch and optax after it, so where a
gradient is small Keras' early steps are shorter. The Keras side uses the plugin's Adam (dlbench_keras.adam), which
sums an embedding's repeated sparse rows before the moments as every other framework's Adam does.

With --train-steps N it trains the transformer N steps from one start (JAX's initial weights, copied) on the same
synthetic-text batches in all three, each with its plugin's optimiser, and prints where each loss leaves torch's
and the test accuracies: what finds a difference that one step is too small to show (docs/fairness.md, finding 3).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np


def _jax_reference(spec: Any, x: np.ndarray) -> tuple[np.ndarray, dict, dict]:
    import jax
    import jax.numpy as jnp

    from dlbench_jax.session import Net

    net = Net(tuple(spec.layers))
    variables = net.init(jax.random.PRNGKey(0), jnp.asarray(x), False)
    rng = np.random.default_rng(1)
    params = jax.tree_util.tree_map(lambda a: np.asarray(a) + 0.02 * rng.standard_normal(a.shape, np.float32),
                                    variables["params"])
    stats = {name: {"mean": 0.1 * rng.standard_normal(s["mean"].shape, np.float32),
                    "var": 1.0 + 0.1 * np.abs(rng.standard_normal(s["var"].shape, np.float32))}
             for name, s in variables.get("batch_stats", {}).items()}
    out = net.apply({"params": params, **({"batch_stats": stats} if stats else {})}, jnp.asarray(x), False)
    return np.asarray(out), params, stats


def _in_order(tree: dict, prefix: str) -> list:
    """Flax's submodules of one type (Conv_0, Conv_1, ...) in creation order, which is the spec's walk order."""
    names = sorted((k for k in tree if k.rsplit("_", 1)[0] == prefix), key=lambda k: int(k.rsplit("_", 1)[1]))
    return [tree[name] for name in names]


def _into_torch(spec: Any, shape: tuple, params: dict, stats: dict) -> Any:
    import torch

    from dlbench_pytorch import models
    from dlbench_pytorch.modules import SelfAttention

    net = models.build(spec, shape).eval()
    convs, norms, layernorms = iter(_in_order(params, "Conv")), iter(zip(_in_order(params, "BatchNorm"),
                                                                        _in_order(stats, "BatchNorm"))), \
        iter(_in_order(params, "LayerNorm"))
    dense, attentions = iter(_in_order(params, "Dense")), iter(_in_order(params, "MultiHeadDotProductAttention"))
    projections = {id(getattr(m, n)) for m in net.modules() if isinstance(m, SelfAttention)
                   for n in ("query", "key", "value", "output")}
    t = torch.from_numpy
    with torch.no_grad():
        for module in net.modules():
            kind = type(module).__name__
            if kind == "Conv2d":
                p = next(convs)
                module.weight.copy_(t(p["kernel"].transpose(3, 2, 0, 1).copy()))
                if module.bias is not None:
                    module.bias.copy_(t(p["bias"]))
            elif kind == "BatchNorm2d":
                p, s = next(norms)
                for target, value in ((module.weight, p["scale"]), (module.bias, p["bias"]),
                                      (module.running_mean, s["mean"]), (module.running_var, s["var"])):
                    target.copy_(t(value))
            elif kind == "LayerNorm":
                p = next(layernorms)
                module.weight.copy_(t(p["scale"]))
                module.bias.copy_(t(p["bias"]))
            elif kind == "SelfAttention":
                p = next(attentions)
                for name, key in (("query", "query"), ("key", "key"), ("value", "value"), ("output", "out")):
                    kernel, bias = p[key]["kernel"], p[key]["bias"]
                    flat = kernel.reshape(-1, kernel.shape[-1]) if key == "out" else kernel.reshape(kernel.shape[0], -1)
                    getattr(module, name).weight.copy_(t(flat.T.copy()))
                    getattr(module, name).bias.copy_(t(bias.reshape(-1)))
            elif kind == "Linear" and id(module) not in projections:
                p = next(dense)
                module.weight.copy_(t(p["kernel"].T.copy()))
                module.bias.copy_(t(p["bias"]))
            elif kind == "Embedding":
                module.weight.copy_(t(params["Embed_0"]["embedding"]))
            elif kind == "PositionEmbedding":
                module.table.copy_(t(params["PositionEmbedding_0"]["table"]))
    return net


def _into_keras(keras: Any, spec: Any, shape: tuple, params: dict, stats: dict) -> Any:
    from dlbench_keras.models import build_model

    model = build_model(keras, spec, shape, 0)
    convs = iter(_in_order(params, "Conv"))
    norms = iter(zip(_in_order(params, "BatchNorm"), _in_order(stats, "BatchNorm")))
    layernorms, dense = iter(_in_order(params, "LayerNorm")), iter(_in_order(params, "Dense"))
    attentions = iter(_in_order(params, "MultiHeadDotProductAttention"))
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            p = next(convs)
            layer.kernel.assign(p["kernel"])
            if layer.use_bias:
                layer.bias.assign(p["bias"])
        elif kind == "BatchNormalization":
            p, s = next(norms)
            for target, value in ((layer.gamma, p["scale"]), (layer.beta, p["bias"]), (layer.moving_mean, s["mean"]),
                                  (layer.moving_variance, s["var"])):
                target.assign(value)
        elif kind == "LayerNormalization":
            p = next(layernorms)
            layer.gamma.assign(p["scale"])
            layer.beta.assign(p["bias"])
        elif kind == "MultiHeadAttention":
            p = next(attentions)
            for key, part in (("query", layer.query_dense), ("key", layer.key_dense), ("value", layer.value_dense),
                              ("out", layer.output_dense)):
                part.kernel.assign(p[key]["kernel"])
                part.bias.assign(p[key]["bias"])
        elif kind == "Dense":
            p = next(dense)
            layer.kernel.assign(p["kernel"])
            layer.bias.assign(p["bias"])
        elif kind == "Embedding":
            layer.embeddings.assign(params["Embed_0"]["embedding"])
        elif kind == "PositionEmbedding":
            layer.table.assign(params["PositionEmbedding_0"]["table"])
    return model


def compare(name: str, keras: Any) -> dict[str, float]:
    import torch

    from dlbench.zoo import get_model

    spec = get_model(name)
    shape = (32, 32, 3) if spec.modality == "image" else (100,)
    rng = np.random.default_rng(0)
    x = rng.random((8, *shape), dtype=np.float32) if spec.modality == "image" else \
        rng.integers(0, 10_000, (8, 100)).astype(np.int32)
    reference, params, stats = _jax_reference(spec, x)
    net = _into_torch(spec, shape, params, stats)
    torch_in = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()) if x.ndim == 4 else torch.from_numpy(x.astype(np.int64))
    with torch.no_grad():
        torch_out = net(torch_in).numpy()
    keras_out = keras.ops.convert_to_numpy(_into_keras(keras, spec, shape, params, stats)(x, training=False))
    spread = float(np.abs(reference - reference[:1]).max())  # the outputs must differ between samples
    return {"pytorch": float(np.abs(torch_out - reference).max()), "keras": float(np.abs(keras_out - reference).max()),
            "output range": float(np.abs(reference).max()), "between samples": spread}


def _torch_order(variable: Any) -> tuple:
    """Keras' ``3_residual_shortcut0_conv2d/kernel`` sorted where torch's ``3.shortcut.0.weight`` is: by block,
    then body before shortcut, then layer; a layer's own variables keep their order (kernel, bias)."""
    import re

    layer = variable.path.split("/")[0]
    nested = re.search(r"_(body|shortcut)(\d+)_", layer)
    return (int(layer.split("_")[0]), 0 if nested is None else (1, 2)[nested[1] == "shortcut"],
            int(nested[2]) if nested else 0)


def compare_training(name: str, keras: Any) -> dict[str, float]:
    """Largest relative difference, torch vs Keras, of the gradients and of the first Adam step, per variable."""
    import tensorflow as tf
    import torch

    from dlbench.zoo import get_model
    from dlbench_keras.adam import recipe_adam

    spec = get_model(name)
    shape = (32, 32, 3) if spec.modality == "image" else (100,)
    rng = np.random.default_rng(2)
    x = rng.random((128, *shape), dtype=np.float32) if spec.modality == "image" else \
        rng.integers(0, 10_000, (128, 100)).astype(np.int32)
    y = rng.integers(0, spec.outputs if spec.outputs > 1 else 2, 128)
    _, params, stats = _jax_reference(spec, x[:8])
    net, model = _into_torch(spec, shape, params, stats).train(), _into_keras(keras, spec, shape, params, stats)
    binary = spec.outputs == 1
    torch_in = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()) if x.ndim == 4 else torch.from_numpy(x.astype(np.int64))
    target = torch.from_numpy(y.astype(np.float32)).reshape(-1, 1) if binary else torch.from_numpy(y)
    loss = torch.nn.functional.binary_cross_entropy_with_logits if binary else torch.nn.functional.cross_entropy
    loss(net(torch_in), target).backward()
    keras_loss = keras.losses.BinaryCrossentropy(from_logits=True) if binary else \
        keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        value = keras_loss(y.reshape(-1, 1).astype(np.float32) if binary else y, model(x, training=True))
    grads = dict(zip((v.path for v in model.trainable_variables),
                     (tf.convert_to_tensor(g) for g in tape.gradient(value, model.trainable_variables))))
    ordered = sorted(model.trainable_variables, key=_torch_order)  # a residual block: body, then shortcut, as torch
    pairs = [(p, v, grads[v.path]) for p, v in zip(net.parameters(), ordered)]
    before = [(p.detach().numpy().copy(), v.numpy().copy()) for p, v, _ in pairs]
    torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7).step()
    recipe_adam(keras, tf, spec.recipe).apply_gradients((grads[v.path], v) for v in model.trainable_variables)

    def relative(a: float, b: float) -> float:
        return abs(a - b) / max(a, b, 1e-12)

    grad = max(relative(float(np.linalg.norm(p.grad.numpy())), float(np.linalg.norm(g.numpy())))
               for p, _, g in pairs if float(np.linalg.norm(g.numpy())) > 1e-6)
    step = max(relative(float(np.linalg.norm(p.detach().numpy() - b[0])), float(np.linalg.norm(v.numpy() - b[1])))
               for (p, v, g), b in zip(pairs, before) if float(np.linalg.norm(g.numpy())) > 1e-6)
    return {"gradients": grad, "first Adam step": step}


def train_from_one_start(keras: Any, steps: int, seed: int) -> dict[str, Any]:
    """The transformer from JAX's initial weights (seed ``seed``), copied into torch and Keras, trained ``steps``
    steps on the same synthetic-text batches (the harness's stream) by each plugin's optimiser: torch's Adam,
    dlbench_keras.adam.recipe_adam, optax's adam. Returns each framework's losses and test accuracy."""
    import jax
    import jax.numpy as jnp
    import optax
    import tensorflow as tf
    import torch

    from dlbench.data import load_task
    from dlbench.stream import BatchStream
    from dlbench.zoo import get_model
    from dlbench_jax.session import Net
    from dlbench_keras.adam import recipe_adam

    spec, data = get_model("transformer"), load_task("synthetic_text")
    x, y = data.x_train, data.y_train.astype(np.float32)
    net = Net(tuple(spec.layers))
    params = net.init(jax.random.PRNGKey(seed), jnp.asarray(x[:2]), False)["params"]
    start = jax.tree_util.tree_map(np.asarray, params)
    batches = [np.asarray(rows) for rows in BatchStream(len(x), 128, seed).take(steps)]
    losses: dict[str, list[float]] = {"pytorch": [], "keras": [], "jax": []}

    module = _into_torch(spec, (100,), start, {}).train()
    adam = torch.optim.Adam(module.parameters(), lr=spec.recipe.learning_rate, eps=spec.recipe.epsilon)
    for rows in batches:
        adam.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            module(torch.from_numpy(x[rows].astype(np.int64))), torch.from_numpy(y[rows]).reshape(-1, 1))
        loss.backward()
        adam.step()
        losses["pytorch"].append(loss.item())
    model = _into_keras(keras, spec, (100,), start, {})
    model.compile(optimizer=recipe_adam(keras, tf, spec.recipe), jit_compile=False,
                  loss=keras.losses.BinaryCrossentropy(from_logits=True))
    losses["keras"] = [float(model.train_on_batch(x[rows], y[rows].reshape(-1, 1))) for rows in batches]
    optimizer = optax.adam(spec.recipe.learning_rate, eps=spec.recipe.epsilon)

    @jax.jit
    def step(p: Any, state: Any, xb: Any, yb: Any) -> Any:
        value, grads = jax.value_and_grad(
            lambda q: optax.sigmoid_binary_cross_entropy(net.apply({"params": q}, xb, True)[:, 0], yb).mean())(p)
        updates, state = optimizer.update(grads, state, p)
        return optax.apply_updates(p, updates), state, value

    state = optimizer.init(params)
    for rows in batches:
        params, state, value = step(params, state, jnp.asarray(x[rows]), jnp.asarray(y[rows]))
        losses["jax"].append(float(value))
    with torch.no_grad():
        logits = {"pytorch": module.eval()(torch.from_numpy(data.x_test.astype(np.int64))).numpy()[:, 0],
                  "keras": keras.ops.convert_to_numpy(model(data.x_test, training=False))[:, 0],
                  "jax": np.asarray(net.apply({"params": params}, jnp.asarray(data.x_test), False))[:, 0]}
    accuracy = {name: float(np.mean((out > 0) == (data.y_test > 0.5))) for name, out in logits.items()}
    return {"losses": losses, "accuracy": accuracy}


def print_one_start(result: dict[str, Any], steps: int, seed: int) -> None:
    losses = result["losses"]
    for name in ("keras", "jax"):
        apart = next((i + 1 for i, (a, b) in enumerate(zip(losses["pytorch"], losses[name]))
                      if abs(a - b) > 1e-4 * max(abs(a), 1e-3)), None)
        print(f"transformer, one start (seed {seed}), {steps} steps: {name}'s loss leaves torch's (1e-4 relative) "
              f"{'at step ' + str(apart) if apart else 'never'}")
    for i in sorted({0, 1, 2, 4, 9, 19, 49, steps - 1} & set(range(steps))):
        print(f"  step {i + 1:4d} loss " + "  ".join(f"{n} {losses[n][i]:.6f}" for n in losses))
    print("  test accuracy " + "  ".join(f"{n} {a:.3f}" for n, a in result["accuracy"].items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="resnet20,transformer")
    parser.add_argument("--keras-backend", default="tensorflow", choices=["tensorflow", "torch", "jax"])
    parser.add_argument("--tolerance", type=float, default=1e-5)
    parser.add_argument("--training", action="store_true", help="also compare gradients and the first Adam step")
    parser.add_argument("--train-steps", type=int, default=0, metavar="N",
                        help="also train the transformer N steps from one start in all three (tensorflow backend)")
    parser.add_argument("--seed", type=int, default=0, help="the initial weights and batch order of --train-steps")
    args = parser.parse_args()
    os.environ["KERAS_BACKEND"] = args.keras_backend
    import keras

    if args.train_steps and args.keras_backend == "tensorflow":
        print_one_start(train_from_one_start(keras, args.train_steps, args.seed), args.train_steps, args.seed)

    worst = 0.0
    for name in args.models.split(","):
        result = compare(name.strip(), keras)
        worst = max(worst, result["pytorch"], result["keras"])
        print(f"{name}: max |output - jax| pytorch {result['pytorch']:.2e}, keras ({args.keras_backend}) "
              f"{result['keras']:.2e}; outputs up to {result['output range']:.3g}, "
              f"{result['between samples']:.3g} apart between samples")
        if args.training and args.keras_backend == "tensorflow":
            trained = compare_training(name.strip(), keras)
            print(f"{name}: torch vs keras, largest relative difference per variable: gradients "
                  f"{trained['gradients']:.1e}, first Adam step {trained['first Adam step']:.1%}")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
