"""The rules behind --executor ray that need no cluster: node placement, shipped data, machine grouping in
tables, and the one-line errors (Ray missing, flags without the executor, an address nobody answers)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import dlbench_env, run_dlbench
from dlbench.machine.identity import Machine, key_of
from dlbench.running.executors.placement import HEAD_RESOURCE, Need, Node, pick
from dlbench.testing.samples import make_record
from dlbench.report.summary import summarise
from dlbench.report.table import comparison_table
from dlbench.testing.datafiles import isolate, write_idx_folder

HEAD = Node("h" * 56, "head", "10.0.0.1", {"CPU": 2, HEAD_RESOURCE: 1})
BIG = Node("b" * 56, "big", "10.0.0.2", {"CPU": 8, "big": 1})
GPU = Node("g" * 56, "gpu", "10.0.0.3", {"CPU": 4, "GPU": 1})


def test_a_node_runs_one_case_at_a_time_unless_packing_is_asked_for():
    one = Need(cpus=2)
    assert pick([HEAD, BIG], one, {}, pack=False) is BIG  # workers before the head
    assert pick([HEAD, BIG], one, {BIG.node_id: [one]}, pack=False) is HEAD
    assert pick([HEAD, BIG], one, {BIG.node_id: [one], HEAD.node_id: [one]}, pack=False) is None
    busy = {BIG.node_id: [one, one, one]}
    assert pick([BIG], one, busy, pack=True) is BIG  # 6 of 8 CPUs taken, 2 more fit
    assert pick([BIG], one, {BIG.node_id: [one] * 4}, pack=True) is None


def test_resources_node_types_and_retries_choose_the_node():
    assert pick([HEAD, BIG], Need(cpus=4), {}, pack=False) is BIG  # the head has only 2 CPUs
    assert pick([HEAD, BIG, GPU], Need(cpus=1, gpus=1), {}, pack=False) is GPU
    assert pick([HEAD, GPU], Need(cpus=1, node_type="big"), {}, pack=False) is None
    assert pick([HEAD, BIG], Need(cpus=1, node_type="big"), {}, pack=False) is BIG
    # a retry avoids the node it crashed on, waits for another one that is busy, and only falls back
    # to the same node when no other live node could ever run it
    assert pick([HEAD, BIG], Need(cpus=1), {}, pack=False, avoid=[BIG.node_id]) is HEAD
    assert pick([HEAD, BIG], Need(cpus=1), {HEAD.node_id: [Need(1)]}, pack=False, avoid=[BIG.node_id]) is None
    assert pick([BIG], Need(cpus=1), {}, pack=False, avoid=[BIG.node_id]) is BIG
    assert Need(cpus=3, gpus=1, node_type="big").ray_options() == {"num_cpus": 3, "num_gpus": 1,
                                                                    "resources": {"big": 0.001}}


def test_shipped_arrays_give_the_worker_exactly_the_data_it_would_load_itself(tmp_path, monkeypatch):
    from dlbench.data import load_task
    from dlbench.data.shipping import load_shipped, read_for_shipping, write_shipment

    isolate(monkeypatch, tmp_path)
    write_idx_folder(tmp_path / "data" / "mnist", n_train=300, n_test=50)
    shipment = read_for_shipping("mnist", str(tmp_path / "data"))
    assert read_for_shipping("synthetic_images", None) is None  # generated on every node
    (tmp_path / "node").mkdir()
    path = write_shipment(shipment, tmp_path / "node")
    shipped = load_shipped(str(path), "mnist", seed=3, augment=True)
    direct = load_task("mnist", str(tmp_path / "data"), seed=3, augment=True)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(shipped, name), getattr(direct, name))
    assert shipped.pipeline == direct.pipeline
    assert shipped.source.startswith(direct.source.split(", cache")[0]) and "object store" in shipped.source


def test_tables_group_by_machine_and_never_divide_across_machines():
    small = {"cpu": "Small CPU", "cores": 2, "gpu": [], "hostname": "a"}
    large = {"cpu": "Large CPU", "cores": 64, "gpu": ["NVIDIA H100 80GB HBM3, 550.54"], "hostname": "b"}
    large_label = Machine.from_facts(large).label
    assert large_label == "Large CPU · 64 cores · 1× NVIDIA H100 80GB HBM3"
    small_label = "Small CPU · 2 cores"
    records = [make_record("pytorch", "cnn", train=1000, noise=0, env=small),
               make_record("keras", "cnn", variant="fit", train=500, noise=0, env=small),
               make_record("pytorch", "cnn", train=9000, noise=0, env=large),
               make_record("keras", "cnn", variant="fit", train=18000, noise=0, env=large)]
    assert {key_of(r).machine.label for r in records} == {small_label, large_label}
    summary = summarise(records)
    assert len(summary) == 4 and set(summary["machine"]) == {small_label, large_label}
    table = comparison_table(records)
    header, _, *rows = table.splitlines()[:4]
    assert header.split("|")[1].strip() == "machine"
    by_machine = {row.split("|")[1].strip(): row for row in rows}
    # speed is relative to the fastest framework on the same machine: 0.50x on both, never 9000/18000-style
    assert "0.50×" in by_machine[small_label] and "1.00×" in by_machine[small_label]
    assert "0.50×" in by_machine[large_label]
    assert "no ratio is taken across them" in table
    one = comparison_table(records[:2])
    assert "machine" not in one.splitlines()[0]


def test_retried_attempts_do_not_count_as_the_case(tmp_path):
    crashed = make_record("pytorch", "cnn", status="crashed", error="worker killed by SIGKILL", retried=True)
    ok = make_record("pytorch", "cnn", attempt=1)
    summary = summarise([crashed, ok])
    assert list(summary["n_repeats"]) == [1] and list(summary["status"]) == ["ok"]
    assert "Not measured" not in comparison_table([crashed, ok])


def test_without_ray_the_executor_is_one_line_naming_the_install_command(tmp_path):
    code = ("import sys; sys.modules['ray'] = None; from dlbench.cli import main; "
            f"sys.exit(main(['run', '-f', 'fake', '-m', 'mlp', '-t', 'synthetic_images', '--executor', 'ray', "
            f"'--out', {str(tmp_path / 'out')!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env=dlbench_env("fake_plugins"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "pip install 'dlbench[ray]'" in result.stderr
    assert not (tmp_path / "out").exists()


def test_importing_the_core_and_running_locally_never_imports_ray():
    code = ("import sys, dlbench.cli, dlbench.running.runner, dlbench.running.executors, dlbench.running.executors.local, "
            "dlbench.report.table; assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("args, says", [
    (("--pack",), "--pack only apply to --executor ray"),
    (("--ray-address", "127.0.0.1:6379", "--node-type", "big"), "--ray-address, --node-type only apply"),
    (("--executor", "ray", "--ray-address", "127.0.0.1:1"), "--ray-address 127.0.0.1:1: no Ray cluster answers"),
    (("--executor", "ray", "--ray-address", "nonsense"), "--ray-address nonsense: expected HOST:PORT"),
    (("--executor", "ray", "--retries", "99"), "--retries must be between 0 and 10"),
])
def test_executor_flags_that_cannot_work_are_one_line(tmp_path, args, says):
    pytest.importorskip("ray")
    result = run_dlbench("run", "-f", "fake", "-m", "mlp", "-t", "synthetic_images", "--out", str(tmp_path / "o"),
                         *args, plugins="fake_plugins", timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0 and says in result.stderr, result.stderr
    assert not (tmp_path / "o" / "results.jsonl").exists()


def test_reports_give_each_machine_its_own_sections(tmp_path):
    from dlbench.report.folder import write_report

    small = {"cpu": "Small CPU", "cores": 2, "gpu": [], "hostname": "a"}
    large = {"cpu": "Large CPU", "cores": 64, "gpu": [], "hostname": "b"}
    records = [make_record("pytorch", "cnn", env=small), make_record("keras", "cnn", variant="fit", env=small),
               make_record("pytorch", "cnn", env=large, train=5000)]
    markdown = (write_report(records, tmp_path / "report") / "report.md").read_text()
    assert "## digits on Small CPU · 2 cores" in markdown and "## digits on Large CPU · 64 cores" in markdown
    assert "| machine" in markdown.split("## Overview")[1]
    assert len(list((tmp_path / "report").glob("chart-*-throughput-*.svg"))) == 2  # a chart per machine
