"""Dedup overlap (design §3): which pixel/server keys the platform pairs, and where it leaks.

Meta pairs a browser and a server event when (pixel, event_name, event_id) match and the second
arrives within 48 h of the first receipt:
https://developers.facebook.com/docs/marketing-api/conversions-api/deduplicate-pixel-and-server-events
Google dedups (conversion action, transaction_id) with no documented window:
https://support.google.com/google-ads/answer/6386790
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from capi_audit.metrics.common import (
    FamilyResult,
    Headline,
    local_date,
    num,
    params,
    prepare,
    ratio,
    tidy,
)

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace

COUNTS = ("both", "both_outside_window", "pixel_only", "server_only", "name_mismatch",
          "missing_event_id_pixel", "missing_event_id_server", "pixel_duplicates", "server_duplicates")

# Post-enablement key counts per platform and event_name.
_OVERLAP_SQL = """
WITH kc AS (
    SELECT platform, event_name,
        sum(CASE WHEN paired_post THEN 1 ELSE 0 END) AS "both",
        sum(CASE WHEN px_rows_post > 0 AND sv_rows_post > 0 AND NOT paired_post THEN 1 ELSE 0 END) AS both_outside_window,
        sum(CASE WHEN px_rows_post > 0 AND sv_rows_post = 0 THEN 1 ELSE 0 END) AS pixel_only,
        sum(CASE WHEN sv_rows_post > 0 AND px_rows_post = 0 THEN 1 ELSE 0 END) AS server_only,
        sum(CASE WHEN px_rows_post > 0 THEN px_rows_post - 1 ELSE 0 END) AS pixel_duplicates,
        sum(CASE WHEN sv_rows_post > 0 THEN sv_rows_post - 1 ELSE 0 END) AS server_duplicates
    FROM keys GROUP BY platform, event_name
),
nm AS (  -- an event_id the pixel sent under one name and the server only under another
    SELECT k.platform, k.event_name, count(*) AS name_mismatch
    FROM keys k
    WHERE k.px_rows_post > 0 AND k.sv_rows_post = 0 AND EXISTS (
        SELECT 1 FROM keys k2 WHERE k2.platform = k.platform AND k2.event_id = k.event_id
          AND k2.event_name <> k.event_name AND k2.sv_rows_post > 0)
    GROUP BY k.platform, k.event_name
),
noid AS (
    SELECT platform, event_name,
        sum(CASE WHEN channel = 'pixel' THEN 1 ELSE 0 END) AS missing_event_id_pixel,
        sum(CASE WHEN channel = 'server' THEN 1 ELSE 0 END) AS missing_event_id_server
    FROM ev WHERE event_id IS NULL AND post GROUP BY platform, event_name
),
names AS (
    SELECT platform, event_name FROM kc UNION SELECT platform, event_name FROM noid
)
SELECT n.platform, n.event_name,
    coalesce(kc."both", 0) AS "both", coalesce(kc.both_outside_window, 0) AS both_outside_window,
    coalesce(kc.pixel_only, 0) AS pixel_only, coalesce(kc.server_only, 0) AS server_only,
    coalesce(nm.name_mismatch, 0) AS name_mismatch,
    coalesce(noid.missing_event_id_pixel, 0) AS missing_event_id_pixel,
    coalesce(noid.missing_event_id_server, 0) AS missing_event_id_server,
    coalesce(kc.pixel_duplicates, 0) AS pixel_duplicates,
    coalesce(kc.server_duplicates, 0) AS server_duplicates
FROM names n
LEFT JOIN kc ON kc.platform = n.platform AND kc.event_name = n.event_name
LEFT JOIN nm ON nm.platform = n.platform AND nm.event_name = n.event_name
LEFT JOIN noid ON noid.platform = n.platform AND noid.event_name = n.event_name
ORDER BY 1, 2
"""

# What the platform should count per day, all rows: a paired key once on the day of its earliest
# event_time, an unpaired key once per channel on that channel's first event_time, every
# event without event_id once on its own day.
_DAILY_SQL = f"""
WITH units AS (
    SELECT platform, event_name, {local_date('first_et')} AS day, 1 AS expected,
           1 AS "both", 0 AS pixel_only, 0 AS server_only, 0 AS outside, 0 AS no_id
    FROM keys WHERE paired
    UNION ALL
    SELECT platform, event_name, {local_date('px_first_et')}, 1,
           0, CASE WHEN sv_rows = 0 THEN 1 ELSE 0 END, 0, CASE WHEN sv_rows > 0 THEN 1 ELSE 0 END, 0
    FROM keys WHERE px_rows > 0 AND NOT paired
    UNION ALL
    SELECT platform, event_name, {local_date('sv_first_et')}, 1,
           0, 0, CASE WHEN px_rows = 0 THEN 1 ELSE 0 END, CASE WHEN px_rows > 0 THEN 1 ELSE 0 END, 0
    FROM keys WHERE sv_rows > 0 AND NOT paired
    UNION ALL
    SELECT platform, event_name, {local_date('event_time')}, 1, 0, 0, 0, 0, 1
    FROM ev WHERE event_id IS NULL
),
exp AS (
    SELECT platform, event_name, day, sum(expected) AS expected, sum("both") AS "both",
           sum(pixel_only) AS pixel_only, sum(server_only) AS server_only,
           sum(outside) AS outside_window_counts, sum(no_id) AS missing_event_id
    FROM units GROUP BY platform, event_name, day
),
rep AS (
    SELECT platform, event_name, date AS day, sum(conversions) AS reported
    FROM platform_report WHERE coalesce(lower(source), 'total') = 'total'
    GROUP BY platform, event_name, date
)
SELECT coalesce(e.platform, r.platform) AS platform, coalesce(e.event_name, r.event_name) AS event_name,
       coalesce(e.day, r.day) AS day,
       coalesce(e.expected, 0) AS expected, coalesce(e."both", 0) AS "both",
       coalesce(e.pixel_only, 0) AS pixel_only, coalesce(e.server_only, 0) AS server_only,
       coalesce(e.outside_window_counts, 0) AS outside_window_counts,
       coalesce(e.missing_event_id, 0) AS missing_event_id, r.reported
FROM exp e FULL OUTER JOIN rep r
  ON r.platform = e.platform AND r.event_name = e.event_name AND r.day = e.day
ORDER BY 1, 2, 3
"""


def dedup_overlap(ws: Workspace) -> tuple[pd.DataFrame, Headline]:
    """Key overlap after enablement per platform and event_name, with coverage and dedup rate."""
    if not ws.count("pixel_events") and not ws.count("server_events"):
        return pd.DataFrame(), Headline("dedup", available=False, reason="no pixel or server events loaded")
    prepare(ws)
    frame = ws.df(_OVERLAP_SQL, params(ws))
    daily = dedup_daily(ws)
    enable = dict(ws.rows("SELECT platform, enabled_at FROM audit_params"))
    frame["event_coverage"] = [ratio(b, b + p) for b, p in zip(frame["both"], frame["pixel_only"], strict=True)]
    frame["dedup_rate"] = [ratio(b, b + s) for b, s in zip(frame["both"], frame["server_only"], strict=True)]
    exp_col, gap_col = [], []
    for plat, ev in zip(frame["platform"], frame["event_name"], strict=True):
        exp, gap = _expected_and_gap(ws, daily, plat, ev, enable.get(plat))
        exp_col.append(exp)
        gap_col.append(gap)
    frame["expected_platform_count"] = exp_col
    frame["report_gap"] = gap_col
    values: dict = {}
    for row in frame.to_dict("records"):
        m = {k: int(row[k]) for k in COUNTS}
        m.update(event_coverage=num(row["event_coverage"]), dedup_rate=num(row["dedup_rate"]),
                 expected_platform_count=int(row["expected_platform_count"]),
                 report_gap=num(row["report_gap"]))
        values.setdefault(row["platform"], {})[row["event_name"]] = m
    return tidy(frame, ["platform", "event_name"]), Headline("dedup", values)


def dedup_daily(ws: Workspace) -> pd.DataFrame:
    """Per platform, event_name and local day: expected platform count, the overlap, reported
    (computed once per prepared workspace)."""
    prepare(ws)
    cached = getattr(ws, "_dedup_daily", None)
    if cached is None or cached[0] != ws._prepared:
        cached = (ws._prepared, tidy(ws.df(_DAILY_SQL, params(ws)), ["platform", "event_name", "day"]))
        ws._dedup_daily = cached
    return cached[1].copy()


def _expected_and_gap(ws: Workspace, daily: pd.DataFrame, plat: str, ev: str, enabled_at) -> tuple[int, float | None]:
    """Expected count and report gap over days from the enable day on, within the days the
    platform report covers for that event (all such days when no enable time is set); the gap is
    None when the report has no rows for the event."""
    d = daily[(daily["platform"] == plat) & (daily["event_name"] == ev)]
    if enabled_at is not None:
        first_day = ws.scalar(f"SELECT {local_date('$e')}", {"e": enabled_at, "tz": ws.config.timezone})
        d = d[pd.to_datetime(d["day"]).dt.date >= first_day]
    rep_days = ws.rows(
        "SELECT min(date), max(date) FROM platform_report WHERE platform = $p AND event_name = $ev "
        "AND coalesce(lower(source), 'total') = 'total'",
        {"p": plat, "ev": ev},
    )[0]
    if rep_days[0] is None:
        return int(d["expected"].sum()), None
    days = pd.to_datetime(d["day"]).dt.date
    d = d[(days >= rep_days[0]) & (days <= rep_days[1])]
    return int(d["expected"].sum()), float(d["reported"].fillna(0).sum() - d["expected"].sum())


def compute(ws: Workspace) -> FamilyResult:
    """Family `dedup`: the overlap headline, the per-event frame and the daily series."""
    frame, head = dedup_overlap(ws)
    frames = {"dedup": frame}
    if head.available:
        frames["dedup_daily"] = dedup_daily(ws)
    return FamilyResult(head, frames)
