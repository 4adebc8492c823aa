"""Consent (design §3.6): what consent denial removes, and sends that should not have happened.

Browser side — ad storage (`orders.consent_ads`), which decides whether tags may use cookies:
`denied_rate`, `consent_drop_rate` (denied orders without a pixel hit), `browser_loss_rate`
(granted orders without one). A pixel hit for a denied order is `pixel_fired_without_consent`;
for Google Ads and GA4 only when the hit claims granted, carries a click id (gclid / gbraid /
wbraid) or carries cookies: Advanced Consent Mode sends cookieless pings for denied users by
design (https://support.google.com/google-ads/answer/10000067, /tagmanager/answer/13802165), and
those are counted as `cookieless_pings` (hits), never as violations. A ping is a hit whose own
ad_storage is denied, with no click id, not marked as carrying cookies (`cookieless` not false).

Server side — the platform's governing consent and restrictions (capi_audit.metrics.consent_rules):
`server_gap_rate` (granted orders after enablement — from the local day of the platform's first server event when no
enable time is configured, `server_gap_since` — with no server send) and
`server_sent_without_consent` (denied orders with an unrestricted send, as orders; Meta LDU
excuses US orders only — `ldu_outside_us` counts the denied orders whose only cover was an LDU
flag outside the US, and they are in the violations).

Consent types stay apart: `by_consent_type` gives each type's denied rate (ad_storage from
`consent_ads`, ad_user_data from `consent_ad_user_data`) with its own denominator. Every rate has
its denominator as `<rate>_n`. Events link to orders as the counted units link them
(`[audit] order_key`). The frame holds the same counts per platform, country and local day.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from capi_audit.metrics import consent_rules
from capi_audit.metrics.common import (
    FamilyResult,
    Headline,
    local_date,
    local_midnight,
    params,
    prepare,
    ratio,
    tidy,
)

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace

GOOGLE = "('google', 'ga4')"
# a Google / GA4 hit that is an Advanced Consent Mode cookieless ping
PING = ("(h.platform IN " + GOOGLE + " AND h.consent_ads = 'denied' AND h.gclid IS NULL AND h.gbraid IS NULL "
        "AND h.wbraid IS NULL AND (h.cookieless IS NULL OR h.cookieless))")

_BASE_SQL = f"""
WITH o AS (
    SELECT order_id, min(created_at) AS created_at, min(consent_ads) AS ads, min(consent_ad_user_data) AS aud,
           min(country) AS country
    FROM orders o0
    WHERE NOT EXISTS (SELECT 1 FROM test_orders t WHERE t.order_id = o0.order_id) GROUP BY order_id
),
h AS (SELECT * FROM ({consent_rules.linked_sql('pixel_events')}) h WHERE h.platform = $p),
px AS (
    SELECT linked_order AS order_id,
           max(CASE WHEN {PING} THEN 0 ELSE 1 END) AS identifying,
           sum(CASE WHEN {PING} THEN 1 ELSE 0 END) AS pings
    FROM h WHERE linked_order IS NOT NULL GROUP BY linked_order
),
oc AS (SELECT * FROM order_consent WHERE platform = $p),
x AS (
    SELECT o.country, {local_date('o.created_at')} AS day, o.ads, o.aud, oc.consent AS gov,
        CASE WHEN px.order_id IS NULL THEN 0 ELSE 1 END AS has_px,
        coalesce(px.identifying, 0) AS px_identifying, coalesce(px.pings, 0) AS pings,
        coalesce(oc.has_server, 0) AS has_sv, coalesce(oc.unrestricted, 0) AS sv_unrestricted,
        coalesce(oc.ldu_outside_us, 0) AS ldu_outside_us,
        CASE WHEN $e IS NULL OR o.created_at >= $e THEN 1 ELSE 0 END AS post
    FROM o LEFT JOIN px ON px.order_id = o.order_id LEFT JOIN oc ON oc.order_id = o.order_id
)
SELECT country, day,
    sum(CASE WHEN ads IS NULL THEN 1 ELSE 0 END) AS consent_unknown,
    sum(CASE WHEN ads IS NOT NULL THEN 1 ELSE 0 END) AS known,
    sum(CASE WHEN ads = 'denied' THEN 1 ELSE 0 END) AS denied,
    sum(CASE WHEN ads = 'granted' THEN 1 ELSE 0 END) AS granted,
    sum(CASE WHEN aud IS NOT NULL THEN 1 ELSE 0 END) AS known_ad_user_data,
    sum(CASE WHEN aud = 'denied' THEN 1 ELSE 0 END) AS denied_ad_user_data,
    sum(CASE WHEN ads = 'denied' AND has_px = 0 THEN 1 ELSE 0 END) AS denied_no_pixel,
    sum(CASE WHEN ads = 'granted' AND has_px = 0 THEN 1 ELSE 0 END) AS granted_no_pixel,
    sum(CASE WHEN ads = 'granted' AND has_px = 1 THEN 1 ELSE 0 END) AS granted_pixel,
    sum(CASE WHEN gov = 'granted' AND post = 1 THEN 1 ELSE 0 END) AS granted_post,
    sum(CASE WHEN gov = 'granted' AND post = 1 AND has_sv = 0 THEN 1 ELSE 0 END) AS granted_post_no_server,
    sum(CASE WHEN gov = 'granted' AND has_sv = 1 THEN 1 ELSE 0 END) AS granted_server,
    sum(post) AS orders_post,
    sum(CASE WHEN ads = 'granted' AND post = 1 AND has_px = 1 THEN 1 ELSE 0 END) AS granted_post_pixel,
    sum(CASE WHEN gov = 'granted' AND post = 1 AND has_sv = 1 THEN 1 ELSE 0 END) AS granted_post_server,
    sum(CASE WHEN gov = 'denied' THEN 1 ELSE 0 END) AS denied_governing,
    sum(CASE WHEN ads = 'denied' AND px_identifying = 1 THEN 1 ELSE 0 END) AS pixel_fired_without_consent,
    sum(CASE WHEN gov = 'denied' AND has_sv = 1 AND sv_unrestricted = 1 THEN 1 ELSE 0 END) AS server_sent_without_consent,
    sum(CASE WHEN gov = 'denied' AND has_sv = 1 AND sv_unrestricted = 0 THEN 1 ELSE 0 END) AS server_sent_restricted,
    sum(CASE WHEN gov = 'denied' AND has_sv = 1 AND ldu_outside_us = 1 AND sv_unrestricted = 1 THEN 1 ELSE 0 END) AS ldu_outside_us,
    sum(pings) AS cookieless_pings_linked,
    count(*) AS orders
FROM x GROUP BY country, day
"""


def _rate(out: dict, name: str, num, den) -> None:
    out[name] = ratio(num, den)
    out[f"{name}_n"] = int(den)


def _rates(s: pd.Series | dict) -> dict:
    out: dict = {"consent_unknown": int(s["consent_unknown"])}
    _rate(out, "denied_rate", s["denied"], s["known"])
    _rate(out, "consent_drop_rate", s["denied_no_pixel"], s["known"])
    _rate(out, "browser_loss_rate", s["granted_no_pixel"], s["granted"])
    _rate(out, "server_gap_rate", s["granted_post_no_server"], s["granted_post"])
    out.update({
        "pixel_fired_without_consent": int(s["pixel_fired_without_consent"]),
        "server_sent_without_consent": int(s["server_sent_without_consent"]),
        "server_sent_restricted": int(s["server_sent_restricted"]),
        "ldu_outside_us": int(s["ldu_outside_us"]),
        # the orders each count is out of: denied under ads consent (browser), under the
        # governing consent (server)
        "pixel_fired_without_consent_n": int(s["denied"]),
        "server_sent_without_consent_n": int(s["denied_governing"]),
    })
    return out


BROWSER_FIGURES = ("consent_drop_rate", "browser_loss_rate", "pixel_fired_without_consent")
SERVER_FIGURES = ("server_gap_rate", "server_sent_without_consent", "server_sent_restricted", "ldu_outside_us")


def _null_unmeasured(ws: Workspace, v: dict, q: dict) -> None:
    """A channel none of whose events of this platform links to an order did not measure its
    figures: a 100 % loss / gap or 0 violations there would be read as findings or passed gates.
    They become null (the `_n` stays) and `reason` says which channel and what would fix it."""
    reasons = []
    for table, channel, figures in (("pixel_events", "browser", BROWSER_FIGURES),
                                    ("server_events", "server", SERVER_FIGURES)):
        n, linked = ws.rows(f"SELECT count(*), sum(CASE WHEN linked_order IS NOT NULL THEN 1 ELSE 0 END) "
                            f"FROM ({consent_rules.linked_sql(table)}) h WHERE h.platform = $p",
                            {"p": q["p"], "order_key": q["order_key"]})[0]
        if linked:
            continue
        for f in figures:
            v[f] = None
        reasons.append(f"no {channel} event of this platform {'links to an order' if n else 'is loaded'}: "
                       f"its figures ({', '.join(figures)}) are not measured"
                       + (" (load its events with an order_id or an event_id that is the order id)" if n
                          else f" (load the {channel} logs)"))
    if reasons:
        v["reason"] = "; ".join(reasons)


def consent(ws: Workspace) -> tuple[pd.DataFrame, Headline]:
    """Per platform: denial, drop, browser loss and server gap rates (with denominators),
    violations, restricted sends, LDU outside the US and cookieless pings; the frame has the same
    counts per country and local day."""
    if not ws.count("orders"):
        return pd.DataFrame(), Headline("consent", available=False, reason="no orders loaded")
    if not ws.scalar("SELECT count(*) FROM orders WHERE consent_ads IS NOT NULL OR consent_ad_user_data IS NOT NULL"):
        return pd.DataFrame(), Headline("consent", available=False, reason="orders carry no consent state")
    prepare(ws)
    consent_rules.materialize(ws)
    values, frames = {}, []
    plats = sorted({r[0] for r in ws.rows("SELECT platform FROM pixel_events UNION SELECT platform FROM server_events")
                    if r[0] is not None})
    for plat in plats:
        enabled = ws.config.capi_enabled_at.get(plat)
        if enabled is None:
            # no enable time: the server channel started with its first event; orders before it
            # were never candidates for a server send and are no gap
            # (from the local midnight of its day: an order of that day may be what it sent)
            enabled = ws.scalar(f"SELECT {local_midnight(local_date('min(event_time)'))} FROM server_events "
                                "WHERE platform = $p", {**params(ws), "p": plat})
        q = {**params(ws), "p": plat, "e": enabled,
             "order_key": getattr(ws.config, "order_key", "auto")}
        f = ws.df(_BASE_SQL, q)
        f.insert(0, "platform", plat)
        frames.append(f)
        s = f.drop(columns=["platform", "country", "day"]).sum()
        v = _rates(s)
        _null_unmeasured(ws, v, q)
        if plat not in ws.config.capi_enabled_at and enabled is not None:
            v["server_gap_since"] = pd.Timestamp(enabled).tz_convert("UTC").isoformat()
        v["governing_consent"] = consent_rules.governing_name(plat, ws)
        by_type: dict = {}
        _rate(by_type.setdefault("ad_storage", {}), "denied_rate", s["denied"], s["known"])
        _rate(by_type.setdefault("ad_user_data", {}), "denied_rate", s["denied_ad_user_data"], s["known_ad_user_data"])
        v["by_consent_type"] = by_type
        if plat in ("google", "ga4"):
            v["cookieless_pings"] = int(ws.scalar(
                f"SELECT count(*) FROM pixel_events h WHERE h.platform = $p AND {PING}", {"p": plat}))
        values[plat] = v
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


def by_day(frame: pd.DataFrame) -> pd.DataFrame:
    """The consent rates per platform and local day."""
    if not len(frame):
        return frame
    rows = []
    for (plat, day), g in frame.groupby(["platform", "day"], sort=True):
        s = g.drop(columns=["platform", "country", "day"]).sum()
        rows.append({"platform": plat, "day": day, "orders": int(s["orders"]), **_rates(s)})
    return pd.DataFrame(rows)


def compute(ws: Workspace) -> FamilyResult:
    """Family `consent`: rates and violations per platform; per day and per country frames."""
    frame, head = consent(ws)
    frames = {"consent": frame}
    if head.available:
        frames["consent_by_country"] = by_country(frame)
        frames["consent_by_day"] = by_day(frame)
    return FamilyResult(head, frames)
