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
    *, block: int = 7, reps: int = 2000, level: float = 0.95, seed: int = 20240531,
) -> tuple[float | None, float | None]:
    """Percentile CI of c_post - c_pre (c = sum reported / sum orders), resampling whole blocks
    of consecutive days with replacement within each period (keeps the weekly pattern)."""
    if len(orders_pre) == 0 or len(orders_post) == 0:
        return None, None
    rng = np.random.default_rng(seed)

    def blocks(r: np.ndarray, o: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        starts = range(0, len(o), block)
        return (np.array([r[s:s + block].sum() for s in starts]), np.array([o[s:s + block].sum() for s in starts]))

    rb_pre, ob_pre = blocks(reported_pre, orders_pre)
    rb_post, ob_post = blocks(reported_post, orders_post)
    i_pre = rng.integers(0, len(ob_pre), (reps, len(ob_pre)))
    i_post = rng.integers(0, len(ob_post), (reps, len(ob_post)))
    with np.errstate(divide="ignore", invalid="ignore"):
        c_pre = rb_pre[i_pre].sum(axis=1) / ob_pre[i_pre].sum(axis=1)
        c_post = rb_post[i_post].sum(axis=1) / ob_post[i_post].sum(axis=1)
    diff = c_post - c_pre
    diff = diff[np.isfinite(diff)]
    if not len(diff):
        return None, None
    alpha = (1 - level) / 2
    return float(np.quantile(diff, alpha)), float(np.quantile(diff, 1 - alpha))
