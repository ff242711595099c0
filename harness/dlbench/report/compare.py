"""``dlbench compare BASE NEW``: did a case get faster or slower, beyond noise and beyond a threshold?

Honest by construction (``decide``): the unit of evidence is the process, one value per repeat, never
the timed blocks (blocks of one process share its luck); a change is called only when a one-sided Welch
t-test on log repeat values puts it beyond the threshold, and Holm's correction over every comparison in
the call keeps the chance of any false "faster"/"slower" at most alpha (5%). "same" needs the change's CI
inside the threshold; anything else is "unclear", with the repeats a side that would decide it. With one
repeat a side nothing is tested: the verdict is "unclear" and never fails the comparison.

Only like is compared with like: a case whose two sides ran under different comparability keys (another
machine, thread budget or measurement environment; ``dlbench.machine.identity``) gets no verdict, and the
comparison says in one line what differs, unless ``across_machines`` asks for verdicts anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

from dlbench.machine.identity import key_of
from dlbench.report import format as f
from dlbench.report.scenarios import serve_mode
from dlbench.report.summary import group_cases, metric_blocks, metric_value, record_ci
from dlbench.stats.decide import Decision, decide, settle
from dlbench.stats.estimators import median, median_ci

# metric -> True when higher is better
METRICS: dict[str, bool] = {
    "train_samples_per_s": True, "infer_samples_per_s": True, "train_gflops_per_s": True,
    "infer_gflops_per_s": True, "latency_p50_ms": False, "latency_p90_ms": False, "latency_p99_ms": False,
    "latency_mean_ms": False, "compile_s": False, "first_step_s": False, "time_to_accuracy_s": False,
    # --inference loadgen (present only for runs LoadGen called VALID)
    "loadgen_server_qps": True, "loadgen_server_latency_p99_ms": False, "loadgen_multistream_latency_p99_ms": False,
    "loadgen_singlestream_latency_p90_ms": False, "loadgen_offline_samples_per_s": True,
}
DEFAULT_METRICS = ("train_samples_per_s", "infer_samples_per_s", "latency_p50_ms")
ALPHA = 0.05


@dataclass
class Evidence:
    """The values one side offers for one metric of one case."""

    repeats: list[float]
    blocks: list[float]
    ci: Optional[tuple[float, float]]

    @property
    def centre(self) -> float:
        return median(self.repeats)


@dataclass
class Change:
    case: str
    metric: str
    base: float
    new: float
    change: float  # new / base - 1 (the metric's own direction: +10% latency is slower)
    verdict: str  # faster | slower | same | unclear
    test: str  # what decided significance, with p where there is one
    significant: bool
    ci: Optional[tuple[float, float]] = None  # 95% CI of the change (geometric means of the repeats)
    needs: Optional[int] = None  # repeats a side that would decide an unclear verdict


@dataclass
class Comparison:
    changes: list[Change] = field(default_factory=list)
    only_base: list[str] = field(default_factory=list)
    only_new: list[str] = field(default_factory=list)
    not_compared: list[str] = field(default_factory=list)  # a side that did not run ok
    newly_broken: list[str] = field(default_factory=list)  # ok in BASE, not ok in NEW: a regression too
    incomparable: list[str] = field(default_factory=list)  # run under different keys: no verdict
    differences: list[str] = field(default_factory=list)  # what differs between the sides' keys, once each
    across_machines: bool = False
    threshold: float = 0.05
    alpha: float = ALPHA

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.verdict == "slower"]


def evidence(records: Sequence[dict[str, Any]], metric: str) -> Optional[Evidence]:
    ok = [r for r in records if r["status"] == "ok"]
    values = [(r, v) for r in ok if (v := metric_value(r, metric)) is not None]
    if not values:
        return None
    repeats = [v for _, v in values]
    blocks = [b for r, _ in values for b in metric_blocks(r, metric)]
    if len(repeats) > 1:
        ci: Optional[tuple[float, float]] = median_ci(repeats)
    else:
        ci = record_ci(values[0][0], metric)
    return Evidence(repeats, blocks, ci)


def significance(base: Evidence, new: Evidence, threshold: float, higher_is_better: bool,
                 alpha: float = ALPHA) -> Decision:
    """The decision for one metric from the repeat values of both sides (before the family correction)."""
    return decide(base.repeats, new.repeats, threshold, higher_is_better, alpha)


def compare_records(base: Iterable[dict[str, Any]], new: Iterable[dict[str, Any]],
                    metrics: Sequence[str] = DEFAULT_METRICS, threshold: float = 0.05,
                    alpha: float = ALPHA, across_machines: bool = False) -> Comparison:
    """Compare every case present in both record sets (same case_id) on ``metrics``.

    A case whose sides ran under different comparability keys is listed in ``incomparable`` (with
    ``differences`` saying what differs) instead of compared, unless ``across_machines``.
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)}")
    base_cases, new_cases = group_cases(base), group_cases(new)
    result = Comparison(threshold=threshold, across_machines=across_machines)
    result.only_base = [c for c in base_cases if c not in new_cases]
    result.only_new = [c for c in new_cases if c not in base_cases]
    decisions: list[Decision] = []
    for case in (c for c in base_cases if c in new_cases):
        sides = {"BASE": base_cases[case], "NEW": new_cases[case]}
        if not _comparable(case, sides, result):
            continue
        for metric in metrics:
            change, decision = _compare_metric(case, metric, sides, threshold, alpha, result)
            if change is not None:
                decisions.append(decision)
                result.changes.append(change)
    settle(decisions, alpha)
    for change, decision in zip(result.changes, decisions):
        change.verdict, change.test, change.ci, change.needs = (decision.verdict, decision.test, decision.ci,
                                                                decision.needs)
        change.significant = decision.verdict in ("faster", "slower")
    result.alpha = alpha
    return result


def _comparable(case: str, sides: dict[str, list[dict[str, Any]]], result: Comparison) -> bool:
    """Whether a case's sides may be compared: both ran ok, under one key (or across keys when asked)."""
    broken = [f"{name} {_status(group)}" for name, group in sides.items()
              if not any(r["status"] == "ok" for r in group)]
    if broken:
        result.not_compared.append(f"{case}: {'; '.join(broken)}")
        if broken == [f"NEW {_status(sides['NEW'])}"]:
            result.newly_broken.append(case)
        return False
    keys = {name: list(dict.fromkeys(key_of(r) for r in group if r["status"] == "ok")) for name, group in sides.items()}
    differs = [d for b in keys["BASE"] for n in keys["NEW"] for d in b.differences(n)]
    differs += [f"{name} mixes {len(found)} machines or budgets" for name, found in keys.items() if len(found) > 1]
    if not differs:
        return True
    result.differences += [d for d in dict.fromkeys(differs) if d not in result.differences]
    if result.across_machines:
        return True
    result.incomparable.append(f"{case}: {'; '.join(dict.fromkeys(differs))}")
    return False


def _compare_metric(case: str, metric: str, sides: dict[str, list[dict[str, Any]]], threshold: float, alpha: float,
                    result: Comparison) -> tuple[Optional[Change], Optional[Decision]]:
    b, n = evidence(sides["BASE"], metric), evidence(sides["NEW"], metric)
    if b is not None and n is not None and metric.startswith("loadgen_server_") and not _same_serving(case, sides,
                                                                                                      result):
        return None, None
    if b is not None and n is None and metric.startswith("loadgen_"):  # LoadGen: VALID in BASE, not in NEW
        result.newly_broken.append(f"{case} ({metric}: no LoadGen run VALID in NEW)")
        return None, None
    if b is None or n is None or b.centre == 0:
        return None, None
    decision = significance(b, n, threshold, METRICS[metric], alpha)
    return Change(case, metric, b.centre, n.centre, n.centre / b.centre - 1, decision.verdict, decision.test,
                  False), decision


def _same_serving(case: str, sides: dict[str, list[dict[str, Any]]], result: Comparison) -> bool:
    """Whether both sides served LoadGen's Server the same way (``--serve``): one query at a time against
    batched is a change of method, not of code, so it is said, and compared only with ``across_machines``."""
    modes = {name: sorted({serve_mode(r) for r in group if r["status"] == "ok"}) for name, group in sides.items()}
    if modes["BASE"] == modes["NEW"]:
        return True
    what = f"LoadGen Server served {'/'.join(modes['BASE'])} in BASE, {'/'.join(modes['NEW'])} in NEW (--serve)"
    if what not in result.differences:
        result.differences.append(what)
    if not result.across_machines:
        entry = f"{case} (its LoadGen Server metrics): {what}"
        if entry not in result.incomparable:
            result.incomparable.append(entry)
    return result.across_machines


def _status(group: list[dict[str, Any]]) -> str:
    record = group[-1]
    reason = f": {record['error']}" if record.get("error") else ""
    return f"{record['status']}{reason}"


def _value(metric: str, value: float) -> str:
    is_time = "latency" in metric or (metric.endswith("_s") and "per_s" not in metric)
    return f.ms(value) if is_time else f.rate(value)


def _needs_hint(unclear: list[Change]) -> str:
    """How many repeats a side would decide the unclear comparisons, from the spread the repeats showed."""
    if all(c.ci is None for c in unclear):  # nothing was tested: a single repeat on a side
        return "one value a side tests nothing: rerun both sides with --repeat 3 or more"
    wanted = sorted(c.needs for c in unclear if c.needs)
    if not wanted:
        return "rerun both sides with more repeats"
    typical = wanted[len(wanted) // 2]
    most = "100 or more" if wanted[-1] >= 100 else str(wanted[-1])
    return (f"at the spread seen, about --repeat {typical} a side would decide half of them "
            f"(the one closest to the threshold needs {most})")


def format_comparison(result: Comparison, fmt: str = "simple", base_name: str = "BASE",
                      new_name: str = "NEW") -> str:
    """The comparison table, a summary line, each regression named, and the cases not compared."""
    from tabulate import tabulate

    lines: list[str] = [f"BASE = {base_name}, NEW = {new_name}"]
    if result.differences:
        lines.append(differences_line(result))
    lines.append("")
    if result.changes:
        rows = [[c.case, c.metric, _value(c.metric, c.base), _value(c.metric, c.new), f.change(c.change),
                 f.interval(*c.ci, fmt=f.change) if c.ci else f.DASH, c.verdict, c.test] for c in result.changes]
        lines.append(tabulate(rows, ["case", "metric", "BASE", "NEW", "change", "95% CI", "verdict", "test"],
                              tablefmt=fmt,
                              colalign=["left", "left", "right", "right", "right", "right", "left", "left"],
                              disable_numparse=True))
    elif result.incomparable:
        lines.append("no case ran under the same machine, thread budget and environment in both files: no verdict")
    else:
        lines.append("no case ran ok in both files: nothing to compare")
    counts = {v: sum(c.verdict == v for c in result.changes) for v in ("faster", "slower", "same", "unclear")}
    cases = len({c.case for c in result.changes})
    lines.append("")
    lines.append(f"{cases} case(s) compared, threshold {100 * result.threshold:g}%: "
                 + ", ".join(f"{n} {v}" for v, n in counts.items()) + " (metric changes)")
    if result.changes:
        lines.append(f"evidence: one value per repeat (process); faster/slower = beyond the threshold by a one-sided "
                     f"Welch t-test on log values, Holm-corrected over all {len(result.changes)} comparisons "
                     f"(chance of any false call <= {100 * result.alpha:g}%); same = 95% CI within the threshold")
    unclear = [c for c in result.changes if c.verdict == "unclear"]
    if unclear:
        lines.append(f"unclear: {len(unclear)} comparison(s) the repeats cannot decide; {_needs_hint(unclear)}")
    for change in result.regressions:
        lines.append(f"SLOWER: {change.case}: {change.metric} {f.change(change.change)} ({change.test})")
    for case in result.newly_broken:
        lines.append(f"BROKEN: {case}: ran ok in BASE, not in NEW")
    for title, cases_ in (("measured under different keys (not compared)", result.incomparable),
                          ("only in BASE (not compared)", result.only_base),
                          ("only in NEW (not compared)", result.only_new),
                          ("did not run ok (not compared)", result.not_compared)):
        if cases_:
            lines.append(f"{title}:")
            lines += [f"  - {case}" for case in cases_]
    return "\n".join(lines)


def differences_line(result: Comparison) -> str:
    """One line: what separates the sides' machines and budgets, and what that means for the verdicts."""
    what = "; ".join(result.differences)
    if result.across_machines:
        return f"ACROSS MACHINES: {what}; verdicts include that difference (--across-machines)"
    return (f"DIFFERENT MACHINES, BUDGETS OR METHODS: {what}; no verdict across them "
            f"(run both on one machine with one budget, or add --across-machines)")

