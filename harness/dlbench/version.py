"""Which dlbench measured a record: the version (one source, pyproject.toml's) and the source commit."""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path


def git_commit() -> str:
    """The dlbench source commit (with '+dirty' when the tree has changes), or '' outside a checkout."""
    source = Path(__file__).resolve().parents[2]  # harness/dlbench/version.py -> the checkout
    if not (source / ".git").exists() or not shutil.which("git"):
        return ""
    try:
        head = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return head + ("+dirty" if dirty else "")


def _version() -> str:
    """One version string: the installed distribution's metadata, else pyproject.toml of this checkout."""
    try:
        return metadata.version("dlbench")
    except metadata.PackageNotFoundError:  # PYTHONPATH=harness on a machine where nothing is installed
        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        try:
            found = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.MULTILINE)
        except OSError:
            found = None
        return f"{found.group(1)}+checkout" if found else "0+unknown"


__version__ = _version()
