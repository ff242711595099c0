"""Is a change real? The verdicts of ``dlbench compare``, honest by construction.

- The unit of evidence is the process (one repeat's value), never the timed block: blocks of one
  process share its luck (its core placement, its allocator state, the load while it ran), so a test
  over blocks counts pseudo-replicates as independent and calls changes that are not there.
- A change is called only when it is beyond the threshold *with confidence*: a one-sided Welch t-test
  on the logarithms of the repeat values against the threshold's boundary (H0: the change is within the
  threshold), not merely "different from zero and a point estimate above the threshold".
- The comparisons of one ``compare`` are a family: Holm's step-down correction keeps the chance of any
  false "faster"/"slower" among them at most alpha (an A/A run of 24 metric comparisons at an
  uncorrected 5% would call one change a time on average).
- "same" is a claim too: it needs the whole CI of the change inside the threshold (two one-sided tests).
  Everything else is "unclear", with the number of repeats a side that would decide at the spread seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

MIN_REPEATS = 2  # per side: a variance needs two values; three or more are recommended
POWER_Z = 0.8416  # z of 80% power, for the repeats-needed estimate
MAX_NEEDED = 100


@dataclass
class Decision:
    verdict: str  # faster | slower | same | unclear
    test: str  # how it was decided, with p-values
    p: Optional[float]  # one-sided p of "the change is beyond the threshold" (before Holm)
    ci: Optional[tuple[float, float]]  # 95% CI of the relative change (new / base - 1)
    needs: Optional[int] = None  # repeats a side that would decide an unclear case
    resolve: Optional[tuple[float, float, int]] = None  # (per-repeat SD, distance to decide, n): for ``needs``


@dataclass
class _Welch:
    diff: float  # mean log(new) - mean log(base)
    se: float
    df: float


def _welch(base: Sequence[float], new: Sequence[float]) -> Optional[_Welch]:
    if len(base) < MIN_REPEATS or len(new) < MIN_REPEATS or min(*base, *new) <= 0:
        return None
    a, b = [math.log(v) for v in base], [math.log(v) for v in new]
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((v - ma) ** 2 for v in a) / (len(a) - 1) / len(a)
    vb = sum((v - mb) ** 2 for v in b) / (len(b) - 1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return _Welch(mb - ma, 0.0, float(len(a) + len(b) - 2))
    df = (va + vb) ** 2 / ((va**2 / (len(a) - 1) if va else 0) + (vb**2 / (len(b) - 1) if vb else 0))
    return _Welch(mb - ma, se, df)


def _p_above(t: float, df: float) -> float:
    """P(T > t) for Student's t with df degrees of freedom."""
    from scipy.stats import t as student_t

    return float(student_t.sf(t, df))


def _one_sided(w: _Welch, bound: float, above: bool) -> float:
    """p of H0 'diff <= bound' (above) or 'diff >= bound' (below)."""
    if w.se == 0:
        return 0.0 if (w.diff > bound if above else w.diff < bound) else 1.0
    t = (w.diff - bound) / w.se if above else (bound - w.diff) / w.se
    return _p_above(t, w.df)


def needs(spread: float, gap: float, n_now: int, alpha: float) -> int:
    """Repeats a side for a one-sided test at ``alpha`` with 80% power to resolve a distance ``gap``
    (log scale) at a per-repeat SD ``spread``; at most MAX_NEEDED."""
    from scipy.stats import norm

    if gap <= 0:
        return MAX_NEEDED
    z = float(norm.isf(alpha)) + POWER_Z
    return min(MAX_NEEDED, max(n_now + 1, math.ceil(2 * (z * spread / gap) ** 2)))


def decide(base: Sequence[float], new: Sequence[float], threshold: float, higher_is_better: bool,
           alpha: float) -> Decision:
    """The verdict for one metric of one case from its repeat values, before the family correction."""
    w = _welch(base, new)
    if w is None:
        fewest = min(len(base), len(new))
        return Decision("unclear", f"{len(base)}v{len(new)} repeats: one value a side cannot tell a change from "
                        f"run-to-run noise", None, None, needs=3 if fewest < 3 else None)
    up, down = math.log1p(threshold), math.log1p(-min(threshold, 0.99))
    from scipy.stats import t as student_t

    half = float(student_t.isf((1 - 0.95) / 2, w.df)) * w.se if w.se else 0.0
    ci = (math.expm1(w.diff - half), math.expm1(w.diff + half))
    rising = w.diff > 0
    p = _one_sided(w, up, above=True) if rising else _one_sided(w, down, above=False)
    better = rising == higher_is_better
    name = f"Welch {len(base)}v{len(new)} repeats"
    equivalence = max(_one_sided(w, down, above=True), _one_sided(w, up, above=False))
    if equivalence < alpha:
        return Decision("same", f"{name}: within ±{100 * threshold:g}% (p={equivalence:.2g})", p, ci)
    verdict = "faster" if better else "slower"
    n_now = min(len(base), len(new))
    gap = min(abs(w.diff - up), abs(w.diff - down))
    spread = w.se * math.sqrt(n_now / 2)  # per-repeat SD implied by the standard error of the difference
    return Decision(verdict, f"{name}: beyond {100 * threshold:g}% p={p:.2g}", p, ci,
                    needs=needs(spread, gap, n_now, alpha), resolve=(spread, gap, n_now))


def holm(decisions: Sequence[Decision], alpha: float) -> list[bool]:
    """Holm's step-down test over the family: which 'beyond the threshold' p-values stay significant."""
    order = sorted((i for i, d in enumerate(decisions) if d.p is not None), key=lambda i: decisions[i].p)
    significant = [False] * len(decisions)
    for rank, index in enumerate(order):
        if decisions[index].p >= alpha / (len(order) - rank):
            break
        significant[index] = True
    return significant


def settle(decisions: list[Decision], alpha: float) -> list[Decision]:
    """Apply the family correction: a faster/slower that does not survive Holm becomes 'unclear'."""
    kept = holm(decisions, alpha)
    family = sum(d.p is not None for d in decisions)
    for decision, significant in zip(decisions, kept):
        if decision.verdict in ("faster", "slower"):
            if significant:
                decision.test += f", Holm over {family}"
                decision.needs = None
            else:
                decision.test += f", not significant after Holm over {family}"
                decision.verdict = "unclear"
                if decision.resolve:
                    decision.needs = needs(*decision.resolve, alpha / max(family, 1))
    return decisions
