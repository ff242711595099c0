"""Robust statistics for timings: medians, percentiles, IQR and a distribution-free CI of the median.

Timings are skewed (a block can only be slowed down by interference), so everything here is
order-statistics based; no normality is assumed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

NOISY_IQR_RATIO = 0.10  # a case whose IQR/median exceeds this is flagged noisy


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between order statistics."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50.0)


def median_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics (binomial, p = 1/2).

    With too few values for the requested confidence the interval is [min, max].
    """
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("confidence interval of no values")
    alpha = 1.0 - confidence
    # largest 1-based rank k with P(Binomial(n, 1/2) < k) <= alpha / 2; the CI is [x_(k), x_(n-k+1)]
    cumulative, k, total = 0, 0, 2**n  # exact integers: 2.0**n overflows a float beyond n = 1023
    for i in range(n + 1):
        cumulative += math.comb(n, i)
        if cumulative / total > alpha / 2:
            break
        k = i + 1
    if k == 0:
        return ordered[0], ordered[-1]
    return ordered[k - 1], ordered[n - k]


@dataclass(frozen=True)
class Summary:
    """Median, spread and CI of one series of measurements (samples/s of blocks, or repeats)."""

    median: float
    ci95: tuple[float, float]
    iqr_rel: float
    count: int

    @property
    def noisy(self) -> bool:
        return self.iqr_rel > NOISY_IQR_RATIO


def summarise(values: Sequence[float]) -> Optional[Summary]:
    if not values:
        return None
    mid = median(values)
    iqr = percentile(values, 75.0) - percentile(values, 25.0)
    return Summary(mid, median_ci(values), iqr / mid if mid else float("inf"), len(values))


# --- Estimators of a case's throughput from its timed blocks -----------------------------------------
# Blocks are samples/s of equal-work blocks, so a block's time is proportional to 1 / rate: the fastest
# block is the "minimum block time" of Chen & Revels (2016), who argue that on a machine where noise only
# adds delay the minimum is the least disturbed figure; a low quantile of block times is its robust
# cousin (less dependent on how many blocks were run); the trimmed mean of block times drops both tails.
# Which one agrees best with itself across processes is measured on A/A data (benchmarks/aa.py,
# docs/noise.md); ``DEFAULT_ESTIMATOR`` is the one those numbers support.

ESTIMATORS = ("median", "min_time", "low_quantile", "trimmed_mean")
DEFAULT_ESTIMATOR = "median"
LOW_QUANTILE = 0.25  # of block times: the 75th percentile of block rates
TRIM = 0.2  # share cut from each tail by the trimmed mean


def check_estimator(name: str) -> str:
    if name not in ESTIMATORS:
        from dlbench.errors import UnknownName

        raise UnknownName("estimator", name, ESTIMATORS)
    return name


def estimate(rates: Sequence[float], name: str = DEFAULT_ESTIMATOR) -> float:
    """A case's throughput from its block rates (samples/s) by the named estimator."""
    if not rates:
        raise ValueError("estimate of no values")
    check_estimator(name)
    if name == "median":
        return median(rates)
    if name == "min_time":
        return max(rates)
    if name == "low_quantile":
        return percentile(rates, 100 * (1 - LOW_QUANTILE))
    times = sorted(1.0 / r for r in rates)
    cut = int(TRIM * len(times))
    kept = times[cut:len(times) - cut] or times
    return 1.0 / (sum(kept) / len(kept))


def _log_binom_cdfs(n: int, p: float) -> list[float]:
    """log P(Binomial(n, p) <= k) for k = 0..n, in log space so thousands of blocks neither overflow nor underflow."""
    log_p, log_q = math.log(p), math.log1p(-p)
    cdfs, running = [], -math.inf
    for k in range(n + 1):
        term = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q
        top = max(running, term)
        running = top + math.log(math.exp(running - top) + math.exp(term - top))
        cdfs.append(running)
    return cdfs


def quantile_ci(values: Sequence[float], q: float, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the q-quantile (0 < q < 1) from order statistics (Binomial(n, q) ranks).

    A bound that needs more values than there are is the extreme value (so few values give [min, max]).
    """
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("confidence interval of no values")
    tail = math.log((1.0 - confidence) / 2)
    below, above = _log_binom_cdfs(n, q), _log_binom_cdfs(n, 1 - q)
    low = 0  # largest 1-based rank l with P(B <= l - 1) <= tail
    while low < n and below[low] <= tail:
        low += 1
    high = n + 1  # smallest 1-based rank u with P(B >= u) = P(Binomial(n, 1 - q) <= n - u) <= tail
    while high > 1 and above[n - high + 1] <= tail:
        high -= 1
    return ordered[max(low, 1) - 1], ordered[min(high, n) - 1]


def _trimmed_mean_ci(times: Sequence[float], confidence: float) -> tuple[float, float]:
    """Tukey-McLaughlin CI of the trimmed mean: winsorised variance, Student t with n - 2g - 1 d.f."""
    from scipy.stats import t as student_t

    ordered = sorted(times)
    n = len(ordered)
    g = int(TRIM * n)
    kept = ordered[g:n - g]
    if n < 3 or len(kept) < 2:
        return ordered[0], ordered[-1]
    centre = sum(kept) / len(kept)
    winsorised = [ordered[g]] * g + kept + [ordered[n - g - 1]] * g
    w_mean = sum(winsorised) / n
    variance = sum((v - w_mean) ** 2 for v in winsorised) / (n - 1)
    se = math.sqrt(variance) / ((1 - 2 * g / n) * math.sqrt(n))
    half = float(student_t.ppf(0.5 + confidence / 2, len(kept) - 1)) * se
    return centre - half, centre + half


def estimate_ci(rates: Sequence[float], name: str = DEFAULT_ESTIMATOR,
                confidence: float = 0.95) -> tuple[float, float]:
    """The estimator's CI, in samples/s.

    ``min_time`` (an extreme value) has no distribution-free interval; the interval given is that of the
    low quantile, its robust neighbour, so that the adaptive stopping rule has something to stop on.
    """
    check_estimator(name)
    if name == "median":
        return quantile_ci(rates, 0.5, confidence)
    if name in ("low_quantile", "min_time"):
        return quantile_ci(rates, 1 - LOW_QUANTILE, confidence)
    lo_time, hi_time = _trimmed_mean_ci([1.0 / r for r in rates], confidence)
    return 1.0 / hi_time, (1.0 / lo_time if lo_time > 0 else math.inf)


def ci_half_width(rates: Sequence[float], name: str = DEFAULT_ESTIMATOR) -> float:
    """Half the 95% CI's width relative to the estimate (0.03 = ±3%); inf with fewer than 2 blocks."""
    if len(rates) < 2:
        return math.inf
    lo, hi = estimate_ci(rates, name)
    centre = estimate(rates, name)
    return (hi - lo) / 2 / centre if centre > 0 else math.inf


def rate_summary(prefix: str, rates: Sequence[float], estimator: str = DEFAULT_ESTIMATOR) -> dict[str, Any]:
    """``{prefix}_samples_per_s`` (the estimator over blocks), its CI and relative half-width, relative IQR,
    and the per-block rates (kept so that anyone can recompute with another estimator)."""
    summary = summarise(list(rates))
    if summary is None:
        return {}
    half = ci_half_width(rates, estimator)
    return {f"{prefix}_samples_per_s": estimate(rates, estimator),
            f"{prefix}_ci95": list(estimate_ci(rates, estimator)),
            f"{prefix}_ci_half_rel": half if half != float("inf") else None,
            f"{prefix}_iqr_rel": summary.iqr_rel, f"{prefix}_blocks": list(rates)}
