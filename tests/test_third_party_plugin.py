"""A third-party plugin, end to end: the files of docs/writing-a-plugin.md, pip-installed into this venv.

The package is built from the guide's own code blocks, so the guide cannot drift from what works:
DLBENCH_PLUGINS development mode, ``pip install``, ``dlbench list`` naming the distribution and its
version, ``dlbench run`` planning only the supported model and benchmarking it, the conformance kit
passing, and ``pip uninstall`` taking it away again.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from conftest import run_dlbench

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "writing-a-plugin.md"
DIST, VERSION, NAME, MODULE = "dlbench-numpyfw", "0.1.0", "numpyfw", "dlbench_numpyfw"


def _offline_build_problem() -> str:
    """Why this venv cannot build a wheel without downloading build tools ('' when it can)."""
    try:
        version = tuple(int(part) for part in metadata.version("setuptools").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return "setuptools is not installed"
    if version < (70, 1) and importlib.util.find_spec("wheel") is None:  # bdist_wheel moved into setuptools 70.1
        return f"setuptools {'.'.join(map(str, version))} needs the wheel package to build"
    return ""


def guide_files() -> dict[str, str]:
    """``<!-- file: PATH -->`` followed by a fenced block, in the guide: PATH -> contents."""
    blocks = re.findall(r"<!-- file: (\S+) -->\s*```\w*\n(.*?)```", GUIDE.read_text(), flags=re.S)
    return dict(blocks)


def pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=300)


def framework_row(listing: str) -> str:
    return next((line for line in listing.splitlines() if line.split()[:1] == [NAME]), "")


def test_the_guide_has_the_three_files():
    assert set(guide_files()) == {"pyproject.toml", f"{MODULE}.py", "tests/test_conformance.py"}


@pytest.mark.skipif(bool(_offline_build_problem()), reason=f"cannot build offline: {_offline_build_problem()}")
def test_plugin_from_the_guide_installs_lists_runs_passes_the_kit_and_uninstalls(tmp_path):
    assert pip("show", DIST).returncode != 0, f"{DIST} is already installed; pip uninstall -y {DIST}"
    project = tmp_path / DIST
    for relative, text in guide_files().items():
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(text)

    # Development mode: loaded by module name, not installed.
    listing = run_dlbench("list", "frameworks", PYTHONPATH=str(project), DLBENCH_PLUGINS=MODULE, timeout=120)
    assert listing.returncode == 0, listing.stderr
    assert "$DLBENCH_PLUGINS" in framework_row(listing.stdout), listing.stdout

    installed = pip("install", "--no-deps", "--no-build-isolation", "-q", str(project))
    assert installed.returncode == 0, installed.stderr
    try:
        listing = run_dlbench("list", "frameworks", timeout=120)
        row = framework_row(listing.stdout)
        assert f"{NAME} ({DIST} {VERSION})" in row and row.rstrip().endswith("ok"), listing.stdout

        out = tmp_path / "run"
        run = run_dlbench("run", "-f", NAME, "-m", "softmax", "-m", "mlp", "-t", "digits", "--profile", "smoke",
                          "--threads", "1", "--out", str(out), timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"note: {NAME} does not implement mlp" in run.stdout + run.stderr
        records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        assert [(r["model"], r["status"]) for r in records] == [("softmax", "ok")], records
        record = records[0]
        assert record["plugin"] == {"name": NAME, "dist": DIST, "dist_version": VERSION}
        assert record["metrics"]["params"] == 7850 and record["metrics"]["accuracy"] > 0.5
        assert record["fairness"]["threads"].startswith("threadpoolctl.threadpool_limits(1)")

        kit = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/"],
                             cwd=project, capture_output=True, text=True, timeout=600)
        assert kit.returncode == 0 and " passed" in kit.stdout, kit.stdout[-4000:] + kit.stderr[-2000:]
    finally:
        removed = pip("uninstall", "-y", DIST)
    assert removed.returncode == 0, removed.stderr
    listing = run_dlbench("list", "frameworks", timeout=120)
    assert listing.returncode == 0 and not framework_row(listing.stdout), listing.stdout
