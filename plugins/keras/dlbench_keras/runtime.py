"""Importing Keras on the chosen backend, with the thread budget, device, seed and quiet logs applied first.

Order matters: ``KERAS_BACKEND`` must be set before keras is imported, and TensorFlow's thread pools and
visible devices must be configured before its first op. Each case runs in a fresh worker process, so this
happens once per process; in a shared process (the tests) a second call reuses what the first set and
reports the values really in force.
"""

from __future__ import annotations

import os
import random
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Iterator

from dlbench import cpu_model, jax_thread_budget, torch_strict_float32, torch_thread_budget


@dataclass
class Runtime:
    """The imported modules and how the process was configured (copied into ``describe()``)."""

    keras: Any
    backend: str
    device: str
    threads: str  # how the intra-op pool was sized, and its size
    interop_threads: str
    device_name: str
    versions: dict[str, str] = field(default_factory=dict)
    tf32: Any = None  # on GPU: how TF32 was turned off
    tf: Any = None  # the tensorflow module on the tensorflow backend
    torch: Any = None  # the torch module on the torch backend
    jax: Any = None  # the jax module on the jax backend


def load(backend: str, device: str, threads: int, seed: int) -> Runtime:
    """Import keras on ``backend`` for ``device`` with ``threads`` threads, seeded with ``seed``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no TF info banners in the worker's output
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != backend:
            raise RuntimeError(f"keras is already imported with backend {current!r} in this process; "
                               f"backend {backend!r} needs a fresh process")
    else:
        os.environ["KERAS_BACKEND"] = backend
    loader = {"tensorflow": _load_tensorflow, "torch": _load_torch, "jax": _load_jax}[backend]
    with _scikit_learn_hidden():
        runtime = loader(device, threads)
    _seed(runtime, seed)
    return runtime


def preload(backend: str, device: str) -> None:
    """Import keras on ``backend`` as ``load`` will for ``device``, but configure nothing (a fork server's
    preload: the thread budget, device and seed are applied by ``load`` in each case's own process)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["KERAS_BACKEND"] = backend
    if backend == "torch":  # read when keras is imported; unset, keras asks torch.cuda.is_available()
        os.environ["KERAS_TORCH_DEVICE"] = "cuda" if device == "gpu" else "cpu"
    with _scikit_learn_hidden():
        __import__(BACKEND_MODULE[backend])
        import keras  # noqa: F401


BACKEND_MODULE = {"tensorflow": "tensorflow", "torch": "torch"}


@contextmanager
def _scikit_learn_hidden() -> Iterator[None]:
    """Keras imports scikit-learn (1.6-2 s here) for its sklearn wrappers alone, which no case uses; dlbench
    installs scikit-learn for the digits data. Hiding it while Keras loads starts each case that much
    sooner, as for a user without scikit-learn; it changes nothing that is timed."""
    if "sklearn" in sys.modules:  # already imported (a shared process): nothing to save
        yield
        return
    sys.modules["sklearn"] = None  # type: ignore[assignment]  # `import sklearn` now raises ImportError
    try:
        yield
    finally:
        if "sklearn" in sys.modules and sys.modules["sklearn"] is None:
            del sys.modules["sklearn"]


def _load_tensorflow(device: str, threads: int) -> Runtime:
    import tensorflow as tf

    if device == "cpu":
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:  # TF already initialised in this process (tests): check instead
            if tf.config.get_visible_devices("GPU"):
                raise RuntimeError("TensorFlow already runs with a GPU visible; a CPU case needs a fresh process")
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        intra_how = f"tf.config.threading.set_intra_op_parallelism_threads({threads})"
        inter_how = f"tf.config.threading.set_inter_op_parallelism_threads({threads})"
    except RuntimeError:  # already initialised (several sessions in one process): report what is in force
        intra_how = inter_how = "TensorFlow already initialised in this process, pools kept"
    tf32 = None
    if device == "gpu":  # float32 everywhere, as the spec says (TF defaults to TF32 on Ampere and later)
        tf.config.experimental.enable_tensor_float_32_execution(False)
        tf32 = "off: tf.config.experimental.enable_tensor_float_32_execution(False)"
    _quiet_tensorflow(tf)

    import keras

    gpus = tf.config.list_logical_devices("GPU")
    if device == "gpu" and not gpus:
        raise RuntimeError("device 'gpu' requested but TensorFlow sees no GPU")
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    if intra != threads:  # a record must never claim a thread budget that was not in force
        raise RuntimeError(f"TensorFlow already runs with {intra or 'all cores'} intra-op threads in this process; "
                           f"a session with a budget of {threads} needs a fresh process")
    name = _gpu_name_tf(tf) if device == "gpu" else cpu_model()
    return Runtime(keras, "tensorflow", device, f"{intra_how} -> {intra or 'all cores'} intra-op threads",
                   f"{inter_how} -> {inter or 'all cores'}", name,
                   {"keras": keras.__version__, "tensorflow": tf.__version__}, tf32, tf=tf)


def _quiet_tensorflow(tf: Any) -> None:
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass
    tf.get_logger().setLevel("ERROR")
    tf.autograph.set_verbosity(0)


def _gpu_name_tf(tf: Any) -> str:
    gpus = tf.config.list_physical_devices("GPU")
    details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
    return str(details.get("device_name", "GPU"))


def _load_torch(device: str, threads: int) -> Runtime:
    if "keras" not in sys.modules:
        os.environ["KERAS_TORCH_DEVICE"] = "cuda" if device == "gpu" else "cpu"
    import torch

    budget = torch_thread_budget(torch, threads)  # the same set-up as the PyTorch plugin's
    tf32 = None
    if device == "gpu":
        if not torch.cuda.is_available():
            raise RuntimeError("device 'gpu' requested but torch sees no CUDA device")
        tf32 = torch_strict_float32(torch)

    import keras

    name = torch.cuda.get_device_name(0) if device == "gpu" else cpu_model()
    return Runtime(keras, "torch", device, budget["threads"], budget["interop_threads"], name,
                   {"keras": keras.__version__, "torch": torch.__version__}, tf32, torch=torch)


def _load_jax(device: str, threads: int) -> Runtime:
    if "jax" not in sys.modules:
        os.environ["JAX_PLATFORMS"] = "cuda" if device == "gpu" else "cpu"
    how = jax_thread_budget(threads, device)  # XLA's CPU pools and schedule, before jax is imported
    import jax
    import keras

    name = str(jax.devices()[0].device_kind) if device == "gpu" else cpu_model()
    return Runtime(keras, "jax", device, how, how, name,
                   {"keras": keras.__version__, "jax": jax.__version__, "jaxlib": metadata.version("jaxlib")},
                   jax=jax)


def _seed(runtime: Runtime, seed: int) -> None:
    if runtime.backend == "tensorflow":
        runtime.keras.utils.set_random_seed(seed)  # python, numpy, TF and Keras' global seed generator
        return
    # keras.utils.set_random_seed would import TensorFlow (to seed tf.data) into a torch/jax worker:
    # seed what these backends use instead. Initialisers and dropout layers carry their own seeds.
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    if runtime.torch is not None:
        runtime.torch.manual_seed(seed)

