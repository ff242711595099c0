"""Small instruments the conformance kit uses on a plugin: a clock guard, a counting hook, shape reading."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np

CLOCKS = ("perf_counter", "perf_counter_ns", "time", "time_ns", "monotonic", "monotonic_ns", "process_time",
          "process_time_ns")


@contextmanager
def clock_guard(packages: Iterable[str]) -> Iterator[list[str]]:
    """Record every clock read made by code of ``packages`` while the block runs.

    Framework internals (TensorFlow, JAX, torch.compile) may read clocks for their own logging; only
    reads from the plugin's own modules break the rule that the harness alone times. Covers
    ``time.perf_counter()`` and friends called through the ``time`` module as well as names imported
    from it (``from time import perf_counter``) into the plugin's modules.
    """
    prefixes = tuple(packages)
    reads: list[str] = []

    def owned(module: str) -> bool:
        return any(module == p or module.startswith(p + ".") for p in prefixes)

    def guarded(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def read_clock(*args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1)
            module = caller.f_globals.get("__name__", "")
            if owned(module):
                reads.append(f"{module}:{caller.f_lineno} called time.{name}()")
            return real(*args, **kwargs)
        return read_clock

    originals = {name: getattr(time, name) for name in CLOCKS}
    replacement = {id(real): guarded(name, real) for name, real in originals.items()}
    patched: list[tuple[Any, str, Any]] = []
    try:
        for name, real in originals.items():
            setattr(time, name, replacement[id(real)])
            patched.append((time, name, real))
        for module_name, module in list(sys.modules.items()):
            if module is None or not owned(module_name):
                continue
            for attr, value in list(vars(module).items()):
                if callable(value) and any(value is real for real in originals.values()):
                    setattr(module, attr, replacement[id(value)])
                    patched.append((module, attr, value))
        yield reads
    finally:
        for namespace, attr, value in reversed(patched):
            setattr(namespace, attr, value)


@dataclass
class CountingHook:
    """A ``BlockHook`` that counts its calls and, like the harness' time-to-accuracy, may evaluate inside."""

    steps: int
    during: Optional[Callable[[], Any]] = None
    calls: int = 0
    seen: list[Any] = field(default_factory=list)

    def __call__(self) -> None:
        self.calls += 1
        if self.during is not None:
            self.seen.append(self.during())


def batch_dimension(output: Any) -> int:
    """The leading dimension of whatever ``predict`` returned (a framework tensor, an array, a tuple of them)."""
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    shape = getattr(output, "shape", None)
    if shape is None:
        shape = to_numpy(output).shape
    return int(shape[0])


def dtype_name(output: Any) -> str:
    """The element type of a prediction, framework-neutral: "float32", "bfloat16", ... ('' when it has none)."""
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    dtype = getattr(output, "dtype", None)
    name = getattr(dtype, "name", None) or str(dtype or "")
    return name.replace("torch.", "").split("'")[-2] if "'" in name else name.replace("torch.", "")


def to_numpy(output: Any) -> np.ndarray:
    """A host copy of a prediction (after ``sync``): numpy, torch (any device), TF, JAX and the like.

    Reduced-precision outputs (bfloat16, which numpy has no type for) come back as float32, so that one wrong
    dtype fails the one kit test that checks it instead of every test that reads a prediction.
    """
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    reduced = dtype_name(output) in ("bfloat16", "float16")
    for method in ("detach", "cpu"):
        if callable(getattr(output, method, None)):
            output = getattr(output, method)()
    if reduced and callable(getattr(output, "float", None)):  # torch: .numpy() refuses bfloat16
        output = output.float()
    if callable(getattr(output, "numpy", None)):
        output = output.numpy()
    array = np.asarray(output)
    return array.astype(np.float32) if reduced else array


def permuted_rows(data: Any, seed: int = 1234) -> tuple[Any, np.ndarray]:
    """``data`` with its training rows shuffled, and the map that finds each original row in it.

    ``moved.x_train[where[i]] == data.x_train[i]``: a stream of original row indices, passed through
    ``where``, gathers exactly the same batches from ``moved`` as the original stream gathers from ``data``.
    """
    import dataclasses

    order = np.random.default_rng(seed).permutation(len(data.x_train))
    where = np.empty_like(order)
    where[order] = np.arange(len(order))
    moved = dataclasses.replace(data, x_train=np.ascontiguousarray(data.x_train[order]),
                                y_train=np.ascontiguousarray(data.y_train[order]))
    return moved, where


class MappedStream:
    """A ``BatchStream`` whose indices go through ``where`` (see ``permuted_rows``): the same batches, moved rows.

    A plugin that gathers the rows the stream names trains identically on (data, stream) and on
    (moved data, mapped stream); one that draws its own order sees different batches in the two.
    """

    def __new__(cls, base: Any, where: np.ndarray) -> Any:
        from dlbench.stream import BatchStream

        class _Mapped(BatchStream):
            def epoch(self, number: int) -> np.ndarray:
                mapped = where[BatchStream.epoch(self, number)]
                mapped.setflags(write=False)
                return mapped

        return _Mapped(base.samples, base.batch_size, base.seed)
