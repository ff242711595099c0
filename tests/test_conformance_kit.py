"""The conformance kit catches what it claims to: a plugin with known faults fails exactly those tests.

The faulty plugin extends the numpy example of docs/writing-a-plugin.md (which passes the kit, see
test_third_party_plugin.py) and is loaded the way an author develops one: ``plugin_module`` through
DLBENCH_PLUGINS, nothing installed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time

import pytest

from dlbench.testing.conformance import _gpu_present

from conftest import kit_suite
from test_third_party_plugin import guide_files

BROKEN = '''
import time

import dlbench_numpyfw as example
from dlbench.hookspecs import hookimpl


class Session(example.NumpySession):
    def param_count(self):
        return super().param_count() + 1  # parity broken

    def train(self, steps, hook=None):
        began = time.perf_counter()  # times itself
        super().train(steps)
        for _ in range(steps // hook.steps + 1 if hook else 0):  # one hook call too many, all at the end
            hook()

    def predict(self, staged):
        return super().predict(staged)[0]  # drops the batch dimension

    def describe(self):  # does not say how threads were set (the rest of the fairness profile is there)
        return {key: value for key, value in super().describe().items() if "thread" not in key}


class Framework(example.NumpyFramework):
    name = "brokenfw"

    def devices(self):
        return ["cpu", "gpu"]  # claims a GPU

    def prepare(self, setup):
        return Session(setup)


@hookimpl
def dlbench_register_frameworks(register):
    register(Framework())
'''

SUITE = kit_suite("TestBroken", "brokenfw", "broken_numpyfw", ["softmax"])


def _kit_on(tmp_path, plugin: str, plugin_source: str, suite_source: str, *args: str, timeout: float = 600):
    """pytest on ``suite_source`` against the guide's numpy plugin extended by ``plugin_source`` (module ``plugin``),
    loaded the way an author develops one: through DLBENCH_PLUGINS, nothing installed."""
    (tmp_path / "dlbench_numpyfw.py").write_text(guide_files()["dlbench_numpyfw.py"])
    (tmp_path / f"{plugin}.py").write_text(textwrap.dedent(plugin_source))
    (tmp_path / f"test_{plugin}.py").write_text(textwrap.dedent(suite_source))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    env.pop("DLBENCH_PLUGINS", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfs", "-p", "no:cacheprovider",
                           f"test_{plugin}.py", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_kit_fails_a_broken_plugin_on_exactly_its_faults(tmp_path):
    done = _kit_on(tmp_path, "broken_numpyfw", BROKEN, SUITE)
    failed = set(re.findall(r"^FAILED test_broken_numpyfw\.py::TestBroken::(\S+)", done.stdout, flags=re.M))
    expected = {"test_param_count_equals_the_spec[softmax]", "test_hook_is_called_every_block[softmax]",
                "test_predict_keeps_the_batch_dimension[softmax]", "test_never_reads_the_clock[softmax]",
                "test_describe_says_how_threads_were_set", "test_runs_in_the_real_worker",
                # the hook fault: the stream probe's train() calls the hook once too often
                "test_trains_on_the_harness_batches",
                # the describe fault: "threads" is a required key of the fairness profile
                "test_describe_has_the_fairness_profile",
                # the parity fault: the worker refuses the run, so no thread can be counted
                "test_thread_budget_is_kept[1]", "test_thread_budget_is_kept[2]"}
    if not _gpu_present():
        expected.add("test_devices_are_really_here")
    assert failed == expected, done.stdout[-6000:]
    assert "broken_numpyfw:" in done.stdout and "called time.perf_counter()" in done.stdout
    assert "parity: plugin broken_numpyfw built softmax with 7,851 trainable parameters" in done.stdout
    # the stream, fairness and thread-budget tests fail for their planted fault and for nothing else
    probe = re.search(r"softmax: hook called (\d+) times in train\(\d+\), expected (\d+)", done.stdout)
    assert probe and int(probe[1]) == int(probe[2]) + 1, done.stdout[-6000:]  # the stream itself was followed
    assert "describe() of brokenfw/default: no 'threads'. Required keys" in done.stdout, done.stdout[-6000:]
    for budget in (1, 2):
        assert (f"the run with --threads {budget} did not end ok: parity: plugin broken_numpyfw built softmax with "
                "7,851 trainable parameters") in done.stdout, done.stdout[-6000:]


PLANTED = '''
import time

import ml_dtypes

import dlbench_numpyfw as example
from dlbench import FrameworkUnavailable
from dlbench.hookspecs import hookimpl


class Bf16OutputSession(example.NumpySession):
    def predict(self, staged):
        return super().predict(staged).astype(ml_dtypes.bfloat16)  # as amp-bf16's logits were on the first GPU run


class HangingSession(example.NumpySession):
    def train(self, steps, hook=None):
        time.sleep(3600)  # a deadlock, as far as the kit can tell


class StubbornSession(example.NumpySession):
    def train(self, steps, hook=None):
        while True:  # swallows the kit's failure, as a native call that never returns would never see it
            try:
                time.sleep(3600)
            except BaseException:
                pass


class Framework(example.NumpyFramework):
    name = "plantedfw"

    def variants(self):
        return ["bf16-output", "hang", "stubborn", "refused"]

    def prepare(self, setup):
        if setup.variant == "refused":  # as amp-bf16 on a CPU whose oneDNN has no bfloat16 LSTM
            raise FrameworkUnavailable("no kernel for this case on this CPU (planted)")
        return {"bf16-output": Bf16OutputSession, "hang": HangingSession,
                "stubborn": StubbornSession}[setup.variant](setup)


@hookimpl
def dlbench_register_frameworks(register):
    register(Framework())
'''

PLANTED_SUITES = '''
from dlbench.testing import FrameworkConformance


class Planted(FrameworkConformance):
    framework = "plantedfw"
    plugin_module = "planted_numpyfw"
    models = ["softmax"]


class TestBf16Output(Planted):
    variant = "bf16-output"


class TestHang(Planted):
    variant = "hang"
    time_limit = 3


class TestRefused(Planted):
    variant = "refused"


class TestStubborn(Planted):
    variant = "stubborn"
    time_limit, time_limit_grace = 2, 2
'''


def _planted_kit(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return _kit_on(tmp_path, "planted_numpyfw", PLANTED, PLANTED_SUITES, *args, timeout=120)


def test_the_kit_fails_a_bfloat16_prediction_and_a_hang_with_the_stack_of_every_thread(tmp_path):
    """And skips, with the plugin's reason, a case whose prepare() says it cannot run here."""
    pytest.importorskip("ml_dtypes")
    started = time.monotonic()
    done = _planted_kit(tmp_path, "-k", "(TestBf16Output and (float32_logits or batch_dimension))"
                        " or (TestHang and loss_goes_down) or (TestRefused and loss_goes_down)")
    failed = set(re.findall(r"^FAILED test_planted_numpyfw\.py::(\S+)", done.stdout, flags=re.M))
    assert failed == {"TestBf16Output::test_predict_returns_float32_logits[softmax]",
                      "TestHang::test_loss_goes_down[softmax]"}, done.stdout[-4000:]
    assert "1 passed" in done.stdout  # the bfloat16 prediction is still read by the other tests
    assert "1 skipped" in done.stdout and ("plantedfw/refused cannot run softmax on cpu here: no kernel for this case "
                                           "on this CPU (planted)") in done.stdout, done.stdout[-3000:]
    assert "predict() of plantedfw/bf16-output returned bfloat16 logits: return them in float32" in done.stdout
    assert "still running after the kit's time limit of 3 s" in done.stdout, done.stdout[-4000:]
    # the stacks of every thread, on the real stderr, naming the hanging call
    assert "the stack of every thread" in done.stderr and "in train" in done.stderr, done.stderr[-3000:]
    assert time.monotonic() - started < 60


def test_a_hang_that_never_returns_to_python_ends_the_process_with_every_stack(tmp_path):
    started = time.monotonic()
    done = _planted_kit(tmp_path, "-k", "TestStubborn and loss_goes_down")
    assert done.returncode != 0 and time.monotonic() - started < 60
    assert "Timeout (0:00:04)!" in done.stderr and "in train" in done.stderr, done.stderr[-3000:]
