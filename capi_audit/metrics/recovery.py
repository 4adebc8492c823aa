"""Recovered vs net-new (design §3): how the change in reported conversions splits.

Per order created after enablement: which channels carried it (any event_name). Across
enablement: per-day means of reported conversions R (platform_report, conversion event,
source total) and real orders O over whole local days before / from the enable time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from capi_audit import stats
from capi_audit.metrics.common import (
    FamilyResult,
    Headline,
    local_date,
    local_midnight,
    not_test_order,
    params,
    prepare,
    ratio,
    tidy,
)
from capi_audit.metrics.double_counting import extra_counts

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace

SPLIT = ("orders_post_pixel_and_server", "orders_post_server_only", "orders_post_pixel_only",
         "orders_post_unreported")

# Non-test orders (first row per order_id) created at/after the enable time, by channel.
_SPLIT_SQL = f"""
WITH o AS (
    SELECT order_id, min(created_at) AS created_at FROM orders
    WHERE {not_test_order('order_id')} GROUP BY order_id
),
px AS (SELECT DISTINCT order_id FROM ev WHERE channel = 'pixel' AND platform = $p AND order_id IS NOT NULL),
sv AS (SELECT DISTINCT order_id FROM ev WHERE channel = 'server' AND platform = $p AND order_id IS NOT NULL),
post AS (
    SELECT o.order_id, {local_date('o.created_at')} AS day,
        CASE WHEN px.order_id IS NOT NULL THEN 1 ELSE 0 END AS has_px,
        CASE WHEN sv.order_id IS NOT NULL THEN 1 ELSE 0 END AS has_sv
    FROM o LEFT JOIN px ON px.order_id = o.order_id LEFT JOIN sv ON sv.order_id = o.order_id
    WHERE o.created_at >= $e
)
SELECT day,
    sum(has_px * has_sv) AS orders_post_pixel_and_server,
    sum((1 - has_px) * has_sv) AS orders_post_server_only,
    sum(has_px * (1 - has_sv)) AS orders_post_pixel_only,
    sum((1 - has_px) * (1 - has_sv)) AS orders_post_unreported
FROM post GROUP BY day ORDER BY day
"""

# Every local day from the first to the last day with orders or report rows, with O and R,
# and whether the day is whole before / whole after the enable time.
_DAYS_SQL = f"""
WITH o AS (
    SELECT {local_date('min(created_at)')} AS day FROM orders
    WHERE {not_test_order('order_id')} GROUP BY order_id
),
od AS (SELECT day, count(*) AS orders FROM o GROUP BY day),
rd AS (
    SELECT date AS day, sum(conversions) AS reported FROM platform_report
    WHERE platform = $p AND event_name = $conv AND coalesce(lower(source), 'total') = 'total'
    GROUP BY date
),
span AS (
    SELECT min(day) AS lo, max(day) AS hi FROM (SELECT day FROM od UNION ALL SELECT day FROM rd)
),
days AS (
    SELECT day_series(span.lo, span.hi) AS day FROM span
)
SELECT days.day, coalesce(od.orders, 0) AS orders, coalesce(rd.reported, 0) AS reported,
    CASE WHEN {local_midnight('days.day + 1')} <= $e THEN 'pre'
         WHEN {local_midnight('days.day')} >= $e THEN 'post' ELSE 'partial' END AS period
FROM days LEFT JOIN od ON od.day = days.day LEFT JOIN rd ON rd.day = days.day
ORDER BY days.day
"""


def recovery(ws: Workspace, *, bootstrap_reps: int = 2000) -> tuple[pd.DataFrame, Headline]:
    """Per platform: the per-order split after enablement and the per-day decomposition."""
    reason = None
    if not ws.count("orders"):
        reason = "no orders loaded"
    elif not ws.count("platform_report"):
        reason = "no platform_report loaded"
    elif not ws.config.capi_enabled_at:
        reason = "no CAPI enable time configured ([capi_enabled_at])"
    if reason:
        return pd.DataFrame(), Headline("recovery", available=False, reason=reason)
    prepare(ws)
    conv = ws.config.conversion_event
    values: dict = {}
    frames = []
    for plat, enabled_at in sorted(ws.config.capi_enabled_at.items()):
        q = {**params(ws), "p": plat, "e": enabled_at}
        days = ws.df(_DAYS_SQL, q)
        if not len(days):
            continue
        split = ws.df(_SPLIT_SQL, q)
        days["platform"] = plat
        frames.append(days.merge(split, on="day", how="left").fillna({k: 0 for k in SPLIT}))
        values[plat] = {conv: _decompose(ws, plat, conv, days, split, bootstrap_reps)}
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return tidy(frame, ["platform", "day"]), Headline("recovery", values)


def _decompose(ws: Workspace, plat: str, conv: str, days: pd.DataFrame, split: pd.DataFrame,
               reps: int) -> dict:
    pre, post = days[days["period"] == "pre"], days[days["period"] == "post"]
    n_pre, n_post = len(pre), len(post)
    out: dict = {k: int(split[k].sum()) if len(split) else 0 for k in SPLIT}
    o_pre = pre["orders"].mean() if n_pre else None
    o_post = post["orders"].mean() if n_post else None
    r_pre = pre["reported"].mean() if n_pre else None
    r_post = post["reported"].mean() if n_post else None
    c_pre, c_post = ratio(r_pre, o_pre), ratio(r_post, o_post)
    post_days = set(post["day"])
    recovered = split[split["day"].isin(post_days)]["orders_post_server_only"].sum() if len(split) else 0
    dbl = extra_counts(ws, event_name=conv)
    dbl = dbl[dbl["platform"] == plat]
    extra = float((dbl["counted_events"] - dbl["orders_matched"]).sum()) if len(dbl) else 0.0
    out.update(pre_days=n_pre, post_days=n_post, reported_per_day_pre=r_pre, reported_per_day_post=r_post,
               orders_per_day_pre=o_pre, orders_per_day_post=o_post,
               capture_rate_pre=c_pre, capture_rate_post=c_post)
    if None in (c_pre, c_post, r_pre, r_post):
        out.update(reported_change_per_day=None, net_new_per_day=None, measurement_change_per_day=None,
                   recovered_per_day=None, double_counted_per_day=None, unexplained_per_day=None,
                   sales_change_p_value=None, capture_rate_change_ci=[None, None])
        return out
    measurement = (c_post - c_pre) * o_post
    recovered_pd = float(recovered) / n_post
    dbl_pd = extra / n_post
    lo, hi = stats.block_bootstrap_ci(pre["reported"].to_numpy(float), pre["orders"].to_numpy(float),
                                      post["reported"].to_numpy(float), post["orders"].to_numpy(float),
                                      reps=reps)
    out.update(
        reported_change_per_day=float(r_post - r_pre),
        net_new_per_day=float(c_pre * (o_post - o_pre)),
        measurement_change_per_day=float(measurement),
        recovered_per_day=recovered_pd,
        double_counted_per_day=dbl_pd,
        unexplained_per_day=float(measurement - recovered_pd - dbl_pd),
        sales_change_p_value=stats.sales_change_p_value(int(pre["orders"].sum()), int(post["orders"].sum()),
                                                        n_pre, n_post),
        capture_rate_change_ci=[lo, hi],
    )
    return out


def headline_sentence(values: dict) -> str | None:
    """'Of +X reported conversions/day, Y are recovered browser losses, ...' for one platform/event."""
    if values.get("reported_change_per_day") is None:
        return None
    p = values["sales_change_p_value"]
    return (f"Of {values['reported_change_per_day']:+.1f} reported conversions/day, "
            f"{values['recovered_per_day']:.1f} are recovered browser losses, "
            f"{values['double_counted_per_day']:.1f} are double counts, "
            f"{values['net_new_per_day']:.1f} are real new sales (p = {p:.3g}) "
            f"and {values['unexplained_per_day']:.1f} are unexplained.")


def compute(ws: Workspace, *, bootstrap_reps: int = 2000) -> FamilyResult:
    """Family `recovery`: the decomposition headline and the per-day frame."""
    frame, head = recovery(ws, bootstrap_reps=bootstrap_reps)
    frames = {"recovery": frame}
    if head.available:
        parts = [decomposition_frame(vals).assign(platform=plat, event_name=ev)
                 for plat, evs in sorted(head.values.items()) for ev, vals in sorted(evs.items())]
        frames["recovery_decomposition"] = (
            pd.concat(parts, ignore_index=True)[["platform", "event_name", *parts[0].columns[:-2]]]
            if parts else pd.DataFrame())
    return FamilyResult(head, frames)


def decomposition_frame(values: dict) -> pd.DataFrame:
    """The split of one platform/event as a small frame (component, per_day, the measurement CI)."""
    parts = [("reported change", values.get("reported_change_per_day")),
             ("recovered", values.get("recovered_per_day")),
             ("double counted", values.get("double_counted_per_day")),
             ("net new sales", values.get("net_new_per_day")),
             ("unexplained", values.get("unexplained_per_day"))]
    ci = values.get("capture_rate_change_ci") or [None, None]
    o_post = values.get("orders_per_day_post")
    lo = hi = None
    if None not in ci and o_post is not None:
        lo, hi = ci[0] * o_post, ci[1] * o_post
    return pd.DataFrame({"component": [p[0] for p in parts],
                         "per_day": [float("nan") if p[1] is None else float(p[1]) for p in parts],
                         "measurement_ci_low": lo, "measurement_ci_high": hi}).astype(
        {"measurement_ci_low": float, "measurement_ci_high": float})
