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


def test_the_kit_fails_a_broken_plugin_on_exactly_its_faults(tmp_path):
    (tmp_path / "dlbench_numpyfw.py").write_text(guide_files()["dlbench_numpyfw.py"])
    (tmp_path / "broken_numpyfw.py").write_text(textwrap.dedent(BROKEN))
    (tmp_path / "test_broken.py").write_text(SUITE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    env.pop("DLBENCH_PLUGINS", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "test_broken.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    failed = set(re.findall(r"^FAILED test_broken\.py::TestBroken::(\S+)", done.stdout, flags=re.M))
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
