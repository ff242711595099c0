"""A plugin written for the first zoo meets resnet20 and transformer: it is listed, it runs the models it knows,
and the new ones are reported as not built, with the reason, never as failures (tests/plugins/oldzoo_plugin.py)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

from conftest import dlbench_env, read_records, run_dlbench

PLUGIN = "oldzoo_plugin"


def test_an_old_plugin_runs_the_old_models_and_skips_the_new_ones_with_a_reason(tmp_path):
    listing = run_dlbench("list", "frameworks", plugins=PLUGIN, timeout=120)
    rows = {line.split()[0]: line for line in listing.stdout.splitlines() if line.startswith("oldzoo")}
    assert set(rows) == {"oldzoo", "oldzoo_lax"} and all(r.rstrip().endswith("ok") for r in rows.values()), \
        listing.stdout
    out = tmp_path / "run"
    run = run_dlbench("run", "-f", "oldzoo", "-f", "oldzoo_lax", "-m", "softmax", "-m", "resnet20", "-m", "transformer",
                      "-t", "digits", "-t", "synthetic_text", "--profile", "smoke", "--threads", "1", "--out", str(out),
                      plugins=PLUGIN, timeout=300)
    said = run.stdout + run.stderr
    assert run.returncode == 0, said
    # supports() said no: left out of the plan, with what the model has that the first zoo had not
    assert ("note: oldzoo does not implement resnet20 (its supports() is False; resnet20 needs layer kind "
            "'global_avgpool', layer kind 'residual', new since the first zoo)") in said
    assert "note: oldzoo does not implement transformer" in said and "activation 'gelu'" in said
    records = {(r["framework"], r["model"]): r for r in read_records(out)}
    assert set(records) == {("oldzoo", "softmax"), ("oldzoo_lax", "softmax"), ("oldzoo_lax", "resnet20"),
                            ("oldzoo_lax", "transformer")}
    for framework in ("oldzoo", "oldzoo_lax"):
        ran = records[(framework, "softmax")]
        assert ran["status"] == "ok" and ran["metrics"]["params"] == 7850, ran.get("error")
    # supports() said yes and the builder refused: a skipped record naming the layer kind, the run went on
    for model, kind in (("resnet20", "residual"), ("transformer", "position_embedding")):
        skipped = records[("oldzoo_lax", model)]
        assert skipped["status"] == "skipped", skipped
        assert skipped["error"].startswith(f"unsupported: plugin {PLUGIN} cannot build {model}, layer kind {kind!r} "
                                           "(its prepare said ValueError: "), skipped["error"]
    assert "skipped: unsupported: plugin oldzoo_plugin cannot build resnet20" in said


SUITE = '''
from dlbench.testing import FrameworkConformance


class TestOldZooLax(FrameworkConformance):
    framework = "oldzoo_lax"
    plugin_module = "oldzoo_plugin"
    models = ["softmax"]
'''


def test_the_kit_says_which_zoo_models_an_old_plugin_does_not_build_and_passes_it(tmp_path):
    (tmp_path / "test_oldzoo.py").write_text(textwrap.dedent(SUITE))
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
