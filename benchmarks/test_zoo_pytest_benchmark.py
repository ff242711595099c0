"""Zoo training speed through pytest-benchmark, next to dlbench's own blocked timing.

Each round times ``session.train(steps)`` + ``session.sync()`` on a session the harness prepared
through the public plugin registry; the first step (tracing, compilation) runs in the untimed setup.
Saved runs (``--benchmark-save``) compare with ``pytest-benchmark compare`` like the output of
``dlbench export --format pytest-benchmark``.
"""

from __future__ import annotations

import pytest

from dlbench.contract import FrameworkUnavailable, Setup

SYNTHETIC_TASK = {"image": "synthetic_images", "text": "synthetic_text"}  # always present, no download


def test_train_steps(benchmark, zoo_case, zoo_registry, zoo_data, zoo_settings):
    from dlbench.data import DataError
    from dlbench.zoo import get_model

    framework = zoo_registry.frameworks.get(zoo_case.framework)
    if framework is None:
        known = ", ".join(zoo_registry.frameworks) or "none"
        pytest.skip(f"framework {zoo_case.framework!r} is not registered (registered: {known})")
    try:
        framework.version()
    except FrameworkUnavailable as exc:
        pytest.skip(f"{zoo_case.framework} is not installed: {exc}")
    try:
        spec = get_model(zoo_case.model)
    except KeyError as exc:
        pytest.fail(str(exc))
    if not framework.supports(spec):
        pytest.skip(f"{zoo_case.framework} does not implement {zoo_case.model}")
    if zoo_case.device not in framework.devices():
        pytest.skip(f"{zoo_case.framework} has no {zoo_case.device} here")
    variant = zoo_case.variant or list(framework.variants())[0]
    if variant not in framework.variants():
        pytest.skip(f"{zoo_case.framework} has no variant {variant!r} here")
    task = zoo_case.task or SYNTHETIC_TASK[spec.modality]
    try:
        data = zoo_data(task)
    except (DataError, KeyError) as exc:
        pytest.skip(f"no data for {task}: {exc}")
    if data.modality != spec.modality:
        pytest.skip(f"{zoo_case.model} is a {spec.modality} model, {task} is a {data.modality} task")

    batch, steps = zoo_settings["batch_size"], zoo_settings["steps"]
    state: dict[str, object] = {}

    def prepare():
        """Untimed: build the session once, run its first (compiling) step, hand it to the round."""
        if "session" not in state:
            session = framework.prepare(Setup(spec=spec, data=data, device=zoo_case.device, variant=variant,
                                              seed=0, threads=zoo_settings["threads"], batch_size=batch))
            session.train(1)
            session.sync()
            state["session"] = session
        return (state["session"],), {}

    def train_round(session) -> None:
        session.train(steps)
        session.sync()

    benchmark.group = f"{task}/{zoo_case.model}/{zoo_case.device}/bs{batch}"
    benchmark.extra_info.update({"framework": zoo_case.framework, "variant": variant, "model": zoo_case.model,
                                 "task": task, "device": zoo_case.device, "batch_size": batch,
                                 "steps_per_round": steps, "framework_version": framework.version()})
    benchmark.pedantic(train_round, setup=prepare, rounds=zoo_settings["rounds"], iterations=1, warmup_rounds=1)
    if benchmark.stats:  # None under --benchmark-disable
        seconds = benchmark.stats.stats.median
        benchmark.extra_info["train_samples_per_s"] = steps * batch / seconds if seconds else None
