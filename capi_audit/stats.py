"""Statistics for the recovery split: a test of changed sales and a day-block bootstrap CI."""

from __future__ import annotations

import numpy as np
from scipy import stats


def sales_change_p_value(orders_pre: int, orders_post: int, days_pre: int, days_post: int) -> float | None:
    """Two-sided exact test that the daily order rate is the same before and after (Poisson).

    Given the total, the post-period count is binomial with p = post days / all days under
    equal rates (the conditional test for two Poisson rates).
    """
    n = orders_pre + orders_post
    if n == 0 or days_pre <= 0 or days_post <= 0:
        return None
    return float(stats.binomtest(orders_post, n, days_post / (days_pre + days_post)).pvalue)


def block_bootstrap_ci(
    reported_pre: np.ndarray, orders_pre: np.ndarray, reported_post: np.ndarray, orders_post: np.ndarray,
    *, block: int = 3, reps: int = 2000, level: float = 0.95, seed: int = 20240531,
) -> tuple[float | None, float | None]:
    """Percentile CI of c_post - c_pre (c = sum reported / sum orders) by a circular moving-block
    bootstrap within each period: blocks of `block` consecutive days starting anywhere (wrapping
    round), enough of them to cover the period, so day-to-day dependence inside a block is kept
    while short periods still offer many distinct resamples."""
    if len(orders_pre) == 0 or len(orders_post) == 0:
        return None, None
    rng = np.random.default_rng(seed)

    def resample(r: np.ndarray, o: np.ndarray) -> np.ndarray:
        n = len(o)
        b = max(1, min(block, n))
        k = -(-n // b)
        starts = rng.integers(0, n, (reps, k))
        idx = (starts[:, :, None] + np.arange(b)[None, None, :]).reshape(reps, k * b)[:, :n] % n
        with np.errstate(divide="ignore", invalid="ignore"):
            return r[idx].sum(axis=1) / o[idx].sum(axis=1)

    diff = resample(np.asarray(reported_post, float), np.asarray(orders_post, float)) - resample(
        np.asarray(reported_pre, float), np.asarray(orders_pre, float))
    diff = diff[np.isfinite(diff)]
    if not len(diff):
        return None, None
    alpha = (1 - level) / 2
    return float(np.quantile(diff, alpha)), float(np.quantile(diff, 1 - alpha))
