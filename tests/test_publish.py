"""`dlbench publish`: histories over many runs, the step detector, machines apart, privacy, incremental pages."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_dlbench
from dlbench import results
from dlbench.errors import UsageError
from dlbench.publish.history import collect
from dlbench.publish.site import STATE, publish
from dlbench.testing.history_samples import make_history, make_run
from dlbench.testing.samples import make_record
from dlbench.stats.changepoints import detect_steps
from test_hostile_inputs import records as hostile_records

CASES = [dict(framework="pytorch", variant="eager", model="cnn", task="digits", train=2500.0, infer=9000.0,
              latency_ms=0.4),
         dict(framework="keras", variant="fit", model="cnn", task="digits", train=1500.0, infer=6000.0, latency_ms=0.9),
         dict(framework="pytorch", variant="eager", model="mlp", task="digits", train=40000.0, infer=9e5,
              latency_ms=0.05),
         dict(framework="keras", variant="fit", model="mlp", task="digits", train=30000.0, infer=5e5, latency_ms=0.3)]
SLOW_RUN = 25


def _planted(index: int, case: dict) -> float:
    """pytorch 1.1.0 (from run 25 on) made the pytorch cnn 15% slower; nothing else changed."""
    return 0.85 if index >= SLOW_RUN and case["framework"] == "pytorch" and case["model"] == "cnn" else 1.0


def _version(index: int) -> str:
    return "1.1.0" if index >= SLOW_RUN else "1.0.0"


def write_runs(root: Path, records: list[dict]) -> list[Path]:
    """One run folder per run id, as `dlbench run` leaves them."""
    folders: dict[str, Path] = {}
    for record in records:
        folder = folders.setdefault(record["run_id"], root / record["run_id"])
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "results.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")
    return list(folders.values())


# ---------------------------------------------------------------- the step detector

def test_a_clean_step_is_found_at_its_point_with_its_size():
    values = [100.0, 101, 99, 100, 102, 98, 85, 86, 84, 85, 86]
    (step,) = detect_steps(values, threshold=0.05)
    assert step.index == 6 and step.after < step.before
    assert step.change == pytest.approx(-0.15, abs=0.01)


def test_one_odd_run_is_not_a_change_and_two_at_the_end_are():
    flat = [100.0, 101, 99, 100, 102, 98, 100, 101, 99, 100]
    assert detect_steps(flat[:5] + [70.0] + flat[5:]) == []  # one slow run in the middle
    assert detect_steps(flat + [70.0]) == []  # the newest run alone: wait for the next one
    (step,) = detect_steps(flat + [70.0, 71.0])
    assert step.index == len(flat)


def test_steps_below_the_threshold_or_inside_the_noise_are_not_changes():
    rng = random.Random(3)
    small = [100 * (0.97 if i >= 20 else 1) * (1 + 0.003 * rng.gauss(0, 1)) for i in range(40)]
    assert detect_steps(small, threshold=0.05) == []  # real, but 3% < 5%
    assert [s.index for s in detect_steps(small, threshold=0.01)] == [20]
    noisy = [100 * (0.9 if i >= 20 else 1) * (1 + 0.15 * rng.gauss(0, 1)) for i in range(40)]
    assert detect_steps(noisy, threshold=0.05) == []  # 10% inside 15% run-to-run noise


def test_detect_steps_refuses_values_it_cannot_take_the_log_of():
    with pytest.raises(ValueError):
        detect_steps([1.0, 2.0, 0.0, 1.0])


# ---------------------------------------------------------------- histories

@pytest.mark.parametrize("seed", range(5))
def test_a_planted_15_percent_slowdown_is_found_at_that_run_and_no_other(seed):
    records = make_history(40, CASES, seed=seed, version=_version, factor=_planted, noise=0.02)
    collection = collect(records)
    changes = collection.changes
    assert {(c.case, c.metric) for c in changes} == {
        ("pytorch/eager/cnn/digits/cpu/64", m) for m in ("train_samples_per_s", "infer_samples_per_s",
                                                          "latency_p50_ms")}, changes
    slow_run = make_run(SLOW_RUN, CASES[:1])[0]["run_id"]
    for change in changes:
        assert change.kind == "regression"
        assert change.index == SLOW_RUN and change.run_id == slow_run
        assert change.previous_run_id == make_run(SLOW_RUN - 1, CASES[:1])[0]["run_id"]
        assert "pytorch 1.0.0 → 1.1.0" in change.versions_changed
        assert abs(change.change) == pytest.approx(0.15, abs=0.05)


@pytest.mark.parametrize("seed", range(5))
def test_an_a_a_history_reports_no_change(seed):
    records = make_history(40, CASES, seed=100 + seed, noise=0.02, repeats=2)
    collection = collect(records)
    assert collection.changes == []
    assert len(collection.histories) == len(CASES)
    assert all(len(h.points) == 40 for h in collection.histories.values())


def test_machines_are_kept_apart_even_when_their_runs_interleave(tmp_path):
    # the same case on a fast and a slow machine, runs alternating: mixed, it would be a zig-zag of changes
    fast = make_history(20, CASES[:1], seed=1, env={"cpu": "Fast CPU", "cores": 64}, threads=64)
    slow = make_history(20, CASES[:1], seed=2, env={"cpu": "Slow CPU", "cores": 2}, threads=2,
                        factor=lambda i, c: 0.25)
    for record in slow:
        record["run_id"] += "-slow"
    same_box_one_thread = make_history(20, CASES[:1], seed=3, env={"cpu": "Fast CPU", "cores": 64}, threads=1,
                                       factor=lambda i, c: 1 / 30)
    for record in same_box_one_thread:
        record["run_id"] += "-t1"
    collection = collect(fast + slow + same_box_one_thread)
    assert len(collection.machines) == 3  # a thread budget is part of the machine
    assert collection.changes == []
    for history in collection.histories.values():
        assert len(history.points) == 20
    labels = sorted(m.label for m in collection.machines.values())
    tail = " · cpu · environment unrecorded"  # made-up records say nothing of allocator or pinning
    assert labels == ["Fast CPU · 64 cores · 1 thread" + tail, "Fast CPU · 64 cores · 64 threads" + tail,
                      "Slow CPU · 2 cores · 2 threads" + tail]

    site = tmp_path / "site"
    publish(write_runs(tmp_path / "runs", fast + slow), site, across=True)
    (page,) = (site / "cases").glob("*.html")
    text = page.read_text()
    assert "Fast CPU · 64 cores · 64 threads" in text and "Slow CPU · 2 cores · 2 threads" in text
    assert text.count('class="hchart"') == 8  # four panels per machine, side by side
    assert len(list((site / "m").glob("*/*.html"))) == 2


def test_a_failed_run_is_listed_and_does_not_break_the_history(tmp_path):
    records = make_history(12, CASES[:2], seed=4)
    broken = make_run(12, CASES[:1], seed=4)[0]
    broken.update(status="crashed", error="worker died with SIGSEGV", metrics={})
    records.append(broken)
    collection = collect(records)
    history = collection.histories[next(k for k in collection.histories if "pytorch" in k[1])]
    assert history.points[-1].status == "crashed" and history.points[-1].values == {}
    assert collection.changes == []
    page = publish(write_runs(tmp_path / "runs", records), tmp_path / "site").site
    text = next((page / "m").glob("*/pytorch*.html")).read_text()
    assert "worker died with SIGSEGV" in text


# ---------------------------------------------------------------- privacy

def _private_records() -> list[dict]:
    records = make_history(6, CASES[:2], seed=5, env={"hostname": "secret-host-7431.corp.example"})
    failed = make_run(6, CASES[:1], seed=5, env={"hostname": "secret-host-7431.corp.example"})[0]
    failed.update(status="failed", metrics={}, log="/home/alice/bench/runs/r6/logs/pytorch-r0.log",
                  error="plugin pytorch failed in prepare: FileNotFoundError: /home/alice/bench/data/x.npz "
                        "(on secret-host-7431)")
    return records + [failed]


def test_host_names_user_names_and_paths_are_left_out_by_default(tmp_path):
    site = publish(write_runs(tmp_path / "runs", _private_records()), tmp_path / "site").site
    files = [p for p in site.rglob("*") if p.is_file()]
    assert len(files) >= 5
    for path in files:
        text = path.read_text()
        for secret in ("secret-host-7431", "alice", "/home/", str(tmp_path)):
            assert secret not in text, (path, secret)
    case_page = next((site / "m").glob("*/pytorch*.html")).read_text()
    assert "FileNotFoundError: …/x.npz (on &lt;redacted&gt;)" in case_page  # the error itself stays useful


def test_keep_hostnames_keeps_them(tmp_path):
    site = publish(write_runs(tmp_path / "runs", _private_records()), tmp_path / "site", keep_hostnames=True).site
    index = (site / "index.html").read_text()
    assert "secret-host-7431.corp.example" in index and "host names kept" in index
    assert "/home/alice/bench/data/x.npz" in next((site / "m").glob("*/pytorch*.html")).read_text()


# ---------------------------------------------------------------- schema versions

def test_records_of_an_older_schema_are_upgraded_on_read(tmp_path, monkeypatch):
    def to_1(record: dict) -> dict:  # a made-up version 0 that called the batch size "batch"
        record["batch_size"] = record.pop("batch")
        return record

    monkeypatch.setitem(results.UPGRADES, 0, to_1)
    old = make_history(6, CASES[:1], seed=6)
    for record in old:
        record["schema_version"] = 0
        record["batch"] = record.pop("batch_size")
    new = [r for i in range(6, 12) for r in make_run(i, CASES[:1], seed=6)]
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("".join(json.dumps(r) + "\n" for r in old + new))
    read = list(results.iter_records(mixed))
    assert {r["schema_version"] for r in read} == {1} and all(r["batch_size"] == 64 for r in read)
    site = publish([mixed], tmp_path / "site").site
    (history,) = publish([mixed], tmp_path / "site").collection.histories.values()
    assert len(history.points) == 12  # one history: the upgraded records are the same case
    assert (site / "index.html").is_file()


def test_a_record_newer_than_this_dlbench_is_refused_with_file_and_line(tmp_path):
    records = make_history(2, CASES[:1])
    records[1]["schema_version"] = results.SCHEMA_VERSION + 1
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(results.ResultsError, match=rf"{path}:2: schema_version 2 is newer than this dlbench"):
        list(results.iter_records(path))
    with pytest.raises(UsageError, match=rf"{path}:2: .*upgrade dlbench"):
        publish([path], tmp_path / "site")


def test_a_version_with_no_upgrade_path_is_refused():
    record = make_record()
    record["schema_version"] = 0
    assert results.upgrade_record(record) is record
    assert "schema_version 0 is not supported" in results.validate(record)


# ---------------------------------------------------------------- incremental

def test_publishing_again_only_renders_pages_whose_inputs_changed(tmp_path):
    runs = write_runs(tmp_path / "runs", make_history(8, CASES, seed=7))
    site = tmp_path / "site"
    first = publish(runs, site)
    assert len(first.written) == len(CASES) + 3 and not first.unchanged  # cases, index, changes.html/.json
    stamps = {p: p.stat().st_mtime_ns for p in site.rglob("*.html")}

    again = publish(runs, site)
    assert again.written == [] and len(again.unchanged) == len(first.written)
    assert {p: p.stat().st_mtime_ns for p in site.rglob("*.html")} == stamps

    # a new run of one case: its page and the index change, nothing else
    runs += write_runs(tmp_path / "runs", make_run(8, CASES[2:3], seed=7))
    third = publish(runs, site)
    (mlp_page,) = [p for p in first.written if "pytorch_eager_mlp" in p]
    assert sorted(third.written) == sorted(["index.html", mlp_page])

    # a case no longer given: its page goes, pages the site did not write stay
    (site / "notes.txt").write_text("mine")
    keras_only = write_runs(tmp_path / "keras", [r for r in make_history(8, CASES, seed=7) if r["framework"] == "keras"])
    fourth = publish(keras_only, site)
    assert len(fourth.removed) == 2 and (site / "notes.txt").is_file()
    assert not list((site / "m").glob("*/pytorch*.html"))


# ---------------------------------------------------------------- the command line

def test_cli_publishes_then_reports_nothing_to_render(tmp_path):
    runs = write_runs(tmp_path / "runs", make_history(6, CASES[:2], seed=8))
    args = ["publish", *map(str, runs), "-o", str(tmp_path / "site")]
    first = run_dlbench(*args)
    assert first.returncode == 0, first.stderr
    assert "published 6 runs on 1 machine(s), 2 histories" in first.stdout and "5 page(s) written" in first.stdout
    second = run_dlbench(*args, "--threshold", "10%")  # a new threshold is an input of every HTML page
    assert second.returncode == 0 and "4 page(s) written, 1 unchanged" in second.stdout
    third = run_dlbench(*args, "--threshold", "10%")
    assert "0 page(s) written, 5 unchanged" in third.stdout
    assert (tmp_path / "site" / STATE).is_file()


@pytest.mark.parametrize("case", ["missing", "not-a-run", "foreign-site", "bad-threshold", "bad-line"])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, case):
    run = write_runs(tmp_path / "runs", make_history(1, CASES[:1]))[0]
    site = tmp_path / "site"
    args = [str(run)]
    if case == "missing":
        args = [str(tmp_path / "reports" / "runs" / "*")]
    elif case == "not-a-run":
        (tmp_path / "empty").mkdir()
        args.append(str(tmp_path / "empty"))
    elif case == "foreign-site":
        site.mkdir()
        (site / "thesis.tex").write_text("keep me")
    elif case == "bad-line":
        with open(run / "results.jsonl", "a") as handle:
            handle.write("{not json\n")
            handle.write(json.dumps(make_record()) + "\n")
    extra = ["--threshold", "five"] if case == "bad-threshold" else []
    process = run_dlbench("publish", *args, "-o", str(site), *extra)
    assert process.returncode == 2, (process.stdout, process.stderr)
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlbench: error: ") and "Traceback" not in process.stderr
    if case == "foreign-site":
        assert (site / "thesis.tex").read_text() == "keep me"


def test_a_site_folder_among_the_runs_is_skipped_and_an_empty_run_noted(tmp_path):
    runs = write_runs(tmp_path / "runs", make_history(3, CASES[:1]))
    site = tmp_path / "runs" / "site"
    publish(runs, site)
    interrupted = tmp_path / "runs" / "20250109-000000-dead"
    interrupted.mkdir()
    (interrupted / "run.json").write_text("{}")
    (runs[0] / ".lock").write_text("12345")  # a run still writing its results
    process = run_dlbench("publish", *map(str, sorted((tmp_path / "runs").iterdir())), "-o", str(site))
    assert process.returncode == 0, process.stderr
    assert f"note: skipped {site}: a site built by dlbench publish" in process.stdout
    assert f"note: skipped {interrupted}: a run folder with no results yet" in process.stdout
    assert f"note: {runs[0]} is still running" in process.stdout
    assert "published 3 runs" in process.stdout


def test_real_runs_of_the_fake_framework_publish(tmp_path):
    runs = []
    for name, variant in (("a", "sleep"), ("b", "sleep"), ("c", "raise-train")):
        out = tmp_path / name
        process = run_dlbench("run", "-f", "fake", "--variant", variant, "-m", "softmax", "-t", "synthetic_images",
                              "--profile", "smoke", "--steps", "60", "--out", str(out), plugins="fake_plugins")
        assert process.returncode in (0, 1), process.stderr
        runs.append(out)
    process = run_dlbench("publish", *map(str, runs), "-o", str(tmp_path / "site"))
    assert process.returncode == 0, process.stderr
    assert "published 3 runs on 1 machine(s), 2 histories" in process.stdout
    pages = {p.name: p.read_text() for p in (tmp_path / "site" / "m").glob("*/*.html")}
    (sleep,) = [text for name, text in pages.items() if "_sleep_" in name]
    assert sleep.count("<polyline") == 8  # two runs: a line in every panel, by date and by version
    (failed,) = [text for name, text in pages.items() if "raise-train" in name]
    assert "failed in train: RuntimeError: the fake framework fell over" in failed
    assert str(tmp_path) not in failed  # the record's log path is not published


# ---------------------------------------------------------------- hostile records

@settings(max_examples=25, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(hostile_records(), min_size=1, max_size=4))
def test_publish_survives_generated_records(tmp_path_factory, capsys, batch):
    from dlbench.cli import main

    folder = tmp_path_factory.mktemp("hostile")
    results_path = folder / "results.jsonl"
    results_path.write_text("".join(json.dumps(r, allow_nan=True, default=str) + "\n" for r in batch))
    code = main(["publish", str(results_path), "-o", str(folder / "site")])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and code in (0, 2)
    if code == 2:
        assert captured.err.strip().splitlines()[-1].startswith("dlbench: error: ")
    for page in (folder / "site").rglob("*.html"):
        text = page.read_text()
        assert "<script>alert(1)</script>" not in text and "<b>x</b>" not in text
