"""The published site as a reader sees it: headless Chromium from disk, network trapped, charts in the DOM."""

from __future__ import annotations

import os
import shutil

import pytest

from dlbench.publish.site import publish
from dlbench.testing.history_samples import make_history
from test_publish import CASES, _planted, _version, write_runs
from test_report_browser import CHROMIUM, png_size, render_offline

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed "
                                "(apt-get install chromium)")


def test_site_opens_from_disk_with_its_charts_and_no_network_request(tmp_path):
    fast = make_history(30, CASES, seed=21, version=_version, factor=_planted)
    other = make_history(30, CASES[:2], seed=22, env={"cpu": "Other CPU", "cores": 8}, threads=8)
    for record in other:
        record["run_id"] += "-b"
    hostile = make_history(3, [dict(CASES[0], model="<script>alert(1)</script>")], seed=23)
    site = publish(write_runs(tmp_path / "runs", fast + other + hostile), tmp_path / "site", across=True).site
    case = next((site / "m").glob("example-cpu*/pytorch_eager_cnn_*.html"))  # the machine with the slowdown
    hostile_page = next((site / "m").glob("*/*script*.html"))
    side_by_side = next((site / "cases").glob("pytorch_eager_cnn_*.html"))

    doms = render_offline({"index": site / "index.html", "case": case, "hostile": hostile_page,
                           "across": side_by_side, "changes": site / "changes.html"}, tmp_path)
    keep = os.environ.get("DLBENCH_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(tmp_path / "case.png", keep)
    assert png_size(tmp_path / "case.png") == (1440, 2200) and (tmp_path / "case.png").stat().st_size > 50_000

    dom = doms["case"]
    assert dom.count('class="hchart"') == 8  # four metrics against date, four against version
    assert dom.count('class="band"') >= 6 and dom.count('class="line"') == 8
    assert dom.count('class="change regression"') == 3 + 3  # each watched metric, by date and by version
    assert "pytorch 1.0.0 → 1.1.0" in dom and "Against pytorch version" in dom
    index = doms["index"]
    for text in ("Recent changes", "Latest results", "Machines", "Runs", "Other CPU · 8 cores · 8 threads",
                 "regression", "pytorch/eager/cnn/digits/cpu/64"):
        assert text in index, text
    assert doms["across"].count('class="hchart"') == 8  # two machines side by side, four panels each
    for dom in doms.values():
        assert "<script" not in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in doms["hostile"]
