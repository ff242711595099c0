"""Statistics on known inputs."""

import pytest

from dlbench.stats.estimators import median, median_ci, percentile, summarise


def test_percentiles_interpolate_between_order_statistics():
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 5.0
    assert median(values) == 3.0
    assert percentile(values, 25) == 2.0
    assert percentile([1.0, 2.0], 50) == 1.5
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)


def test_median_ci_uses_binomial_order_statistics():
    values = list(range(1, 11))  # n = 10: P(B <= 1) = 11/1024 <= 0.025 < P(B <= 2) -> ranks 2 and 9
    assert median_ci(values) == (2, 9)
    assert median_ci([3.0, 1.0, 2.0]) == (1.0, 3.0)  # too few values: the full range
    lo, hi = median_ci(list(range(100)))
    assert 38 <= lo <= 40 and 59 <= hi <= 61


def test_summary_flags_noisy_series():
    steady = summarise([100.0, 101.0, 99.0, 100.5, 99.5])
    assert steady.median == 100.0 and not steady.noisy
    noisy = summarise([100.0, 60.0, 140.0, 80.0, 120.0])
    assert noisy.iqr_rel == pytest.approx(0.4) and noisy.noisy
    assert summarise([]) is None


def test_median_ci_of_thousands_of_blocks_does_not_overflow():
    lo, hi = median_ci([float(v) for v in range(5000)])  # 2.0**5000 overflows a float
    assert 2400 < lo < 2500 < hi < 2600
