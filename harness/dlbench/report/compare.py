"""``dlbench compare BASE NEW``: did a case get faster or slower, beyond noise and beyond a threshold?

A change is called only when it is both significant and larger than the threshold. Significance comes
from the best evidence both sides have, in this order:

1. Mann-Whitney U over the repeat values, when both sides have at least 3 repeats and the sample sizes
   can reach p < alpha at all (3 against 3 cannot: its smallest two-sided p is 0.1);
2. Mann-Whitney U over the per-block samples (``train_blocks`` / ``infer_blocks``) of all repeats; as
   blocks of one process share its luck, with two or more repeats a side the repeat values must also
   separate completely (the most 3 against 3 can show);
3. non-overlap of the 95% CIs (a single repeat's own CI over blocks, or min-max of the repeats);
4. nothing: a single value on a side. The verdict then carries a '?' and never fails the comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

from dlbench.report import _format as f
from dlbench.report.table import group_cases, metric_blocks, metric_value, record_ci
from dlbench.stats import median, median_ci

# metric -> True when higher is better
METRICS: dict[str, bool] = {
    "train_samples_per_s": True, "infer_samples_per_s": True, "train_gflops_per_s": True,
    "infer_gflops_per_s": True, "latency_p50_ms": False, "latency_p90_ms": False, "latency_p99_ms": False,
    "latency_mean_ms": False, "compile_s": False, "first_step_s": False, "time_to_accuracy_s": False,
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
    verdict: str  # faster | slower | same, with '?' when untested
    test: str  # what decided significance, with p where there is one
    significant: bool


@dataclass
class Comparison:
    changes: list[Change] = field(default_factory=list)
    only_base: list[str] = field(default_factory=list)
    only_new: list[str] = field(default_factory=list)
    not_compared: list[str] = field(default_factory=list)  # a side that did not run ok
    newly_broken: list[str] = field(default_factory=list)  # ok in BASE, not ok in NEW: a regression too
    threshold: float = 0.05

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


def _min_exact_p(n1: int, n2: int) -> float:
    """The smallest two-sided p-value an exact Mann-Whitney test can give for these sample sizes."""
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


def _mann_whitney(a: list[float], b: list[float]) -> float:
    from scipy.stats import mannwhitneyu

    if len(set(a) | set(b)) == 1:
        return 1.0
    p = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    return 1.0 if math.isnan(p) else p


def significance(base: Evidence, new: Evidence, alpha: float = ALPHA) -> tuple[Optional[bool], str]:
    """(significant, how it was decided); significant is None when nothing could be tested."""
    nb, nn = len(base.repeats), len(new.repeats)
    if nb >= 3 and nn >= 3 and _min_exact_p(nb, nn) < alpha:
        p = _mann_whitney(base.repeats, new.repeats)
        return p < alpha, f"MWU repeats {nb}v{nn} p={p:.2g}"
    if len(base.blocks) >= 3 and len(new.blocks) >= 3:
        p = _mann_whitney(base.blocks, new.blocks)
        test = f"MWU blocks {len(base.blocks)}v{len(new.blocks)} p={p:.2g}"
        if nb >= 2 and nn >= 2:  # blocks of one process move together: the repeats must separate too
            apart = max(base.repeats) < min(new.repeats) or max(new.repeats) < min(base.repeats)
            return p < alpha and apart, test + (", repeats apart" if apart else ", repeats overlap")
        return p < alpha, test
    if base.ci and new.ci:
        apart = base.ci[1] < new.ci[0] or new.ci[1] < base.ci[0]
        return apart, "CIs apart" if apart else "CIs overlap"
    return None, "untested (one value per side)"


def compare_records(base: Iterable[dict[str, Any]], new: Iterable[dict[str, Any]],
                    metrics: Sequence[str] = DEFAULT_METRICS, threshold: float = 0.05,
                    alpha: float = ALPHA) -> Comparison:
    """Compare every case present in both record sets (same case_id) on ``metrics``."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)}")
    base_cases, new_cases = group_cases(base), group_cases(new)
    result = Comparison(threshold=threshold)
    result.only_base = [c for c in base_cases if c not in new_cases]
    result.only_new = [c for c in new_cases if c not in base_cases]
    for case in (c for c in base_cases if c in new_cases):
        sides = {"BASE": base_cases[case], "NEW": new_cases[case]}
        broken = [f"{name} {_status(group)}" for name, group in sides.items()
                  if not any(r["status"] == "ok" for r in group)]
        if broken:
            result.not_compared.append(f"{case}: {'; '.join(broken)}")
            if broken == [f"NEW {_status(sides['NEW'])}"]:
                result.newly_broken.append(case)
            continue
        for metric in metrics:
            b, n = evidence(sides["BASE"], metric), evidence(sides["NEW"], metric)
            if b is None or n is None or b.centre == 0:
                continue
            relative = n.centre / b.centre - 1
            better = relative > 0 if METRICS[metric] else relative < 0
            significant, test = significance(b, n, alpha)
            if abs(relative) <= threshold or significant is False:
                verdict = "same"
            else:
                verdict = ("faster" if better else "slower") + ("?" if significant is None else "")
            result.changes.append(Change(case, metric, b.centre, n.centre, relative, verdict, test,
                                         bool(significant)))
    return result


def _status(group: list[dict[str, Any]]) -> str:
    record = group[-1]
    reason = f": {record['error']}" if record.get("error") else ""
    return f"{record['status']}{reason}"


def _value(metric: str, value: float) -> str:
    is_time = "latency" in metric or (metric.endswith("_s") and "per_s" not in metric)
    return f.ms(value) if is_time else f.rate(value)


def format_comparison(result: Comparison, fmt: str = "simple", base_name: str = "BASE",
                      new_name: str = "NEW") -> str:
    """The comparison table, a summary line, each regression named, and the cases not compared."""
    from tabulate import tabulate

    lines: list[str] = [f"BASE = {base_name}, NEW = {new_name}", ""]
    if result.changes:
        rows = [[c.case, c.metric, _value(c.metric, c.base), _value(c.metric, c.new), f.change(c.change),
                 c.verdict, c.test] for c in result.changes]
        lines.append(tabulate(rows, ["case", "metric", "BASE", "NEW", "change", "verdict", "test"],
                              tablefmt=fmt, colalign=["left", "left", "right", "right", "right", "left", "left"],
                              disable_numparse=True))
    else:
        lines.append("no case ran ok in both files: nothing to compare")
    counts = {v: sum(c.verdict.rstrip("?") == v for c in result.changes) for v in ("faster", "slower", "same")}
    cases = len({c.case for c in result.changes})
    lines.append("")
    lines.append(f"{cases} case(s) compared, threshold {100 * result.threshold:g}%: "
                 + ", ".join(f"{n} {v}" for v, n in counts.items()) + " (metric changes)")
    if any(c.verdict.endswith("?") for c in result.changes):
        lines.append("?: a single value per side, no test possible; rerun with --repeat 3 or more")
    if any(c.test.startswith("MWU blocks") and "repeats" not in c.test for c in result.changes):
        lines.append("note: with one repeat a side, block tests cannot see run-to-run variation; "
                     "keep the threshold above it or rerun with --repeat 3 or more")
    for change in result.regressions:
        lines.append(f"SLOWER: {change.case}: {change.metric} {f.change(change.change)} ({change.test})")
    for case in result.newly_broken:
        lines.append(f"BROKEN: {case}: ran ok in BASE, not in NEW")
    for title, cases_ in (("only in BASE (not compared)", result.only_base),
                          ("only in NEW (not compared)", result.only_new),
                          ("did not run ok (not compared)", result.not_compared)):
        if cases_:
            lines.append(f"{title}:")
            lines += [f"  - {case}" for case in cases_]
    return "\n".join(lines)
