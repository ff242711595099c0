"""`dlbench compare`: a real 20% slowdown fails the comparison and is named; pure noise passes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from dlbench.errors import UsageError
from dlbench.report import add_commands
from dlbench.report.commands import parse_threshold
from dlbench.report.compare import Evidence, compare_records, significance
from dlbench.report.samples import make_record, make_records

SLOWED = "pytorch/eager/cnn/digits/cpu/64"


def run_set(seed: int, cnn_speed: float = 1.0, repeats: int = 3, noise: float = 0.03):
    cases = [dict(framework="pytorch", model="cnn", task="digits", train=2500 * cnn_speed, infer=12000,
                  latency_ms=0.4),
             dict(framework="keras", variant="fit", model="cnn", task="digits", train=1500, infer=9000,
                  latency_ms=1.2),
             dict(framework="pytorch", model="mlp", task="digits", train=20000, infer=150000, latency_ms=0.08)]
    return make_records(cases, repeats=repeats, seed=seed, noise=noise)


def write(path: Path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="dlbench")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


@pytest.mark.parametrize("repeats", [1, 3, 5])
def test_a_20_percent_slowdown_exits_1_and_names_the_case(tmp_path, capsys, repeats):
    base = write(tmp_path / "base.jsonl", run_set(seed=1, repeats=repeats))
    new = write(tmp_path / "new.jsonl", run_set(seed=2, cnn_speed=0.8, repeats=repeats))
    # one repeat a side cannot see run-to-run variation (3% here): the threshold has to cover it
    threshold = "10%" if repeats == 1 else "5%"
    assert run_cli("compare", base, new, "--threshold", threshold) == 1
    out = capsys.readouterr().out
    slower = [line for line in out.splitlines() if line.startswith("SLOWER:")]
    assert len(slower) == 1 and SLOWED in slower[0] and "train_samples_per_s" in slower[0]
    row = next(line for line in out.splitlines() if line.startswith(SLOWED) and "train_samples_per_s" in line)
    assert " slower " in row and ("-1" in row or "-2" in row)  # about -20%
    test = {1: "MWU blocks 10v10", 3: "repeats apart", 5: "MWU repeats 5v5"}[repeats]
    assert test in row


@pytest.mark.parametrize("repeats", [3, 5])
def test_pure_noise_exits_0(tmp_path, capsys, repeats):
    base = write(tmp_path / "base.jsonl", run_set(seed=1, repeats=repeats))
    same = write(tmp_path / "same.jsonl", run_set(seed=3, repeats=repeats))
    assert run_cli("compare", base, same, "--threshold", "5%") == 0
    out = capsys.readouterr().out
    assert "SLOWER" not in out and "0 slower" in out
    verdicts = [line.split()[5] for line in out.splitlines() if line.startswith(("pytorch/", "keras/"))]
    assert verdicts == ["same"] * 9  # 3 cases x 3 default metrics


def test_noise_over_many_seeds_rarely_fails(tmp_path):
    """The false-alarm rate on noise only (3% per block and per repeat) with the default threshold."""
    alarms = sum(bool(compare_records(run_set(seed=s), run_set(seed=100 + s)).regressions) for s in range(20))
    assert alarms <= 1


def test_faster_is_not_a_regression_and_metric_and_threshold_options(tmp_path, capsys):
    base = write(tmp_path / "base.jsonl", run_set(seed=1, repeats=5))
    new = write(tmp_path / "new.jsonl", run_set(seed=2, cnn_speed=1.3, repeats=5))
    assert run_cli("compare", base, new, "--metric", "train_samples_per_s") == 0
    out = capsys.readouterr().out
    assert "faster" in out and "infer_samples_per_s" not in out
    slow = write(tmp_path / "slow.jsonl", run_set(seed=2, cnn_speed=0.8, repeats=5))
    assert run_cli("compare", base, slow, "--threshold", "25") == 0  # 20% is within a 25% threshold
    capsys.readouterr()


def test_latency_up_is_slower(tmp_path, capsys):
    base = make_records([dict(latency_ms=1.0)], repeats=5, seed=1, noise=0.01)
    new = make_records([dict(latency_ms=1.5)], repeats=5, seed=2, noise=0.01)
    result = compare_records(base, new, ["latency_p50_ms"])
    assert [c.verdict for c in result.changes] == ["slower"] and result.changes[0].change > 0.4


def test_cases_in_one_file_only_are_listed_not_compared(tmp_path, capsys):
    base_records = run_set(seed=1)
    new_records = [r for r in run_set(seed=2) if r["model"] != "mlp"]
    new_records += [make_record("pytorch", "lstm", "synthetic_text", repeat=r) for r in range(3)]
    new_records += [make_record("keras", "cnn", "digits", variant="fit", repeat=3, status="crashed",
                                error="SIGSEGV", run_id="x")]
    base, new = write(tmp_path / "a.jsonl", base_records), write(tmp_path / "b.jsonl", new_records)
    assert run_cli("compare", base, new) == 0
    out = capsys.readouterr().out
    assert "only in BASE (not compared):\n  - pytorch/eager/mlp/digits/cpu/64" in out
    assert "only in NEW (not compared):\n  - pytorch/eager/lstm/synthetic_text/cpu/64" in out
    assert "keras/fit/cnn/digits/cpu/64" in out  # its ok repeats are still compared


def test_a_case_that_failed_on_one_side_is_reported_not_compared(tmp_path, capsys):
    ok = write(tmp_path / "a.jsonl", [make_record()])
    failed = write(tmp_path / "b.jsonl", [make_record(status="failed", error="plugin pytorch failed in train")])
    assert run_cli("compare", ok, failed) == 1  # ran ok before, broken now: a regression
    out = capsys.readouterr().out
    assert "did not run ok (not compared):\n  - pytorch/eager/cnn/digits/cpu/64: NEW failed: plugin" in out
    assert "BROKEN: pytorch/eager/cnn/digits/cpu/64: ran ok in BASE, not in NEW" in out
    assert run_cli("compare", failed, ok) == 0  # fixed now: not a regression


def test_test_choice_follows_the_evidence():
    few = Evidence([1.0, 1.1, 1.2], [], None)
    many = Evidence([2.0, 2.1, 2.2, 2.3], [], None)
    assert significance(many, Evidence([1.0, 1.1, 1.2, 1.3], [], None))[1].startswith("MWU repeats 4v4")
    # 3 against 3 cannot reach p < 0.05 with Mann-Whitney: blocks, then CIs decide
    assert significance(few, Evidence([2.0, 2.1, 2.2], [], (2.0, 2.2)))[1] == "untested (one value per side)"
    assert significance(Evidence([1.0, 1.1, 1.2], [], (1.0, 1.2)),
                        Evidence([2.0, 2.1, 2.2], [], (2.0, 2.2))) == (True, "CIs apart")
    assert significance(Evidence([1.0], [], (0.9, 1.1)), Evidence([1.05], [], (1.0, 1.2))) == (False, "CIs overlap")
    single = significance(Evidence([1.0], [1.0, 1.01, 0.99, 1.02], None), Evidence([0.8], [0.8, 0.81, 0.79, 0.8], None))
    assert single[0] and single[1].startswith("MWU blocks 4v4")


def test_threshold_parsing_and_usage_errors(tmp_path):
    assert parse_threshold("5%") == pytest.approx(0.05) and parse_threshold("2.5") == pytest.approx(0.025)
    for bad in ("five", "-5%", "5%%", "", "1e9"):
        with pytest.raises(UsageError, match="--threshold"):
            parse_threshold(bad)
    good = write(tmp_path / "a.jsonl", [make_record()])
    with pytest.raises(UsageError, match="--metric accuracy: unknown metric"):
        run_cli("compare", good, good, "--metric", "accuracy")
    with pytest.raises(UsageError, match="no such results file"):
        run_cli("compare", good, str(tmp_path / "missing.jsonl"))
    (tmp_path / "bad.jsonl").write_text(json.dumps(make_record()) + "\n{\n")
    with pytest.raises(UsageError, match=f"{tmp_path / 'bad.jsonl'}:2: not valid JSON"):
        run_cli("compare", good, str(tmp_path / "bad.jsonl"))

