"""Consent (design §3): what ad-consent denial removes, and sends that should not have happened.

Meta's CAPI carries no GDPR consent field: the sender must decide before sending
(https://developers.facebook.com/docs/meta-pixel/implementation/gdpr, domain/meta.md §9); only
Limited Data Use (`data_processing_options = ["LDU"]`) restricts processing. Google server sends
for users who denied ad_user_data must be marked DENIED (domain/google.md §4.7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from capi_audit.metrics.common import (
    FamilyResult,
    Headline,
    local_date,
    params,
    prepare,
    ratio,
    tidy,
)

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace

# Per platform, country and local day. A server send counts whether the platform accepted it
# or not (it was sent). Restricted sends are not violations: Meta events flagged LDU, Google
# uploads marked ad_user_data DENIED (the server event's consent_ads = 'denied').
_BASE_SQL = f"""
WITH o AS (
    SELECT order_id, min(created_at) AS created_at, min(consent_ads) AS consent, min(country) AS country
    FROM orders WHERE NOT EXISTS (SELECT 1 FROM (SELECT order_id AS test_order_id FROM test_orders) t_o WHERE t_o.test_order_id = order_id) GROUP BY order_id
),
px AS (SELECT DISTINCT order_id FROM pixel_events WHERE platform = $p AND order_id IS NOT NULL),
sv AS (
    SELECT order_id,
        max(CASE WHEN upper(coalesce(data_processing_options, '')) LIKE '%LDU%' THEN 0
                 WHEN platform = 'google' AND consent_ads = 'denied' THEN 0 ELSE 1 END) AS unrestricted
    FROM server_events WHERE platform = $p AND order_id IS NOT NULL GROUP BY order_id
),
x AS (
    SELECT o.country, {local_date('o.created_at')} AS day, o.consent,
        CASE WHEN px.order_id IS NULL THEN 0 ELSE 1 END AS has_px,
        CASE WHEN sv.order_id IS NULL THEN 0 ELSE 1 END AS has_sv,
        coalesce(sv.unrestricted, 0) AS sv_unrestricted,
        CASE WHEN $e IS NULL OR o.created_at >= $e THEN 1 ELSE 0 END AS post
    FROM o LEFT JOIN px ON px.order_id = o.order_id LEFT JOIN sv ON sv.order_id = o.order_id
)
SELECT country, day,
    sum(CASE WHEN consent IS NULL THEN 1 ELSE 0 END) AS consent_unknown,
    sum(CASE WHEN consent IS NOT NULL THEN 1 ELSE 0 END) AS known,
    sum(CASE WHEN consent = 'denied' THEN 1 ELSE 0 END) AS denied,
    sum(CASE WHEN consent = 'granted' THEN 1 ELSE 0 END) AS granted,
    sum(CASE WHEN consent = 'denied' AND has_px = 0 THEN 1 ELSE 0 END) AS denied_no_pixel,
    sum(CASE WHEN consent = 'granted' AND has_px = 0 THEN 1 ELSE 0 END) AS granted_no_pixel,
    sum(CASE WHEN consent = 'granted' AND has_px = 1 THEN 1 ELSE 0 END) AS granted_pixel,
    sum(CASE WHEN consent = 'granted' AND post = 1 THEN 1 ELSE 0 END) AS granted_post,
    sum(CASE WHEN consent = 'granted' AND post = 1 AND has_sv = 0 THEN 1 ELSE 0 END) AS granted_post_no_server,
    sum(CASE WHEN consent = 'granted' AND has_sv = 1 THEN 1 ELSE 0 END) AS granted_server,
    sum(post) AS orders_post,
    sum(CASE WHEN consent = 'granted' AND post = 1 AND has_px = 1 THEN 1 ELSE 0 END) AS granted_post_pixel,
    sum(CASE WHEN consent = 'granted' AND post = 1 AND has_sv = 1 THEN 1 ELSE 0 END) AS granted_post_server,
    sum(CASE WHEN consent = 'denied' AND has_px = 1 THEN 1 ELSE 0 END) AS pixel_fired_without_consent,
    sum(CASE WHEN consent = 'denied' AND has_sv = 1 AND sv_unrestricted = 1 THEN 1 ELSE 0 END) AS server_sent_without_consent,
    count(*) AS orders
FROM x GROUP BY country, day
"""


def _rates(s: pd.Series | dict) -> dict:
    return {
        "consent_unknown": int(s["consent_unknown"]),
        "denied_rate": ratio(s["denied"], s["known"]),
        "consent_drop_rate": ratio(s["denied_no_pixel"], s["known"]),
        "browser_loss_rate": ratio(s["granted_no_pixel"], s["granted"]),
        "server_gap_rate": ratio(s["granted_post_no_server"], s["granted_post"]),
        "pixel_fired_without_consent": int(s["pixel_fired_without_consent"]),
        "server_sent_without_consent": int(s["server_sent_without_consent"]),
    }


def consent(ws: Workspace) -> tuple[pd.DataFrame, Headline]:
    """Per platform: denial, drop, browser loss and server gap rates, and violations; the frame
    has the same counts per country and local day."""
    if not ws.count("orders"):
        return pd.DataFrame(), Headline("consent", available=False, reason="no orders loaded")
    if not ws.scalar("SELECT count(*) FROM orders WHERE consent_ads IS NOT NULL"):
        return pd.DataFrame(), Headline("consent", available=False, reason="orders carry no consent state")
    prepare(ws)
    values, frames = {}, []
    plats = sorted({r[0] for r in ws.rows("SELECT platform FROM pixel_events UNION SELECT platform FROM server_events")})
    for plat in plats:
        q = {**params(ws), "p": plat, "e": ws.config.capi_enabled_at.get(plat)}
        f = ws.df(_BASE_SQL, q)
        f.insert(0, "platform", plat)
        frames.append(f)
        values[plat] = _rates(f.drop(columns=["platform", "country", "day"]).sum())
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return tidy(frame, ["platform", "country", "day"]), Headline("consent", values)


def by_country(frame: pd.DataFrame) -> pd.DataFrame:
    """The consent rates per platform and country."""
    if not len(frame):
        return frame
    rows = []
    for (plat, country), g in frame.groupby(["platform", "country"], dropna=False, sort=True):
        s = g.drop(columns=["platform", "country", "day"]).sum()
        rows.append({"platform": plat, "country": country, "orders": int(s["orders"]), **_rates(s)})
    return pd.DataFrame(rows)


def compute(ws: Workspace) -> FamilyResult:
    """Family `consent`: rates and violations per platform; per day and per country frames."""
    frame, head = consent(ws)
    frames = {"consent": frame}
    if head.available:
        frames["consent_by_country"] = by_country(frame)
    return FamilyResult(head, frames)
