"""Small random inputs for a plugin author's own experiments: a ``TaskData`` and a ready ``Setup``.

    from dlbench.testing import random_setup
    session = MyFramework().prepare(random_setup("cnn"))
    session.train(5); session.sync(); print(session.evaluate(session.setup.data.x_val, ...))

The arrays have the shapes, dtypes and value ranges the harness hands plugins (float32 NHWC images in
[0, 1], int32 token ids with 0 as padding, int64 labels), so code that works on them works in a real
case. Labels are random: nothing here can be learnt, use ``dlbench run`` or the kit for that.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from dlbench.contract import Setup, TaskData
from dlbench.zoo import MAXLEN, VOCAB, ModelSpec, get_model


def random_task(modality: str = "image", samples: int = 256, seed: int = 0, *, image_shape: tuple[int, ...] = (28, 28, 1),
                classes: Optional[int] = None, maxlen: int = MAXLEN, vocab: int = VOCAB) -> TaskData:
    """A task of random arrays: ``samples`` training rows and a quarter as many for validation and test."""
    if modality not in ("image", "text"):
        raise ValueError(f"modality must be 'image' or 'text', got {modality!r}")
    rng = np.random.default_rng(seed)
    classes = classes or (10 if modality == "image" else 2)
    rows = {"train": samples, "val": max(1, samples // 4), "test": max(1, samples // 4)}
    arrays: dict[str, Any] = {}
    for part, n in rows.items():
        if modality == "image":
            arrays[f"x_{part}"] = rng.random((n, *image_shape), dtype=np.float32)
        else:
            lengths = rng.integers(maxlen // 4, maxlen + 1, n)
            ids = rng.integers(1, vocab, (n, maxlen), dtype=np.int32)
            ids[np.arange(maxlen) < (maxlen - lengths)[:, None]] = 0  # left padding, as Keras' pad_sequences
            arrays[f"x_{part}"] = ids
        arrays[f"y_{part}"] = rng.integers(0, classes, n).astype(np.int64)
    shape = tuple(image_shape) if modality == "image" else (maxlen,)
    return TaskData(name=f"random_{modality}", modality=modality, num_classes=classes, input_shape=shape,
                    synthetic=True, pipeline="dlbench.testing.random_task: uniform random arrays, random labels",
                    source="numpy.random.default_rng", vocab_size=vocab if modality == "text" else 0, **arrays)


def random_setup(model: Union[str, ModelSpec] = "softmax", *, samples: int = 256, batch_size: int = 32, seed: int = 0,
                 threads: int = 1, variant: str = "default", device: str = "cpu") -> Setup:
    """A ``Setup`` for ``model`` on a random task of its modality (with the harness's batch stream)."""
    spec = get_model(model) if isinstance(model, str) else model
    data = random_task(spec.modality, samples, seed)
    return Setup(spec=spec, data=data, device=device, variant=variant, seed=seed, threads=threads,
                 batch_size=batch_size)
