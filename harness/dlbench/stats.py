"""Robust statistics for timings: medians, percentiles, IQR and a distribution-free CI of the median.

Timings are skewed (a block can only be slowed down by interference), so everything here is
order-statistics based; no normality is assumed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

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
