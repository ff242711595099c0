"""Errors the CLI turns into one line and exit code 2 (user mistakes, never tracebacks)."""


class UsageError(Exception):
    """A bad argument, name or file given by the user; the message names the input and the fix."""
