"""Payload validity (design §3): which platform rules each server event breaks, counted per rule.

Meta: event_time over 7 days old rejects the request; website events need event_source_url and
client_user_agent; Purchase needs value and currency; some key combinations alone are rejected
as insufficient (https://developers.facebook.com/docs/marketing-api/conversions-api/best-practices,
.../parameters/server-event, .../parameters/custom-data; domain/meta.md §1). Google: future
conversion times are rejected; an upload needs a click id or a hashed email / phone
(https://developers.google.com/google-ads/api/docs/conversions/upload-clicks; domain/google.md §2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from capi_audit import validity
from capi_audit.metrics.common import FamilyResult, Headline, local_date, params, tidy
from capi_audit.metrics.match_keys import prepare_flags

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace

RULES = ("event_too_old", "event_in_future", "missing_action_source", "website_missing_user_agent",
         "website_missing_source_url", "purchase_missing_value", "purchase_missing_currency",
         "invalid_currency", "insufficient_customer_keys", "unhashed_key", "malformed_fbc",
         "malformed_fbp", "click_id_too_old")
META_RULES_ONLY = ("event_too_old", "missing_action_source", "website_missing_user_agent",
                   "website_missing_source_url", "malformed_fbc", "malformed_fbp", "click_id_too_old")
AGE_LIMIT_S = {"meta": 7 * 86400}       # Meta: event_time at most 7 days before sending
FUTURE_SKEW_S = 300
CLICK_MAX_AGE_DAYS = 90                 # fbc older than 90 days earns no click credit (meta.md §5.5)
# Meta's rejected customer-information combinations: keys only from one of these sets
# (domain/meta.md §1.7).
META_WEAK_SETS = (
    ("ct", "country", "st", "zp", "ge", "client_user_agent"),
    ("db", "client_user_agent"),
    ("fn", "ge"),
    ("ln", "ge"),
)
META_KEYS = tuple(k for k in validity.MATCH_KEYS if k != "gclid")
# Active ISO 4217 codes (common subset of the standard's list; extend as needed).
ISO_4217 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD "
    "CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD "
    "GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT "
    "LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR "
    "NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP "
    "STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF "
    "XPF YER ZAR ZMW ZWL"
).split()


def _weak_sql() -> str:
    conds = []
    for weak in META_WEAK_SETS:
        others = [k for k in META_KEYS if k not in weak]
        conds.append("(" + " AND ".join(f"{k}__present = 0" for k in others) + ")")
    return "(" + " OR ".join(conds) + ")"


def _rules_sql() -> str:
    meta = "platform = 'meta'"
    website = "lower(action_source) = 'website'"
    hashed_plain = " OR ".join(f"{k}__plain = 1" for k in validity.schema.HASHED_KEYS)
    lag = "seconds_between(event_time, sent_at)"
    exprs = {
        "event_too_old": f"{meta} AND sent_at IS NOT NULL AND {lag} > {AGE_LIMIT_S['meta']}",
        "event_in_future": f"sent_at IS NOT NULL AND {lag} < -{FUTURE_SKEW_S}",
        "missing_action_source": f"{meta} AND action_source IS NULL",
        "website_missing_user_agent": f"{meta} AND {website} AND client_user_agent__present = 0",
        "website_missing_source_url": f"{meta} AND {website} AND event_source_url IS NULL",
        "purchase_missing_value": "lower(event_name) = 'purchase' AND value IS NULL",
        "purchase_missing_currency": "lower(event_name) = 'purchase' AND currency IS NULL",
        "invalid_currency": "currency IS NOT NULL AND NOT EXISTS (SELECT 1 FROM iso_4217 i WHERE i.code = upper(currency))",
        "insufficient_customer_keys": f"({meta} AND {_weak_sql()}) OR (platform = 'google' AND "
                                      "gclid__present = 0 AND em__present = 0 AND ph__present = 0)",
        "unhashed_key": f"({hashed_plain})",
        "malformed_fbc": f"{meta} AND fbc__present = 1 AND fbc__valid = 0",
        "malformed_fbp": f"{meta} AND fbp__present = 1 AND fbp__valid = 0",
        "click_id_too_old": f"{meta} AND fbc__valid = 1 AND "
                            f"epoch_ms_of(event_time) - {validity.fbc_creation_ms('fbc')} > CAST({CLICK_MAX_AGE_DAYS} AS BIGINT) * 86400000",
    }
    return ", ".join(f"CASE WHEN {e} THEN 1 ELSE 0 END AS {r}" for r, e in exprs.items())


def payload_validity(ws: Workspace) -> tuple[pd.DataFrame, Headline]:
    """Per platform: server events breaking each rule (rejected events included)."""
    if not ws.count("server_events"):
        return pd.DataFrame(), Headline("validation", available=False, reason="no server events loaded")
    prepare_flags(ws)
    ws.from_rows("iso_4217", [("code", "VARCHAR")], [(c,) for c in ISO_4217])
    sums = ", ".join(f"sum({r}) AS {r}" for r in RULES)
    frame = ws.df(f"""
        SELECT platform, event_name, {local_date('event_time')} AS day, count(*) AS events, {sums}
        FROM (SELECT *, {_rules_sql()} FROM sv_flags) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    """, params(ws))
    values = {}
    for plat, g in frame.groupby("platform", sort=True):
        values[plat] = {r: int(g[r].sum()) for r in RULES}
    return tidy(frame, ["platform", "event_name", "day"]), Headline("validation", values)


def compute(ws: Workspace) -> FamilyResult:
    """Family `validation`: rule violations per platform, per event name and day."""
    frame, head = payload_validity(ws)
    return FamilyResult(head, {"validation": frame})
