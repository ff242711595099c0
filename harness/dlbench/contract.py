"""What a framework plugin provides, and what the harness hands it.

The harness owns data, timing and statistics. A plugin only builds the model from a zoo spec, runs
training steps, evaluates, predicts and synchronises. Its objects are duck-typed: the Protocols below
document the methods; nothing needs to inherit from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Protocol, Sequence, runtime_checkable

from dlbench.errors import FrameworkUnavailable  # noqa: F401  (part of the contract; re-exported)

if TYPE_CHECKING:  # numpy is only needed by type checkers here; workers import it anyway
    import numpy as np

    from dlbench.zoo import ModelSpec



@dataclass(frozen=True)
class TaskData:
    """One task's arrays, identical for every framework.

    Images are float32 NHWC in [0, 1]; text is int32 token ids of shape (N, maxlen), 0 = padding.
    Labels are int64 class indices (0/1 for binary tasks).
    """

    name: str
    modality: str  # "image" | "text"
    num_classes: int  # 2 means a binary task with one sigmoid output
    input_shape: tuple[int, ...]  # one sample, e.g. (28, 28, 1) or (100,)
    x_train: "np.ndarray"
    y_train: "np.ndarray"
    x_val: "np.ndarray"
    y_val: "np.ndarray"
    x_test: "np.ndarray"
    y_test: "np.ndarray"
    synthetic: bool = False
    pipeline: str = ""  # how the arrays were made, copied into every record
    source: str = ""  # where the data came from
    vocab_size: int = 0  # text tasks only
    augment_s: float = 0.0  # seconds the harness spent augmenting x_train (0 when not augmented)


@dataclass(frozen=True)
class Setup:
    """Everything ``Framework.prepare`` needs to build one case."""

    spec: "ModelSpec"
    data: TaskData
    device: str  # "cpu" | "gpu"
    variant: str
    seed: int
    threads: int  # the thread budget every framework gets; the plugin applies it and says how in describe()
    batch_size: int
    options: Mapping[str, Any] = field(default_factory=dict)
    # The harness's training order (dlbench.stream.BatchStream): train() gathers the rows it yields. Built
    # from (len(x_train), batch_size, seed) when not given, so a Setup made by hand has one too. A plugin
    # that ignores it still runs; its records then say batch_order "plugin" and tables flag them.
    stream: Any = None
    # "dlbench" (default) or "user" (--environment user: what a user's own script gets). In the user's
    # environment a plugin applies the budget only to the pools a tutorial script sizes itself (intra- and
    # inter-op threads) and leaves the rest at the framework's defaults, as model.fit(x, y) does with tf.data's.
    environment: str = "dlbench"

    def __post_init__(self) -> None:
        if self.stream is None:
            from dlbench.stream import BatchStream

            object.__setattr__(self, "stream", BatchStream(len(self.data.x_train), self.batch_size, self.seed))


class BlockHook(Protocol):
    """Handed to ``Session.train``: the plugin calls it after every ``steps`` training steps.

    The harness synchronises and reads its clock inside the call; the plugin never times anything.
    """

    steps: int

    def __call__(self) -> None: ...


@runtime_checkable
class Session(Protocol):
    """A built model with its optimiser and its own copy of the training stream, ready on its device."""

    def param_count(self) -> int:
        """Trainable parameters, as the framework itself counts them."""

    def train(self, steps: int, hook: Optional[BlockHook] = None) -> None:
        """Run ``steps`` optimiser steps on the next ``steps`` batches of ``setup.stream``, in train mode.

        Work may still be in flight on return (the harness calls ``sync``). With a hook, call
        ``hook()`` after every ``hook.steps`` steps.
        """

    def evaluate(self, x: "np.ndarray", y: "np.ndarray") -> tuple[float, float]:
        """(mean loss, accuracy) over all of x in eval mode; synchronous."""

    def stage(self, x: "np.ndarray") -> Any:
        """Put an input batch where ``predict`` wants it (device, layout, dtype), off the clock."""

    def predict(self, staged: Any) -> Any:
        """Forward pass in inference mode on a staged batch; may return before the work is done."""

    def sync(self) -> None:
        """Wait until all queued work on the device has finished."""

    def describe(self) -> Mapping[str, Any]:
        """The fairness profile: how threads were set, precision, compile mode, sync method, layout, versions."""


@runtime_checkable
class Framework(Protocol):
    """One benchmarkable framework; registered through ``dlbench_register_frameworks``."""

    name: str

    def version(self) -> str:
        """The framework's version; raise FrameworkUnavailable (with how to install it) if it is missing."""

    def variants(self) -> Sequence[str]:
        """Ways to run it (e.g. eager, compile); the first is the default."""

    def devices(self) -> Sequence[str]:
        """Devices really usable here: "cpu" and, when present, "gpu"."""

    def supports(self, spec: "ModelSpec") -> bool:
        """Whether this framework implements the zoo model."""

    def prepare(self, setup: Setup) -> Session:
        """Import the framework, build the model for ``setup`` and return a ready session."""

    # Optional: ``preload(variant, device) -> Optional[Preload]``, what ``prepare`` imports for that variant, so
    # that a fork server imports it once for every case (dlbench.running.forkserver). Without it (or when it
    # returns None) each case imports the framework itself. Answer without importing the framework.


@dataclass(frozen=True)
class Preload:
    """What a fork server may import before it forks a case's worker: imports only.

    ``load`` runs once in the server, never in the driver: it imports the modules ``prepare`` would import
    (and sets what must be set before they are imported, such as ``KERAS_BACKEND``), and nothing more: no
    thread started, no thread count set, no device touched, no model built. The server checks the first
    two and the third (no GPU device file open) and runs cases as fresh processes when they do not hold.
    Cases of one framework whose ``key`` is equal share a server.
    """

    key: str
    load: Callable[[], Any]


Register = Callable[[Framework], None]
