"""Order linkage (design v2 §3.0): how well each channel's events link to the shop's orders.

An event links to an order by its `order_id`, else by its `event_id` when that equals a known
order_id (`[audit] order_key = "auto"`; `order_id` / `event_id` use one of them only). Meta
recommends the order number as the event ID
(https://developers.facebook.com/docs/marketing-api/conversions-api/deduplicate-pixel-and-server-events),
so a standard `fbq('track', 'Purchase', {...}, {eventID})` hit carries the order only there.

Per platform and channel, over events in a conversion class (rows of test orders reported apart):
`events`, `linked`, `link_rate` (with Wilson interval), `linked_via_event_id`, `orders_reached`,
`orphans` (an order reference that is not a known order). When one channel links less than
`LINK_RATE_MIN` of its events while the other links more, order-level figures that compare the
channels (double counting, recovery, browser loss) cannot be trusted: `weak_link(ws)` names the
channel and the reason, and those figures say `"reliable": false`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from capi_audit.metrics.common import FamilyResult, Headline, ratio, tidy
from capi_audit.metrics.units import prepare_src

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace

LINK_RATE_MIN = 0.8
CHANNELS = ("pixel", "server")

_LINKAGE_SQL = """
SELECT platform, channel,
    count(*) AS events,
    sum(CASE WHEN linked_order IS NOT NULL THEN 1 ELSE 0 END) AS linked,
    sum(CASE WHEN link_via = 'event_id' THEN 1 ELSE 0 END) AS linked_via_event_id,
    count(DISTINCT linked_order) AS orders_reached,
    sum(CASE WHEN linked_order IS NULL AND order_ref IS NOT NULL AND NOT $no_orders THEN 1 ELSE 0 END) AS orphans
FROM u_src
WHERE conv_class IS NOT NULL AND (excluded IS NULL OR excluded <> 'test_order')
GROUP BY platform, channel
"""


def wilson(k: int, n: int) -> list[float | None]:
    """95 % Wilson interval of k / n ([None, None] when n = 0)."""
    if not n:
        return [None, None]
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return [float(ci.low), float(ci.high)]


def linkage_frame(ws: Workspace) -> pd.DataFrame:
    """Per platform and channel: events, linked, link_rate, orders reached, orphans."""
    prepare_src(ws)
    cached = getattr(ws, "_linkage", None)
    if cached is not None and cached[0] == ws._units_src:
        return cached[1].copy()
    f = ws.df(_LINKAGE_SQL, {"no_orders": not ws.count("orders")})
    for c in ("events", "linked", "linked_via_event_id", "orders_reached", "orphans"):
        f[c] = f[c].fillna(0).astype(int)
    f["link_rate"] = [ratio(a, b) for a, b in zip(f["linked"], f["events"], strict=True)]
    f = tidy(f, ["platform", "channel"])
    ws._linkage = (ws._units_src, f)
    return f.copy()


def weak_link(ws: Workspace) -> dict[str, str]:
    """Platform -> reason, for platforms where one channel's link rate is below LINK_RATE_MIN while
    the other channel's is higher (order-level figures comparing channels are unreliable)."""
    f = linkage_frame(ws)
    out: dict[str, str] = {}
    for plat, g in f.groupby("platform", sort=True):
        rates = {r.channel: r.link_rate for r in g.itertuples() if r.events}
        if len(rates) < 2:
            continue
        for ch in CHANNELS:
            other = "server" if ch == "pixel" else "pixel"
            if rates[ch] < LINK_RATE_MIN and rates[other] > rates[ch]:
                out[plat] = (f"{ch} events link to orders at {rates[ch]:.0%} against {rates[other]:.0%} for "
                             f"{other} events: order-level figures would miscount; send the order number in "
                             f"the {ch} events (order_id, or as event_id) or set [audit] order_key")
    return out


def linkage(ws: Workspace) -> tuple[pd.DataFrame, Headline]:
    """The `linkage` section: per platform and channel, with the weak-link verdict."""
    if not ws.count("pixel_events") and not ws.count("server_events"):
        return pd.DataFrame(), Headline("linkage", available=False, reason="no pixel or server events loaded")
    f = linkage_frame(ws)
    weak = weak_link(ws)
    values: dict = {}
    for r in f.to_dict("records"):
        m = {k: int(r[k]) for k in ("events", "linked", "linked_via_event_id", "orders_reached", "orphans")}
        m["link_rate"] = r["link_rate"]
        m["link_rate_ci"] = wilson(m["linked"], m["events"])
        values.setdefault(r["platform"], {})[r["channel"]] = m
    for plat, v in values.items():
        v["order_key"] = ws.config.order_key
        v["reliable"] = plat not in weak
        if plat in weak:
            v["reason"] = weak[plat]
    return f, Headline("linkage", values)


def compute(ws: Workspace) -> FamilyResult:
    """Family `linkage`: per platform and channel link rates; the per-channel frame."""
    frame, head = linkage(ws)
    return FamilyResult(head, {"linkage": frame})
