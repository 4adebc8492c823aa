"""Hash agreement (design v2 §3.7): does the hash a server event sent equal the hash the platform
expects for the order's own customer — computed from the shop's data, hashed locally?

The `identities` table (io/identities.py) holds, per order and platform, the expected SHA-256 of
each customer key normalized by the platform's rules (Meta:
https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters ;
Google: https://developers.google.com/data-manager/api/devguides/concepts/formatting), plus hashes of
common mistakes. For each server event linked to an order (`[audit] order_key`) that sent a key the
shop also has: `n`, `agree`, `share`; each mismatch gets the first provable cause:
`uppercase_hex` (the right digest in upper case), `not_normalized` (the value hashed as typed:
case or whitespace), `phone_without_country_code`, `hashed_twice`, `another_orders_customer`
(the expected hash of a different order), `plaintext` (replaced at load), else `unexplained`.
A list value (Meta allows several) agrees when any element does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from capi_audit.metrics.common import ratio, tidy

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace

KEYS = ("em", "ph", "fn", "ln", "zp", "ct", "st", "country")
LIST_ELEMENTS = 8  # list elements matched by an equi-join (a longer list: a substring test for the rest)
CAUSES = ("uppercase_hex", "not_normalized", "phone_without_country_code", "hashed_twice",
          "another_orders_customer", "plaintext", "unexplained")


def _contains(sent: str, h: str) -> str:
    """SQL: the sent value (a hash, or a JSON list of hashes) carries hash h."""
    return f"({sent} = {h} OR ({sent} LIKE '[%' AND {sent} LIKE '%' || {h} || '%'))"


def _sql() -> str:
    # One pass over the server events: each event is crossed with the key list (a small VALUES
    # relation) and the key's column picked by CASE. (A UNION ALL of one SELECT per key read the
    # server events and their order joins eight times: on Spark, eight scans and sixteen joins.)
    names = ", ".join(f"('{k}')" for k in KEYS)
    positions = ", ".join(f"({i})" for i in range(LIST_ELEMENTS))
    elements = " ".join(f"WHEN {i} THEN json_list_item(sent, {i})" for i in range(LIST_ELEMENTS))
    pick = " ".join(f"WHEN '{k}' THEN s.{k}" for k in KEYS)
    variants = ("unnormalized", "no_country_code", "hashed_twice")
    vflags = ",\n            ".join(
        f"max(CASE WHEN i.key = xd.key || '~{v}' AND {_contains('xd.sent', 'i.sha256')} THEN 1 ELSE 0 END) AS v_{v}"
        for v in variants)
    verdicts = ("agree", *CAUSES)
    rank = " ".join(f"WHEN '{v}' THEN {i}" for i, v in enumerate(verdicts))
    unrank = " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(verdicts))
    return f"""
    WITH known AS (SELECT DISTINCT order_id FROM orders WHERE order_id IS NOT NULL),
    s AS (
        SELECT e.*, CASE WHEN $order_key <> 'event_id' AND ko.order_id IS NOT NULL THEN e.order_id
                         WHEN $order_key <> 'order_id' AND ke.order_id IS NOT NULL THEN e.event_id END AS linked_order
        FROM server_events e
        LEFT JOIN known ko ON ko.order_id = e.order_id
        LEFT JOIN known ke ON ke.order_id = e.event_id
    ),
    kv AS (
        SELECT s.platform, s.linked_order, n.key, CASE n.key {pick} END AS sent
        FROM s CROSS JOIN (VALUES {names}) AS n(key)
        WHERE s.linked_order IS NOT NULL
    ),
    k AS (SELECT * FROM kv WHERE sent IS NOT NULL AND sent <> '' AND sent <> '[]'),
    x AS (
        SELECT k.*, CASE WHEN k.platform = 'meta' THEN 'meta' ELSE 'google' END AS iplat, i.sha256 AS expected
        FROM k JOIN identities i ON i.order_id = k.linked_order AND i.key = k.key
            AND i.platform = CASE WHEN k.platform = 'meta' THEN 'meta' ELSE 'google' END
        WHERE k.linked_order IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM orders t WHERE t.is_test AND t.order_id = k.linked_order)
    ),
    -- another order's hash: a plain value by an equi-join on the hash; only list values that do
    -- not carry the order's own hash need the LIKE test against every other customer's hash (one
    -- EXISTS with `sent = sha256 OR sent LIKE ...` was a join on (platform, key) alone: every
    -- mismatched send against every order, quadratic at scale)
    xl AS (
        SELECT DISTINCT iplat, key, linked_order, sent FROM x
        WHERE sent LIKE '[%' AND NOT {_contains('sent', 'expected')}
    ),
    -- the list's first LIST_ELEMENTS elements, each joined on the hash (a Meta parameter-builder
    -- appendix `.xx` cut off); a LIKE against every customer of the key (quadratic: 50,000 such
    -- lists against a million customers is 5e10 comparisons) is left to longer lists only
    xe AS (
        SELECT iplat, key, linked_order, sent, split_part(CASE p.i {elements} END, '.', 1) AS h
        FROM xl CROSS JOIN (VALUES {positions}) AS p(i)
    ),
    al AS (
        SELECT DISTINCT xe.iplat, xe.key, xe.linked_order, xe.sent FROM xe
        JOIN identities j ON j.platform = xe.iplat AND j.key = xe.key AND j.sha256 = xe.h
        WHERE j.order_id <> xe.linked_order
        UNION
        SELECT DISTINCT xl.iplat, xl.key, xl.linked_order, xl.sent FROM xl
        JOIN identities j ON j.platform = xl.iplat AND j.key = xl.key
        WHERE json_list_item(xl.sent, {LIST_ELEMENTS}) IS NOT NULL
          AND j.order_id <> xl.linked_order AND xl.sent LIKE '%' || j.sha256 || '%'
    ),
    -- the verdict depends only on these columns: decided once per distinct combination, counted
    -- with its events. The mistake variants of the key ('em~unnormalized', ...) come from one
    -- join on (order, platform, key) (three correlated EXISTS were three existence joins, each
    -- shuffling the whole identities table on Spark).
    xd AS (
        SELECT platform, iplat, key, linked_order, sent, expected, count(*) AS n
        FROM x GROUP BY platform, iplat, key, linked_order, sent, expected
    ),
    xv AS (
        SELECT xd.platform, xd.iplat, xd.key, xd.linked_order, xd.sent, xd.expected, xd.n,
            {vflags}
        FROM xd LEFT JOIN identities i ON i.order_id = xd.linked_order AND i.platform = xd.iplat
            AND split_part(i.key, '~', 1) = xd.key AND i.key <> xd.key
        GROUP BY xd.platform, xd.iplat, xd.key, xd.linked_order, xd.sent, xd.expected, xd.n
    ),
    c AS (
        SELECT x.platform, x.key, x.linked_order, x.sent, x.n,
            CASE WHEN {_contains('x.sent', 'x.expected')} THEN 'agree'
                 WHEN {_contains('lower(x.sent)', 'x.expected')} THEN 'uppercase_hex'
                 WHEN x.v_unnormalized = 1 THEN 'not_normalized'
                 WHEN x.v_no_country_code = 1 THEN 'phone_without_country_code'
                 WHEN x.v_hashed_twice = 1 THEN 'hashed_twice'
                 WHEN EXISTS (SELECT 1 FROM identities j WHERE j.platform = x.iplat AND j.key = x.key
                              AND j.sha256 = x.sent AND j.order_id <> x.linked_order)
                      OR EXISTS (SELECT 1 FROM al WHERE al.iplat = x.iplat AND al.key = x.key
                                 AND al.linked_order = x.linked_order AND al.sent = x.sent) THEN 'another_orders_customer'
                 WHEN x.sent LIKE '%<plaintext:%' THEN 'plaintext'
                 ELSE 'unexplained' END AS verdict
        FROM xv x
    ),
    -- an order with two values of a key (a customer's email corrected between two order rows)
    -- has two expected hashes: its events are counted once, with the first verdict of `agree`
    -- and CAUSES (agree when either value agrees)
    b AS (
        SELECT platform, key, max(n) AS n, min(CASE verdict {rank} END) AS r
        FROM c GROUP BY platform, key, linked_order, sent
    )
    SELECT platform, key, CASE r {unrank} END AS verdict, CAST(sum(n) AS BIGINT) AS events
    FROM b GROUP BY platform, key, r
    """


def hash_agreement_frame(ws: Workspace) -> pd.DataFrame:
    """Per platform, key and verdict (`agree` or a mismatch cause): linked server events."""
    if not ws.count("identities"):
        return pd.DataFrame(columns=["platform", "key", "verdict", "events"])
    # computed once per workspace and order key (the headline and the frame both read it)
    cached = ws.__dict__.get("_hash_agreement")
    if cached is None or cached[0] != ws.config.order_key:
        f = tidy(ws.df(_sql(), {"order_key": ws.config.order_key}), ["platform", "key", "verdict"])
        cached = ws.__dict__["_hash_agreement"] = (ws.config.order_key, f)
    return cached[1].copy()


def hash_agreement(ws: Workspace) -> dict[str, Any]:
    """Platform -> key -> {n, agree, share, mismatch: {cause: events}}; `{"available": false}` with a
    reason when no orders source mapped customer columns."""
    if not ws.count("identities"):
        return {"available": False, "reason": "no customer columns mapped on the orders source "
                                              "(columns = { email = \"...\", phone = \"...\" })"}
    f = hash_agreement_frame(ws)
    out: dict[str, Any] = {}
    for (plat, key), g in f.groupby(["platform", "key"], sort=True):
        counts = dict(zip(g["verdict"], g["events"].astype(int), strict=True))
        n = int(sum(counts.values()))
        agree = int(counts.get("agree", 0))
        out.setdefault(plat, {})[key] = {"n": n, "agree": agree, "share": ratio(agree, n),
                                         "mismatch": {c: int(counts.get(c, 0)) for c in CAUSES}}
    return out
