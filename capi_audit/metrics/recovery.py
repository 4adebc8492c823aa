"""Recovered vs net-new: the reported change, decomposed exactly (design §3.4), and the report
bridge (§3.5) — per platform and conversion class.

Periods (§3.0) are cut in the platform's report zone (`[report_timezone]`, else the audit's): n
whole weeks before E⁻ and the first n whole weeks after E + burn_in_days, ending settle_days
before the last day every source covers. Per-day means over those days: R (platform report,
source total), L and P (counted units with and without server rows, metrics/units.py; in the pre
period L is taken as P — server rows before enablement are reported apart), O (paid, non-test
orders). With ρ = R̄/L̄ (report-to-log ratio: attribution, modelling, matching) and π = P̄/Ō
(pixel capture of real orders), the reported change splits exactly into four terms:

    R_post − R_pre = ρ_post·(L_post − P_post)              capi_reported (recovered / double / unlinked)
                   + ρ_pre·π_pre·(O_post − O_pre)          net_new
                   + ρ_pre·(π_post − π_pre)·O_post         pixel_capture_change
                   + (ρ_post − ρ_pre)·P_post               attribution_change

(the identity holds because ρ_pre·π_pre·O_pre = R_pre when L_pre = P_pre). Each term has a 95 %
interval from resampling whole weeks (stats.week_bootstrap). Orders: `orders_change_per_day` from
a quasi-Poisson GLM with weekday effects (stats.orders_change) and its minimum detectable effect.
Placebo: the reported change at enable dates moved into the pre-period, `placebo_p_value`.

Reports count attributed conversions (Meta: https://www.facebook.com/business/help/458681590974355 ;
Google: https://support.google.com/google-ads/answer/6270625), logs count all events: the two are
never added; ρ translates log units into report units.
"""

from __future__ import annotations

import datetime as dt
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from capi_audit import stats
from capi_audit.metrics.capi_effect import daily_units, log_coverage, weak_linkage
from capi_audit.metrics.common import FamilyResult, Headline, local_date, tidy
from capi_audit.metrics.periods import Coverage, periods

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace

MIN_WEEKS = 4  # whole weeks each side for week-resampled intervals (review F17)
TERMS = ("reported_change_per_day", "capi_reported_per_day", "capi_reported_recovered_per_day",
         "capi_reported_double_counted_per_day", "capi_reported_unlinked_per_day", "net_new_per_day",
         "pixel_capture_change_per_day", "attribution_change_per_day")
RATIOS = ("rho_pre", "rho_post", "rho_change", "pi_pre", "pi_post")
COLS = ("R", "L", "P", "O", "recovered", "server_double_counted", "unlinked_added")


def terms(pre: dict[str, np.ndarray], post: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The four-term decomposition from per-day columns (last axis = days; NaN = gap, skipped).
    Works on a leading resample axis too."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _terms(pre, post)


def _terms(pre: dict[str, np.ndarray], post: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    def m(d: dict[str, np.ndarray], k: str) -> np.ndarray:
        return np.nanmean(d[k], axis=-1)

    r0, p0, o0 = m(pre, "R"), m(pre, "P"), m(pre, "O")
    r1, l1, p1, o1 = m(post, "R"), m(post, "L"), m(post, "P"), m(post, "O")
    rec, dbl, unl = m(post, "recovered"), m(post, "server_double_counted"), m(post, "unlinked_added")
    with np.errstate(divide="ignore", invalid="ignore"):
        rho0, rho1 = r0 / p0, r1 / l1
        pi0, pi1 = p0 / o0, p1 / o1
    return {
        "reported_change_per_day": r1 - r0,
        "capi_reported_per_day": rho1 * (l1 - p1),
        "capi_reported_recovered_per_day": rho1 * rec,
        "capi_reported_double_counted_per_day": rho1 * dbl,
        "capi_reported_unlinked_per_day": rho1 * unl,
        "net_new_per_day": rho0 * pi0 * (o1 - o0),
        "pixel_capture_change_per_day": rho0 * (pi1 - pi0) * o1,
        "attribution_change_per_day": (rho1 - rho0) * p1,
        "rho_pre": rho0, "rho_post": rho1, "rho_change": rho1 - rho0, "pi_pre": pi0, "pi_post": pi1,
    }


def decompose(pre: dict[str, np.ndarray], post: dict[str, np.ndarray], *, reps: int = 2000) -> dict[str, Any]:
    """Point values of every term and ratio with their week-bootstrap intervals."""
    point = terms({k: v[None, :] for k, v in pre.items()}, {k: v[None, :] for k, v in post.items()})
    ci = stats.week_bootstrap(pre, post, terms, reps=reps)
    out: dict[str, Any] = {}
    for k in (*TERMS, *RATIOS):
        v = float(point[k][0])
        out[k] = v if np.isfinite(v) else None
        out[f"{k}_ci"] = ci[k]
    return out


def placebo(r_pre: np.ndarray, r_post_window: np.ndarray, weeks: int) -> dict[str, Any]:
    """Placebo check of the reported change (design §3.4).

    The pre-period is cut into N whole weeks ending at E⁻. A placebo enable date at a week
    boundary inside it gives a placebo change (m weeks after minus m weeks before, m = n, the
    weeks compared at the real date); `placebo_changes_per_day` lists them. Overlapping placebo
    windows are strongly correlated, so ranking the actual change among them rejects far too often
    (measured: 12–15 % at a nominal 5 %). The p-value therefore uses the null distribution those
    placebo changes estimate: a change of two m-week means whose weekly values vary as the N pre
    weeks do — t = actual / √(2·s²/m), s² the variance of the weekly means, N − 1 degrees of freedom.
    It tests "the report moved more than it moves from week to week", not a CAPI effect."""
    m = weeks
    n_weeks = len(r_pre) // 7
    none = {"placebo_weeks": n_weeks, "placebo_count": 0, "placebo_p_value": None, "placebo_changes_per_day": []}
    if m < 1 or n_weeks < 3 or len(r_post_window) < 7 * m:
        return {**none, "placebo_reason": "needs at least 3 whole weeks of report before enablement"}
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        wk = np.nanmean(np.asarray(r_pre[len(r_pre) - 7 * n_weeks:], float).reshape(n_weeks, 7), axis=1)
        post_wk = np.nanmean(np.asarray(r_post_window[:7 * m], float).reshape(m, 7), axis=1)
        wk = wk[np.isfinite(wk)]
        actual = float(np.mean(post_wk) - np.mean(wk[-m:]))
        changes = [float(wk[j + m:j + 2 * m].mean() - wk[j:j + m].mean()) for j in range(len(wk) - 2 * m + 1)]
    return {"placebo_weeks": int(len(wk)), "placebo_count": len(changes), "placebo_changes_per_day": changes,
            "placebo_actual_change_per_day": actual,
            "placebo_p_value": stats.change_vs_weekly_noise(actual, wk, m)}


_ORDERS_SQL = f"""
SELECT {local_date('created_at')} AS day, count(*) AS O FROM (
    SELECT order_id, min(created_at) AS created_at FROM orders
    WHERE order_id IS NOT NULL AND coalesce(lower(status), 'paid') = 'paid'
        AND NOT EXISTS (SELECT 1 FROM orders t WHERE t.is_test AND t.order_id = orders.order_id)
    GROUP BY order_id) o
GROUP BY 1
"""
_TEST_ORDERS_SQL = f"""
SELECT {local_date('min(created_at)')} AS day FROM orders WHERE is_test AND order_id IS NOT NULL GROUP BY order_id
"""
_REPORT_SQL = """
SELECT date AS day, sum(conversions) AS R, max(date_basis) AS date_basis_max, min(date_basis) AS date_basis_min
FROM platform_report
WHERE platform = $p AND (event_name = $cls OR ($nocase AND lower(event_name) = lower($cls)))
    AND coalesce(lower(source), 'total') = 'total' AND coalesce(lower(date_basis), '') = $basis
GROUP BY date
"""
_BASIS_SQL = """
SELECT DISTINCT coalesce(lower(date_basis), '') FROM platform_report
WHERE platform = $p AND (event_name = $cls OR ($nocase AND lower(event_name) = lower($cls)))
    AND coalesce(lower(source), 'total') = 'total'
"""


def report_basis(ws: Workspace, q: dict[str, Any]) -> str | None:
    """Which dated version of the report to use: conversion-dated rows when the report has them,
    else rows without a stated basis, else interaction-dated ones (flagged unreliable). A report
    holding two versions is never summed across them."""
    have = {r[0] for r in ws.rows(_BASIS_SQL, q)}
    for b in ("conversion", "", "interaction"):
        if b in have:
            return b
    return None


def _report(ws: Workspace, q: dict[str, Any]) -> pd.DataFrame:
    basis = report_basis(ws, q)
    if basis is None:
        return pd.DataFrame(columns=["day", "R", "date_basis_max", "date_basis_min"])
    return _as_days(ws.df(_REPORT_SQL, {**q, "basis": basis}))
def _series(frame: pd.DataFrame, col: str, days: list[dt.date], covered: Coverage | None) -> np.ndarray:
    """Values per day; days the source does not cover are NaN (a gap is never a zero)."""
    s = frame.set_index("day")[col] if len(frame) else pd.Series(dtype=float)
    out = np.array([float(s.get(d, 0.0)) for d in days])
    if covered is not None:
        out[[not covered.covers(d) for d in days]] = np.nan
    return out


def _as_days(frame: pd.DataFrame) -> pd.DataFrame:
    f = frame.copy()
    if len(f):
        f["day"] = pd.to_datetime(f["day"]).dt.date
    return f


def recovery_class(ws: Workspace, plat: str, cls: str, enabled_at: dt.datetime, *, reps: int = 2000,
                   units: dict[str, pd.DataFrame] | None = None) -> tuple[dict[str, Any], pd.DataFrame]:
    """§3.4 and §3.5 for one platform and class."""
    cfg = ws.config
    tz = cfg.report_zone(plat)
    q = {"p": plat, "cls": cls, "tz": tz}
    # the class's own name in the report; its case variants only when the exact name is absent
    rep = _report(ws, {**q, "nocase": False})
    if not len(rep) and plat != "google":  # Google conversion actions are names, not event variants
        rep = _report(ws, {**q, "nocase": True})
    if not len(rep):
        return {"available": False, "reason": f"no platform_report rows for {plat} '{cls}' (source total): "
                "load the platform's conversion report, dated by conversion time, to bridge logs to it"}, pd.DataFrame()
    units = units if units is not None else daily_units(ws, plat, tz)
    u = _as_days(units["daily"][units["daily"]["conv_class"] == cls].groupby("day", as_index=False).sum(numeric_only=True))
    orders = _as_days(ws.df(_ORDERS_SQL, q))
    tests = _as_days(ws.df(_TEST_ORDERS_SQL, q))
    cov = log_coverage(ws, plat, tz)
    cov["platform_report"] = Coverage(min(rep["day"]), max(rep["day"]), frozenset(rep["day"]))
    per = periods(enabled_at, tz, cov, burn_in_days=cfg.burn_in_days, settle_days=cfg.settle_days)
    basis = sorted({b for b in list(rep["date_basis_min"]) + list(rep["date_basis_max"]) if isinstance(b, str)})
    bridge_cov = {
        "first_day": min(rep["day"]).isoformat(), "last_day": max(rep["day"]).isoformat(),
        "gaps": [d.isoformat() for d in per.gaps.get("platform_report", [])],
        "settle_days_dropped": [d.isoformat() for d in per.settle_dropped],
        "date_basis": basis or ["unknown"],
        "timezone": tz,
    }
    out: dict[str, Any] = {"periods": per.summary(), "report_coverage": bridge_cov}
    n = per.weeks
    all_days = sorted(set(per.pre_days) | set(per.post_days))
    frame = pd.DataFrame({"day": all_days})
    gap_cov = {"R": cov["platform_report"], "O": cov.get("orders")}
    log_cov = cov.get("pixel_events")
    series = {}
    for col in COLS:
        src = rep if col == "R" else orders if col == "O" else u
        c = gap_cov.get(col, log_cov)
        series[col] = _series(src, col, all_days, c) if col in src.columns or not len(src) else np.full(len(all_days), np.nan)
        frame[col] = series[col]
    frame["test_orders"] = _series(tests.assign(n=1).groupby("day", as_index=False)["n"].sum() if len(tests)
                                   else pd.DataFrame(columns=["day", "n"]), "n", all_days, None)
    pre_set, post_set = set(per.pre_window), set(per.post_window)
    frame["period"] = ["pre" if d in pre_set else "post" if d in post_set else
                       ("pre_outside_window" if d < per.enable_day_before else "post_outside_window")
                       for d in all_days]
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["rho"] = np.where(frame["period"].str.startswith("pre"), frame["R"] / frame["P"], frame["R"] / frame["L"])
        frame["pi"] = frame["P"] / frame["O"]
    if n < 1:
        out.update(available=False, reason=f"fewer than 7 settled days on one side of enablement "
                   f"({len(per.pre_days)} pre, {len(per.post_days)} post): the comparison needs whole weeks on "
                   "both sides; audit a longer stretch before and after")
        return out, frame
    idx_pre = [all_days.index(d) for d in per.pre_window]
    idx_post = [all_days.index(d) for d in per.post_window]
    pre = {k: v[idx_pre] for k, v in series.items()}
    post = {k: v[idx_post] for k, v in series.items()}
    out.update(whole_weeks=n, pre_days=len(idx_pre), post_days=len(idx_post))
    for k in ("R", "L", "P", "O"):
        out[f"{k}_pre_per_day"] = float(np.nanmean(pre["P" if k == "L" else k]))
        out[f"{k}_post_per_day"] = float(np.nanmean(post[k]))
    out["pre_server_units_per_day"] = float(np.nanmean(pre["L"] - pre["P"]))
    out["test_orders_per_day_pre"] = float(frame["test_orders"].to_numpy()[idx_pre].mean())
    out["test_orders_per_day_post"] = float(frame["test_orders"].to_numpy()[idx_post].mean())
    out.update(decompose(pre, post, reps=reps))
    weekday = np.array([d.weekday() for d in per.pre_window + per.post_window])
    oc = stats.orders_change(np.concatenate([pre["O"], post["O"]]), weekday,
                             np.r_[np.zeros(len(idx_pre)), np.ones(len(idx_post))])
    out.update(orders_change_per_day=oc["change_per_day"], orders_change_per_day_ci=oc["ci"],
               orders_change_p_value=oc["p_value"], orders_change_mde=oc["mde"],
               orders_dispersion=oc["dispersion"])
    r_pre_all = _series(rep, "R", per.pre_days, cov["platform_report"])
    pl = placebo(r_pre_all, post["R"], n)
    out.update(pl)
    reasons = []
    if n < MIN_WEEKS:
        reasons.append(f"only {n} whole week(s) each side: week-resampled intervals need at least {MIN_WEEKS}; "
                       "audit 4+ weeks before and after enablement")
    if per.window_gaps:
        g = "; ".join(f"{s}: {', '.join(x.isoformat() for x in d)}" for s, d in sorted(per.window_gaps.items()))
        reasons.append(f"gaps inside the compared weeks ({g}), left out, not zero-filled: re-export or load "
                       "those days")
    if out["pre_server_units_per_day"]:
        reasons.append("server rows before enablement change the pre-period count: check [capi_enabled_at]")
    weak = weak_linkage(ws, plat)
    if weak:
        reasons.append(weak)
    if basis == ["interaction"]:
        reasons.append("the report is dated by ad interaction (click), not by conversion: conversions lag "
                       "into later days; export conversion-time columns")
    if reasons:
        out["reliable"] = False
        out["reason"] = "; ".join(reasons)
    return out, frame


def recovery(ws: Workspace, *, bootstrap_reps: int = 2000) -> tuple[pd.DataFrame, Headline]:
    """Per platform with an enable time and per conversion class: the decomposition and bridge.
    Frame `recovery`: one row per platform, class and day with R, L, P, O, ρ, π and the period."""
    reason = None
    if not ws.count("orders"):
        reason = "no orders loaded"
    elif not ws.count("platform_report"):
        reason = "no platform_report loaded: the decomposition explains the platform's reported change"
    elif not ws.config.capi_enabled_at:
        reason = "no CAPI enable time configured ([capi_enabled_at])"
    if reason:
        return pd.DataFrame(), Headline("recovery", available=False, reason=reason)
    values: dict[str, Any] = {}
    frames = []
    for plat, enabled_at in sorted(ws.config.capi_enabled_at.items()):
        units = daily_units(ws, plat, ws.config.report_zone(plat))
        classes = sorted(set(units["daily"]["conv_class"])) if len(units["daily"]) else []
        if not classes:
            values[plat] = {"available": False, "reason": f"no {plat} units in a conversion class"}
            continue
        values[plat] = {}
        for cls in classes:
            v, f = recovery_class(ws, plat, cls, enabled_at, reps=bootstrap_reps, units=units)
            values[plat][cls] = v
            if len(f):
                frames.append(f.assign(platform=plat, conv_class=cls))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return (tidy(frame, ["platform", "conv_class", "day"]) if len(frame) else frame), Headline("recovery", values)


WATERFALL = (("capi_reported_recovered_per_day", "CAPI: recovered", "green"),
             ("capi_reported_double_counted_per_day", "CAPI: double counted", "vermillion"),
             ("capi_reported_unlinked_per_day", "CAPI: unlinked", "purple"),
             ("net_new_per_day", "net new (orders moving)", "blue"),
             ("pixel_capture_change_per_day", "pixel capture change", "sky"),
             ("attribution_change_per_day", "attribution change", "yellow"),
             ("reported_change_per_day", "reported change", "black"))


def waterfall_frame(values: dict[str, Any]) -> pd.DataFrame:
    """The four-term identity of one platform/class as rows (term, label, colour name, per_day,
    ci_low, ci_high): the CAPI term in its three parts, the other terms, then the total."""
    rows = []
    for key, label, color in WATERFALL:
        ci = values.get(f"{key}_ci") or [None, None]
        rows.append({"term": key, "label": label, "color": color, "per_day": values.get(key),
                     "ci_low": ci[0], "ci_high": ci[1]})
    return pd.DataFrame(rows)


def cached_recovery(ws: Workspace, bootstrap_reps: int = 2000) -> tuple[pd.DataFrame, Headline]:
    """`recovery(ws)` once per workspace, config and data (capi_effect's sentence reads it too)."""
    from capi_audit.metrics.units import _token

    key = (_token(ws), bootstrap_reps)
    cache = getattr(ws, "_recovery_cache", None)
    if cache is None or cache[0] != key:
        ws._recovery_cache = (key, recovery(ws, bootstrap_reps=bootstrap_reps))
    return ws._recovery_cache[1]


def compute(ws: Workspace, *, bootstrap_reps: int = 2000) -> FamilyResult:
    """Family `recovery`: the decomposition and bridge per platform and class (frame `recovery`,
    per day) and the waterfall rows (frame `recovery_waterfall`)."""
    frame, head = cached_recovery(ws, bootstrap_reps)
    frames = {"recovery": frame}
    if head.available:
        parts = [waterfall_frame(v).assign(platform=plat, conv_class=cls)
                 for plat, classes in sorted(head.values.items()) if isinstance(classes, dict)
                 for cls, v in sorted(classes.items())
                 if isinstance(v, dict) and v.get("available", True) is not False]
        frames["recovery_waterfall"] = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return FamilyResult(head, frames)


def _fmt(x: float | None, spec: str = ".1f") -> str:
    return "n/a" if x is None else format(x, spec)


def headline_sentence(effect: dict[str, Any] | None, rec: dict[str, Any] | None) -> str | None:
    """The §3.4 headline for one platform and class, from its capi_effect and recovery values."""
    if not effect or effect.get("available") is False or effect.get("capi_added_per_day") is None:
        return None
    x = effect["capi_added_per_day"]
    acr = effect.get("acr_like")
    cons = effect.get("recovered_by_consent_per_day", {})
    denied = cons.get("denied_restricted", 0.0) + cons.get("denied_violation", 0.0)
    causes = {k: v for k, v in effect.get("server_double_counted_by_cause_per_day", {}).items() if k != "other"}
    top = max(causes, key=lambda k: causes[k]) if causes and max(causes.values()) > 0 else None
    rec_n = effect["recovered_per_day"]
    known = denied + cons.get("granted", 0.0)
    orders = "recovered orders" if effect.get("orders_loaded", True) else "recovered order ids"
    consent = (f"{denied:.1f} of them from users who denied ads consent" if known > 0 or not rec_n else
               "ads consent not known: load orders with a consent column")
    s = (f"After enabling CAPI, the server added {x:.1f} conversions/day the pixel alone would not have counted "
         f"({'+' + format(100 * acr, '.0f') + ' %' if acr is not None else 'n/a'}): "
         f"{rec_n:.1f} {orders} ({consent}), "
         f"{effect['server_double_counted_per_day']:.1f} double counts"
         f"{' (largest cause: ' + top.replace('_', ' ') + ')' if top else ''}")
    if effect.get("unlinked_added_per_day"):
        s += f", {effect['unlinked_added_per_day']:.1f} unlinked"
    s += "."
    if not effect.get("orders_loaded", True):
        s += (" No orders table is loaded: orders are the order ids the events carry, not checked against "
              "the shop's orders.")
    if effect.get("reliable") is False:  # never a confident wrong number: the sentence carries the doubt
        s += f" (Not reliable: {effect.get('reason')}.)"
    if rec and rec.get("available") is not False and rec.get("capi_reported_per_day") is not None:
        lo, hi = rec.get("orders_change_per_day_ci") or [None, None]
        s += (f" In the platform's report that is about {rec['capi_reported_per_day']:.1f}/day of the "
              f"{rec['reported_change_per_day']:+.1f}/day change; real orders moved by "
              f"{_fmt(rec.get('orders_change_per_day'), '+.1f')}/day (95 % CI {_fmt(lo)} to {_fmt(hi)}), "
              "not attributable to CAPI from logs — a holdout (docs/holdout.md) measures incrementality.")
        if rec.get("reliable") is False:
            s += f" (Report comparison not reliable: {rec.get('reason')}.)"
    return s


def headline_sentences(summary: dict[str, Any]) -> list[str]:
    """'<platform> <class>: <sentence>' for every platform and class of a summary (CLI text and
    report), or why there is none."""
    eff, rec = summary.get("capi_effect", {}), summary.get("recovery", {})
    if eff.get("available", True) is False:
        return [f"capi_effect: not available ({eff.get('reason')})"]
    lines = []
    for plat, classes in sorted(eff.items()):
        if not isinstance(classes, dict):
            continue
        if classes.get("available") is False:
            lines.append(f"{plat}: CAPI effect not available ({classes.get('reason')})")
            continue
        for cls, vals in sorted(classes.items()):
            r = rec.get(plat, {}).get(cls) if rec.get("available", True) is not False else None
            s = headline_sentence(vals, r if isinstance(r, dict) else None)
            if s:
                lines.append(f"{plat} {cls}: {s}")
    return lines
