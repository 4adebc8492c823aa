"""Match-key coverage (design §3.7): presence, validity and plaintext leaks of every customer key
on server events, shared values, and the best identifier tier per event.

Key sets are per platform (capi_audit.validity): Google wants city, region, postal code and
country in clear and takes base64 digests from Data Manager
(https://developers.google.com/data-manager/api/devguides/concepts/formatting). Identifier tiers
follow each platform's keys: Meta strong (email / phone) > click (fbc) > browser (fbp + IP + user
agent) > none; Google strong (email / phone, or the full address: first and last name, postal code
and country, which Google matches only together) > click (gclid / gbraid / wbraid) > none —
Google has no browser tier (https://developers.google.com/google-ads/api/docs/conversions/upload-identifiers).
The address counts only on routes that take it: the Google Ads API click-conversion upload
(ConversionUploadService, `source_api` google_ads_api or file_upload) accepts hashed email and
phone only (https://developers.google.com/google-ads/api/docs/conversions/upload-online), while
Data Manager and GA4's user-provided data take the address."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from capi_audit import validity
from capi_audit.metrics.common import (
    FamilyResult,
    Headline,
    local_date,
    not_test_row,
    params,
    prepare,
    tidy,
)

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace

# A value on more than this share of a platform's server rows (and on at least 10 rows) is an
# implausible shared value: the server's own IP, a constant hash, a cached fbp. Low-cardinality
# keys (gender, country, city, state, zip, birth date) are not checked.
SHARED_THRESHOLDS = {"em": 0.02, "ph": 0.02, "external_id": 0.02, "fn": 0.05, "ln": 0.05,
                     "client_ip_address": 0.02, "client_user_agent": 0.20, "fbp": 0.02,
                     "fbc": 0.02, "gclid": 0.02}
SHARED_MIN_ROWS = 10
TIERS = ("strong", "click", "browser", "none")


def _flags_sql() -> str:
    cols = []
    for k in validity.MATCH_KEYS:
        cols += [f"CASE WHEN {validity.present(k)} THEN 1 ELSE 0 END AS {k}__present",
                 f"CASE WHEN {validity.valid(k)} THEN 1 ELSE 0 END AS {k}__valid",
                 f"CASE WHEN {validity.plaintext(k)} THEN 1 ELSE 0 END AS {k}__plain"]
    return ", ".join(cols)


def _address_hashed_sql() -> str:
    return ", ".join(f"CASE WHEN {validity.address_hashed(k)} THEN 1 ELSE 0 END AS {k}__hashed"
                     for k in validity.schema.ADDRESS_KEYS)


def prepare_flags(ws: Workspace) -> None:
    """Materialize `sv_flags`: one row per server event of a non-test order with key flags."""
    prepare(ws)
    if getattr(ws, "_flags_for", None) == ws._prepared:
        return
    ws.execute(f"""
        CREATE OR REPLACE TEMP TABLE sv_key_flags AS
        SELECT platform, destination, event_name, event_time, sent_at, status, action_source, event_source_url,
               value, currency, data_processing_options, order_id, event_id, fbc, source_api, consent_ad_user_data,
               request_id, {_flags_sql()}, {_address_hashed_sql()}
        FROM server_events
        WHERE {not_test_row(ws, 'order_id', 'event_id')}
    """)
    ws.execute("""
        CREATE OR REPLACE TEMP TABLE sv_flags AS SELECT *,
            CASE WHEN platform IN ('google', 'ga4') THEN
                     CASE WHEN em__valid = 1 OR ph__valid = 1
                               OR (fn__valid = 1 AND ln__valid = 1 AND zp__valid = 1 AND country__valid = 1
                                   AND coalesce(source_api, '') NOT IN ('google_ads_api', 'file_upload')) THEN 'strong'
                          WHEN gclid__valid = 1 OR gbraid__valid = 1 OR wbraid__valid = 1 THEN 'click'
                          ELSE 'none' END
                 WHEN em__valid = 1 OR ph__valid = 1 THEN 'strong'
                 WHEN fbc__valid = 1 THEN 'click'
                 WHEN fbp__valid = 1 AND client_ip_address__valid = 1 AND client_user_agent__valid = 1 THEN 'browser'
                 ELSE 'none' END AS tier
        FROM sv_key_flags
    """)
    ws._flags_for = ws._prepared


def match_keys(ws: Workspace) -> tuple[pd.DataFrame, Headline]:
    """Per platform and key: present / valid / plaintext shares, shared values, tiers."""
    if not ws.count("server_events"):
        return pd.DataFrame(), Headline("match_keys", available=False, reason="no server events loaded")
    prepare_flags(ws)
    if not ws.scalar("SELECT count(*) FROM sv_flags"):
        return pd.DataFrame(), Headline("match_keys", available=False,
                                        reason="every server event belongs to a test order (is_test orders are left out)")
    sums = ", ".join(f"sum({k}__{m}) AS {k}__{m}" for k in validity.MATCH_KEYS for m in ("present", "valid", "plain"))
    tiers = ", ".join(f"sum(CASE WHEN tier = '{t}' THEN 1 ELSE 0 END) AS tier__{t}" for t in TIERS)
    agg = ws.df(f"SELECT platform, count(*) AS n, {sums}, {tiers} FROM sv_flags GROUP BY platform ORDER BY platform")
    shared = shared_values(ws)
    rows, values = [], {}
    for r in agg.to_dict("records"):
        n, plat = int(r["n"]), r["platform"]
        pv: dict = {}
        for k in validity.MATCH_KEYS:
            m = {"present": r[f"{k}__present"] / n, "valid": r[f"{k}__valid"] / n,
                 "plaintext_pii": r[f"{k}__plain"] / n}
            if k in SHARED_THRESHOLDS:
                s = shared[(shared["platform"] == plat) & (shared["key"] == k)]["shared_rows"].sum()
                m["shared_value"] = float(s) / n
            pv[k] = m
            rows.append({"platform": plat, "key": k, **m, "rows": n})
        pv["identifier_tiers"] = {t: r[f"tier__{t}"] / n for t in TIERS}
        pv["n"] = n  # the denominator of every share above: the platform's server event rows
        values[plat] = pv
    for plat, by_event in match_quality_proxy(ws).items():
        if plat in values:
            values[plat]["match_quality_proxy"] = by_event
    for plat, block in pixel_plaintext(ws).items():
        values.setdefault(plat, {})["pixel"] = block
    # hash agreement with the shop's own customer keys (its own module: metrics/hash_agreement.py)
    from capi_audit.metrics.hash_agreement import hash_agreement

    agreement = hash_agreement(ws)
    if agreement.get("available", True) is not False:
        for plat, pv in values.items():
            pv["hash_agreement"] = agreement.get(plat, {})
    return tidy(pd.DataFrame(rows), ["platform", "key"]), Headline("match_keys", values)


# match_quality_proxy: the identifier slots each platform names, each worth the same. Meta names
# em, ph, client IP, fn + ln as high-value keys and asks for fbc, fbp, external_id and the user
# agent too (https://developers.facebook.com/docs/marketing-api/conversions-api/best-practices);
# Google matches on email, phone, the full address (first and last name, postal code, country,
# only together) and click ids (https://developers.google.com/google-ads/api/docs/conversions/upload-identifiers).
PROXY_SLOTS = {
    "meta": {"em": "em__valid = 1", "ph": "ph__valid = 1", "client_ip_address": "client_ip_address__valid = 1",
             "client_user_agent": "client_user_agent__valid = 1", "fbc": "fbc__valid = 1", "fbp": "fbp__valid = 1",
             "external_id": "external_id__valid = 1", "fn+ln": "fn__valid = 1 AND ln__valid = 1"},
    "google": {"em": "em__valid = 1", "ph": "ph__valid = 1",
               "address": "fn__valid = 1 AND ln__valid = 1 AND zp__valid = 1 AND country__valid = 1",
               "click_id": "gclid__valid = 1 OR gbraid__valid = 1 OR wbraid__valid = 1"},
}
PROXY_SLOTS["ga4"] = PROXY_SLOTS["google"]


def match_quality_proxy(ws: Workspace) -> dict[str, dict]:
    """Per platform and event name: the mean share of the platform's identifier slots
    (PROXY_SLOTS) a server event fills with a valid value, in [0, 1], with `n` events. A
    transparent proxy, not Meta's Event Match Quality, whose formula and weights are not public
    (https://developers.facebook.com/docs/marketing-api/conversions-api/dataset-quality-api)."""
    out: dict[str, dict] = {}
    for plat, slots in sorted(PROXY_SLOTS.items()):
        filled = " + ".join(f"CASE WHEN {cond} THEN 1 ELSE 0 END" for cond in slots.values())
        rows = ws.rows(f"""
            SELECT event_name, count(*), avg(CAST({filled} AS DOUBLE) / CAST({len(slots)} AS DOUBLE))
            FROM sv_flags WHERE platform = $p GROUP BY event_name ORDER BY event_name""", {"p": plat})
        if rows:
            out[plat] = {name: {"slot_share": float(score), "n": int(n), "slots": len(slots)} for name, n, score in rows}
    return out


PIXEL_HASHED_KEYS = ("em", "ph")


def pixel_plaintext(ws: Workspace) -> dict[str, dict]:
    """Per platform with browser hits: advanced-matching keys the tag sent in clear (`ud[em]`,
    `ud[ph]` must be SHA-256 hashes; the loader replaced a clear value by a marker). Raw personal
    data leaves from the browser too, so the `no_plaintext_pii` gate sees these shares; `n` is the
    platform's browser hits (test orders' hits left out)."""
    sums = ", ".join(f"sum(CASE WHEN {validity.plaintext(k)} THEN 1 ELSE 0 END) AS {k}" for k in PIXEL_HASHED_KEYS)
    out: dict[str, dict] = {}
    for r in ws.df(f"""
            SELECT platform, count(*) AS n, {sums} FROM pixel_events
            WHERE platform IS NOT NULL AND {not_test_row(ws, 'order_id', 'event_id')}
            GROUP BY platform ORDER BY platform""").to_dict("records"):
        n = int(r["n"])
        out[r["platform"]] = {"n": n, **{k: {"plaintext_pii": float(r[k]) / n} for k in PIXEL_HASHED_KEYS}}
    return out


def shared_values(ws: Workspace) -> pd.DataFrame:
    """Per platform and key: how many values are implausibly shared and on how many rows.
    Values themselves are never returned."""
    prepare(ws)
    parts = []
    for k, share in SHARED_THRESHOLDS.items():
        parts.append(f"""
            SELECT platform, '{k}' AS key, count(*) AS shared_values, sum(c) AS shared_rows, max(c) AS top_rows
            FROM (
                SELECT s.platform, s.{k} AS v, count(*) AS c, max(t.n) AS n FROM server_events s
                JOIN (SELECT platform, count(*) AS n FROM sv_flags GROUP BY platform) t ON t.platform = s.platform
                WHERE {validity.present('s.' + k)} AND NOT {validity.plaintext('s.' + k)}
                  AND {not_test_row(ws, 's.order_id', 's.event_id')}
                GROUP BY s.platform, s.{k}
            ) WHERE c >= greatest({SHARED_MIN_ROWS}, {share} * n)
            GROUP BY platform""")
    return ws.df(" UNION ALL ".join(parts) + " ORDER BY platform, key")


def match_keys_daily(ws: Workspace) -> pd.DataFrame:
    """Per platform, local day and key: valid share (for the heat map)."""
    prepare_flags(ws)
    cols = ", ".join(f"avg({k}__valid) AS {k}" for k in validity.MATCH_KEYS)
    wide = ws.df(f"SELECT platform, {local_date('event_time')} AS day, {cols} FROM sv_flags GROUP BY 1, 2 ORDER BY 1, 2",
                 params(ws))
    return wide.melt(id_vars=["platform", "day"], var_name="key", value_name="valid_share")


def tiers_by_event(ws: Workspace) -> pd.DataFrame:
    """Share of server events per identifier tier, by platform and event_name."""
    prepare_flags(ws)
    return ws.df("SELECT platform, event_name, tier, count(*) * 1.0 / sum(count(*)) OVER (PARTITION BY platform, event_name) "
                 "AS share, count(*) AS events FROM sv_flags GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")


def compute(ws: Workspace) -> FamilyResult:
    """Family `match_keys`: per-key shares, the daily valid share and identifier tiers."""
    frame, head = match_keys(ws)
    frames = {"match_keys": frame}
    if head.available:
        frames["match_keys_daily"] = match_keys_daily(ws)
        frames["match_keys_tiers"] = tiers_by_event(ws)
        from capi_audit.metrics.hash_agreement import hash_agreement_frame

        if ws.count("identities"):
            frames["match_keys_hash_agreement"] = hash_agreement_frame(ws)
    return FamilyResult(head, frames)
