"""Which (model, task) pairs a selection plans: with no task named, each model's matrix tasks only."""

from __future__ import annotations

import fake_plugins

from dlbench.running.plan import Selection, make_plan
from dlbench.plugins.registry import load_registry


def _pairs(monkeypatch, **selection) -> set[tuple[str, str]]:
    monkeypatch.setenv("DLBENCH_DISABLE_PLUGINS", "pytorch,keras,jax")
    registry = load_registry(extra_plugins=(fake_plugins,))
    plan = make_plan(registry, Selection(frameworks=["fake"], **selection))
    return {(case.model, case.task) for case in plan.cases + [case for case, _ in plan.skipped]}


def test_with_no_task_named_a_model_runs_on_the_tasks_it_has_a_target_for(monkeypatch):
    full = _pairs(monkeypatch, models=["softmax", "resnet20", "transformer"], profile="full")
    assert {task for model, task in full if model == "softmax"} == {"fashion_mnist", "mnist", "digits",
                                                                   "synthetic_images"}  # never CIFAR-10's shape
    assert {task for model, task in full if model == "resnet20"} == {"fashion_mnist", "mnist", "digits", "cifar10",
                                                                    "synthetic_rgb"}
    assert {task for model, task in full if model == "transformer"} == {"imdb", "synthetic_text"}


def test_the_quick_profile_keeps_the_big_models_to_their_synthetic_task(monkeypatch):
    quick = _pairs(monkeypatch, models=["cnn", "resnet20", "transformer"])
    assert {task for model, task in quick if model == "resnet20"} == {"synthetic_rgb"}
    assert {task for model, task in quick if model == "transformer"} == {"synthetic_text"}
    assert {task for model, task in quick if model == "cnn"} == {"fashion_mnist", "mnist", "digits", "synthetic_images"}


def test_a_named_task_meets_every_model_of_its_modality(monkeypatch):
    named = _pairs(monkeypatch, models=["softmax", "resnet20", "lstm"], tasks=["synthetic_rgb", "fashion_mnist"])
    assert named == {("softmax", "synthetic_rgb"), ("softmax", "fashion_mnist"), ("resnet20", "synthetic_rgb"),
                     ("resnet20", "fashion_mnist")}
