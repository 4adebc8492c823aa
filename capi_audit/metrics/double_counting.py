"""Double counting (design §3): per order, how many times the platform counts it, and why.

Counting follows the platform rules of `dedup`: a key in both channels within the window counts
once, outside it twice; an event without event_id counts on its own; same-key copies in one
channel once (not documented by Meta: domain/meta.md §4.3, assumed and stated).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from capi_audit.metrics.common import (
    FamilyResult,
    Headline,
    num,
    params,
    prepare,
    ratio,
    tidy,
    within_window,
)

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace

CAUSES = ("id_mismatch", "missing_event_id", "name_mismatch", "outside_window", "server_retry_new_id")

# Rows after enablement that carry an order_id; `$only` restricts to one event_name (NULL = all).
# Per (platform, order, event_name, event_id) after enablement: channel counts and whether the
# pair is outside the window; and rows without event_id per (platform, order, event_name).
# Materialized once, then read by every variant (all events, or one event_name).
_ORDER_KEYS_SQL = f"""
CREATE OR REPLACE TEMP TABLE order_keys AS
WITH k AS (
    SELECT platform, order_id, event_name, event_id,
        sum(CASE WHEN channel = 'pixel' THEN 1 ELSE 0 END) AS px,
        sum(CASE WHEN channel = 'server' THEN 1 ELSE 0 END) AS sv,
        min(CASE WHEN channel = 'pixel' THEN receipt_time END) AS pf,
        min(CASE WHEN channel = 'server' THEN receipt_time END) AS sf
    FROM ev WHERE post AND order_id IS NOT NULL AND event_id IS NOT NULL
    GROUP BY platform, order_id, event_name, event_id
)
SELECT k.platform, k.order_id, k.event_name, k.event_id, k.px, k.sv,
    CASE WHEN px > 0 AND sv > 0 AND NOT {within_window('pf', 'sf')} THEN 1 ELSE 0 END AS outside
FROM k LEFT JOIN audit_params w ON w.platform = k.platform
"""
_ORDER_NOID_SQL = """
CREATE OR REPLACE TEMP TABLE order_noid AS
SELECT platform, order_id, event_name, count(*) AS no_id
FROM ev WHERE post AND order_id IS NOT NULL AND event_id IS NULL
GROUP BY platform, order_id, event_name
"""

# `$only` restricts to one event_name (NULL = all names).
_PER_ORDER_SQL = """
WITH kk AS (SELECT * FROM order_keys WHERE $only IS NULL OR event_name = $only),
ids AS (
    SELECT platform, order_id, event_id, count(*) AS n_names, sum(outside) AS outside,
        max(CASE WHEN px > 0 THEN 1 ELSE 0 END) AS in_px, max(CASE WHEN sv > 0 THEN 1 ELSE 0 END) AS in_sv
    FROM kk GROUP BY platform, order_id, event_id
),
po AS (
    SELECT platform, order_id, sum(n_names) AS n_keys, count(*) AS n_ids, sum(outside) AS outside,
        sum(in_px * in_sv) AS common_ids, sum(in_sv * (1 - in_px)) AS server_only_ids,
        sum(in_px * (1 - in_sv)) AS pixel_only_ids
    FROM ids GROUP BY platform, order_id
),
noid AS (
    SELECT platform, order_id, sum(no_id) AS no_id FROM order_noid
    WHERE $only IS NULL OR event_name = $only GROUP BY platform, order_id
),
o AS (
    SELECT coalesce(po.platform, noid.platform) AS platform, coalesce(po.order_id, noid.order_id) AS order_id,
        coalesce(n_keys, 0) AS n_keys, coalesce(n_ids, 0) AS n_ids, coalesce(outside, 0) AS outside,
        coalesce(common_ids, 0) AS common_ids, coalesce(server_only_ids, 0) AS server_only_ids,
        coalesce(pixel_only_ids, 0) AS pixel_only_ids, coalesce(no_id, 0) AS no_id
    FROM po FULL OUTER JOIN noid ON noid.platform = po.platform AND noid.order_id = po.order_id
),
c AS (
    SELECT o.*, n_keys + outside + no_id AS counted,
        CASE WHEN n_ids = 0 THEN 0
             WHEN common_ids > 0 THEN server_only_ids
             ELSE greatest(server_only_ids - 1, 0) END AS server_retry_new_id
    FROM o
)
SELECT platform, order_id, counted,
    outside AS outside_window,
    n_keys - n_ids AS name_mismatch,
    CASE WHEN n_keys > 0 THEN no_id ELSE greatest(no_id - 1, 0) END AS missing_event_id,
    server_retry_new_id,
    greatest(n_ids - 1, 0) - server_retry_new_id AS id_mismatch
FROM c
"""

_SUMMARY_SQL = f"""
SELECT platform,
    sum(CASE WHEN counted >= 1 THEN 1 ELSE 0 END) AS orders_matched,
    sum(CASE WHEN counted >= 2 THEN 1 ELSE 0 END) AS orders_double_counted,
    sum(counted) AS counted_events,
    {", ".join(f"sum({c}) AS {c}" for c in CAUSES)}
FROM ({_PER_ORDER_SQL}) GROUP BY platform ORDER BY platform
"""


def prepare_orders(ws: Workspace) -> None:
    """Materialize order_keys and order_noid once per prepared workspace."""
    prepare(ws)
    if getattr(ws, "_orders_for", None) == ws._prepared:
        return
    ws.execute(_ORDER_KEYS_SQL)
    ws.execute(_ORDER_NOID_SQL)
    ws._orders_for = ws._prepared


def per_order(ws: Workspace, *, event_name: str | None = None) -> pd.DataFrame:
    """One row per (platform, order): counted events and extra counts by cause. Use for drill-down
    on small data; the summary below aggregates in SQL."""
    prepare_orders(ws)
    return tidy(ws.df(_PER_ORDER_SQL, {**params(ws), "only": event_name}), ["platform", "order_id"])


def extra_counts(ws: Workspace, *, event_name: str | None = None) -> pd.DataFrame:
    """Per platform: orders matched, double counted, counted events and extra counts by cause
    (computed once per prepared workspace and event_name)."""
    prepare_orders(ws)
    cache = getattr(ws, "_extra_counts", None)
    if cache is None or cache[0] != ws._prepared:
        cache = (ws._prepared, {})
        ws._extra_counts = cache
    if event_name not in cache[1]:
        cache[1][event_name] = ws.df(_SUMMARY_SQL, {**params(ws), "only": event_name})
    return cache[1][event_name].copy()


def double_counting(ws: Workspace) -> tuple[pd.DataFrame, Headline]:
    """Double counting per platform with every extra count attributed to a cause."""
    if not ws.scalar("SELECT count(*) FROM (SELECT order_id FROM pixel_events WHERE order_id IS NOT NULL "
                     "UNION ALL SELECT order_id FROM server_events WHERE order_id IS NOT NULL)"):
        return pd.DataFrame(), Headline("double_counting", available=False,
                                        reason="no pixel or server event carries an order_id")
    frame = extra_counts(ws)
    frame["inflation_rate"] = [ratio(c - m, m) for c, m in zip(frame["counted_events"], frame["orders_matched"], strict=True)]
    values = {}
    for row in frame.to_dict("records"):
        v = {k: int(row[k]) for k in ("orders_matched", "orders_double_counted", "counted_events", *CAUSES)}
        v["inflation_rate"] = num(row["inflation_rate"])
        values[row["platform"]] = v
    long = frame.melt(id_vars=["platform"], value_vars=list(CAUSES), var_name="cause", value_name="extra_counts")
    return tidy(long, ["platform", "cause"]), Headline("double_counting", values)


def compute(ws: Workspace) -> FamilyResult:
    """Family `double_counting`: per platform headline; extra counts by cause."""
    frame, head = double_counting(ws)
    return FamilyResult(head, {"double_counting": frame})
