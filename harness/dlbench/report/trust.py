"""What a case's repeats say about how far to trust its numbers, as summary columns.

- ``disturbed``: why the timed window was not the case's alone (``steal 14%``, ``load 1.3 cores``, ``wait 43%``)
  or its allocator's regime was a draw (``paging 2440 faults/step``), the worst of each kind over the repeats
  (``metrics.disturbed`` from ``metrics.machine_state`` and the case's faults, dlbench.machine.state);
- ``ci_unreached``: repeats whose adaptive sampling hit its time cap before the estimator's 95% CI
  half-width got under the target (``metrics.train_ci_reached``);
- ``train_peak_pct``: achieved training GFLOP/s as a percentage of the machine's measured float32 GEMM
  peak with the same thread budget (``env.peak``, dlbench.machine.peak): the roofline a reader needs to judge "fast".
"""

from __future__ import annotations

import re
from typing import Any, Optional

from dlbench.report import format as f
from dlbench.stats.estimators import median

TRUST_COLUMNS = ("disturbed", "ci_unreached", "train_ci_half_rel", "train_peak_pct", "regime", "flops_per_byte")
_REASON = re.compile(r"^(?P<kind>[a-z]+) (?P<value>[0-9.]+)(?P<unit>.*)$")


def disturbed(records: list[dict[str, Any]]) -> str:
    """'steal 14%, load 1.3 cores': the worst figure of each reason over the records, '' when none."""
    worst: dict[str, tuple[float, str]] = {}
    for record in records:
        reasons = (record.get("metrics") or {}).get("disturbed")
        for reason in reasons if isinstance(reasons, list) else []:
            match = _REASON.match(str(reason))
            if not match:
                worst.setdefault(str(reason), (0.0, str(reason)))
                continue
            value = float(match["value"])
            if match["kind"] not in worst or value > worst[match["kind"]][0]:
                worst[match["kind"]] = (value, str(reason))
    return ", ".join(text for _, text in worst.values())


def ceilings(record: dict[str, Any]) -> tuple[Optional[float], Optional[float]]:
    """(GEMM GFLOP/s, memory GB/s) a case is judged against: on a GPU its library's ceilings in the precision
    it computed in (env.gpu_peak, dlbench.machine.gpu_peak), on the CPU the run's numpy GEMM and copy
    (env.peak); None where the run did not measure them."""
    env, fairness = record.get("env") or {}, record.get("fairness") or {}
    if record.get("device") == "gpu":
        from dlbench.machine.gpu_peak import ceiling_for, library_of

        library = library_of(fairness.get("framework_versions"))
        gpu = env.get("gpu_peak") if isinstance(env.get("gpu_peak"), dict) else {}
        facts = gpu.get(library) if library else None
        gemm = ceiling_for(gpu, library or "", str(fairness.get("compute_dtype") or "float32"),
                           str(fairness.get("tf32") or ""))
        return gemm, f.number(facts.get("copy_gbs")) if isinstance(facts, dict) else None
    peak = env.get("peak") if isinstance(env.get("peak"), dict) else {}
    return f.number(peak.get("gemm_gflops")), f.number(peak.get("mem_bandwidth_gbs"))


def peak_pct(record: dict[str, Any]) -> Optional[float]:
    """Training GFLOP/s as a percentage of the case's GEMM ceiling (``ceilings``), or None when either is missing."""
    achieved = f.number((record.get("metrics") or {}).get("train_gflops_per_s"))
    ceiling = ceilings(record)[0]
    return 100 * achieved / ceiling if achieved is not None and ceiling else None


def roofline_position(record: dict[str, Any]) -> Any:
    """The case on its device's roofline (dlbench.measure.roofline.Position), or None when a number is missing."""
    from dlbench.measure.roofline import classify

    metrics = record.get("metrics") or {}
    gemm, bandwidth = ceilings(record)
    achieved, intensity = f.number(metrics.get("train_gflops_per_s")), f.number(metrics.get("train_flops_per_byte"))
    if None in (gemm, bandwidth, achieved, intensity):
        return None
    return classify(achieved, intensity, gemm, bandwidth)


def trust_columns(ok: list[dict[str, Any]]) -> dict[str, Any]:
    """The TRUST_COLUMNS of one case from its ok records."""
    shares = [v for v in map(peak_pct, ok) if v is not None]
    halves = [v for v in (f.number((r.get("metrics") or {}).get("train_ci_half_rel")) for r in ok) if v is not None]
    positions = [p for p in map(roofline_position, ok) if p is not None]
    regimes = [p.regime for p in positions]
    return {"disturbed": disturbed(ok),
            "ci_unreached": sum((r.get("metrics") or {}).get("train_ci_reached") is False for r in ok),
            "train_ci_half_rel": median(halves) if halves else float("nan"),
            "train_peak_pct": median(shares) if shares else float("nan"),
            "regime": max(dict.fromkeys(regimes), key=regimes.count) if regimes else "",
            "flops_per_byte": median([p.intensity for p in positions]) if positions else float("nan")}


def legend(rows: list[dict[str, Any]], label: Any = None, limit: int = 6) -> list[str]:
    """Notes under a table: which cases were disturbed and why, and which missed the CI target."""
    notes = []
    hit = [row for row in rows if row.get("disturbed")]
    if hit:
        named = "; ".join(f"{label(row) if label else row['case_id']}: {row['disturbed']}" for row in hit[:limit])
        more = f"; and {len(hit) - limit} more" if len(hit) > limit else ""
        notes.append(f"~ disturbed (steal: CPU time the hypervisor gave to others; load: cores other processes used, "
                     f"beyond those the thread budget leaves free; wait: share of its runnable time the worker's "
                     f"busiest thread waited for a CPU; paging: page faults a training step, the allocator returning "
                     f"memory every step, as glibc's defaults do in the user's environment, where a PyTorch CNN "
                     f"draws it per process: read --repeat) during the timed blocks: {named}{more}; "
                     f"`dlbench doctor` says what to change")
    missed = [row for row in rows if row.get("ci_unreached")]
    if missed:
        notes.append(f"± CI target missed in {len(missed)} case(s): adaptive sampling reached its time cap before the "
                     f"estimator's 95% CI was that narrow; the achieved half-width is in the records")
    if any(f.number(row.get("train_peak_pct")) is not None for row in rows):
        notes.append("% peak: training GFLOP/s (3x the analytic forward FLOPs) as a share of the device's measured "
                     "GEMM ceiling: on the CPU numpy's float32 GEMM with the same threads, on a GPU the case's "
                     "library's GEMM in the precision it ran in (float32 with TF32 off, or bfloat16; `dlbench "
                     "doctor`)")
    if any(row.get("regime") for row in rows):
        notes.append("regime (after % peak): C compute-bound, M memory-bound (left of the ridge point at the case's "
                     "training FLOPs per byte, from the zoo's analytic counts), O overhead-bound (under 10% of "
                     "both ceilings at that intensity: launches, dispatch and Python, not the device, set the pace)")
    return notes


def peak_cell(value: Any, regime: str = "") -> str:
    """A % of peak for a table cell, with the regime's mark: 12% C / 3.4% M / 0.21% O."""
    from dlbench.measure.roofline import MARKS

    v = f.number(value)
    if v is None:
        return f.DASH
    text = f"{v:.0f}%" if v >= 10 else f"{v:.1f}%" if v >= 1 else f"{v:.2f}%"
    return f"{text} {MARKS[regime]}" if regime in MARKS else text
