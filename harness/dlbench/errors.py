"""Every error dlbench raises on purpose, under one base: its message is the one line a user sees.

The CLI turns a ``UsageError`` into that line and exit code 2; a ``CaseFailed`` becomes a failed
record; anything else is a dlbench bug and keeps its traceback (in the worker's log).
"""

from __future__ import annotations

from typing import Iterable


class DlbenchError(Exception):
    """Base of dlbench's own errors; ``str()`` is a complete sentence naming the input and the fix."""


class UsageError(DlbenchError):
    """A bad argument, name or file given by the user; the message names the input and the fix."""


class UnknownName(UsageError, LookupError):
    """A name that is not one of the known ones (framework, model, task, profile, variant, ...).

    A ``LookupError`` so that ``except LookupError`` keeps working, but not a ``KeyError``, whose
    ``str()`` wraps the message in quotes.
    """

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind, self.name, self.known = kind, name, tuple(known)
        choices = ", ".join(self.known) or "none installed"
        super().__init__(f"unknown {kind} {name!r}; choose from {choices}")


class DataError(DlbenchError):
    """Missing, truncated, corrupt or wrong-format data; the message names the file and the fix."""


class ResultsError(DlbenchError):
    """A results file that cannot be read; the message names the file and line."""


class FrameworkUnavailable(DlbenchError):
    """Raised by ``Framework.version()`` when the framework is not installed; the message says how to get it."""


class CaseFailed(DlbenchError):
    """One case cannot be measured; the message is the record's one-line error."""


class CaseSkipped(CaseFailed):
    """The plugin says this case cannot run here (``FrameworkUnavailable`` from ``prepare``, e.g. a variant the
    hardware has no kernel for): the record is 'skipped' with the plugin's reason, not 'failed'."""


class CaseUnsupported(CaseSkipped):
    """The plugin cannot build the case's model (its builder names a layer kind it does not know): the case is
    recorded as skipped with that reason, never as a failure, and the run goes on."""


class PluginFailed(CaseFailed):
    """A call into a plugin raised: the case fails naming the plugin and the call, never the harness."""

    def __init__(self, plugin: str, call: str, error: BaseException) -> None:
        self.plugin, self.call = plugin, call
        text = str(error).strip()
        first = text.splitlines()[0] if text else ""
        super().__init__(f"plugin {plugin} failed in {call}: {type(error).__name__}: {first}")
