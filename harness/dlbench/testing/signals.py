"""Children that take SIGINT even when the tests run as a background job.

A shell starts a background job (``make test &``, some CI runners) with SIGINT ignored, and a child inherits an
ignored signal: a ``dlbench run`` a test interrupts would never stop, and a Ray node's workers would ignore
``ray.cancel`` (which interrupts a running task with SIGINT). A *handled* signal is reset to its default by
exec, so installing Python's handler around the ``Popen`` is enough; a ``preexec_fn`` would force fork() in a
process that may run JAX's or TensorFlow's threads.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def sigint_default() -> Iterator[None]:
    """Children started inside get SIGINT's default disposition (Python then raises KeyboardInterrupt in them)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; children of other threads keep what the process has
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
