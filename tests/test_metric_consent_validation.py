"""Consent rates, payload rules and latency on hand-built inputs with exact values."""

from __future__ import annotations

import numpy as np
import pytest

from capi_audit.metrics import consent, latency, payload_validity
from capi_audit.metrics.consent import by_country

from .helpers import at, make_ws

H = "a" * 64


def test_consent_rates_exact():
    orders = [
        {"order_id": "g1", "created_at": at(1), "consent_ads": "granted", "country": "DE"},  # pixel + server
        {"order_id": "g2", "created_at": at(1), "consent_ads": "granted", "country": "DE"},  # server only
        {"order_id": "g3", "created_at": at(-30), "consent_ads": "granted", "country": "FR"},  # pre, pixel
        {"order_id": "d1", "created_at": at(1), "consent_ads": "denied", "country": "DE"},   # nothing
        {"order_id": "d2", "created_at": at(1), "consent_ads": "denied", "country": "FR"},   # pixel + server
        {"order_id": "d3", "created_at": at(1), "consent_ads": "denied", "country": "FR"},   # server with LDU
        {"order_id": "u1", "created_at": at(1), "consent_ads": None, "country": "DE"},
        {"order_id": "t1", "created_at": at(1), "consent_ads": "denied", "country": "DE", "is_test": True},
    ]
    pixel = [{"event_id": o, "event_time": at(1), "order_id": o} for o in ("g1", "g3", "d2", "t1")]
    server = [{"event_id": o, "event_time": at(1), "order_id": o} for o in ("g1", "g2", "d2", "t1")]
    server.append({"event_id": "d3", "event_time": at(1), "order_id": "d3", "data_processing_options": '["LDU"]'})
    ws = make_ws(orders=orders, pixel=pixel, server=server, enabled={"meta": at(0)})
    frame, head = consent(ws)
    expected = {
        "consent_unknown": 1,
        "denied_rate": 3 / 6, "denied_rate_n": 6,
        "consent_drop_rate": 2 / 6, "consent_drop_rate_n": 6,
        "browser_loss_rate": 1 / 3, "browser_loss_rate_n": 3,
        "server_gap_rate": 0 / 2, "server_gap_rate_n": 2,
        "pixel_fired_without_consent": 1,
        # d3 is a French order: LDU (a US-state control) does not excuse it
        "server_sent_without_consent": 2, "ldu_outside_us": 1, "server_sent_restricted": 0,
    }
    assert {k: head.values["meta"][k] for k in expected} == expected
    c = by_country(frame).set_index("country")
    assert c.loc["FR", "pixel_fired_without_consent"] == 1 and c.loc["DE", "denied_rate"] == 1 / 3


def test_consent_unavailable_without_consent_state():
    ws = make_ws(orders=[{"order_id": "a", "created_at": at(0)}])
    assert consent(ws)[1].summary() == {"available": False, "reason": "orders carry no consent state"}


def ev(**kw):
    base = {"event_id": "x", "event_time": at(0), "sent_at": at(0.01), "action_source": "website",
            "event_source_url": "https://shop.example/", "client_user_agent": "Mozilla/5.0", "em": H,
            "value": 10.0, "currency": "EUR"}
    base.update(kw)
    return base


def test_each_rule_exactly_once():
    rows = [
        ev(),                                                     # clean
        ev(sent_at=at(7 * 24 + 1)),                               # event_too_old
        ev(sent_at=at(-1)),                                       # event_in_future
        ev(action_source=None),                                   # missing_action_source
        ev(client_user_agent=None),                               # website_missing_user_agent
        ev(event_source_url=None),                                # website_missing_source_url
        ev(value=None),                                           # purchase_missing_value
        ev(currency=None),                                        # purchase_missing_currency
        ev(currency="EURO"),                                      # invalid_currency
        ev(em=None, ge=H, ct=H, st=H, country=H),                 # insufficient (ge ct st country + UA)
        ev(em="<plaintext:email>"),                               # unhashed_key
        ev(fbc="fb.1.1554763741.AbC"),                            # malformed_fbc
        ev(fbp="fb.1.x"),                                         # malformed_fbp
        ev(fbc=f"fb.1.{int(at(-24 * 100).timestamp() * 1000)}.IwAR1"),  # click_id_too_old
    ]
    frame, head = payload_validity(make_ws(server=rows))
    meta_rules = list(head.values["meta"])[:13]
    rules = {r: v for r, v in head.values["meta"].items() if r not in ("events", "events_without_sent_at", "days")}
    assert rules == {r: int(r in meta_rules) for r in rules}
    assert (head.values["meta"]["events"], head.values["meta"]["days"]) == (14, 1)
    assert len(meta_rules) == 13 and "click_id_too_old" in meta_rules


UA = "Mozilla/5.0"


@pytest.mark.parametrize("keys, insufficient", [
    ({}, True),
    ({"ge": H, "ct": H, "st": H, "country": H, "client_user_agent": UA}, True),
    ({"db": H, "client_user_agent": UA}, True),
    ({"fn": H, "ge": H}, True),
    ({"fn": H, "ge": H, "client_user_agent": UA}, False),  # UA is not in the fn+ge set
    ({"fn": H, "ln": H, "ge": H}, False),
    ({"em": H}, False),
    ({"ct": H, "client_ip_address": "81.2.69.160"}, False),
])
def test_meta_insufficient_key_combinations(keys, insufficient):
    row = {"event_id": "x", "event_time": at(0), **keys}
    v = payload_validity(make_ws(server=[row]))[1].values["meta"]
    assert v["insufficient_customer_keys"] == int(insufficient)


def test_google_rules():
    rows = [{"platform": "google", "event_id": "1", "event_time": at(0), "gclid": "Cj0KCQabcdefghij"},
            {"platform": "google", "event_id": "2", "event_time": at(0), "sent_at": at(24 * 30)},
            {"platform": "google", "event_id": "3", "event_time": at(0), "em": H, "action_source": None}]
    v = payload_validity(make_ws(server=rows))[1].values["google"]
    assert v["insufficient_customer_keys"] == 1
    assert "event_too_old" not in v and "missing_action_source" not in v  # Meta's rules: not Google's
    assert v["purchase_missing_value"] == 3


def test_latency_exact():
    lags_h = [0.0, 0.5, 2.0, 30.0, 200.0]
    rows = [{"event_id": str(i), "event_time": at(0), "sent_at": at(h)} for i, h in enumerate(lags_h)]
    rows.append({"event_id": "nosent", "event_time": at(0)})
    v = latency(make_ws(server=rows))[1].values["meta"]
    secs = np.array(lags_h) * 3600
    assert v["median_s"] == pytest.approx(np.percentile(secs, 50))
    assert v["p95_s"] == pytest.approx(np.percentile(secs, 95))
    assert (v["share_over_1h"], v["share_over_24h"], v["share_over_age_limit"]) == (0.6, 0.4, 0.2)
    assert v["events_without_sent_at"] == 1
    g = latency(make_ws(server=[{"platform": "google", "event_id": "1", "event_time": at(0), "sent_at": at(1)}]))
    assert g[1].values["google"]["share_over_age_limit"] is None


@pytest.mark.parametrize("source_api, insufficient, tier", [
    ("data_manager", 0, "strong"),      # Data Manager matches on the full address
    ("google_ads_api", 1, "none"),      # the click upload takes email and phone only
    ("file_upload", 1, "none"),
])
def test_google_address_only_counts_where_the_route_takes_it(source_api, insufficient, tier):
    """Review finding (session 3): an address-only Google upload read as a strong key on the Ads
    API click route (which ignores addresses) and as insufficient keys on Data Manager (which
    matches on them)."""
    from capi_audit.metrics import match_keys

    row = {"platform": "google", "event_id": "1", "event_time": at(0), "source_api": source_api,
           "fn": "a" * 64, "ln": "b" * 64, "zp": "10115", "country": "DE"}
    ws = make_ws(server=[row])
    assert payload_validity(ws)[1].values["google"]["insufficient_customer_keys"] == insufficient
    tiers = match_keys(make_ws(server=[row]))[1].values["google"]["identifier_tiers"]
    assert tiers[tier] == 1.0
