"""The training order, owned by the harness: one seeded index stream that every framework consumes.

Each plugin used to draw its own epoch permutations with its own random generator, so no two frameworks
ever saw the same batches. ``BatchStream`` is the one order: epoch ``e`` is a permutation of the training
rows drawn from ``numpy.random.default_rng([seed, e])`` (random access: any epoch can be drawn again
without replaying the earlier ones), cut into ``batches_per_epoch`` full batches (the partial batch is
dropped, as every tutorial's ``drop_remainder`` does). The plugin only gathers the indexed rows on its
device. ``batches(steps, hook)`` also carries the hook cadence, so a plugin's training loop is::

    for index in self.setup.stream.batches(steps, hook):
        step(x_train[index], y_train[index])

The stream counts what was drawn (``step``); the worker compares it with the steps it asked for and
records whether the case trained on the harness's order or on the plugin's own (``batch_order``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Optional

if TYPE_CHECKING:  # numpy loads with the first epoch drawn (in the worker), not with `import dlbench`
    import numpy as np


class BatchStream:
    """Successive training batches as row indices: deterministic in (seed, samples, batch size)."""

    def __init__(self, samples: int, batch_size: int, seed: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        self.samples, self.batch_size, self.seed = int(samples), int(batch_size), int(seed)
        self.batches_per_epoch = self.samples // self.batch_size
        self.step = 0  # batches drawn so far: the global index of the next batch
        self._epoch: tuple[int, Optional["np.ndarray"]] = (-1, None)

    def __repr__(self) -> str:
        return (f"BatchStream(samples={self.samples}, batch_size={self.batch_size}, seed={self.seed}, "
                f"step={self.step})")

    # -- random access (pure: nothing advances) ---------------------------------------------------------
    def epoch(self, number: int) -> "np.ndarray":
        """The permutation of all training rows for epoch ``number`` (int64; the last partial batch unused)."""
        cached_number, cached = self._epoch
        if cached_number != number or cached is None:
            import numpy as np

            cached = np.random.default_rng([self.seed, int(number)]).permutation(self.samples)
            cached.setflags(write=False)
            self._epoch = (number, cached)
        return cached

    def batch(self, step: int) -> "np.ndarray":
        """Row indices of global batch ``step`` (0-based)."""
        if self.batches_per_epoch < 1:
            raise ValueError(f"batch size {self.batch_size} exceeds the {self.samples} training samples")
        number, position = divmod(int(step), self.batches_per_epoch)
        start = position * self.batch_size
        return self.epoch(number)[start:start + self.batch_size]

    def position(self, step: Optional[int] = None) -> tuple[int, int]:
        """(epoch, batch within the epoch) of global batch ``step`` (default: the next one)."""
        if self.batches_per_epoch < 1:
            raise ValueError(f"batch size {self.batch_size} exceeds the {self.samples} training samples")
        return divmod(self.step if step is None else int(step), self.batches_per_epoch)

    # -- consuming (advances ``step``) ------------------------------------------------------------------
    def batches(self, steps: int, hook: Any = None) -> Iterator["np.ndarray"]:
        """The next ``steps`` batches; with a hook, ``hook()`` runs after every ``hook.steps`` of them.

        The generator resumes only when the loop asks for the next batch, that is after the loop's body
        (the training step) for the previous one: the hook sees its block's steps done, none of the next.
        """
        every = int(getattr(hook, "steps", 0) or 0) if hook is not None else 0
        for done in range(1, int(steps) + 1):
            index = self.batch(self.step)
            self.step += 1
            yield index
            if every and done % every == 0:
                hook()

    def positions(self, steps: int, hook: Any = None) -> Iterator[tuple[int, int]]:
        """Like ``batches`` but yields (epoch, batch within epoch): for plugins that keep each epoch's
        permutation on the device (``epoch(e)``) and slice it there, as the JAX plugin does."""
        every = int(getattr(hook, "steps", 0) or 0) if hook is not None else 0
        for done in range(1, int(steps) + 1):
            where = self.position()
            self.step += 1
            yield where
            if every and done % every == 0:
                hook()

    def take(self, steps: int) -> "np.ndarray":
        """The next ``steps`` batches at once, shape (steps, batch_size): for input pipelines built per call."""
        import numpy as np

        rows = np.stack([self.batch(self.step + i) for i in range(int(steps))]) if steps > 0 else \
            np.zeros((0, self.batch_size), np.int64)
        self.step += max(int(steps), 0)
        return rows

    def fork(self) -> "BatchStream":
        """A fresh stream with the same order, starting at batch 0 (for a second session of one case)."""
        return BatchStream(self.samples, self.batch_size, self.seed)


def check_batch_size(setup: Any) -> int:
    """Full training batches per epoch for ``setup``; a ValueError, in one wording for every plugin, when the
    batch is larger than the training set (a plugin calls it in ``prepare``, before anything is built)."""
    samples, size = len(setup.data.x_train), int(setup.batch_size)
    if size < 1 or samples // size < 1:
        raise ValueError(f"batch size {size} exceeds the {samples} training samples: choose --batch-size "
                         f"{samples} or less")
    return samples // size


class DeviceOrder:
    """The stream's order kept on the device: each epoch's permutation copied there once, by ``put``.

    For plugins that slice batches on the device (torch indexing, a jitted step's ``dynamic_slice``)
    instead of gathering rows on the host: ``for order, cursor in DeviceOrder(stream, put).steps(n, hook)``
    yields the current epoch's device permutation and the batch's position in it; the rows of the batch are
    ``order[cursor * batch_size:(cursor + 1) * batch_size]``. ``put`` turns the int64 numpy permutation into
    the framework's device array (``torch.tensor(rows, device=...)``, ``jax.device_put(rows.astype(int32))``).
    """

    def __init__(self, stream: BatchStream, put: Any) -> None:
        self.stream, self.put = stream, put
        self._epoch, self._order = -1, None

    def steps(self, steps: int, hook: Any = None) -> Iterator[tuple[Any, int]]:
        """(device permutation, batch within the epoch) for the next ``steps`` steps; the hook as ``positions``."""
        for epoch, cursor in self.stream.positions(steps, hook):
            if epoch != self._epoch:
                self._epoch, self._order = epoch, self.put(self.stream.epoch(epoch))
            yield self._order, cursor


def batch_order(drawn: int, trained: int) -> str:
    """What a case trained on: "harness" (every step from the stream), "plugin" (none), "mixed" otherwise."""
    if trained > 0 and drawn == trained:
        return "harness"
    return "plugin" if drawn == 0 else "mixed"
