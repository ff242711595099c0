"""The distribution as built, and the checkout as used without installing it.

A subpackage that exists in the tree but not in the wheel works in the editable install and vanishes for
every user: the wheel is built here from a copy of the tracked files and compared with the tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE_ROOTS = {"harness": "dlbench", "plugins/pytorch": "dlbench_pytorch", "plugins/keras": "dlbench_keras"}


def tracked_copy(destination: Path) -> Path:
    """The files git tracks (and new ones it does not ignore), copied: a clean tree like a fresh clone's."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, text=True, check=True).stdout.split("\n")
    for relative in filter(None, listed):
        source = ROOT / relative
        if source.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def packages_in_tree() -> set[str]:
    found = set()
    for root, top in SOURCE_ROOTS.items():
        for init in (ROOT / root / top).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(ROOT / root).parts))
    return found


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_the_wheel_holds_every_subpackage_and_the_entry_points(tmp_path):
    source = tracked_copy(tmp_path / "src")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("dlbench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    in_wheel = {name.rsplit("/", 1)[0].replace("/", ".") for name in names if name.endswith("/__init__.py")}
    expected = packages_in_tree()
    assert {"dlbench", "dlbench.data", "dlbench.report", "dlbench.testing", "dlbench_pytorch",
            "dlbench_keras"} <= expected
    assert expected <= in_wheel, f"missing from the wheel: {sorted(expected - in_wheel)}"
    modules_in_tree = {str(p.relative_to(ROOT / root)) for root, top in SOURCE_ROOTS.items()
                       for p in (ROOT / root / top).rglob("*.py")}
    assert modules_in_tree <= set(names), f"modules missing: {sorted(modules_in_tree - set(names))}"
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "pytorch = dlbench_pytorch" in text and "keras = dlbench_keras" in text
    assert "dlbench = dlbench.cli:main" in text


def test_a_checkout_imports_with_only_pythonpath(tmp_path):
    """``PYTHONPATH=harness:plugins/pytorch`` on a box where nothing can be installed (a GPU machine)."""
    source = tracked_copy(tmp_path / "checkout")
    site_packages = sysconfig.get_paths()["purelib"]
    # -S: no site processing, so the editable install's .pth hook is not seen; the frameworks still import
    # from site-packages, given as a plain path like a system-wide install.
    env = {"PYTHONPATH": f"{source / 'harness'}:{source / 'plugins' / 'pytorch'}:{site_packages}",
           "PATH": "/usr/bin:/bin"}
    code = ("import dlbench, dlbench_pytorch; print(dlbench.__file__); print(dlbench_pytorch.__file__); "
            "print(dlbench.__version__); print(callable(dlbench.hookimpl))")
    done = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    core, plugin, version, hookimpl = done.stdout.split("\n")[:4]
    assert core.startswith(str(source / "harness" / "dlbench")), core
    assert plugin.startswith(str(source / "plugins" / "pytorch" / "dlbench_pytorch")), plugin
    assert version and version != "0+unknown" and hookimpl == "True"


def test_the_version_has_one_source():
    """pyproject.toml holds the version; the package reads it from the installed distribution's metadata."""
    import re
    from importlib import metadata

    import dlbench

    declared = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert dlbench.__version__ == metadata.version("dlbench") == declared
    assert not re.search(r"__version__ = ['\"]", (ROOT / "harness" / "dlbench" / "__init__.py").read_text())


def test_plugins_and_the_guide_import_only_the_public_front():
    """The built-in plugins and the guide use ``from dlbench import ...``; everything else is internal."""
    import dlbench

    offenders = []
    texts = {p: p.read_text() for p in (ROOT / "plugins").rglob("*.py")}
    texts[ROOT / "docs" / "writing-a-plugin.md"] = (ROOT / "docs" / "writing-a-plugin.md").read_text()
    for path, text in texts.items():
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith(("from dlbench.", "import dlbench.")):
                offenders.append(f"{path.relative_to(ROOT)}: {stripped}")
            elif stripped.startswith("from dlbench import "):
                names = [n.strip(" ()") for n in stripped[len("from dlbench import "):].split(",")]
                missing = [n for n in names if n and not hasattr(dlbench, n)]
                assert not missing, f"{path}: {missing} not in dlbench's public front"
    assert not offenders, "\n".join(offenders)
