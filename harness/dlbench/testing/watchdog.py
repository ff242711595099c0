"""A time limit for one kit test that turns a hang into a failure showing every thread's stack.

The conformance kit runs real frameworks, and a framework can hang (a deadlocked thread pool, a compile
that never ends): silence is the worst outcome, in CI and on a GPU box alike. The kit cannot rely on a
plugin author having ``pytest-timeout``, so it brings its own limit, in two stages:

1. at ``seconds``: SIGALRM in the main thread prints every thread's stack (``faulthandler``) and fails the
   test with ``pytest.fail``. This works whenever the main thread is in Python or in an interruptible wait
   (sleep, a lock, a subprocess), which covers a framework's Python-level waits;
2. at ``seconds + grace``: if the main thread never came back (a native call that does not return),
   ``faulthandler``'s own C watchdog writes every thread's stack to the terminal's stderr and ends the
   process with exit code 1, so the suite fails loudly instead of waiting forever.

Output goes around pytest's capture (to the real stderr), so the stacks are seen even when the process dies.
Where another SIGALRM handler is installed (``pytest-timeout`` with its signal method) or the test does not
run in the main thread, only the second stage is armed.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional

import pytest

_REAL_STDERR: dict[str, Any] = {}


def real_stderr(capture: Any = None) -> Any:
    """A file on the process's original stderr, beside pytest's capture (duplicated once per process)."""
    if "file" not in _REAL_STDERR:
        if capture is not None:
            capture.suspend_global_capture(in_=False)
        try:
            _REAL_STDERR["file"] = os.fdopen(os.dup(2), "w", buffering=1)
        finally:
            if capture is not None:
                capture.resume_global_capture()
    return _REAL_STDERR["file"]


def _alarm_is_free() -> bool:
    return (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None))


@contextmanager
def time_limit(seconds: float, what: str, grace: Optional[float] = None, capture: Any = None) -> Iterator[None]:
    """Fail ``what`` after ``seconds`` with every thread's stack; end the process ``grace`` seconds later if
    the main thread never returns to Python. ``capture`` is pytest's capture manager (None without capture)."""
    if not seconds or seconds <= 0:
        yield
        return
    grace = max(30.0, seconds / 4) if grace is None else grace
    err = real_stderr(capture)
    err.write("")  # opened now, before any hang
    faulthandler.dump_traceback_later(seconds + grace, exit=True, file=err)
    alarm = _alarm_is_free()
    previous: Any = None
    if alarm:
        def expired(signum: int, frame: Any) -> None:
            err.write(f"\n[dlbench kit] {what}: no result after the kit's time limit of {seconds:g} s; "
                      "the stack of every thread:\n")
            err.flush()
            faulthandler.dump_traceback(file=err, all_threads=True)
            pytest.fail(f"{what}: still running after the kit's time limit of {seconds:g} s, a hang or far too slow "
                        "(every thread's stack is printed above, on stderr; raise the suite's time_limit if it is "
                        "only slow)", pytrace=False)

        previous = signal.signal(signal.SIGALRM, expired)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()
        sys.stderr.flush()
