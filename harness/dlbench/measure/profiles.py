"""Measurement budgets: how long to train, how many timed blocks, how many latency queries.

The training budget is a fixed number of optimiser steps per model and task, the same for every
framework, so accuracies are comparable; the timed blocks are those same training steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

from dlbench.errors import UnknownName
from dlbench.stats.estimators import DEFAULT_ESTIMATOR
from dlbench.zoo import ModelSpec


@dataclass(frozen=True)
class Profile:
    name: str
    purpose: str
    train_steps: Mapping[str, int] = field(default_factory=dict)  # modality -> steps (None: use epochs)
    task_steps: Mapping[str, int] = field(default_factory=dict)  # task -> steps, overriding its modality's
    model_steps: Mapping[str, int] = field(default_factory=dict)  # model -> steps, overriding the two above
    infer_batch: Mapping[str, int] = field(default_factory=dict)  # model -> Offline batch (default: the worker's)
    matrix: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # model -> its tasks when none are named
    epochs: Mapping[str, int] = field(default_factory=dict)  # model -> epochs, for the full profile
    default_epochs: int = 0
    min_block_s: float = 0.25  # a timed block lasts at least this long (timer overhead << 1%)
    min_blocks: int = 6  # timed blocks wanted, warm-up excluded
    max_blocks: int = 60  # more would only mean shorter blocks (a calibration hit by a load spike)
    min_timed_s: float = 1.0  # steady-state seconds wanted; fast models get extra timed blocks after training
    tta_evaluations: int = 4  # validation evaluations spread over training (plus one at the end)
    infer_blocks: int = 6
    infer_min_block_s: float = 0.1
    latency_min_count: int = 100
    latency_min_s: float = 0.5
    latency_max_s: float = 3.0
    case_timeout_s: float = 600.0
    # adaptive sampling (pyperf/asv style): after the budget, keep timing blocks until the estimator's 95% CI
    # half-width is under ci_target, within max_timed_s of timed training (infer_max_timed_s of Offline)
    estimator: str = DEFAULT_ESTIMATOR
    ci_target: float = 0.03
    max_timed_s: float = 0.0  # 0: no adaptive top-up beyond min_timed_s
    infer_max_timed_s: float = 0.0
    # the training batch when --batch-size is not given: 128 (the seed recipes'), or "auto" (measure.batch_sweep:
    # doubling from auto_batch_start until throughput stops rising), with sweep_block_s seconds per timed block
    batch_size: Union[int, str] = 128
    auto_batch_start: int = 128
    sweep_block_s: float = 0.2

    def steps_for(self, spec: ModelSpec, task: str, train_samples: int, batch_size: int) -> int:
        """The training budget in optimiser steps for one case: the same for every framework."""
        if spec.name in self.model_steps:
            return self.model_steps[spec.name]
        if task in self.task_steps:
            return self.task_steps[task]
        if self.train_steps:
            return self.train_steps[spec.modality]
        epochs = self.epochs.get(spec.name, self.default_epochs)
        return max(1, epochs * (train_samples // batch_size))


PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile("smoke", "seconds per case, for tests: numbers mean little",
                train_steps={"image": 24, "text": 12}, model_steps={"resnet20": 8, "transformer": 8},
                infer_batch={"resnet20": 128, "transformer": 128}, min_block_s=0.01, min_blocks=3, min_timed_s=0.0,
                tta_evaluations=1,
                infer_blocks=3, infer_min_block_s=0.01, latency_min_count=10, latency_min_s=0.02,
                latency_max_s=0.5, case_timeout_s=180, max_timed_s=0.0, infer_max_timed_s=0.0, sweep_block_s=0.02),
        Profile("quick", "the whole --all matrix in under 10 minutes on 2 cores: a third of an epoch of "
                "Fashion-MNIST (so accuracy means something), 6 epochs of digits, 64 steps of synthetic images "
                "(there for throughput), 1.4 epochs of synthetic text; resnet20 and transformer (a second a step on "
                "one core) train 12 steps, time Offline at batch 256 and run on their synthetic task only",
                train_steps={"image": 160, "text": 48}, task_steps={"digits": 64, "synthetic_images": 64},
                model_steps={"resnet20": 12, "transformer": 12}, infer_batch={"resnet20": 256, "transformer": 256},
                matrix={"resnet20": ("synthetic_rgb",), "transformer": ("synthetic_text",)},
                min_block_s=0.15, min_blocks=6, min_timed_s=1.0, tta_evaluations=3,
                infer_blocks=5, infer_min_block_s=0.1, latency_min_count=100, latency_min_s=0.3,
                latency_max_s=1.5, case_timeout_s=600, max_timed_s=1.5, infer_max_timed_s=0.75),
        Profile("gpu", "a GPU's view in minutes: each case at the knee of its throughput-batch curve (--batch-size "
                "auto from 128), the quick profile's training steps, short timing (a GPU step lasts microseconds)",
                train_steps={"image": 160, "text": 48}, task_steps={"digits": 64, "synthetic_images": 64},
                min_block_s=0.1, min_blocks=5, min_timed_s=0.5, tta_evaluations=2,
                infer_blocks=4, infer_min_block_s=0.05, latency_min_count=50, latency_min_s=0.2,
                latency_max_s=0.75, case_timeout_s=300, max_timed_s=0.75, infer_max_timed_s=0.4,
                batch_size="auto", sweep_block_s=0.1),
        Profile("full", "the tutorials' epochs; hours on a CPU",
                epochs={"softmax": 5, "mlp": 10, "mlp64": 5, "cnn": 5, "cnn_dropout": 12, "cnn3": 5,
                        "cnn_bn": 5, "lstm": 3, "cnn_lstm": 2, "resnet20": 5, "transformer": 3}, default_epochs=5,
                min_block_s=1.0, min_blocks=10, min_timed_s=10.0, tta_evaluations=20, infer_blocks=15, infer_min_block_s=0.5,
                latency_min_count=1024, latency_min_s=10.0, latency_max_s=60.0, case_timeout_s=4 * 3600,
                ci_target=0.02, max_timed_s=60.0, infer_max_timed_s=20.0),
    )
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownName("profile", name, PROFILES) from None


def with_overrides(profile: Profile, case: Mapping[str, Any]) -> Profile:
    """The profile with a case's ``estimator``, ``ci_target`` and ``max_timing`` (seconds) options applied."""
    from dataclasses import replace

    changes: dict[str, Any] = {}
    if case.get("estimator"):
        changes["estimator"] = case["estimator"]
    if case.get("ci_target") is not None:
        changes["ci_target"] = float(case["ci_target"])
    if case.get("max_timing") is not None:
        changes["max_timed_s"] = changes["infer_max_timed_s"] = float(case["max_timing"])
    return replace(profile, **changes) if changes else profile


def matrix_tasks(profile: Profile, spec: ModelSpec) -> tuple[str, ...]:
    """The tasks a model runs on when the selection names none: the profile's choice, else those it has targets for."""
    return tuple(profile.matrix.get(spec.name, spec.targets))


def blocks_plan(steps: int, step_s: float, profile: Profile) -> tuple[int, int]:
    """(steps per block, timed blocks incl. one warm-up) for ``steps`` steps of ~``step_s`` seconds."""
    wanted = profile.min_blocks + 1
    per_block = max(1, math.ceil(profile.min_block_s / max(step_s, 1e-9)))
    if steps // per_block < wanted:
        per_block = max(1, steps // wanted)
    per_block = max(per_block, math.ceil(steps / (profile.max_blocks + 1)))
    return per_block, max(1, steps // per_block)
