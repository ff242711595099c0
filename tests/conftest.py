"""Shared helpers: run the real `dlbench` command in a subprocess, with the test plugins importable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest

from dlbench.testing.signals import sigint_default  # noqa: F401  (tests import it from here)

TESTS = Path(__file__).resolve().parent
TEST_PLUGINS = TESTS / "plugins"  # plugin modules loaded by name through DLBENCH_PLUGINS
if str(TEST_PLUGINS) not in sys.path:
    sys.path.insert(0, str(TEST_PLUGINS))


def dlbench_env(plugins: str = "", **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TEST_PLUGINS), env.get("PYTHONPATH", "")]))
    if plugins:
        env["DLBENCH_PLUGINS"] = plugins
    env.update(extra)
    return env


def run_dlbench(*args: str, plugins: str = "", timeout: float = 300, cwd: Optional[Path] = None,
                **extra: str) -> subprocess.CompletedProcess:
    """`dlbench ARGS` as a user runs it: a real process, real plugins."""
    return subprocess.run([sys.executable, "-m", "dlbench.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=dlbench_env(plugins, **extra), cwd=cwd)


def kit_suite(class_name: str, framework: str, plugin_module: str, models: list[str]) -> str:
    """A test module running the conformance kit on one framework of a plugin loaded by module name."""
    return (f"from dlbench.testing import FrameworkConformance\n\n\nclass {class_name}(FrameworkConformance):\n"
            f"    framework = {framework!r}\n    plugin_module = {plugin_module!r}\n    models = {models!r}\n")


def read_records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture
def fake_run(tmp_path: Path):
    """Run dlbench with the fake framework on synthetic data; returns (process, records)."""

    def run(*args: str, timeout: float = 120, **extra: str):
        out = tmp_path / "out"
        process = run_dlbench("run", "-f", "fake", "--out", str(out), "--profile", "smoke", *args,
                              plugins="fake_plugins", timeout=timeout, **extra)
        records = read_records(out) if (out / "results.jsonl").exists() else []
        return process, records

    return run
