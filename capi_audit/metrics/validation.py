"""Payload validity (design §3): which platform rules each server event breaks, counted per rule.

Meta: event_time over 7 days old rejects the request; website events need event_source_url and
client_user_agent; Purchase needs value and currency; some key combinations alone are rejected
as insufficient (https://developers.facebook.com/docs/marketing-api/conversions-api/best-practices,
.../parameters/server-event, .../parameters/custom-data; domain/meta.md §1). Google: future
conversion times are rejected; an upload needs a click id or a hashed email / phone
(https://developers.google.com/google-ads/api/docs/conversions/upload-clicks); gbraid and wbraid
never together and at most one click id per conversion; city, region, postal code and country go
in clear (`address_field_hashed` otherwise); an order id must not carry personal data
(`ORDER_ID_CONTAINS_PII`); a conversion value is not negative; uploads should state ad_user_data
(`consent_missing_ad_user_data`; https://support.google.com/google-ads/answer/14310715); at most
2,000 conversions per API request. GA4 Measurement Protocol events may be backdated by 72 h at
most (https://developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events).
Purchase rules apply to the conversion class (the conversion event, its case variants and
aliases; for Google Ads, when `[[google_actions]]` is configured, its primary actions — and only
for Google Ads), not to a literal name.
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
         "malformed_fbp", "click_id_too_old", "address_field_hashed", "gbraid_and_wbraid",
         "more_than_one_click_id", "order_id_contains_pii", "value_negative",
         "consent_missing_ad_user_data", "too_many_conversions_in_request", "mp_backdated_over_72h")
META_RULES_ONLY = ("missing_action_source", "website_missing_user_agent",
                   "website_missing_source_url", "malformed_fbc", "malformed_fbp", "click_id_too_old")
# The platforms each rule applies to (a rule not listed applies to every platform). A rule that
# does not apply to a platform is left out of that platform's summary (the report shows `–`, a
# gate does not see it) and is NA in the frame, rather than a 0 that reads as "checked, clean".
# Send-age limits exist for Meta (7 days, physical_store 62) and GA4 Measurement Protocol (72 h);
# a Google Ads upload has none of its own (its click window is checked against the click).
APPLIES_TO: dict[str, tuple[str, ...]] = {
    "event_too_old": ("meta", "ga4"),
    **{r: ("meta",) for r in META_RULES_ONLY},
    "insufficient_customer_keys": ("meta", "google"),
    "address_field_hashed": ("google", "ga4"),
    "gbraid_and_wbraid": ("google",),
    "more_than_one_click_id": ("google",),
    "order_id_contains_pii": ("google", "ga4"),
    "consent_missing_ad_user_data": ("google",),
    "too_many_conversions_in_request": ("google",),
    "mp_backdated_over_72h": ("ga4",),
}


_KNOWN_PLATFORMS = frozenset(p for ps in APPLIES_TO.values() for p in ps)


def applies(rule: str, platform: str) -> bool:
    """Whether `rule` is one of `platform`'s rules (a platform the table does not know: every rule)."""
    return rule not in APPLIES_TO or platform not in _KNOWN_PLATFORMS or platform in APPLIES_TO[rule]


AGE_LIMIT_S = {"meta": 7 * 86400}       # Meta: event_time at most 7 days before sending
# Age limits per platform and action_source live with the counting rules (metrics.units:
# Meta 7 days, physical_store 62 days, GA4 Measurement Protocol 72 h); Google Ads uploads have
# no send-age limit of their own (the click window applies, checked against the click time).
GA4_BACKDATE_S = 72 * 3600
# rules that compare event_time with sent_at: null (unknown) for a platform none of whose events
# carries sent_at
SENT_AT_RULES = ("event_too_old", "event_in_future", "mp_backdated_over_72h")
GOOGLE_MAX_CONVERSIONS_PER_REQUEST = 2000
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


def age_limit_sql() -> str:
    """SQL: the send-age limit in seconds of a server event's platform and action_source (NULL: none)."""
    from capi_audit.metrics.units import age_limit_sql as limits

    return limits()


def conversion_names(ws: Workspace) -> list[str]:
    """Lower-cased event names in the conversion class of Meta and GA4 (and of Google Ads without a
    `[[google_actions]]` catalogue): the conversion event and its aliases."""
    cfg = ws.config
    names = {cfg.conversion_event.lower()}
    for key, aliases in (getattr(cfg, "event_aliases", None) or {}).items():
        if key.lower() == cfg.conversion_event.lower():
            names.update(a.lower() for a in aliases)
    return sorted(names)


def google_primary_actions(ws: Workspace) -> list[str]:
    """The primary conversion actions of `[[google_actions]]` (empty without a catalogue). They are
    Google Ads classes only: a Meta or GA4 event that happens to share an action's name is not in
    the class (as in metrics.units)."""
    out = set()
    for act in getattr(ws.config, "google_actions", None) or ():
        name = act.get("name") if isinstance(act, dict) else getattr(act, "name", None)
        primary = act.get("primary", True) if isinstance(act, dict) else getattr(act, "primary", True)
        if name and primary:
            out.add(str(name))
    return sorted(out)


def _rules_sql(google_catalogue: bool = False) -> str:
    meta = "platform = 'meta'"
    google = "platform = 'google'"
    website = "lower(action_source) = 'website'"
    hashed_plain = " OR ".join(f"{k}__plain = 1" for k in validity.schema.HASHED_KEYS)
    lag = "seconds_between(event_time, sent_at)"
    by_name = "lower(event_name) IN (SELECT name FROM conversion_names)"
    # Google Ads with a catalogue: the primary actions (the action is the destination, else the
    # event name, as the units key it); everything else: the conversion event and its aliases
    purchase = (f"(CASE WHEN {google} THEN coalesce(destination, event_name) IN (SELECT name FROM google_primary_actions) "
                f"ELSE {by_name} END)") if google_catalogue else by_name
    exprs = {
        # every platform with a send-age limit (Meta 7 days / physical_store 62 days, GA4 72 h)
        "event_too_old": f"sent_at IS NOT NULL AND {lag} > {age_limit_sql()}",
        "event_in_future": f"sent_at IS NOT NULL AND {lag} < -{FUTURE_SKEW_S}",
        "missing_action_source": f"{meta} AND action_source IS NULL",
        "website_missing_user_agent": f"{meta} AND {website} AND client_user_agent__present = 0",
        "website_missing_source_url": f"{meta} AND {website} AND event_source_url IS NULL",
        "purchase_missing_value": f"{purchase} AND value IS NULL",
        "purchase_missing_currency": f"{purchase} AND currency IS NULL",
        "invalid_currency": "currency IS NOT NULL AND NOT EXISTS (SELECT 1 FROM iso_4217 i WHERE i.code = upper(currency))",
        # Data Manager matches on the full address too (first and last name, postal code, country
        # together); the Ads API click upload takes email and phone only
        # (https://developers.google.com/data-manager/api/devguides/concepts/formatting)
        "insufficient_customer_keys": f"({meta} AND {_weak_sql()}) OR ({google} AND gclid__present = 0 "
                                      "AND gbraid__present = 0 AND wbraid__present = 0 AND em__present = 0 AND ph__present = 0 "
                                      "AND NOT (coalesce(source_api, '') = 'data_manager' AND fn__valid = 1 "
                                      "AND ln__valid = 1 AND zp__valid = 1 AND country__valid = 1))",
        "unhashed_key": f"({hashed_plain})",
        "malformed_fbc": f"{meta} AND fbc__present = 1 AND fbc__valid = 0",
        "malformed_fbp": f"{meta} AND fbp__present = 1 AND fbp__valid = 0",
        "click_id_too_old": f"{meta} AND fbc__valid = 1 AND "
                            f"epoch_ms_of(event_time) - {validity.fbc_creation_ms('fbc')} > CAST({CLICK_MAX_AGE_DAYS} AS BIGINT) * 86400000",
        "address_field_hashed": "(" + " OR ".join(f"{k}__hashed = 1" for k in validity.schema.ADDRESS_KEYS) + ")",
        "gbraid_and_wbraid": f"{google} AND gbraid__present = 1 AND wbraid__present = 1",
        "more_than_one_click_id": f"{google} AND gclid__present + gbraid__present + wbraid__present > 1",
        "order_id_contains_pii": "platform IN ('google', 'ga4') AND (order_id LIKE '%@%' "
                                 "OR full_match(order_id, '\\+?[0-9 ()-]{10,}'))",
        "value_negative": "value < 0",
        "consent_missing_ad_user_data": f"{google} AND consent_ad_user_data IS NULL",
        "too_many_conversions_in_request": f"{google} AND request_size > {GOOGLE_MAX_CONVERSIONS_PER_REQUEST}",
        "mp_backdated_over_72h": f"platform = 'ga4' AND sent_at IS NOT NULL AND {lag} > {GA4_BACKDATE_S}",
    }
    return ", ".join(f"CASE WHEN {e} THEN 1 ELSE 0 END AS {r}" for r, e in exprs.items())


def payload_validity(ws: Workspace) -> tuple[pd.DataFrame, Headline]:
    """Per platform: server events breaking each rule (rejected events included)."""
    if not ws.count("server_events"):
        return pd.DataFrame(), Headline("validation", available=False, reason="no server events loaded")
    prepare_flags(ws)
    if not ws.scalar("SELECT count(*) FROM sv_flags"):
        return pd.DataFrame(), Headline("validation", available=False,
                                        reason="every server event belongs to a test order (is_test orders are left out)")
    ws.from_rows("iso_4217", [("code", "VARCHAR")], [(c,) for c in ISO_4217])
    ws.from_rows("conversion_names", [("name", "VARCHAR")], [(n,) for n in conversion_names(ws)])
    actions = google_primary_actions(ws)
    ws.from_rows("google_primary_actions", [("name", "VARCHAR")], [(n,) for n in actions])
    sums = ", ".join(f"sum({r}) AS {r}" for r in RULES)
    frame = ws.df(f"""
        SELECT platform, event_name, {local_date('event_time')} AS day, count(*) AS events, {sums}
        FROM (SELECT *, {_rules_sql(bool(actions))} FROM (
            SELECT f.*, CASE WHEN f.request_id IS NULL THEN 0
                             ELSE count(*) OVER (PARTITION BY f.platform, f.request_id) END AS request_size
            FROM sv_flags f)) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    """, params(ws))
    # per platform: events checked, events without sent_at, the local days the events span (the
    # divisor of a per-day cost: these counts cover every day of the data, not only post days)
    spans = {p: (int(n), int(no_sent), (last - first).days + 1 if first is not None else 0)
             for p, n, no_sent, first, last in ws.rows(f"""
        SELECT platform, count(*), sum(CASE WHEN sent_at IS NULL THEN 1 ELSE 0 END),
               min({local_date('event_time')}), max({local_date('event_time')})
        FROM sv_flags GROUP BY platform ORDER BY platform""", params(ws))}
    values = {}
    for plat, g in frame.groupby("platform", sort=True):
        values[plat] = {r: int(g[r].sum()) for r in RULES if applies(r, plat)}
        n, no_sent, days = spans.get(plat, (int(g["events"].sum()), 0, 0))
        if n and no_sent == n:
            # the send time is the only evidence for these rules: without it they are unknown, not 0
            for r in SENT_AT_RULES:
                if r in values[plat]:
                    values[plat][r] = None
        values[plat].update(events=n, events_without_sent_at=no_sent, days=days)
    for r in RULES:  # a rule that is not the platform's: NA, not 0
        if r in frame:
            frame[r] = frame[r].astype("Int64")
            frame.loc[~frame["platform"].map(lambda p, r=r: applies(r, p)).astype(bool), r] = pd.NA
    return tidy(frame, ["platform", "event_name", "day"]), Headline("validation", values)


def compute(ws: Workspace) -> FamilyResult:
    """Family `validation`: rule violations per platform, per event name and day."""
    frame, head = payload_validity(ws)
    return FamilyResult(head, {"validation": frame})
