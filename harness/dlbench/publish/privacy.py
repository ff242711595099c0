"""What a published site must not give away: host names, user names and the paths that hold them.

Records carry ``env.hostname`` and error lines that may quote files under a home folder. A published
site keeps none of it unless ``dlbench publish --keep-hostnames``: structured host fields are dropped
by the caller, and every free text (error lines, log names) goes through :meth:`Scrubber.text`.
"""

from __future__ import annotations

import getpass
import re
import socket
from typing import Iterable

# home folders: the user name is the folder right below them
_HOME = re.compile(r"(?:(?<![\w.])(?:/home|/Users|/usr/home)/([^/\s'\"]+)|[A-Za-z]:\\Users\\([^\\\s'\"]+))")
_ROOT_HOME = re.compile(r"(?<![\w.~])/root(?=/|\b)")
# an absolute (or ~/) POSIX path with at least one folder (so "samples/s" and "1/2" are left alone)
_PATH = re.compile(r"(?<![\w.<>])~?/(?:[\w.@+-]+/)+([\w.@+-]*)")
_WIN_PATH = re.compile(r"\b[A-Za-z]:\\(?:[^\\\s'\"]+\\)+([^\\\s'\"]*)")
# names too common to blank out of prose; they identify nobody
_HARMLESS = {"", "root", "user", "admin", "runner", "localhost", "cpu", "gpu"}


def home_users(texts: Iterable[str]) -> set[str]:
    """User names read off home-folder paths in ``texts``."""
    users: set[str] = set()
    for text in texts:
        for match in _HOME.finditer(text):
            users.add(match.group(1) or match.group(2))
    return users


def local_identity() -> set[str]:
    """This machine's own host name (long and short) and the user publishing."""
    names = set()
    try:
        host = socket.gethostname()
        names |= {host, host.split(".")[0]}
    except OSError:
        pass
    try:
        names.add(getpass.getuser())
    except Exception:  # no user name in this environment (containers): nothing to hide
        pass
    return names


class Scrubber:
    """Removes the given host and user names, home folders and folder paths from free text."""

    def __init__(self, names: Iterable[str] = (), keep: bool = False) -> None:
        self.keep = keep
        words = sorted({n for n in names if isinstance(n, str) and n.strip().lower() not in _HARMLESS},
                       key=len, reverse=True)
        self._names = re.compile("|".join(rf"(?<![\w-]){re.escape(w)}(?![\w-])" for w in words), re.I) \
            if words else None

    def text(self, value: object) -> str:
        """``value`` as text that names no host, user or folder (unchanged with keep)."""
        text = "" if value is None else str(value)
        if self.keep or not text:
            return text
        text = _HOME.sub("~", text)
        text = _ROOT_HOME.sub("~", text)
        text = _PATH.sub(lambda m: "…/" + m.group(1), text)
        text = _WIN_PATH.sub(lambda m: "…\\" + m.group(1), text)
        if self._names is not None:
            text = self._names.sub("<redacted>", text)
        return text
