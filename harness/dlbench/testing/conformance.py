"""The conformance kit: the tests every framework plugin must pass, ready to subclass.

In the plugin's own test folder::

    from dlbench.testing import FrameworkConformance

    class TestMyFramework(FrameworkConformance):
        framework = "myfw"                  # the name the plugin registers
        distribution = "dlbench-myfw"       # optional: the distribution whose entry point registers it

and run ``pytest``. The tests use the real framework on small real data (scikit-learn's digits, the
generated ``synthetic_text``), on one thread, and end with one case through the real ``dlbench run``.
Everything is observable through the public contract only: the kit knows nothing about the framework.
"""

from __future__ import annotations

import dataclasses
import glob
import importlib
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional, Sequence

import numpy as np
import pytest

from dlbench.contract import Setup, TaskData
from dlbench.errors import FrameworkUnavailable
from dlbench.plugins.registry import ENTRY_POINT_GROUP, EXTRA_ENV, load_registry
from dlbench.running.rundir import RunDir
from dlbench.plugins.fairness import REQUIRED_KEYS, profile_problems
from dlbench.plugins.guarded import unknown_layer_kind
from dlbench.stream import BatchStream
from dlbench.testing.probes import (CountingHook, MappedStream, batch_dimension, clock_guard, dtype_name, permuted_rows,
                                    to_numpy)
from dlbench.testing.watchdog import time_limit
from dlbench.zoo import MODELS, Dropout, ModelSpec, SpatialDropout1D, get_model

DEFAULT_MODELS = ("softmax", "mlp", "cnn", "lstm")  # one of each family the harness times; unsupported ones skip
FRAMEWORK_MODULES = ("torch", "tensorflow", "keras", "jax", "jaxlib", "flax", "optax", "mxnet", "paddle",
                     "mindspore", "cupy", "tinygrad", "mlx", "oneflow")
TRAIN_SAMPLES = {"image": 1294, "text": 2048}  # all of digits' training split; a slice of synthetic_text
PROBE = 256  # samples of the fixed batch that evaluate() sees before and after training
HOOK_PROBE = 64  # samples evaluated inside the hook, as the harness validates for time-to-accuracy
# The fixed-batch loss must fall by at least this fraction in 30 steps of 32, per model: about a third of
# the smallest fall measured with torch and JAX over seeds 0-2 (cnn_lstm falls 1.4-4%, softmax 43-46%).
LOSS_DROP = {"softmax": 0.15, "mlp": 0.25, "mlp64": 0.2, "cnn": 0.25, "cnn_dropout": 0.25, "cnn3": 0.15,
             "cnn_bn": 0.04, "lstm": 0.01, "cnn_lstm": 0.004}
LOSS_DROP_OTHER = 0.004  # a model the zoo gains later, until it is calibrated
SHORT_STEPS = 3  # steps a model outside the selection trains, where it has a layer kind the selection's do not
RAISED_DROPOUT = 0.9  # the kit rebuilds dropout models with this rate to see whether dropout is on


def _same(a: float, b: float, rel: float = 1e-5) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-7)


class Kit:
    """What the tests of one conformance class share: the registry, small data, and cached training runs."""

    def __init__(self, suite: type["FrameworkConformance"]) -> None:
        if not suite.framework:
            raise pytest.UsageError(f"{suite.__name__}: set the class attribute framework = 'NAME'")
        self.suite = suite
        self.name = suite.framework
        self.registry = load_registry()
        self.info = self.registry.owner.get(self.name)
        self._cache: dict[tuple[str, str], Any] = {}
        self._data: dict[str, TaskData] = {}

    # -- the framework and its sessions -----------------------------------------------------------------
    @property
    def framework(self) -> Any:
        broken = "; ".join(f"plugin {p.name}: {p.error}" for p in self.registry.plugins if p.error)
        if self.name not in self.registry.frameworks:
            pytest.fail(f"no framework named {self.name!r} is registered (found: "
                        f"{', '.join(self.registry.frameworks) or 'none'}){'; ' + broken if broken else ''}")
        return self.registry.frameworks[self.name]

    @property
    def variant(self) -> str:
        return self.suite.variant or list(self.framework.variants())[0]

    @property
    def packages(self) -> set[str]:
        """The plugin's own top-level packages (where its framework and session classes live)."""
        return {type(self.framework).__module__.split(".")[0]}

    @property
    def selection(self) -> list[str]:
        """The models the per-model tests train."""
        return list(self.suite.models or DEFAULT_MODELS)

    def supported(self, modality: Optional[str] = None) -> list[str]:
        return [m for m in self.selection if self.framework.supports(MODELS[m])
                and modality in (None, MODELS[m].modality)]

    def spec(self, model: str, listed: bool = True) -> ModelSpec:
        """The zoo spec; skips an unsupported model, fails one the suite's ``models`` lists (``listed``)."""
        spec = get_model(model)
        if not self.framework.supports(spec):
            if listed and self.suite.models is not None:
                pytest.fail(f"{self.name} does not support {model}, which {self.suite.__name__}.models lists")
            pytest.skip(f"{self.name} does not support {model} (supports() is False)")
        return spec

    def data(self, modality: str) -> TaskData:
        if modality not in self._data:
            from dlbench.data import load_task

            full = load_task("digits" if modality == "image" else "synthetic_text")
            n = TRAIN_SAMPLES[modality]
            self._data[modality] = dataclasses.replace(
                full, x_train=full.x_train[:n], y_train=full.y_train[:n], x_val=full.x_val[:PROBE],
                y_val=full.y_val[:PROBE], x_test=full.x_test[:PROBE], y_test=full.y_test[:PROBE])
        return self._data[modality]

    def prepare(self, spec: ModelSpec, seed: Optional[int] = None, data: Optional[TaskData] = None,
                stream: Optional[BatchStream] = None) -> Any:
        """A session; a build error naming a layer kind of the model skips (fails, for a model ``models`` lists)."""
        suite = self.suite
        setup = Setup(spec=spec, data=data or self.data(spec.modality), device=suite.device, variant=self.variant,
                      seed=suite.seed if seed is None else seed, threads=suite.threads, batch_size=suite.batch_size,
                      stream=stream)
        self.last_setup = setup
        try:
            return self.framework.prepare(setup)
        except FrameworkUnavailable as exc:  # the plugin's "cannot run this case here", with its reason
            pytest.skip(f"{self.name}/{self.variant} cannot run {spec.name} on {suite.device} here: {exc}")
        except Exception as exc:  # noqa: BLE001 - only a build error naming an unknown layer kind is ours
            kind = unknown_layer_kind(spec, exc)
            if kind is None:
                raise
            why = f"{self.name} does not build {spec.name} yet: layer kind {kind!r} ({type(exc).__name__}: {exc})"
            if self.suite.models is not None and spec.name in self.suite.models:
                pytest.fail(f"{why}, and {self.suite.__name__}.models lists it")
            pytest.skip(why)

    @property
    def trained_kinds(self) -> frozenset[str]:
        """Layer kinds the per-model tests train (those of the supported models in the selection)."""
        return frozenset(kind for model in self.supported() for kind in MODELS[model].layer_kinds())

    def built(self, model: str) -> dict[str, Any]:
        """A model outside the selection, checked cheaply: built, counted and evaluated untrained (its session kept
        for ``short_trained``)."""
        spec = self.spec(model, listed=False)

        def run() -> dict[str, Any]:
            session = self.prepare(spec)
            x, y = self.probe(spec)
            return {"params": session.param_count(), "initial": session.evaluate(x, y), "session": session}

        return self.cached("built", model, run)

    def short_trained(self, model: str) -> float:
        """The loss on the probe after ``SHORT_STEPS`` steps of the ``built`` session."""
        seen = self.built(model)

        def run() -> float:
            session, (x, y) = seen["session"], self.probe(get_model(model))
            session.train(SHORT_STEPS)
            session.sync()
            return session.evaluate(x, y)[0]

        return self.cached("short", model, run)

    def checked(self, model: str) -> dict[str, Any]:
        """What the tests run on every zoo model read: the full run for a selected model, else ``built``."""
        return self.observed(model) if model in self.selection else self.built(model)

    def probe(self, spec: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
        data = self.data(spec.modality)
        return data.x_train[:PROBE], data.y_train[:PROBE]

    def cached(self, kind: str, model: str, make: Callable[[], Any]) -> Any:
        """Run ``make`` once per (kind, model); a failure is kept and raised again for every test that needs it."""
        key = (kind, model)
        if key not in self._cache:
            try:
                self._cache[key] = make()
            except (Exception, pytest.skip.Exception, pytest.fail.Exception) as exc:  # outcomes are kept too
                self._cache[key] = exc
        value = self._cache[key]
        if isinstance(value, BaseException):
            raise value
        return value

    def worker_run(self, threads: int) -> dict[str, Any]:
        """One ``dlbench run --profile smoke`` with ``--threads threads``: cnn if supported (its timed blocks are
        long enough to count threads), else the first supported image model."""
        suite = self.suite

        def run() -> dict[str, Any]:
            import tempfile

            if not self.supported("image"):
                pytest.skip("no supported image model in the selection")
            model = "cnn" if "cnn" in self.supported("image") else self.supported("image")[0]
            out = Path(tempfile.mkdtemp(prefix="dlbench-kit-")) / "run"
            command = [sys.executable, "-m", "dlbench.cli", "run", "--profile", suite.worker_profile, "-f", self.name, "-m",
                       model, "-t", "digits", "--threads", str(threads), "--variant", self.variant, "--device",
                       suite.device, "--out", str(out),
                       # a fast model's smoke blocks last milliseconds: time 0.3 s more of training and of
                       # Offline (a CI target no run reaches), so the threads can be counted
                       "--ci-target", "0.01%", "--max-timing", "0.3"]
            env = dict(os.environ)
            if self.info.dist == f"${EXTRA_ENV}":
                env["PYTHONPATH"] = os.pathsep.join(filter(None, [*_pythonpath_for(self.info.name),
                                                                  env.get("PYTHONPATH")]))
            done = subprocess.run(command, capture_output=True, text=True, timeout=suite.worker_timeout, env=env)
            results = RunDir(out).results
            records = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
            shutil.rmtree(out.parent, ignore_errors=True)
            if not records:
                pytest.fail(f"no record; exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
            return {"record": records[0], "returncode": done.returncode, "stderr": done.stderr[-2000:],
                    "command": " ".join(command[2:])}

        return self.cached("worker", f"threads={threads}", run)

    def stream_probe(self) -> dict[str, Any]:
        """Three sessions of one model: the harness's stream, the same batches from moved rows, another order.

        A plugin that gathers what ``setup.stream`` names ends the first two at the same loss; one that
        draws its own order sees different batches in them. The third (another stream seed) shows that the
        order matters at all for this model, or the probe could not tell.
        """
        model = next(iter(self.supported("image") or self.supported()), None)
        if model is None:
            pytest.skip("no supported model in the selection")
        spec = get_model(model)

        def run() -> dict[str, Any]:
            data = self.data(spec.modality)
            steps = data.x_train.shape[0] // self.suite.batch_size + 5  # into the second epoch
            x, y = self.probe(spec)
            moved, where = permuted_rows(data)
            seed = self.suite.seed
            runs: dict[str, Any] = {"model": model, "steps": steps}
            for name, task, stream in (
                    ("harness", data, BatchStream(len(data.x_train), self.suite.batch_size, seed)),
                    ("moved", moved, MappedStream(BatchStream(len(data.x_train), self.suite.batch_size, seed), where)),
                    ("other", data, BatchStream(len(data.x_train), self.suite.batch_size, seed + 1))):
                session = self.prepare(spec, data=task, stream=stream)
                hook = CountingHook(self.suite.hook_steps)
                session.train(steps, hook)
                session.sync()
                runs[name] = {"loss": session.evaluate(x, y)[0], "drawn": stream.step, "hook_calls": hook.calls}
            return runs

        return self.cached("stream", model, run)

    # -- the runs the per-model tests read ----------------------------------------------------------------
    def observed(self, model: str) -> dict[str, Any]:
        """One session through the whole contract, recording what the tests check."""
        spec = self.spec(model)

        def run() -> dict[str, Any]:
            session = self.prepare(spec)
            x, y = self.probe(spec)
            seen: dict[str, Any] = {"params": session.param_count(), "initial": session.evaluate(x, y),
                                    "initial_again": session.evaluate(x, y)}
            seen["batch_dims"] = {}
            for n in (1, 5):
                out = session.predict(session.stage(x[:n]))
                session.sync()
                seen["batch_dims"][n] = batch_dimension(out)
            staged = session.stage(x[:5])
            output = session.predict(staged)
            session.sync()
            seen["output_dtype"] = dtype_name(output)
            first = to_numpy(output)
            seen["predictions"] = (first, to_numpy(session.predict(staged)))
            data = self.data(spec.modality)
            hook = CountingHook(self.suite.hook_steps,
                                during=lambda: session.evaluate(data.x_val[:HOOK_PROBE], data.y_val[:HOOK_PROBE]))
            excluded = getattr(session, "excluded_parameters", None)
            seen["excluded_before"] = _copies(excluded()) if callable(excluded) else None
            with clock_guard(self.packages) as reads:
                session.train(self.suite.train_steps, hook)
                session.sync()
                session.predict(staged)
                session.sync()
            seen["excluded_after"] = _copies(excluded()) if callable(excluded) else None
            seen.update(hook_calls=hook.calls, clock_reads=list(reads), final=session.evaluate(x, y),
                        final_again=session.evaluate(x, y), in_hook=hook.seen)
            return seen

        return self.cached("observed", model, run)

    def trained(self, model: str, spec: Optional[ModelSpec] = None, kind: str = "reference") -> dict[str, Any]:
        """A fresh session with the same seed, trained the same steps without a hook: (initial, final, prediction)."""
        spec = spec or self.spec(model)

        def run() -> dict[str, Any]:
            session = self.prepare(spec)
            x, y = self.probe(spec)
            initial = session.evaluate(x, y)
            prediction = to_numpy(session.predict(session.stage(x[:5])))
            session.sync()
            session.train(self.suite.train_steps)
            session.sync()
            return {"initial": initial, "prediction": prediction, "final": session.evaluate(x, y)}

        return self.cached(kind, model, run)


def _copies(parameters: Any) -> dict[str, np.ndarray]:
    return {str(name): np.array(to_numpy(value), copy=True) for name, value in dict(parameters).items()}


def _raised_dropout(spec: ModelSpec) -> ModelSpec:
    layers = tuple(dataclasses.replace(layer, rate=RAISED_DROPOUT) if isinstance(layer, (Dropout, SpatialDropout1D))
                   else layer for layer in spec.layers)
    return dataclasses.replace(spec, layers=layers)


def _gpu_present() -> bool:
    if glob.glob("/dev/nvidia[0-9]*"):
        return True
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        return subprocess.run([smi, "-L"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _entry_point_module(kit: Kit) -> str:
    info = kit.info
    if info.dist == f"${EXTRA_ENV}":
        return info.name
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name == info.name:
            return entry_point.value.split(":")[0]
    return type(kit.framework).__module__


def _pythonpath_for(module: str) -> list[str]:
    """Folders that make ``module`` importable in a child process (for plugins loaded by DLBENCH_PLUGINS)."""
    spec = importlib.util.find_spec(module.split(".")[0])
    if spec is None or not spec.origin:
        return []
    origin = Path(spec.origin)
    return [str(origin.parent.parent if spec.submodule_search_locations else origin.parent)]


class FrameworkConformance:
    """The conformance tests; subclass as ``Test...`` and set ``framework`` (the other attributes are optional)."""

    framework: ClassVar[str] = ""
    distribution: ClassVar[Optional[str]] = None  # e.g. "dlbench-myfw": the distribution that must register it
    plugin_module: ClassVar[Optional[str]] = None  # load this module through DLBENCH_PLUGINS (not installed yet)
    models: ClassVar[Optional[Sequence[str]]] = None  # default DEFAULT_MODELS, skipping what supports() refuses
    variant: ClassVar[Optional[str]] = None  # default: the framework's first (default) variant
    device: ClassVar[str] = "cpu"
    threads: ClassVar[int] = 1
    seed: ClassVar[int] = 0
    batch_size: ClassVar[int] = 32
    train_steps: ClassVar[int] = 30
    hook_steps: ClassVar[int] = 7  # 30 steps -> 4 hook calls, then 2 steps without one
    worker_timeout: ClassVar[float] = 300.0
    worker_profile: ClassVar[str] = "smoke"  # of the real-worker runs; "quick" times long enough to count threads
    # Every test's limit in seconds (dlbench.testing.watchdog): past it the test fails with every thread's
    # stack; a native hang that never returns to Python ends the process time_limit_grace seconds later.
    time_limit: ClassVar[float] = 420.0
    # A second suite of one plugin (another variant, another device) sets it: the tests whose outcome does not
    # depend on the variant or the device (PLUGIN_TESTS: discovery, the cheap questions, parameter counts of
    # models it does not train, which zoo models it builds, the real-worker runs and the thread budget) are skipped; the first suite
    # proves them. What the variant changes (precision, dtypes, training, sync, the profile) is still tested.
    session_tests_only: ClassVar[bool] = False
    time_limit_grace: ClassVar[Optional[float]] = None  # default max(30 s, a quarter of the limit)

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "model" in metafunc.fixturenames:
            metafunc.parametrize("model", list(self.models or DEFAULT_MODELS))
        if "zoo_model" in metafunc.fixturenames:
            metafunc.parametrize("zoo_model", list(MODELS))

    @pytest.fixture(scope="class")
    @classmethod
    def kit(cls) -> Any:
        with pytest.MonkeyPatch.context() as patch:
            if cls.plugin_module:
                patch.setenv(EXTRA_ENV, ",".join(filter(None, [os.environ.get(EXTRA_ENV), cls.plugin_module])))
            kit = Kit(cls)
            if cls.device != "cpu":  # a GPU suite on a machine (or a build) without one: say why, skip it all
                _skip_unless_device(kit, cls.device)
            yield kit

    @pytest.fixture(autouse=True)
    def _kit_time_limit(self, request: pytest.FixtureRequest) -> Any:
        """No kit test hangs in silence: see ``time_limit``."""
        if self.session_tests_only and _plugin_level(request):
            pytest.skip("session_tests_only: the plugin's first suite tests this (it does not depend on the "
                        "variant or the device)")
        capture = request.config.pluginmanager.getplugin("capturemanager")
        with time_limit(self.time_limit, request.node.nodeid, self.time_limit_grace, capture):
            yield

    # -- discovery and the cheap questions --------------------------------------------------------------
    def test_found_through_the_entry_point(self, kit: Kit) -> None:
        kit.framework  # fails with what was found instead
        info = kit.info
        assert not info.error, f"plugin {info.name} loaded with an error: {info.error}"
        assert info.dist, (f"framework {kit.name} came from plugin {info.name}, which is neither an installed "
                           f"distribution's [project.entry-points.dlbench] entry nor in ${EXTRA_ENV}")
        if info.dist == f"${EXTRA_ENV}":  # loaded by module name: the entry point itself was never looked at
            wanted = f"distribution {self.distribution}" if self.distribution else "the plugin's distribution"
            pytest.skip(f"{kit.name} was loaded from ${EXTRA_ENV}={info.name}, not through an entry point: "
                        f"pip install {wanted.split()[-1] if self.distribution else 'it'} and unset ${EXTRA_ENV} "
                        f"to test that {wanted} registers it")
        if self.distribution and info.dist != f"${EXTRA_ENV}":
            def canonical(name: str) -> str:
                return name.lower().replace("_", "-").replace(".", "-")
            assert canonical(info.dist) == canonical(self.distribution), (
                f"{kit.name} is registered by distribution {info.dist}, not {self.distribution}")
            assert info.dist_version, f"distribution {info.dist} has no version"

    def test_listed_by_dlbench_list(self, kit: Kit) -> None:
        from dlbench.cli.listing import frameworks_table

        kit.framework
        rows = [line for line in frameworks_table().splitlines() if line.split()[:1] == [kit.name]]
        assert rows, f"dlbench list frameworks shows no row for {kit.name}:\n{frameworks_table()}"
        assert kit.info.dist in rows[0] and rows[0].rstrip().endswith("ok"), rows[0]

    def test_version_is_a_string(self, kit: Kit) -> None:
        version = kit.framework.version()
        assert isinstance(version, str) and version.strip(), f"version() returned {version!r}"

    def test_variants_are_named(self, kit: Kit) -> None:
        variants = list(kit.framework.variants())
        assert variants, "variants() is empty: list at least the default way to run"
        assert all(isinstance(v, str) and v.strip() for v in variants), variants
        assert len(set(variants)) == len(variants), f"variants() repeats a name: {variants}"
        if self.variant:
            assert self.variant in variants, f"{self.variant!r} is not one of variants() {variants}"

    def test_devices_are_really_here(self, kit: Kit) -> None:
        devices = list(kit.framework.devices())
        assert devices and set(devices) <= {"cpu", "gpu"}, f"devices() must be a subset of cpu, gpu: {devices}"
        if "gpu" in devices:
            assert _gpu_present(), "devices() lists gpu, but there is no /dev/nvidia0 and nvidia-smi fails"

    def test_cheap_questions_import_no_framework(self, kit: Kit) -> None:
        """``dlbench list`` and the planner ask version/variants/devices/supports; the framework loads in prepare."""
        module = _entry_point_module(kit)
        heavy = sorted(set(FRAMEWORK_MODULES) - {module.split(".")[0]})
        check_devices = not glob.glob("/dev/nvidia*")  # on a GPU machine devices() may need the framework
        code = textwrap.dedent(f"""
            import importlib, json, sys
            from dlbench.zoo import MODELS
            found = []
            importlib.import_module({module!r}).dlbench_register_frameworks(register=found.append)
            framework = next(f for f in found if f.name == {kit.name!r})
            framework.version(); framework.variants(); [framework.supports(s) for s in MODELS.values()]
            if {check_devices!r}:
                framework.devices()
            print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r})))
        """)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [*_pythonpath_for(module), env.get("PYTHONPATH")]))
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        imported = json.loads(done.stdout.strip().splitlines()[-1])
        packages = sorted({name.split(".")[0] for name in imported})  # not every submodule (thousands for TF)
        assert not imported, (f"importing plugin {module} and asking version/variants/devices/supports imported "
                              f"{', '.join(packages)} ({len(imported)} modules): import the framework inside prepare()")

    def test_supports_answers_for_every_zoo_model(self, kit: Kit) -> None:
        answers = {name: kit.framework.supports(spec) for name, spec in MODELS.items()}
        assert all(isinstance(a, bool) for a in answers.values()), answers
        assert any(answers.values()), "supports() is False for every zoo model"

    # -- the model ---------------------------------------------------------------------------------------
    def test_says_which_zoo_models_it_builds(self, kit: Kit) -> None:
        """Every zoo model is built, or the skip names those not built yet and why; never a failure for that."""
        missing = []
        for name, spec in MODELS.items():
            if not kit.framework.supports(spec):
                missing.append(f"{name} (supports() is False)")
                continue
            try:
                kit.checked(name)
            except pytest.skip.Exception as skipped:
                missing.append(f"{name} ({skipped.msg})")
            except (Exception, pytest.fail.Exception):
                pass  # built, then failed: that model's own tests report it
        if missing:
            pytest.skip(f"{kit.name} does not build yet: {'; '.join(missing)}")

    def test_param_count_equals_the_spec(self, kit: Kit, zoo_model: str) -> None:
        spec = kit.spec(zoo_model, listed=False)
        expected = spec.param_count(kit.data(spec.modality).input_shape)
        got = kit.checked(zoo_model)["params"]
        assert got == expected, f"{zoo_model}: {got:,} trainable parameters, the spec has {expected:,}"

    def test_first_loss_is_near_chance(self, kit: Kit, zoo_model: str) -> None:
        spec = kit.spec(zoo_model, listed=zoo_model in kit.selection)
        loss, accuracy = kit.checked(zoo_model)["initial"]
        chance = spec.expected_initial_loss(kit.data(spec.modality).num_classes)
        assert math.isfinite(loss) and abs(loss - chance) <= 0.5 * chance, (
            f"{zoo_model}: untrained loss {loss:.4g}, expected near ln(classes) = {chance:.4g}: check the "
            "initialisation (glorot-uniform kernels, zero biases) and that the last layer outputs logits")
        assert 0.0 <= accuracy <= 1.0, f"evaluate() accuracy {accuracy} is not a fraction"
        if getattr(spec.layers[-1], "kernel_init", "") == "zeros":  # a zero head: every logit is 0, the loss exact
            assert abs(loss - chance) < 1e-4, (f"{zoo_model}: the spec's last Dense starts at zero, so the untrained "
                                               f"loss is ln(classes) = {chance:.6g} exactly, not {loss:.6g}")

    def test_trains_a_model_with_layer_kinds_the_selection_does_not(self, kit: Kit, zoo_model: str) -> None:
        """A model outside the selection with a layer kind none of the selection's has trains a few steps: the
        loss it ends at is finite and not the one it started at (its backward pass and update ran)."""
        if zoo_model in kit.selection:
            pytest.skip(f"{zoo_model} is trained by the per-model tests")
        if not kit.spec(zoo_model, listed=False).layer_kinds() - kit.trained_kinds:
            pytest.skip(f"{zoo_model}'s layer kinds are all trained by the selection's models")
        before, after = kit.built(zoo_model)["initial"][0], kit.short_trained(zoo_model)
        assert math.isfinite(after) and not _same(before, after, rel=1e-6), (
            f"{zoo_model}: loss {before:.6g} before and {after:.6g} after train({SHORT_STEPS}): training must update "
            "every layer kind of the model")

    def test_seed_fixes_the_initial_model(self, kit: Kit, model: str) -> None:
        first, again = kit.observed(model)["initial"][0], kit.trained(model)["initial"][0]
        assert _same(first, again), f"{model}: two sessions with seed {self.seed} start at losses {first} and {again}"

    def test_evaluate_and_predict_are_deterministic(self, kit: Kit, model: str) -> None:
        seen = kit.observed(model)
        assert seen["initial"] == seen["initial_again"], f"{model}: evaluate() twice gave {seen['initial']} " \
                                                         f"and {seen['initial_again']}"
        assert seen["final"] == seen["final_again"], f"{model}: evaluate() twice after training differs"
        first, second = seen["predictions"]
        np.testing.assert_array_equal(first, second, err_msg=f"{model}: predict() twice on one batch differs")

    def test_predict_returns_float32_logits(self, kit: Kit, model: str) -> None:
        """Whatever a variant computes in, predict() hands back float32 logits, as the loss is computed."""
        dtype = kit.observed(model)["output_dtype"]
        assert dtype in ("float32", "float64"), (
            f"{model}: predict() of {kit.name}/{kit.variant} returned {dtype} logits: return them in float32, as the "
            "loss is computed (a reduced-precision variant casts its last output: torch out.float(), JAX "
            "out.astype(jnp.float32), Keras out.astype('float32')), so every framework hands back the same dtype")

    def test_predict_keeps_the_batch_dimension(self, kit: Kit, model: str) -> None:
        dims = kit.observed(model)["batch_dims"]
        assert dims == {1: 1, 5: 5}, f"{model}: predict() on batches of 1 and 5 returned leading dimensions {dims}"

    # -- training ----------------------------------------------------------------------------------------
    def test_loss_goes_down(self, kit: Kit, model: str) -> None:
        seen = kit.observed(model)
        before, after = seen["initial"][0], seen["final"][0]
        drop = LOSS_DROP.get(model, LOSS_DROP_OTHER)
        assert after < (1 - drop) * before, (
            f"{model}: loss {before:.4f} -> {after:.4f} on a fixed training batch after {self.train_steps} steps of "
            f"batch {self.batch_size} (expected to fall by {drop:.1%} at least: a third of the smallest fall torch "
            "and JAX show for this model)")

    def test_hook_is_called_every_block(self, kit: Kit, model: str) -> None:
        calls = kit.observed(model)["hook_calls"]
        expected = self.train_steps // self.hook_steps
        assert calls == expected, (f"{model}: train({self.train_steps}, hook) with hook.steps = {self.hook_steps} "
                                   f"called the hook {calls} times, expected {expected} (after every "
                                   f"{self.hook_steps} steps, none for the last {self.train_steps % self.hook_steps})")

    def test_evaluating_in_the_hook_leaves_training_alone(self, kit: Kit, model: str) -> None:
        """The harness evaluates inside the hook (time-to-accuracy); training must go on exactly as without."""
        with_hook, without = kit.observed(model)["final"][0], kit.trained(model)["final"][0]
        if _same(with_hook, without):
            return
        again = kit.trained(model, kind="reference-again")["final"][0]
        if not _same(again, without):
            pytest.skip(f"{model}: training is not reproducible for a fixed seed here ({without} vs {again}), "
                        "so the effect of the hook cannot be isolated")
        pytest.fail(f"{model}: after evaluating inside the hook the loss ends at {with_hook}, without at {without}: "
                    "evaluate() must not change the training (back to train mode, same data stream, same RNG)")

    def test_dropout_only_in_training(self, kit: Kit, model: str) -> None:
        spec = kit.spec(model)
        if not any(isinstance(layer, (Dropout, SpatialDropout1D)) for layer in spec.layers):
            pytest.skip(f"{model} has no dropout")
        normal = kit.trained(model)
        raised = kit.trained(model, _raised_dropout(spec), kind="raised-dropout")
        assert _same(raised["initial"][0], normal["initial"][0]), (
            f"{model}: with dropout raised to {RAISED_DROPOUT} evaluate() gives {raised['initial'][0]} instead of "
            f"{normal['initial'][0]}: dropout must be off in evaluate() (or the seed does not fix the weights)")
        np.testing.assert_allclose(raised["prediction"], normal["prediction"], rtol=1e-5, atol=1e-6,
                                   err_msg=f"{model}: predict() must run without dropout")
        assert not _same(raised["final"][0], normal["final"][0], rel=1e-4), (
            f"{model}: training with dropout {RAISED_DROPOUT} ends exactly where the spec's rates do: "
            "dropout is not applied in train()")

    def test_never_reads_the_clock(self, kit: Kit, model: str) -> None:
        reads = kit.observed(model)["clock_reads"]
        assert not reads, ("the harness times; the plugin must not read a clock in train/predict/sync:\n"
                           + "\n".join(sorted(set(reads))))

    def test_sync_waits_for_training(self, kit: Kit) -> None:
        """After sync() returns, no training work is left: an evaluate of one sample right after it is quick."""
        supported = kit.supported()
        if not supported:
            pytest.skip("no supported model in the selection")
        model = "cnn" if "cnn" in supported else supported[0]  # heavy steps make leftover work visible
        spec = MODELS[model]
        session = kit.prepare(spec)
        x, y = kit.probe(spec)
        session.train(2)
        session.sync()
        session.evaluate(x[:1], y[:1])  # compile/trace evaluation of this shape off the measurement
        steps = 4
        while True:
            start = time.perf_counter()
            session.train(steps)
            session.sync()
            synced = time.perf_counter()
            session.evaluate(x[:1], y[:1])
            end = time.perf_counter()
            if end - start >= 0.4 or steps >= 4096:
                break
            steps *= 2
        idle = min(_timed(lambda: session.evaluate(x[:1], y[:1])) for _ in range(3))
        after, total = end - synced, end - start
        assert after <= max(0.5 * total, 10 * idle + 0.05), (
            f"{model}: evaluate(1 sample) took {after:.3f} s right after train({steps}) + sync() "
            f"({total:.3f} s in all) but {idle:.3f} s when idle: sync() returned before the training work was done")

    def test_device_timer_agrees_with_the_host_clock(self, kit: Kit) -> None:
        """On a GPU: the session's device timer (CUDA events) and the host clock around train + sync agree.

        A sync() that returns before the device is done makes the host time shorter than the events' time.
        """
        if self.device == "cpu":
            pytest.skip("device timers time GPU work; on the CPU the host clock after sync() is the device's")
        supported = kit.supported()
        if not supported:
            pytest.skip("no supported model in the selection")
        model = "cnn" if "cnn" in supported else supported[0]
        session = kit.prepare(MODELS[model])
        make_timer = getattr(session, "device_timer", None)
        if not callable(make_timer):
            pytest.skip(f"{kit.name} on {self.device} offers no device_timer() (only host timing)")
        timer = make_timer()
        session.train(3)
        session.sync()
        steps, ratios = 8, []
        while len(ratios) < 3:
            timer.start()
            start = time.perf_counter()
            session.train(steps)
            session.sync()
            host = time.perf_counter() - start
            device = timer.stop()
            if host < 0.2 and steps < 8192:  # too short to compare: a few microseconds of launch latency matter
                steps *= 2
                continue
            ratios.append(host / device)
        assert all(0.95 <= r <= 1.05 for r in ratios), (
            f"{model}: host seconds / {getattr(timer, 'name', 'device timer')} seconds over train({steps}) + sync() "
            f"were {', '.join(f'{r:.3f}' for r in ratios)}: below 1, sync() returned before the device finished")

    def test_device_memory_peak_is_reported(self, kit: Kit) -> None:
        """On a GPU: peak_device_memory_mb() after training is positive; after a reset it starts again."""
        if self.device == "cpu":
            pytest.skip("device memory is measured on the GPU (peak RSS on the CPU)")
        supported = kit.supported()
        if not supported:
            pytest.skip("no supported model in the selection")
        session = kit.prepare(MODELS[supported[0]])
        peak = getattr(session, "peak_device_memory_mb", None)
        if not callable(peak):
            pytest.fail(f"{kit.name} on {self.device}: the session has no peak_device_memory_mb()")
        session.train(5)
        session.sync()
        trained = peak()
        assert trained is not None and trained > 0, f"peak_device_memory_mb() after training is {trained!r}"
        reset = getattr(session, "reset_peak_device_memory", None)
        if callable(reset) and reset():
            session.predict(session.stage(kit.probe(MODELS[supported[0]])[0][:1]))
            session.sync()
            assert peak() <= trained, f"after reset_peak_device_memory() the peak is {peak()} > {trained} MiB"

    def test_describe_says_how_threads_were_set(self, kit: Kit) -> None:
        if not kit.supported():
            pytest.skip("no supported model in the selection")
        info = kit.prepare(MODELS[kit.supported()[0]]).describe()
        assert hasattr(info, "items"), f"describe() returned {type(info).__name__}, not a mapping"
        threads = {k: v for k, v in info.items() if "thread" in str(k).lower() and str(v).strip()}
        assert threads, f"describe() has no 'threads' entry saying how the budget of {self.threads} was applied: {info}"
        json.dumps(dict(info), default=str)

    # -- fair by construction ----------------------------------------------------------------------------------
    def test_trains_on_the_harness_batches(self, kit: Kit) -> None:
        """train() gathers the rows ``setup.stream`` names, in its order, and calls the hook on its cadence."""
        runs = kit.stream_probe()
        model, steps, first, moved, other = runs["model"], runs["steps"], runs["harness"], runs["moved"], runs["other"]
        assert first["drawn"] == steps, (
            f"{model}: train({steps}) drew {first['drawn']} batches from setup.stream: train on the harness's order "
            "(for index in setup.stream.batches(steps, hook): ...), see 'The batch stream' in the plugin guide")
        assert first["hook_calls"] == steps // self.hook_steps, (
            f"{model}: hook called {first['hook_calls']} times in train({steps}), expected {steps // self.hook_steps}")
        if _same(first["loss"], other["loss"], rel=1e-6):
            pytest.skip(f"{model}: training with another batch order ends at the same loss here, so the probe "
                        "cannot tell whose order was used")
        assert _same(first["loss"], moved["loss"], rel=1e-4), (
            f"{model}: the same batches gathered from moved rows end at loss {moved['loss']:.6g}, the harness's "
            f"at {first['loss']:.6g}: train() must gather exactly the rows setup.stream names (it drew its own "
            "order, or reshuffled the stream's)")

    def test_describe_has_the_fairness_profile(self, kit: Kit) -> None:
        """describe(): the required keys, the recipe equal to the spec's, the spec's precision."""
        if not kit.supported():
            pytest.skip("no supported model in the selection")
        spec = MODELS[kit.supported()[0]]
        info = dict(kit.prepare(spec).describe())
        problems = profile_problems(info, spec)
        assert not problems, (f"describe() of {kit.name}/{kit.variant}: {'; '.join(problems)}. Required keys: "
                              f"{', '.join(REQUIRED_KEYS)}; build it with dlbench.fairness_profile(setup, ...) "
                              "or add recipe=setup.spec.recipe.record()")

    def test_excluded_parameters_stay_put(self, kit: Kit, model: str) -> None:
        """A parameter kept out of training (e.g. a second LSTM bias) must keep its initial value."""
        seen = kit.observed(model)
        before, after = seen.get("excluded_before"), seen.get("excluded_after")
        if before is None:
            pytest.skip(f"{kit.name} offers no excluded_parameters() (it excludes nothing, or does not say)")
        if not before:
            pytest.skip(f"{model}: no parameter is excluded from training")
        moved = [name for name in before if not np.array_equal(before[name], after.get(name))]
        assert not moved, (f"{model}: {', '.join(moved)} changed in {self.train_steps} steps although excluded from "
                           "training and from param_count(): leave it out of the optimiser (and out of weight "
                           "decay), see 'Conventions that do not map' in the plugin guide")

    # -- end to end ------------------------------------------------------------------------------------------
    def test_runs_in_the_real_worker(self, kit: Kit) -> None:
        """``dlbench run --profile smoke -f NAME -m MODEL -t digits``: a fresh worker process, parity checks, timing."""
        run = kit.worker_run(self.threads)
        record = run["record"]
        assert record["status"] == "ok", (f"{run['command']}: {record['status']}: {record.get('error')}\n"
                                          f"{record.get('stderr_tail', '')}")
        assert run["returncode"] == 0, run["stderr"]

    @pytest.mark.parametrize("budget", [1, 2])
    def test_thread_budget_is_kept(self, kit: Kit, budget: int) -> None:
        """The worker counts the threads that really ran in the timed blocks (/proc/self/task/*/stat)."""
        record = kit.worker_run(budget)["record"]
        if record["status"] != "ok":
            pytest.fail(f"the run with --threads {budget} did not end ok: {record.get('error')}")
        seen = (record.get("metrics") or {}).get("threads_observed")
        if not seen:
            pytest.skip("no per-thread CPU times here (/proc/self/task is Linux only)")
        if seen["over_budget"] is None:
            pytest.skip(f"the timed blocks lasted {seen['timed_s']} s in all, too short to count threads")
        assert not seen["over_budget"], (
            f"--threads {budget}: the process kept {seen['concurrency']} threads' worth of CPU busy in the timed "
            f"{seen['timed_s']} s (CPU time {seen['parallel']} cores, over the busiest thread's share of a CPU "
            f"{seen['cpu_share']}: the machine's load), more than the budget + {seen['slack']}; on "
            f"average {seen['runnable']} threads were running or waiting for a CPU ({seen['busy']} busy; shares "
            f"{seen['top_shares']}): "
            f"apply the budget to every pool the framework starts (describe() says: "
            f"{(record.get('fairness') or {}).get('threads')!r}); see 'The thread budget' in the plugin guide")


# Tests whose outcome is the plugin's, not its variant's or device's (see session_tests_only).
PLUGIN_TESTS = frozenset({
    "test_found_through_the_entry_point", "test_listed_by_dlbench_list", "test_version_is_a_string",
    "test_variants_are_named", "test_devices_are_really_here", "test_cheap_questions_import_no_framework",
    "test_supports_answers_for_every_zoo_model", "test_says_which_zoo_models_it_builds", "test_runs_in_the_real_worker",
    "test_thread_budget_is_kept"})


def _plugin_level(request: pytest.FixtureRequest) -> bool:
    node = request.node
    if getattr(node, "originalname", node.name) in PLUGIN_TESTS:
        return True
    params = getattr(getattr(node, "callspec", None), "params", {})
    return "zoo_model" in params and params["zoo_model"] not in list(node.cls.models or DEFAULT_MODELS)


def _skip_unless_device(kit: Kit, device: str) -> None:
    """Skip the whole suite when the framework cannot use ``device`` here, with its own reason."""
    from dlbench.machine.devices import checks_of

    framework = kit.framework
    if device in framework.devices():
        return
    reasons = [c.detail for c in checks_of(framework) if c.device == device and not c.available]
    pytest.skip(f"{kit.name} sees no {device} here: {'; '.join(reasons) or 'devices() does not list it'}")


def _timed(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start
