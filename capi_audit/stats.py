"""Statistics behind the CAPI-effect and recovery figures (design §3.3, §3.4).

What the intervals here cover, and what they do not:
- `day_block_interval` — a moving-block bootstrap over consecutive days with 7-day blocks: the
  sampling noise of a per-day mean over the audited days (how much it could differ in another
  stretch of days like these). Not drift, not anything that changed with the rollout.
- `week_bootstrap` — whole weeks resampled independently before and after: every
  resample keeps each weekday once per week, so the weekday mix cannot bias a pre/post term.
  It covers week-to-week noise; it does not cover a trend, seasonality or anything else that
  moved at the same time as enablement (see the placebo check and docs/holdout.md).
- `orders_change` — a quasi-Poisson GLM (statsmodels) with weekday effects and a post indicator
  on the identity link, so the post coefficient is the change in orders per day; the scale is
  estimated from the Pearson χ² (overdispersion) and tests use the t distribution.

Bootstrap intervals are "bootstrap-t-like": estimate ± t(df)·SE, with the bootstrap SE scaled by
√(b/(b−1)) for b resampled blocks (the plain bootstrap variance is biased low by (b−1)/b, which
matters with the 3–8 weeks an audit usually has) and t quantiles with the block degrees of
freedom. benchmarks/calibration.py measures their coverage.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
from scipy import stats as sps

LEVEL = 0.95
SEED = 20240531


def _t_interval(estimate: float, samples: np.ndarray, blocks: int, df: int,
                level: float = LEVEL) -> list[float | None]:
    samples = samples[np.isfinite(samples)]
    if estimate is None or not np.isfinite(estimate) or blocks < 2 or df < 1 or len(samples) < 10:
        return [None, None]
    se = float(np.std(samples, ddof=1)) * math.sqrt(blocks / (blocks - 1))
    q = float(sps.t.ppf(0.5 + level / 2, df))
    return [float(estimate - q * se), float(estimate + q * se)]


def block_indices(n: int, block: int, reps: int, rng: np.random.Generator) -> np.ndarray:
    """(reps, n) day indices of a moving-block bootstrap: blocks of `block` consecutive days
    starting anywhere a whole block fits (no wrap-around), concatenated and cut to n days."""
    b = max(1, min(block, n))
    k = -(-n // b)
    starts = rng.integers(0, n - b + 1, (reps, k))
    return (starts[:, :, None] + np.arange(b)[None, None, :]).reshape(reps, k * b)[:, :n]


def day_block_interval(columns: dict[str, np.ndarray], stat: Callable[[dict[str, np.ndarray]], np.ndarray],
                       *, block: int = 7, reps: int = 2000, seed: int = SEED) -> list[float | None]:
    """95 % interval of stat (computed from per-day columns, vectorized over a leading resample
    axis) by a moving-block bootstrap over the days with 7-day blocks."""
    n = len(next(iter(columns.values())))
    if n < 2 * block:
        return [None, None]
    estimate = float(stat({k: v[None, :] for k, v in columns.items()})[0])
    idx = block_indices(n, block, reps, np.random.default_rng(seed))
    samples = stat({k: v[idx] for k, v in columns.items()})
    blocks = -(-n // block)
    return _t_interval(estimate, np.asarray(samples, float), blocks, blocks - 1)


def week_resamples(weeks: int, reps: int, rng: np.random.Generator) -> np.ndarray:
    """(reps, weeks * 7) day indices: whole weeks drawn with replacement, each kept intact."""
    w = rng.integers(0, weeks, (reps, weeks))
    return (w[:, :, None] * 7 + np.arange(7)[None, None, :]).reshape(reps, weeks * 7)


def week_bootstrap(pre: dict[str, np.ndarray], post: dict[str, np.ndarray],
                   stat: Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], dict[str, np.ndarray]],
                   *, reps: int = 2000, seed: int = SEED, level: float = LEVEL) -> dict[str, list[float | None]]:
    """95 % interval of every term stat returns, resampling whole weeks before and after
    independently. Columns hold n·7 days per side (n whole weeks, aligned to the period).

    Welch-style: the variance from resampling the pre weeks (post held fixed) and from resampling
    the post weeks (pre held fixed) are estimated separately, each scaled by w/(w−1) for w weeks;
    the interval is estimate ± t(df)·√(v_pre + v_post) with Welch–Satterthwaite df, so a term that
    depends on one side only gets that side's degrees of freedom."""
    n_pre = len(next(iter(pre.values()))) // 7
    n_post = len(next(iter(post.values()))) // 7
    one = {k: v[None, :] for k, v in pre.items()}, {k: v[None, :] for k, v in post.items()}
    point = stat(*one)
    if min(n_pre, n_post) < 2:
        return {k: [None, None] for k in point}
    rng = np.random.default_rng(seed)
    ip, iq = week_resamples(n_pre, reps, rng), week_resamples(n_post, reps, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        s_pre = stat({k: v[ip] for k, v in pre.items()}, one[1])
        s_post = stat(one[0], {k: v[iq] for k, v in post.items()})
    out: dict[str, list[float | None]] = {}
    for k in point:
        est = float(point[k][0])
        # a term that does not depend on one side comes back unresampled (shape 1): no variance there
        a = np.broadcast_to(np.asarray(s_pre[k], float), (reps,))
        b = np.broadcast_to(np.asarray(s_post[k], float), (reps,))
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if not np.isfinite(est) or len(a) < 10 or len(b) < 10:
            out[k] = [None, None]
            continue
        v1 = float(np.var(a, ddof=1)) * n_pre / (n_pre - 1)
        v2 = float(np.var(b, ddof=1)) * n_post / (n_post - 1)
        if v1 + v2 <= 0:
            out[k] = [est, est]
            continue
        df = (v1 + v2) ** 2 / (v1**2 / (n_pre - 1) + v2**2 / (n_post - 1))
        q = float(sps.t.ppf(0.5 + level / 2, df))
        half = q * math.sqrt(v1 + v2)
        out[k] = [est - half, est + half]
    return out


def orders_change(orders: np.ndarray, weekday: np.ndarray, post: np.ndarray) -> dict:
    """Change in real orders per day after vs before, adjusted for weekday (design §3.4).

    Quasi-Poisson GLM on the identity link: orders_d = a + weekday_d + b·post_d; b is the change
    per day. Scale from Pearson χ² / residual df (overdispersion), Wald t-test with residual df.
    `mde` is the smallest |b| a two-sided 5 % test detects with 80 % power at this noise level.
    """
    import statsmodels.api as sm

    y = np.asarray(orders, float)
    wd = np.asarray(weekday, int)
    x = np.column_stack([np.ones(len(y))] + [(wd == k).astype(float) for k in range(1, 7)]
                        + [np.asarray(post, float)])
    keep = x[:, 1:-1].any(axis=0)
    x = np.column_stack([x[:, 0], x[:, 1:-1][:, keep], x[:, -1]])
    empty = {"change_per_day": None, "ci": [None, None], "p_value": None, "mde": None, "dispersion": None}
    if len(y) < x.shape[1] + 2 or y.sum() == 0:
        return empty
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fam = sm.families.Poisson(link=sm.families.links.Identity())
            fit = sm.GLM(y, x, family=fam).fit(scale="X2")
    except Exception:  # noqa: BLE001 — a model that cannot be fitted gives no figure, not a traceback
        return empty
    b, se, df = float(fit.params[-1]), float(fit.bse[-1]), int(fit.df_resid)
    if not np.isfinite(se) or se <= 0 or df < 1:
        return empty
    q = float(sps.t.ppf(0.975, df))
    return {
        "change_per_day": b,
        "ci": [b - q * se, b + q * se],
        "p_value": float(2 * sps.t.sf(abs(b / se), df)),
        "mde": float((q + sps.t.ppf(0.80, df)) * se),
        "dispersion": float(fit.scale),
    }


def change_vs_weekly_noise(actual: float | None, weekly: np.ndarray, m: int) -> float | None:
    """Two-sided p-value of a change between two m-week means, against the week-to-week variation
    of `weekly` (weekly means before enablement): t = actual / √(2·s²/m), df = len(weekly) − 1."""
    w = np.asarray(weekly, float)
    w = w[np.isfinite(w)]
    if actual is None or not np.isfinite(actual) or len(w) < 3 or m < 1:
        return None
    s2 = float(np.var(w, ddof=1))
    if s2 <= 0:
        return 0.0 if actual != 0 else 1.0
    t = actual / math.sqrt(2 * s2 / m)
    return float(2 * sps.t.sf(abs(t), len(w) - 1))
