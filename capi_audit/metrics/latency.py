"""Latency (design §3): sent_at - event_time of server events against the platform's age limit.

Meta rejects events more than 7 days old (62 days for physical_store) and recommends sending
within the hour (https://developers.facebook.com/docs/marketing-api/conversions-api/using-the-api);
GA4 Measurement Protocol drops events backdated over 72 h; Google Ads documents no send-age limit
for click conversions, so its share past the limit is null. `share_over_window` is over the
platform's dedup window W (Meta 48 h; null where the window is unbounded): a send later than W
after the browser hit is not deduplicated
(https://developers.facebook.com/docs/marketing-api/conversions-api/deduplicate-pixel-and-server-events).
`n` is the number of events with a send time (the denominator of every share). The limit is per platform and
action_source (capi_audit.metrics.validation.age_limit_sql); the share is over events that have one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from capi_audit.metrics.common import FamilyResult, Headline, not_test_row, prepare
from capi_audit.metrics.validation import age_limit_sql

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace

def _sql(ws: Workspace) -> str:
    return f"""
SELECT platform, count(*) AS events,
    percentile(lag_s, CAST(0.5 AS DOUBLE)) AS median_s, percentile(lag_s, CAST(0.95 AS DOUBLE)) AS p95_s,
    avg(CASE WHEN lag_s > 3600 THEN 1.0 ELSE 0.0 END) AS share_over_1h,
    avg(CASE WHEN lag_s > 86400 THEN 1.0 ELSE 0.0 END) AS share_over_24h,
    sum(CASE WHEN window_s IS NOT NULL AND lag_s > window_s THEN 1 ELSE 0 END)
        / CAST(nullif(count(window_s), 0) AS DOUBLE) AS share_over_window,
    sum(CASE WHEN limit_s IS NOT NULL AND lag_s > limit_s THEN 1 ELSE 0 END)
        / CAST(nullif(count(limit_s), 0) AS DOUBLE) AS share_over_age_limit
FROM (
    SELECT platform, ms_between(event_time, sent_at) / 1000.0 AS lag_s, {age_limit_sql()} AS limit_s,
           window_ms / 1000.0 AS window_s
    FROM (SELECT s.*, w.window_ms FROM server_events s LEFT JOIN audit_params w ON w.platform = s.platform) sw
    WHERE sent_at IS NOT NULL AND platform = $p
      AND {not_test_row(ws, 'order_id', 'event_id')}
) GROUP BY platform
"""


def latency(ws: Workspace) -> tuple[pd.DataFrame, Headline]:
    """Per platform: median and p95 send latency and the shares over 1 h, 24 h, the age limit."""
    if not ws.scalar("SELECT count(*) FROM server_events WHERE sent_at IS NOT NULL"):
        return pd.DataFrame(), Headline("latency", available=False, reason="no server event carries sent_at")
    prepare(ws)
    values, frames = {}, []
    for (plat,) in ws.rows("SELECT DISTINCT platform FROM server_events WHERE sent_at IS NOT NULL ORDER BY 1"):
        f = ws.df(_sql(ws), {"p": plat})
        if not len(f):  # every event with a send time belongs to a test order
            continue
        missing = ws.scalar("SELECT count(*) FROM server_events WHERE platform = $p AND sent_at IS NULL", {"p": plat})
        r = f.iloc[0]
        values[plat] = {k: (None if pd.isna(r[k]) else float(r[k])) for k in
                        ("median_s", "p95_s", "share_over_1h", "share_over_24h", "share_over_window",
                         "share_over_age_limit")}
        values[plat]["n"] = int(r["events"])
        values[plat]["events_without_sent_at"] = int(missing)
        frames.append(f)
    if not frames:
        return pd.DataFrame(), Headline("latency", available=False,
                                        reason="every server event with sent_at belongs to a test order")
    return pd.concat(frames, ignore_index=True), Headline("latency", values)


def latency_values(ws: Workspace, *, platform: str) -> pd.DataFrame:
    """Latency in seconds binned by minute for one platform (small; for the distribution chart)."""
    return ws.df(f"""
        SELECT floor(log10(greatest(ms_between(event_time, sent_at) / 1000.0, 1)) * 20) / 20 AS log10_s,
               count(*) AS events
        FROM server_events WHERE sent_at IS NOT NULL AND platform = $p
          AND {not_test_row(ws, 'order_id', 'event_id')}
        GROUP BY 1 ORDER BY 1
    """, {"p": platform})


def compute(ws: Workspace) -> FamilyResult:
    """Family `latency`: per platform quantiles and shares; the binned distribution."""
    frame, head = latency(ws)
    frames = {"latency": frame}
    if head.available:
        bins = [latency_values(ws, platform=p).assign(platform=p) for p in head.values]
        frames["latency_bins"] = (pd.concat(bins, ignore_index=True)[["platform", "log10_s", "events"]]
                                  if bins else pd.DataFrame())
    return FamilyResult(head, frames)
