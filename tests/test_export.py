"""`dlbench export --format pytest-benchmark`: files that pytest-benchmark's own tools read."""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dlbench.errors import UsageError
from dlbench.cli.report import add_commands
from dlbench.report.export import to_pytest_benchmark
from dlbench.report.export import stats
from dlbench.testing.samples import make_record, make_records

CASES = [dict(framework="pytorch", model="cnn", task="digits", train=2500),
         dict(framework="keras", variant="fit", model="cnn", task="digits", train=1500),
         dict(framework="pytorch", model="lstm", task="synthetic_text", train=500)]


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="dlbench")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 10, 31])
def test_stats_match_pytest_benchmark_exactly(n):
    pb_stats = pytest.importorskip("pytest_benchmark.stats")
    rng = random.Random(n)
    data = [rng.lognormvariate(0, 0.3) for _ in range(n)]
    reference = pb_stats.Stats()
    for value in data:
        reference.update(value)
    assert stats(data) == reference.as_dict()


def test_document_shape_and_step_times():
    records = make_records(CASES, repeats=2, seed=5)
    records.append(make_record("keras", "cnn_bn", "digits", variant="fit", status="failed", error="boom"))
    document = to_pytest_benchmark(records)
    assert set(document) == {"machine_info", "commit_info", "benchmarks", "datetime", "version"}
    assert len(document["benchmarks"]) == 3  # the failed case has nothing to show
    bench = document["benchmarks"][0]
    assert bench["name"] == "train[pytorch/eager/cnn/digits/cpu/64]" and bench["group"] == "digits/cnn/cpu/bs64"
    assert bench["params"]["framework"] == "pytorch" and bench["param"] == "pytorch/eager/cnn/digits/cpu/64"
    blocks = [b for r in records[:2] for b in r["metrics"]["train_blocks"]]
    assert bench["stats"]["data"] == [64 / b for b in blocks]  # seconds per training step, per block
    assert bench["stats"]["rounds"] == 20 and bench["stats"]["iterations"] == 20  # block_steps
    assert bench["stats"]["median"] == pytest.approx(64 / 2500, rel=0.05)
    assert document["commit_info"]["id"] == "0123456789abcdef"
    json.dumps(document, allow_nan=False)


def test_pytest_benchmark_compare_reads_the_export_and_names_the_cases(tmp_path):
    base, new = tmp_path / "0001_base.json", tmp_path / "0002_new.json"
    assert run_cli("export", "--format", "pytest-benchmark", _jsonl(tmp_path / "a.jsonl", seed=1), "-o",
                   str(base)) == 0
    assert run_cli("export", _jsonl(tmp_path / "b.jsonl", seed=2, slow=0.8), "-o", str(new)) == 0
    tool = shutil.which("pytest-benchmark", path=str(Path(sys.executable).parent)) or shutil.which(
        "py.test-benchmark", path=str(Path(sys.executable).parent))
    command = [tool] if tool else [sys.executable, "-m", "pytest_benchmark.cli"]
    workdir = tmp_path / "cwd"  # pytest-benchmark imports a conftest.py from its working directory
    workdir.mkdir()
    process = subprocess.run([*command, "compare", str(base), str(new), "--group-by", "name", "--sort", "name"],
                             capture_output=True, text=True, timeout=120, cwd=workdir)
    assert process.returncode == 0, process.stderr
    out = process.stdout
    assert "Failed to load" not in out + process.stderr
    for case in ("pytorch/eager/cnn/digits/cpu/64", "keras/fit/cnn/digits/cpu/64",
                 "pytorch/eager/lstm/synthetic_text/cpu/64"):
        assert f"train[{case}]" in out
    assert "0001_base" in out and "0002_new" in out and "Median" in out


def _jsonl(path: Path, seed: int, slow: float = 1.0) -> str:
    cases = [dict(c, train=c["train"] * (slow if c["framework"] == "pytorch" else 1.0)) for c in CASES]
    path.write_text("".join(json.dumps(r) + "\n" for r in make_records(cases, repeats=3, seed=seed)))
    return str(path)


def test_export_usage_errors(tmp_path):
    good = _jsonl(tmp_path / "a.jsonl", seed=1)
    with pytest.raises(UsageError, match="--format csv: unknown export format"):
        run_cli("export", "--format", "csv", good, "-o", str(tmp_path / "x.json"))
    only_failed = tmp_path / "failed.jsonl"
    only_failed.write_text(json.dumps(make_record(status="failed", error="x")) + "\n")
    with pytest.raises(UsageError, match="nothing to export"):
        run_cli("export", str(only_failed), "-o", str(tmp_path / "x.json"))
    with pytest.raises(UsageError, match="is a folder"):
        run_cli("export", good, "-o", str(tmp_path))
