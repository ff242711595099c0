"""`dlbench compare`: a real 20% slowdown fails the comparison and is named; pure noise passes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from dlbench.errors import UsageError
from dlbench.cli.report import add_commands
from dlbench.cli.report import parse_threshold
from dlbench.report.compare import Evidence, compare_records, significance
from dlbench.testing.samples import make_record, make_records

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


@pytest.mark.parametrize("repeats, noise", [(3, 0.01), (5, 0.03), (8, 0.03)])
def test_a_20_percent_slowdown_exits_1_and_names_the_case(tmp_path, capsys, repeats, noise):
    base = write(tmp_path / "base.jsonl", run_set(seed=1, repeats=repeats, noise=noise))
    new = write(tmp_path / "new.jsonl", run_set(seed=2, cnn_speed=0.8, repeats=repeats, noise=noise))
    assert run_cli("compare", base, new, "--threshold", "5%") == 1
    out = capsys.readouterr().out
    slower = [line for line in out.splitlines() if line.startswith("SLOWER:")]
    assert len(slower) == 1 and SLOWED in slower[0] and "train_samples_per_s" in slower[0]
    row = next(line for line in out.splitlines() if line.startswith(SLOWED) and "train_samples_per_s" in line)
    assert " slower " in row and ("-1" in row or "-2" in row)  # about -20%
    assert f"Welch {repeats}v{repeats} repeats: beyond 5%" in row and "Holm over 9" in row


def test_one_repeat_a_side_decides_nothing_and_says_what_it_needs(tmp_path, capsys):
    """Blocks are not evidence: a 20% drop seen in one process a side is 'unclear', never a failure."""
    base = write(tmp_path / "base.jsonl", run_set(seed=1, repeats=1))
    new = write(tmp_path / "new.jsonl", run_set(seed=2, cnn_speed=0.8, repeats=1))
    assert run_cli("compare", base, new) == 0
    out = capsys.readouterr().out
    assert "SLOWER" not in out and "0 slower, 0 same, 9 unclear" in out
    assert "rerun both sides with --repeat 3 or more" in out


def test_too_few_repeats_for_the_spread_says_how_many_it_needs(tmp_path, capsys):
    """3 against 3 at 3% run-to-run noise, nine comparisons: this 20% drop is not provable; the output says so."""
    base = write(tmp_path / "base.jsonl", run_set(seed=1, repeats=3))
    new = write(tmp_path / "new.jsonl", run_set(seed=2, cnn_speed=0.8, repeats=3))
    assert run_cli("compare", base, new) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith(SLOWED) and "train_samples_per_s" in line)
    assert " unclear " in row and "not significant after Holm over 9" in row
    assert "about --repeat" in out and "a side would decide half of them" in out


@pytest.mark.parametrize("repeats", [3, 5])
def test_pure_noise_exits_0(tmp_path, capsys, repeats):
    base = write(tmp_path / "base.jsonl", run_set(seed=1, repeats=repeats))
    same = write(tmp_path / "same.jsonl", run_set(seed=3, repeats=repeats))
    assert run_cli("compare", base, same, "--threshold", "5%") == 0
    out = capsys.readouterr().out
    assert "SLOWER" not in out and "0 slower" in out
    verdicts = [line.split()[6] for line in out.splitlines() if line.startswith(("pytorch/", "keras/"))]
    assert len(verdicts) == 9 and set(verdicts) <= {"same", "unclear"}  # 3 cases x 3 default metrics


@pytest.mark.parametrize("repeats", [3, 5])
def test_noise_over_many_seeds_rarely_calls_anything(tmp_path, repeats):
    """A/A on noise only (3% per block and per repeat): any faster or slower call is a false alarm; the
    family-wise rate is at most alpha = 5% by construction, so 100 A/A pairs give very few."""
    results = [compare_records(run_set(seed=s, repeats=repeats), run_set(seed=100 + s, repeats=repeats))
               for s in range(100)]
    alarms = sum(any(c.verdict in ("faster", "slower") for c in r.changes) for r in results)
    assert alarms <= 5


def test_process_level_luck_is_not_mistaken_for_a_change():
    """A/A where each process is offset by 3% (its luck) while its 40 blocks agree within 0.3%: a test over
    the blocks of both sides finds a significant difference in most pairs; the repeats call nothing."""
    import random

    rng = random.Random(7)

    def side(level: float, n: int = 3) -> list[dict]:
        records = []
        for repeat in range(n):
            offset = level * (1 + 0.03 * rng.gauss(0, 1))
            record = make_record(repeat=repeat, noise=0.0, train=1000 * offset)
            blocks = [1000 * offset * (1 + 0.003 * rng.gauss(0, 1)) for _ in range(40)]
            record["metrics"].update(train_blocks=blocks, train_samples_per_s=sorted(blocks)[20])
            records.append(record)
        return records

    from scipy.stats import mannwhitneyu

    block_alarms = calls = 0
    for _ in range(40):
        base, new = side(1.0), side(1.0)
        change = compare_records(base, new, ["train_samples_per_s"]).changes[0]
        calls += change.verdict in ("faster", "slower")
        blocks = [[b for r in group for b in r["metrics"]["train_blocks"]] for group in (base, new)]
        block_alarms += mannwhitneyu(*blocks).pvalue < 0.05
    assert calls <= 2 and block_alarms >= 20  # a test over blocks finds a 'difference' in most A/A pairs


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


def test_the_repeats_decide_never_the_blocks():
    # steady blocks, one repeat a side: nothing to test, whatever the blocks say
    single = significance(Evidence([1.0], [1.0, 1.01, 0.99, 1.02], (0.99, 1.01)),
                          Evidence([0.8], [0.8, 0.81, 0.79, 0.8], (0.79, 0.81)), 0.05, True)
    assert single.verdict == "unclear" and single.p is None and single.needs == 3
    # a doubling seen in 3 v 3 tight repeats is beyond 5% with confidence
    up = significance(Evidence([1.0, 1.01, 0.99], [], None), Evidence([2.0, 2.02, 1.98], [], None), 0.05, True)
    assert up.verdict == "faster" and up.p < 1e-4 and up.ci[0] > 0.9
    # the same numbers for a lower-is-better metric (latency) are slower
    assert significance(Evidence([1.0, 1.01, 0.99], [], None), Evidence([2.0, 2.02, 1.98], [], None), 0.05,
                        False).verdict == "slower"
    # a 1% change, tight repeats: the CI lies inside +-5%, so "same" is shown, not assumed
    same = significance(Evidence([1.0, 1.002, 0.998, 1.001], [], None),
                        Evidence([1.01, 1.012, 1.008, 1.011], [], None), 0.05, True)
    assert same.verdict == "same" and -0.05 < same.ci[0] < same.ci[1] < 0.05
    # a 6% change with 4% spread: neither beyond nor within the threshold with confidence
    vague = significance(Evidence([1.0, 1.04, 0.96], [], None), Evidence([1.06, 1.10, 1.02], [], None), 0.05, True)
    assert vague.p > 0.05 and vague.needs > 3


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



# -- one comparability key: machine, thread budget, device, measurement environment (issue 26) ------------------
EPYC_AVX512 = {"cpu": "AMD EPYC", "cpu_signature": "family 25 model 17 stepping 1", "cores": 2, "memory_gib": 24,
               "cpu_features": ["avx2", "fma", "avx512f", "avx512_bf16"], "gpu": [], "hostname": "vm"}
EPYC_AVX2 = {**EPYC_AVX512, "cpu_signature": "family 23 model 49 stepping 0", "cpu_features": ["avx2", "fma"]}
PINNED = {"name": "dlbench", "allocator": {"MALLOC_MMAP_THRESHOLD_": str(2**30)}, "cpus": [1]}


def keyed_set(seed: int, env: dict, threads: int, cnn_speed: float = 1.0) -> list[dict]:
    records = run_set(seed=seed, cnn_speed=cnn_speed)
    for record in records:
        record.update(env=dict(env), threads=threads, worker_environment=dict(PINNED))
    return records


@pytest.mark.parametrize("new_env, new_threads, differs", [
    (EPYC_AVX512, 1, "threads 2 vs 1"),  # the same machine, another thread budget
    (EPYC_AVX2, 2, "CPU features avx2 avx512f avx512_bf16 vs avx2"),  # the same model name, another machine
])
def test_compare_across_machines_or_budgets_says_what_differs_and_gives_no_verdict(tmp_path, capsys, new_env,
                                                                                   new_threads, differs):
    base = write(tmp_path / "base.jsonl", keyed_set(1, EPYC_AVX512, 2))
    new = write(tmp_path / "new.jsonl", keyed_set(2, new_env, new_threads, cnn_speed=0.5))  # 2x slower: a "regression"
    result = compare_records(json_lines(base), json_lines(new))
    assert not result.changes and len(result.incomparable) == 3 and differs in result.differences
    with pytest.raises(UsageError) as refused:  # the CLI: one line naming what differs and the way out
        run_cli("compare", base, new)
    message = str(refused.value)
    assert "\n" not in message and differs in message and "--across-machines" in message
    assert run_cli("compare", base, new, "--across-machines") == 1  # asked for: verdicts, the difference said first
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith("ACROSS MACHINES: ") and differs in out.splitlines()[1]
    assert any(line.startswith("SLOWER: " + SLOWED) for line in out.splitlines())


def test_compare_on_one_machine_and_budget_has_no_difference_line(tmp_path, capsys):
    base = write(tmp_path / "base.jsonl", keyed_set(1, EPYC_AVX512, 1))
    new = write(tmp_path / "new.jsonl", keyed_set(2, EPYC_AVX512, 1, cnn_speed=0.5))
    assert run_cli("compare", base, new) == 1
    out = capsys.readouterr().out
    assert "MACHINES" not in out and any(line.startswith("SLOWER: " + SLOWED) for line in out.splitlines())


def test_a_table_over_two_thread_budgets_keeps_them_apart():
    from dlbench.report.summary import summarise
    from dlbench.report.table import comparison_table

    one, two = keyed_set(1, EPYC_AVX512, 1), keyed_set(2, EPYC_AVX512, 2, cnn_speed=1.5)
    summary = summarise(one + two)
    assert len(summary) == 6 and set(summary["machine"]) == {"1 thread", "2 threads"}
    table = comparison_table(one + two)
    assert table.splitlines()[0].split("|")[1].strip() == "machine" and "no ratio is taken across them" in table


def json_lines(path: str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def _served(records, mode: str, qps: float):
    """``records`` with a LoadGen Server result served ``mode`` at ``qps`` (one value per repeat, like the run's)."""
    for record in records:
        record["metrics"]["loadgen_server_qps"] = qps
        record["metrics"]["loadgen"] = {"scenarios": {"server": {"serve": {"mode": mode}, "valid": True}}}
    return records


def test_a_change_of_serve_policy_is_said_and_its_server_metrics_are_not_compared():
    metrics = ("train_samples_per_s", "loadgen_server_qps")
    base, new = _served(run_set(1), "single", 1000.0), _served(run_set(2), "batched", 4000.0)
    result = compare_records(base, new, metrics)
    assert {c.metric for c in result.changes} == {"train_samples_per_s"}  # the rest of each case still compared
    assert result.differences == ["LoadGen Server served single in BASE, batched in NEW (--serve)"]
    assert len(result.incomparable) == 3 and all("LoadGen Server metrics" in line for line in result.incomparable)
    across = compare_records(base, new, metrics, across_machines=True)
    assert {c.metric for c in across.changes} == set(metrics)  # asked for: batching's gain is a verdict
    same = compare_records(_served(run_set(1), "batched", 4000.0), new, metrics)
    assert not same.differences and {c.metric for c in same.changes} == set(metrics)
