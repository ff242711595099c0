"""The command line: fast start-up without frameworks, one-line errors with exit code 2."""

import subprocess
import sys

import pytest

from conftest import run_dlbench


def test_import_and_help_and_list_do_not_import_frameworks():
    probe = ("import sys, time; t = time.perf_counter(); import dlbench, dlbench.cli; "
             "elapsed = time.perf_counter() - t; from dlbench.cli import main\n"
             "for argv in (['--help'], ['run', '--help'], ['list']):\n"
             "    try: main(argv)\n"
             "    except SystemExit: pass\n"
             "heavy = sorted(m for m in ('torch', 'tensorflow', 'keras', 'jax') if m in sys.modules)\n"
             "print('HEAVY', heavy, 'IMPORT', elapsed)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip().splitlines()[-1]
    assert line.startswith("HEAVY [] "), line
    assert float(line.split()[-1]) < 1.0


@pytest.mark.parametrize("args, says", [
    (["run"], "say what to run"),
    (["run", "-f", "nope"], "unknown framework 'nope'; choose from"),
    (["run", "-m", "resnet"], "unknown model 'resnet'; choose from softmax"),
    (["run", "-t", "cifar"], "unknown task 'cifar'; choose from fashion_mnist"),
    (["run", "-m", "cnn", "--device", "tpu"], "unknown device 'tpu'"),
    (["run", "--all", "--batch-size", "0"], "--batch-size must be between 1 and 65536, got 0"),
    (["run", "--all", "--repeat", "-1"], "--repeat must be between 1 and 1000, got -1"),
    (["run", "--all", "--threads", "10000"], "--threads must be between 1 and"),
    (["run", "--all", "--batch-size", ""], "--batch-size must be a whole number"),
    (["run", "--all", "--target", "nan"], "--target must be between 0 and 1"),
    (["run", "-m", "lstm", "-t", "fashion_mnist"], "no model fits the tasks: lstm (text)"),
    (["run", "-f", "fake", "--variant", "turbo"], "unknown variant 'turbo'"),
    (["run", "-m", "cnn", "--data-dir", "/no/such/dir"], "--data-dir /no/such/dir: no such folder"),
    (["run", "--resume", "/no/such/run"], "no readable run.json"),
    (["table", "/no/such/results.jsonl"], "/no/such/results.jsonl"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_user_mistakes_get_one_line_and_exit_code_2(args, says):
    process = run_dlbench(*args, plugins="fake_plugins")
    assert process.returncode == 2, process.stderr
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], process.stderr
    assert lines[0].startswith("dlbench: error: ")


def test_list_shows_builtin_plugins_with_versions_and_devices_and_a_broken_one(tmp_path):
    process = run_dlbench("list", plugins="plugin_fails_on_import,fake_plugins")
    assert process.returncode == 0, process.stderr
    text = process.stdout
    for name in ("pytorch", "keras", "fake"):
        assert name in text
    assert "2.13.0" in text and "cpu" in text
    assert "plugin_fails_on_import" in text and "import failed: ImportError: needs the frobnicator" in text
    assert "softmax" in text and "fashion_mnist" in text
