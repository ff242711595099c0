"""Fair by construction: the harness's batch stream, the observed thread count, the fairness profile, and
the kit checks that catch plugins breaking them (tests/plugins/fairness_plugins.py)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import TEST_PLUGINS, dlbench_env, read_records, run_dlbench
from dlbench import BatchStream, DeviceOrder, Setup, check_batch_size, device_memory
from dlbench.plugins.fairness import COMMON_KEYS, REQUIRED_KEYS, fairness_profile, profile_problems
from dlbench.zoo import COMPUTE_PRECISIONS
from dlbench.report.table import comparison_table
from dlbench.stream import batch_order
from dlbench.testing import random_setup, random_task
from dlbench.testing.probes import MappedStream, permuted_rows
from dlbench.measure.thread_meter import ThreadMeter
from dlbench.zoo import get_model


# -- the batch stream ----------------------------------------------------------------------------------------
def test_stream_is_a_seeded_permutation_per_epoch() -> None:
    stream = BatchStream(100, 32, seed=7)
    assert stream.batches_per_epoch == 3  # the last 4 rows of each epoch are dropped
    first, second = stream.epoch(0), stream.epoch(1)
    assert sorted(first) == list(range(100)) and sorted(second) == list(range(100))
    assert not np.array_equal(first, second), "each epoch is reshuffled"
    np.testing.assert_array_equal(stream.batch(4), second[32:64])  # random access, no replay needed
    again, other = BatchStream(100, 32, seed=7), BatchStream(100, 32, seed=8)
    np.testing.assert_array_equal(again.epoch(5), stream.epoch(5))
    assert not np.array_equal(other.epoch(0), first)


def test_stream_ways_of_drawing_agree_and_count() -> None:
    a, b, c = BatchStream(100, 10, 1), BatchStream(100, 10, 1), BatchStream(100, 10, 1)
    drawn = [index.copy() for index in a.batches(25)]
    taken = b.take(25)
    positions = list(c.positions(25))
    assert a.step == b.step == c.step == 25
    np.testing.assert_array_equal(np.stack(drawn), taken)
    assert positions[9:11] == [(0, 9), (1, 0)]
    for (epoch, cursor), rows in zip(positions, taken):
        np.testing.assert_array_equal(c.epoch(epoch)[cursor * 10:(cursor + 1) * 10], rows)


def test_stream_calls_the_hook_after_each_block_of_steps() -> None:
    stream, bodies, seen = BatchStream(64, 4, 0), [], []

    class Hook:
        steps = 3

        def __call__(self) -> None:
            seen.append(len(bodies))  # how many training steps had run when the hook came

    for _ in stream.batches(10, Hook()):
        bodies.append(1)
    assert seen == [3, 6, 9], "after every 3 steps, none for the last 1"


def test_setup_carries_a_stream_by_default() -> None:
    setup = random_setup("cnn", samples=96, batch_size=32, seed=3)
    assert isinstance(setup.stream, BatchStream)
    assert (setup.stream.samples, setup.stream.batch_size, setup.stream.seed) == (96, 32, 3)
    assert setup.data.x_train.dtype == np.float32 and setup.data.x_train.shape == (96, 28, 28, 1)
    text = random_task("text", 40)
    assert text.x_train.dtype == np.int32 and text.x_train.max() < text.vocab_size and (text.x_train[:, 0] == 0).any()


def test_mapped_stream_gathers_the_same_batches_from_moved_rows() -> None:
    data = random_task("image", 64, seed=2)
    moved, where = permuted_rows(data)
    base, mapped = BatchStream(64, 8, 0), MappedStream(BatchStream(64, 8, 0), where)
    for step in (0, 7, 8, 20):
        np.testing.assert_array_equal(moved.x_train[mapped.batch(step)], data.x_train[base.batch(step)])


def test_device_order_puts_each_epoch_on_the_device_once_in_the_streams_order() -> None:
    """The helper plugins slice batches from on the device (torch, JAX): same batches as the stream, one copy
    per epoch, the hook on its cadence."""
    stream, puts, calls = BatchStream(10, 3, seed=1), [], []
    order = DeviceOrder(stream, lambda rows: puts.append(rows) or np.asarray(rows))
    hook = type("Hook", (), {"steps": 2, "__call__": lambda self: calls.append(stream.step)})()
    batches = [permutation[cursor * 3:(cursor + 1) * 3] for permutation, cursor in order.steps(7, hook)]
    reference = BatchStream(10, 3, seed=1)
    assert all(np.array_equal(batch, reference.batch(i)) for i, batch in enumerate(batches))
    assert len(puts) == 3 and stream.step == 7 and calls == [2, 4, 6]  # epochs 0-2 of 3 batches each


def test_check_batch_size_counts_batches_and_names_the_fix() -> None:
    assert check_batch_size(random_setup("mlp", samples=100, batch_size=32)) == 3
    with pytest.raises(ValueError, match="batch size 200 exceeds the 100 training samples: choose --batch-size 100"):
        check_batch_size(random_setup("mlp", samples=100, batch_size=200))
    assert device_memory("cpu", np) is None  # on the CPU peak RSS covers memory: no device counter


def test_batch_order_names_who_chose_the_batches() -> None:
    assert batch_order(30, 30) == "harness" and batch_order(0, 30) == "plugin" and batch_order(10, 30) == "mixed"


# -- the observed thread count -------------------------------------------------------------------------------
def _hash_forever(stop: threading.Event) -> None:
    data = bytes(1 << 21)
    while not stop.is_set():
        hashlib.sha256(data).digest()  # releases the GIL: a real compute thread


def test_thread_meter_counts_threads_that_run_at_once() -> None:
    stop = threading.Event()
    workers = [threading.Thread(target=_hash_forever, args=(stop,), daemon=True) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        meter = ThreadMeter()
        meter.start()
        time.sleep(0.6)
        meter.stop()
    finally:
        stop.set()
    seen = meter.summary(budget=1)
    assert seen["busy"] >= 3 and seen["over_budget"], seen
    assert seen["runnable"] > 2.5, seen  # three runnable threads, however loaded the machine is
    assert seen["concurrency"] > 2.0, seen  # and about three threads' worth of CPU once the load is divided out


def test_thread_meter_does_not_add_up_threads_that_take_turns() -> None:
    """A thread that hands each piece of work to a pool thread and blocks on the result uses one core at a
    time. On a loaded machine each hand-off waits on the run queue while the other thread is still runnable:
    ``runnable`` read 1.5-1.6 for this here (load average 5-8 on 2 cores); ``concurrency`` must not."""
    data = bytes(1 << 21)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(hashlib.sha256, data).result()  # the pool thread exists before the window
        meter = ThreadMeter()
        meter.start()
        end = time.perf_counter() + 0.6
        while time.perf_counter() < end:
            pool.submit(hashlib.sha256, data).result()  # hashing releases the GIL: real work on the pool thread
        meter.stop()
    seen = meter.summary(budget=1)
    assert not seen["over_budget"] and seen["concurrency"] < 1.4, seen


def test_thread_meter_ignores_an_idle_process() -> None:
    meter = ThreadMeter()
    meter.start()
    time.sleep(0.3)
    meter.stop()
    seen = meter.summary(budget=1)
    assert seen["busy"] == 0 and not seen["over_budget"] and seen["runnable"] < 0.3, seen


# -- the fairness profile ------------------------------------------------------------------------------------
def test_fairness_profile_reads_the_recipe_from_the_spec() -> None:
    setup = random_setup("mlp")
    profile = fairness_profile(setup, threads="1 thread", compile="none", sync="none", layout="NHWC",
                               framework_versions={"numpy": np.__version__})
    assert set(REQUIRED_KEYS) <= set(profile) and not profile_problems(profile, setup.spec)
    assert profile["recipe"]["learning_rate"] == setup.spec.recipe.learning_rate
    assert profile["recipe"]["lstm_biases_per_gate"] == 1
    assert set(COMMON_KEYS) <= set(profile) and profile["tf32"] == "not applicable on CPU"
    assert profile["batch_order"].startswith("the harness's stream") and profile["compute_dtype"] == "float32"
    wrong = {**profile, "recipe": {**profile["recipe"], "learning_rate": 0.01}, "precision": "float16"}
    del wrong["sync"]
    problems = "; ".join(profile_problems(wrong, setup.spec))
    assert "no 'sync'" in problems and "learning_rate" in problems and "'precision' is 'float16'" in problems


def test_fairness_profile_accepts_every_precision_the_zoo_allows() -> None:
    """bfloat16 compute (the reduced-precision variants) is a precision the zoo allows: the first GPU run's
    bf16 kit failed because the profile insisted on the recipe's float32."""
    setup = random_setup("mlp")
    facts = dict(threads="1 thread", compile="none", sync="none", layout="NHWC", framework_versions={"numpy": "1"})
    for precision in COMPUTE_PRECISIONS:
        profile = fairness_profile(setup, compute_dtype=precision, precision="autocast", **facts)
        assert profile["precision"] == f"{precision}: autocast" and profile["compute_dtype"] == precision
        assert not profile_problems(profile, setup.spec)
    said = fairness_profile(setup, precision="bfloat16 autocast on forward", **facts)
    assert said["compute_dtype"] == "bfloat16" and not profile_problems(said, setup.spec)
    mixed = {**said, "compute_dtype": "float32"}
    assert "'compute_dtype' is 'float32' but 'precision' says 'bfloat16'" in profile_problems(mixed, setup.spec)


# -- through the real worker and the table ---------------------------------------------------------------------
def test_records_and_table_flag_own_order_and_extra_threads(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = run_dlbench("run", "-f", "numpyfair", "-m", "softmax", "-t", "digits", "--profile", "smoke",
                       "--threads", "1", "--variant", "stream", "--variant", "own-order", "--variant",
                       "extra-threads", "--ci-target", "0.01%", "--max-timing", "0.3",  # long enough to count
                       "--out", str(out), plugins="fairness_plugins", timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    records = {r["variant"]: r for r in read_records(out)}
    assert {v: r["status"] for v, r in records.items()} == dict.fromkeys(("stream", "own-order", "extra-threads"), "ok")
    assert records["stream"]["batch_order"] == "harness" and records["own-order"]["batch_order"] == "plugin"
    assert records["stream"]["metrics"]["over_thread_budget"] is False  # judged, and within the budget
    spun = records["extra-threads"]["metrics"]
    assert spun["over_thread_budget"] and spun["busy_threads"] >= 3, spun["threads_observed"]
    table = comparison_table(read_records(out))
    lines = table.splitlines()
    header = [cell.strip() for cell in lines[0].split("|")]
    row = [cell.strip() for cell in next(line for line in lines if "softmax" in line).split("|")]
    cell = dict(zip(header, row))
    assert cell["numpyfair/own-order train/s"].startswith("^"), cell
    assert cell["numpyfair/extra-threads train/s"].startswith("!"), cell
    assert cell["numpyfair/stream train/s"][0].isdigit() or cell["numpyfair/stream train/s"].startswith("~"), cell
    assert "^ own order" in table and "! over budget" in table


# -- the kit on plugins that break the rules ---------------------------------------------------------------------
KIT_MODULE = textwrap.dedent("""
    import os
    from dlbench.testing import FrameworkConformance

    class TestFair(FrameworkConformance):
        framework = "numpyfair"
        plugin_module = "fairness_plugins"
        models = ["softmax"]
        variant = os.environ["FAIR_VARIANT"]
""")


def _kit(tmp_path: Path, variant: str, select: str) -> subprocess.CompletedProcess:
    test_file = tmp_path / "test_kit_fair.py"
    test_file.write_text(KIT_MODULE)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(test_file),
                           "-k", select], capture_output=True, text=True, timeout=240, cwd=tmp_path,
                          env=dlbench_env(FAIR_VARIANT=variant))


def test_kit_passes_a_plugin_on_the_stream_and_skips_the_untested_entry_point(tmp_path: Path) -> None:
    done = _kit(tmp_path, "stream", "harness_batches or fairness_profile or excluded or thread_budget or entry_point")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "5 passed, 1 skipped" in done.stdout, done.stdout[-2000:]
    assert "not through an entry point" in done.stdout  # skipped with its reason, never passed untested


@pytest.mark.parametrize("variant, select, message", [
    ("own-order", "harness_batches", "drew 0 batches from setup.stream"),
    ("extra-threads", "thread_budget and 1", "threads were running or waiting for a CPU"),
    ("leaky-excluded", "excluded", "second_bias changed"),
])
def test_kit_catches_a_plugin_that_breaks_fairness(tmp_path: Path, variant: str, select: str, message: str) -> None:
    done = _kit(tmp_path, variant, select)
    assert done.returncode == 1 and "failed" in done.stdout, done.stdout[-3000:]
    assert message in done.stdout, done.stdout[-3000:]


def test_kit_names_only_top_level_packages_of_an_early_import(tmp_path: Path) -> None:
    test_file = tmp_path / "test_eager.py"
    test_file.write_text(textwrap.dedent("""
        from dlbench.testing import FrameworkConformance

        class TestEager(FrameworkConformance):
            framework = "eagerimport"
            plugin_module = "plugin_imports_framework"
            models = ["softmax"]
    """))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file), "-k",
                           "cheap_questions"], capture_output=True, text=True, timeout=240, cwd=tmp_path,
                          env=dlbench_env())
    assert done.returncode == 1, done.stdout[-2000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("E ") and "imported" in line)
    assert "jax" in line and "jax._src" not in line and len(line) < 400, line


def test_a_plugin_installed_and_named_in_dlbench_plugins_is_registered_twice() -> None:
    done = run_dlbench("list", "frameworks", plugins="dlbench_jax", timeout=120)
    output = done.stdout + done.stderr
    assert "registered twice" in output and "remove dlbench_jax from $DLBENCH_PLUGINS" in output, output
    assert "already registered" not in output and "<module" not in output, output


def test_random_setup_runs_a_plugin_for_its_author() -> None:
    sys.path.insert(0, str(TEST_PLUGINS))
    from fairness_plugins import NumpyFairFramework

    setup = random_setup("softmax", variant="stream", samples=64, batch_size=16)
    session = NumpyFairFramework().prepare(setup)
    session.train(5)
    assert setup.stream.step == 5 and np.isfinite(session.evaluate(setup.data.x_val, setup.data.y_val)[0])
    assert isinstance(setup, Setup) and get_model("softmax") is setup.spec
