"""Property-based: generated records and argument lists never cause a traceback; errors name the input."""

import json
import math
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlbench.cli.main import build_parser, main
from dlbench.errors import UsageError
from dlbench.testing.samples import make_record

FIELDS = ["schema_version", "run_id", "framework", "variant", "model", "task", "device", "batch_size",
          "threads", "status", "metrics", "error", "case_id"]
METRICS = ["train_samples_per_s", "infer_samples_per_s", "accuracy", "loss", "compile_s", "train_blocks",
           "latency_ms", "noisy", "train_ci95"]
hostile_text = st.sampled_from(["<script>alert(1)</script>", "$(rm -rf /)", "`id`", "a|b", "", "\u202e\x00",
                                "x" * 500, "=cmd|' /C calc'!A0"])
values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | hostile_text
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6)


@st.composite
def records(draw):
    record = make_record(framework=draw(st.sampled_from(["pytorch", "keras", "<b>x</b>"])),
                         model=draw(st.sampled_from(["cnn", "mlp", "$(x)"])))
    for _ in range(draw(st.integers(0, 3))):  # corrupt some fields
        where = draw(st.sampled_from(["top", "metric"]))
        if where == "top" or not isinstance(record["metrics"], dict):
            record[draw(st.sampled_from(FIELDS))] = draw(values)
        else:
            record["metrics"][draw(st.sampled_from(METRICS))] = draw(values)
    return record


def _line(record) -> str:
    return json.dumps(record, allow_nan=True, default=str)


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured


@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(records(), min_size=1, max_size=4), torn=st.booleans())
def test_table_report_and_compare_survive_generated_records(tmp_path_factory, capsys, batch, torn):
    folder = tmp_path_factory.mktemp("hostile")
    results = folder / "results.jsonl"
    text = "".join(_line(r) + "\n" for r in batch)
    results.write_text(text[:-len(text) // 3] if torn else text)
    for argv in (["table", str(results)], ["report", str(results), "-o", str(folder / "report")],
                 ["compare", str(results), str(results)],
                 ["export", "--format", "pytest-benchmark", str(results), "-o", str(folder / "bench.json")]):
        code, captured = _run(argv, capsys)
        assert code in (0, 1, 2), argv
        if code == 2:
            line = captured.err.strip().splitlines()[-1]
            assert line.startswith("dlbench: error: ") and str(results) in line, line
    html = folder / "report" / "index.html"
    if html.exists():
        page = html.read_text()
        assert "<script>alert(1)</script>" not in page and "<b>x</b>" not in page


ARGUMENTS = ["--all", "-f", "-m", "-t", "--variant", "--device", "--batch-size", "--threads", "--repeat",
             "--profile", "--steps", "--target", "--seed", "--case-timeout", "--infer-batch-size", "--format"]
TOKENS = ["", "0", "-1", "1", "10000", "1e309", "nan", "inf", "cnn", "pytorch", "gpu", "all", "quick", "$(x)",
          "<b>", "9" * 30, "-", "--", "fashion_mnist"]


@settings(max_examples=150, derandomize=True, deadline=None)
@given(st.lists(st.sampled_from(ARGUMENTS + TOKENS), max_size=8))
def test_run_arguments_parse_or_fail_with_one_line(argv):
    try:
        args = build_parser().parse_args(["run", *argv])
    except UsageError as exc:
        message = str(exc)
        assert "\n" not in message and message
        return
    for name in ("batch_size", "threads", "repeat", "steps", "infer_batch_size"):
        value = getattr(args, name)
        values_ = value if isinstance(value, list) else [value]
        assert all(v is None or v >= 1 for v in values_), (name, value)
    assert args.target is None or 0.0 <= args.target <= 1.0
    assert args.case_timeout is None or (math.isfinite(args.case_timeout) and args.case_timeout >= 1)


def test_results_are_json_only(tmp_path, capsys):
    pickled = tmp_path / "results.jsonl"
    pickled.write_bytes(b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00.\n")
    code, captured = _run(["table", str(pickled)], capsys)
    assert code == 2 and f"{pickled}:1" in captured.err
    assert Path(pickled).read_bytes().startswith(b"\x80")
