"""A plugin written for the first zoo meets resnet20 and transformer: it is listed, it runs the models it knows,
and the new ones are reported as not built, with the reason, never as failures (tests/plugins/oldzoo_plugin.py)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import pytest

from conftest import dlbench_env, kit_suite, read_records, run_dlbench

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                reason="the first-zoo plugin runs the old models with the pytorch plugin's session")

PLUGIN = "oldzoo_plugin"


def test_an_old_plugin_is_listed_and_its_supports_leaves_the_new_models_out_with_a_note(monkeypatch):
    from dlbench.cli.listing import frameworks_table
    from dlbench.running.plan import Selection, make_plan
    from dlbench.plugins.registry import load_registry

    monkeypatch.setenv("DLBENCH_PLUGINS", PLUGIN)
    monkeypatch.setenv("DLBENCH_DISABLE_PLUGINS", "pytorch,keras,jax")
    rows = {line.split()[0]: line for line in frameworks_table().splitlines() if line.startswith("oldzoo")}
    assert set(rows) == {"oldzoo", "oldzoo_lax"} and all(r.rstrip().endswith("ok") for r in rows.values()), rows
    plan = make_plan(load_registry(), Selection(["oldzoo"], ["softmax", "resnet20", "transformer"],
                                                ["digits", "synthetic_text"]))
    assert [(case.model, case.task) for case in plan.cases] == [("softmax", "digits")]
    assert ("oldzoo does not implement resnet20 (its supports() is False; resnet20 needs layer kind "
            "'global_avgpool', layer kind 'residual', new since the first zoo)") in plan.notes
    transformer = next(note for note in plan.notes if "implement transformer" in note)
    assert "layer kind 'attention'" in transformer and "activation 'gelu'" in transformer


def test_an_old_plugin_that_says_yes_runs_the_old_models_and_its_build_error_skips_the_new_ones(tmp_path):
    out = tmp_path / "run"
    run = run_dlbench("run", "-f", "oldzoo_lax", "-m", "softmax", "-m", "resnet20", "-m", "transformer", "-t", "digits",
                      "-t", "synthetic_text", "--profile", "smoke", "--threads", "1", "--out", str(out),
                      plugins=PLUGIN, timeout=300)
    said = run.stdout + run.stderr
    assert run.returncode == 0, said
    records = {r["model"]: r for r in read_records(out)}
    assert set(records) == {"softmax", "resnet20", "transformer"}
    ran = records["softmax"]
    assert ran["status"] == "ok" and ran["metrics"]["params"] == 7850, ran.get("error")
    # supports() said yes and the builder refused: a skipped record naming the layer kind, the run went on
    for model, kind in (("resnet20", "residual"), ("transformer", "position_embedding")):
        skipped = records[model]
        assert skipped["status"] == "skipped", skipped
        assert skipped["error"].startswith(f"unsupported: plugin {PLUGIN} cannot build {model}, layer kind {kind!r} "
                                           "(its prepare said ValueError: "), skipped["error"]
    assert "skipped: unsupported: plugin oldzoo_plugin cannot build resnet20" in said


SUITE = kit_suite("TestOldZooLax", "oldzoo_lax", PLUGIN, ["softmax"])


def test_the_kit_says_which_zoo_models_an_old_plugin_does_not_build_and_passes_it(tmp_path):
    (tmp_path / "test_oldzoo.py").write_text(SUITE)
    env = dlbench_env()
    env.pop("DLBENCH_PLUGINS", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "test_oldzoo.py",
                           "-k", "says_which or param_count or first_loss or trains_a_model"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "failed" not in done.stdout, done.stdout[-4000:]
    assert re.search(r"oldzoo_lax does not build yet: resnet20 \(oldzoo_lax does not build resnet20 yet: layer kind "
                     r"'residual' \(ValueError: resnet20: layer Residual\(", done.stdout), done.stdout[-4000:]
    assert "transformer (oldzoo_lax does not build transformer yet: layer kind 'position_embedding'" in done.stdout
    passed = int(re.search(r"(\d+) passed", done.stdout)[1])
    assert passed >= 2 * 9, done.stdout[-4000:]  # parameter count and first loss of the nine models it builds
