"""Google Ads, GA4 and Consent Mode as they work: loaders, per-platform key sets, consent rules
and the `google` family. The first tests are named after the failures of issue 13 and fail on
the code before it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from capi_audit import Workspace
from capi_audit.config import config_from_dict
from capi_audit.io.auto import candidates
from capi_audit.io.consent_mode import decode_gcd
from capi_audit.metrics import consent, match_keys, payload_validity
from capi_audit.metrics.consent_rules import materialize
from capi_audit.metrics.google import google_metrics

from .helpers import at, make_ws

H = "509e933019bb285a134a9334b8bb679dff79d0ce023d529af4bd744d47b4fd8a"   # sha256("alexz@example.com")
H_B64 = "UJ6TMBm7KFoTSpM0uLtnnf950M4CPVKa9L10TUe0/Yo="                  # the same digest in base64
ADS_HIT = ('81.2.69.160 - - [10/Mar/2026:12:00:00 +0000] "GET /pagead/conversion/123456789/?label=AbC-D_efG'
           '&value=55.5&currency_code=EUR&oid={oid}{extra} HTTP/1.1" 200 42')


def load(tmp_path: Path, sources: list[dict], **audit) -> tuple[Workspace, list]:
    cfg = config_from_dict({"audit": audit, "sources": sources}, path=tmp_path / "audit.toml")
    ws = Workspace(config=cfg)
    return ws, ws.load()


def put(tmp_path: Path, name: str, text: str | bytes) -> str:
    (tmp_path / name).write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return name


def accounted(ws: Workspace) -> None:
    for read, loaded, rejected in ws.rows("SELECT rows_read, rows_loaded, rows_rejected FROM load_report"):
        assert read == loaded + rejected


# -- regression tests, one per failure at the top of issue 13 ---------------------------------
def test_ga4_stands_in_for_the_ads_tag(tmp_path):
    """GA4 is its own platform, and the Google Ads tag has its own loader whose hits share the
    upload's dedup key (conversion action, transaction_id)."""
    ga4 = {"event_name": "purchase", "event_timestamp": "1773144000000000", "ecommerce": {"transaction_id": "o1"}}
    hits = "\n".join([ADS_HIT.format(oid="o1", extra="&gcs=G111")])
    upload = ("Google Click ID,Conversion Name,Conversion Time,Order ID\n"
              "Cj0KCQabcdefghij,Purchase,2026-03-10 12:00:00+00:00,o1\n")
    ws, _ = load(tmp_path, [
        {"table": "pixel_events", "path": put(tmp_path, "ga4.jsonl", json.dumps(ga4)), "format": "ga4_export"},
        {"table": "pixel_events", "path": put(tmp_path, "tag.log", hits), "format": "google_tag_hits",
         "options": {"actions": {"AbC-D_efG": "Purchase"}}},
        {"table": "server_events", "path": put(tmp_path, "up.csv", upload), "format": "google_ads_click_conversions"},
    ])
    assert ws.rows("SELECT platform, destination, event_id FROM pixel_events ORDER BY platform") == [
        ("ga4", None, "o1"), ("google", "Purchase", "o1")]
    assert ws.rows("SELECT platform, destination, event_id FROM server_events") == [("google", "Purchase", "o1")]


def test_clear_address_fields_destroyed(tmp_path):
    """Google wants city, region, postal code and country in clear: kept, valid, not plaintext
    PII; a hashed one is flagged; Meta's rules are unchanged; Data Manager base64 is valid."""
    csv = ("platform,event_name,event_time,event_id,zp,ct,st,country,em,source_api\n"
           f"google,Purchase,2026-03-10T12:00:00Z,1,10001,newyork,ny,US,{H},\n"
           f"google,Purchase,2026-03-10T12:00:00Z,2,{H},newyork,ny,US,{H_B64},data_manager\n"
           f"google,Purchase,2026-03-10T12:00:00Z,3,10001,newyork,ny,US,{H_B64},google_ads_api\n"
           "meta,Purchase,2026-03-10T12:00:00Z,4,10001,newyork,ny,US,,\n")
    ws, reps = load(tmp_path, [{"table": "server_events", "path": put(tmp_path, "s.csv", csv)}])
    assert ws.rows("SELECT zp, ct, country FROM server_events WHERE event_id = '1'") == [("10001", "newyork", "US")]
    assert ws.scalar("SELECT zp FROM server_events WHERE event_id = '4'").startswith("<plaintext:")
    assert reps[0].redacted == {"ct": 1, "st": 1, "zp": 1, "country": 1}  # the Meta row only
    mk = match_keys(ws)[1].values
    assert mk["google"]["zp"]["plaintext_pii"] == 0 and mk["google"]["zp"]["valid"] == pytest.approx(2 / 3)
    assert mk["google"]["country"]["valid"] == 1.0
    assert mk["google"]["em"]["valid"] == pytest.approx(2 / 3)  # base64 only from Data Manager
    assert mk["meta"]["zp"]["plaintext_pii"] == 1.0
    v = payload_validity(ws)[1].values
    assert v["google"]["unhashed_key"] == 0 and v["google"]["address_field_hashed"] == 1
    assert v["meta"]["unhashed_key"] == 1


def test_click_dated_conversions_picked(tmp_path):
    """With both columns, the conversion-dated one is loaded and date_basis says so; an
    interaction-dated report alone loads with a note."""
    both = ("Day,Conversions,Conversions (by conv. time),Conv. value,Conv. value (by conv. time)\n"
            "2026-03-01,10,8,100,80\n2026-03-02,5,9,50,90\n")
    ws, reps = load(tmp_path, [{"table": "platform_report", "path": put(tmp_path, "r.csv", both),
                                "format": "google_ads_report"}])
    assert ws.rows("SELECT conversions, value, date_basis FROM platform_report ORDER BY date") == [
        (8.0, 80.0, "conversion"), (9.0, 90.0, "conversion")]
    only = "Day,Conversions\n2026-03-01,10\n"
    ws, reps = load(tmp_path, [{"table": "platform_report", "path": put(tmp_path, "i.csv", only),
                                "format": "google_ads_report"}])
    assert ws.rows("SELECT conversions, date_basis FROM platform_report") == [(10.0, "interaction")]
    assert "interaction-dated" in reps[0].note


def test_ldu_excusing_eu_users():
    """LDU is a US-state control: it restricts a send for a US order only."""
    orders = [{"order_id": "de", "created_at": at(1), "consent_ads": "denied", "country": "DE"},
              {"order_id": "us", "created_at": at(1), "consent_ads": "denied", "country": "US"},
              {"order_id": "gb", "created_at": at(1), "consent_ads": "denied", "country": "GB"}]
    server = [{"event_id": o, "order_id": o, "event_time": at(1), "data_processing_options": '["LDU"]'}
              for o in ("de", "us")] + [{"event_id": "gb", "order_id": "gb", "event_time": at(1)}]
    v = consent(make_ws(orders=orders, server=server))[1].values["meta"]
    assert v["server_sent_without_consent"] == 2       # de (LDU outside the US) and gb
    assert v["ldu_outside_us"] == 1
    assert v["server_sent_restricted"] == 1            # us


def test_cookieless_pings_as_violations():
    """Advanced Consent Mode pings for denied users are counted, not violations; a hit claiming
    granted or carrying a click id for a denied order is a violation."""
    orders = [{"order_id": o, "created_at": at(1), "consent_ads": "denied", "country": "DE"} for o in ("a", "b", "c")]
    pixel = [
        {"platform": "google", "event_id": "a", "event_time": at(1), "consent_ads": "denied", "cookieless": True},
        {"platform": "google", "event_id": "b", "event_time": at(1), "consent_ads": "denied", "gclid": "Cj0KCQabcdefghij"},
        {"platform": "google", "event_id": "c", "event_time": at(1), "consent_ads": "granted"},
    ]
    v = consent(make_ws(orders=orders, pixel=pixel))[1].values["google"]
    assert v["cookieless_pings"] == 1
    assert v["pixel_fired_without_consent"] == 2


def test_consent_types_conflated(tmp_path):
    """ad_storage (consent_ads) and ad_user_data stay apart from the loader to the metric: an
    upload marked ad_user_data DENIED is restricted even when ad storage was granted."""
    upload = ("Google Click ID,Conversion Name,Conversion Time,Order ID,Ad User Data\n"
              "Cj0KCQabcdefghij,Purchase,2026-03-10 12:00:00+00:00,o1,Denied\n"
              "Cj0KCQabcdefghik,Purchase,2026-03-10 12:00:00+00:00,o2,Granted\n")
    orders = ("order_id,created_at,consent_ads,consent_ad_user_data,country\n"
              "o1,2026-03-10T11:00:00Z,granted,denied,DE\no2,2026-03-10T11:00:00Z,granted,denied,DE\n")
    ws, _ = load(tmp_path, [
        {"table": "server_events", "path": put(tmp_path, "up.csv", upload), "format": "google_ads_click_conversions"},
        {"table": "orders", "path": put(tmp_path, "o.csv", orders)},
    ])
    assert ws.rows("SELECT consent_ads, consent_ad_user_data FROM server_events ORDER BY order_id") == [
        (None, "denied"), (None, "granted")]
    v = consent(ws)[1].values["google"]
    assert v["governing_consent"] == "ad_user_data"
    assert v["server_sent_restricted"] == 1 and v["server_sent_without_consent"] == 1
    assert v["by_consent_type"]["ad_storage"]["denied_rate"] == 0.0
    assert v["by_consent_type"]["ad_user_data"]["denied_rate"] == 1.0
    assert v["by_consent_type"]["ad_user_data"]["denied_rate_n"] == 2


# -- loaders -----------------------------------------------------------------------------------
@pytest.mark.parametrize("gcd, expected", [
    ("13r3r3r3r5l1", ("granted", "granted", "granted", "granted")),
    ("11p1p1p1p5", ("denied", "denied", "denied", "denied")),
    ("13q3v3m3t5l1", ("denied", "granted", "denied", "granted")),
    ("13l3l3l3l1", (None, None, None, None)),
])
def test_gcd_decoding(gcd, expected):
    assert tuple(decode_gcd(gcd).values()) == expected


def test_tag_hits_har_sgtm_and_accounting(tmp_path):
    har = {"log": {"entries": [
        {"startedDateTime": "2026-03-10T12:00:00.000Z", "request": {"url": "https://www.googleadservices.com/pagead/conversion/1/?"
         "label=L&oid=o1&value=5&currency_code=EUR&gclaw=Cj0KCQabcdefghij&gcs=G111&gcd=13r3r3q3r5l1&auid=1.1"}},
        {"startedDateTime": "2026-03-10T12:00:00.100Z", "request": {"url": "https://www.google.com/pagead/1p-conversion/1/?label=L&oid=o1"}},
        {"startedDateTime": "2026-03-10T12:00:01.000Z", "request": {"url": "https://region1.google-analytics.com/g/collect?v=2&tid=G-X&gcs=G100",
         "postData": {"text": "en=page_view\nen=purchase&ep.transaction_id=o1&epn.value=5&cu=EUR"}}},
        {"startedDateTime": "2026-03-10T12:00:02.000Z", "request": {"url": "https://cdn.example/app.js"}},
    ]}}
    sgtm = json.dumps({"timestamp": "2026-03-10T12:00:03Z",
                       "url": "https://sgtm.shop.example/pagead/conversion/1/?label=L&oid=o2&gcs=G100"})
    ws, reps = load(tmp_path, [
        {"table": "pixel_events", "path": put(tmp_path, "c.har", json.dumps(har)), "format": "google_tag_hits"},
        {"table": "pixel_events", "path": put(tmp_path, "sgtm.jsonl", sgtm + "\n{broken\n"), "format": "google_tag_hits"},
    ])
    accounted(ws)
    rows = ws.rows("SELECT platform, event_name, event_id, destination, consent_ads, consent_ad_user_data, cookieless "
                   "FROM pixel_events ORDER BY event_time")
    assert rows == [("google", "Purchase", "o1", "AW-1/L", "granted", "denied", False),
                    ("ga4", "page_view", None, "G-X", "denied", None, True),
                    ("ga4", "purchase", "o1", "G-X", "denied", None, True),
                    ("google", "Purchase", "o2", "AW-1/L", "denied", None, True)]
    assert reps[0].skipped == 2 and reps[1].rows_rejected == 1


def test_ga4_measurement_protocol_rows(tmp_path):
    body = {"client_id": "1.2", "timestamp_micros": 1773144000000000, "consent": {"ad_user_data": "DENIED"},
            "user_data": {"sha256_email_address": [H], "address": [{"city": "berlin", "postal_code": "10115", "country": "DE",
                                                                    "first_name": "Alex"}]},
            "events": [{"name": "purchase", "params": {"transaction_id": "o1", "value": 5, "currency": "EUR"}},
                       {"name": "refund", "params": {"transaction_id": "o1"}}]}
    line = json.dumps({"timestamp": "2026-03-10T12:05:00Z", "url": "https://www.google-analytics.com/mp/collect?measurement_id=G-X",
                       "body": body})
    f = put(tmp_path, "mp.jsonl", line + "\n" + json.dumps({"client_id": "1", "events": []}) + "\n")
    assert candidates(tmp_path / f, "server_events") == ["ga4_mp_payload"]
    ws, reps = load(tmp_path, [{"table": "server_events", "path": f, "format": "ga4_mp_payload"}])
    accounted(ws)
    assert ws.rows("SELECT platform, destination, event_name, event_id, ct, country, consent_ad_user_data, source_api "
                   "FROM server_events ORDER BY event_name") == [
        ("ga4", "G-X", "purchase", "o1", "berlin", "DE", "denied", "measurement_protocol"),
        ("ga4", "G-X", "refund", "o1", "berlin", "DE", "denied", "measurement_protocol")]
    assert ws.scalar("SELECT fn FROM server_events LIMIT 1").startswith("<plaintext:")  # a first name must be hashed
    assert reps[0].rows_rejected == 1


UPLOADS = [
    {"timestamp": "2026-03-10T13:00:00Z",
     "request": {"conversions": [
         {"gclid": "Cj0KCQabcdefghij", "conversionAction": "customers/1/conversionActions/456",
          "conversionDateTime": "2026-03-10 12:00:00+00:00", "orderId": "o1", "consent": {"adUserData": "GRANTED"},
          "userIdentifiers": [{"hashedEmail": H}]},
         {"gclid": "Cj0KCQzzzzzzzzzz", "conversionAction": "customers/1/conversionActions/456",
          "conversionDateTime": "2026-01-01 12:00:00+00:00", "orderId": "o2"}]},
     "response": {"partialFailureError": {"details": [{"errors": [
         {"errorCode": {"conversionUploadError": "EXPIRED_EVENT"},
          "location": {"fieldPathElements": [{"fieldName": "conversions", "index": 1}]}}]}]}, "results": [{}, {}]}},
    {"timestamp": "2026-03-10T13:01:00Z",
     "request": {"destinations": [{"productDestinationId": "456"}], "encoding": "BASE64",
                 "consent": {"adUserData": "CONSENT_DENIED"},
                 "events": [{"transactionId": "o3", "eventTimestamp": "2026-03-10T12:30:00Z",
                             "userData": {"userIdentifiers": [{"emailAddress": H_B64}]}}]},
     "response": {"requestId": "r9"},
     "diagnostics": {"requestStatusPerDestination": [{"requestStatus": "SUCCESS"}]}},
    {"timestamp": "2026-03-10T14:00:00Z",
     "request": {"conversionAdjustments": [
         {"conversionAction": "customers/1/conversionActions/456", "adjustmentType": "ENHANCEMENT", "orderId": "o1",
          "userIdentifiers": [{"hashedEmail": H}, {"addressInfo": {"city": "newyork", "postalCode": "10001", "countryCode": "US"}}]},
         {"conversionAction": "customers/1/conversionActions/456", "adjustmentType": "ENHANCEMENT", "orderId": "zz"},
         {"conversionAction": "customers/1/conversionActions/456", "adjustmentType": "RETRACTION", "orderId": "o2"}]},
     "response": {"results": [{}, {}, {}]}},
]


def test_upload_log_statuses_and_enhancements(tmp_path):
    f = put(tmp_path, "up.jsonl", "\n".join(json.dumps(u) for u in UPLOADS) + "\n")
    opts = {"actions": {"456": "Purchase"}}
    hits = "\n".join([ADS_HIT.format(oid="o1", extra="&gcs=G111"), ADS_HIT.format(oid="o4", extra="")])
    ws, reps = load(tmp_path, [
        {"table": "server_events", "path": f, "format": "google_upload_log", "options": opts},
        {"table": "enhancements", "path": f, "format": "google_upload_log", "options": opts},
        {"table": "pixel_events", "path": put(tmp_path, "t.log", hits), "format": "google_tag_hits",
         "options": {"actions": {"AbC-D_efG": "Purchase"}}},
    ])
    accounted(ws)
    assert ws.rows("SELECT event_id, status, error, source_api, consent_ad_user_data FROM server_events ORDER BY event_id") == [
        ("o1", "accepted", None, "google_ads_api", "granted"), ("o2", "rejected", "EXPIRED_EVENT", "google_ads_api", None),
        ("o3", "accepted", None, "data_manager", "denied")]
    assert ws.rows("SELECT order_id, destination, ct, zp, country FROM enhancements ORDER BY order_id") == [
        ("o1", "Purchase", "newyork", "10001", "US"), ("zz", "Purchase", None, None, None)]
    assert reps[1].skipped == 3  # two upload requests and one retraction
    frames, head = google_metrics(ws)
    g = head.values["google"]
    assert g["enhanced_conversions"] == {"coverage": 0.5, "n": 2, "enhanced_24h": 1, "enhanced_late": 0,
                                         "tag_conversions_without_order_id": 0,
                                         "enhancements_without_tag_conversion": 1}
    assert g["upload_errors"]["by_reason"] == {"EXPIRED_EVENT": 1}
    assert g["upload_errors"]["rejected_rate"] == pytest.approx(1 / 3) and g["upload_errors"]["rejected_rate_n"] == 3
    assert g["click_ids"]["gclid_coverage"] == pytest.approx(2 / 3) and g["click_ids"]["n"] == 3
    assert set(frames) >= {"google_enhancements", "google_click_ids", "google_upload_errors", "google_tiers"}


def test_click_age_against_window():
    pixel = [{"platform": "google", "event_id": "p1", "event_time": at(-24 * 100), "gclid": "Cj0KCQold12345"},
             {"platform": "google", "event_id": "p2", "event_time": at(-24 * 2), "gclid": "Cj0KCQnew12345"}]
    server = [{"platform": "google", "event_id": "s1", "event_time": at(0), "gclid": "Cj0KCQold12345"},
              {"platform": "google", "event_id": "s2", "event_time": at(0), "gclid": "Cj0KCQnew12345"},
              {"platform": "google", "event_id": "s3", "event_time": at(0), "wbraid": "WBxyz1234567"}]
    c = google_metrics(make_ws(pixel=pixel, server=server))[1].values["google"]["click_ids"]
    assert (c["n"], c["click_age_known"], c["over_click_window"]) == (3, 2, 1)
    assert c["median_click_age_days"] == pytest.approx(51.0)
    assert c["any_coverage"] == 1.0 and c["wbraid_coverage"] == pytest.approx(1 / 3)


def test_google_tiers_have_no_browser_tier():
    server = [{"platform": "google", "event_id": "1", "event_time": at(0), "fbp": "fb.1.1596403881668.1116446470",
               "client_ip_address": "81.2.69.160", "client_user_agent": "Mozilla/5.0"},
              {"platform": "google", "event_id": "2", "event_time": at(0), "gbraid": "GBabcdefghijk"},
              {"platform": "google", "event_id": "3", "event_time": at(0), "fn": H, "ln": H, "zp": "10001", "country": "US"}]
    t = match_keys(make_ws(server=server))[1].values["google"]["identifier_tiers"]
    assert t == {"strong": pytest.approx(1 / 3), "click": pytest.approx(1 / 3), "browser": 0.0, "none": pytest.approx(1 / 3)}


def test_google_validation_rules():
    base = {"platform": "google", "event_time": at(0), "gclid": "Cj0KCQabcdefghij", "value": 1.0, "currency": "EUR",
            "consent_ad_user_data": "granted"}
    rows = [{**base, "event_id": "1"},
            {**base, "event_id": "2", "gbraid": "GBabcdefghijk", "wbraid": "WBabcdefghijk"},
            {**base, "event_id": "3", "order_id": "alex@example.com"},
            {**base, "event_id": "4", "value": -5.0},
            {**base, "event_id": "5", "consent_ad_user_data": None},
            {**base, "event_id": "6", "ct": H},
            {"platform": "ga4", "event_id": "7", "event_time": at(0), "sent_at": at(73), "value": 1.0, "currency": "EUR"}]
    v = payload_validity(make_ws(server=rows))[1].values
    g = v["google"]
    assert (g["gbraid_and_wbraid"], g["more_than_one_click_id"], g["order_id_contains_pii"], g["value_negative"],
            g["consent_missing_ad_user_data"], g["address_field_hashed"]) == (1, 1, 1, 1, 1, 1)
    assert v["ga4"]["mp_backdated_over_72h"] == 1


def test_purchase_rules_follow_the_conversion_class():
    rows = [{"platform": "google", "event_name": "Online sale", "event_id": "1", "event_time": at(0), "gclid": "Cj0KCQabcdefghij"},
            {"platform": "google", "event_name": "Newsletter", "event_id": "2", "event_time": at(0), "gclid": "Cj0KCQabcdefghij"}]
    v = payload_validity(make_ws(server=rows, conversion_event="Online sale"))[1].values["google"]
    assert v["purchase_missing_value"] == 1


def test_physical_store_age_limit_is_62_days():
    rows = [{"event_id": "1", "event_time": at(0), "sent_at": at(24 * 10), "action_source": "physical_store"},
            {"event_id": "2", "event_time": at(0), "sent_at": at(24 * 10), "action_source": "website"}]
    v = payload_validity(make_ws(server=rows))[1].values["meta"]
    assert v["event_too_old"] == 1


def test_consent_classes_in_one_place():
    orders = [{"order_id": o, "created_at": at(1), "consent_ads": c, "country": k}
              for o, c, k in (("g", "granted", "DE"), ("u", None, "DE"), ("r", "denied", "US"), ("v", "denied", "DE"),
                              ("n", "denied", "FR"))]
    server = [{"event_id": o, "order_id": o, "event_time": at(1), "data_processing_options": "LDU"} for o in ("g", "u", "r", "v")]
    ws = make_ws(orders=orders, server=server)
    t = materialize(ws)
    assert dict(ws.rows(f"SELECT order_id, consent_class FROM {t} WHERE platform = 'meta'")) == {
        "g": "granted", "u": "unknown", "r": "denied_restricted", "v": "denied_violation", "n": "denied_restricted"}


# -- shared samples ----------------------------------------------------------------------------
def test_google_samples_every_row_accounted_for(tmp_path, samples):
    for f in sorted((samples / "google_ads").iterdir()):
        table = "server_events" if "offline" in f.name else "platform_report"
        fmt = "google_ads_click_conversions" if "offline" in f.name else "google_ads_report"
        try:
            ws, reps = load(tmp_path, [{"table": table, "path": str(f), "format": fmt}])
        except Exception as exc:  # a refusal must be a clear InputError naming the file
            assert f.name in str(exc) and "Day" in str(exc), f.name
            continue
        accounted(ws)
        if table == "platform_report":
            assert ws.scalar("SELECT count(*) FROM platform_report WHERE date_basis = 'interaction'") == reps[0].rows_loaded
    for f in sorted((samples / "ga4_bigquery").iterdir()):
        ws, reps = load(tmp_path, [{"table": "pixel_events", "path": str(f), "format": "ga4_export"}])
        accounted(ws)
        assert reps[0].rows_rejected == 0
        assert ws.scalar("SELECT count(*) FROM pixel_events WHERE platform <> 'ga4'") == 0


def test_primary_action_overlap(tmp_path):
    """The tag counts order o1 in `Purchase`, an upload counts it again in `Offline sale`: both are
    primary, so Google counts it twice; a secondary action does not count."""
    pixel = ("platform,destination,event_name,event_id,event_time\n"
             "google,Purchase,Purchase,o1,2026-03-10T12:00:00Z\ngoogle,Purchase,Purchase,o2,2026-03-10T12:00:00Z\n")
    server = ("platform,destination,event_name,event_id,event_time\n"
              "google,Offline sale,Offline sale,o1,2026-03-10T12:00:00Z\n"
              "google,Purchase,Purchase,o2,2026-03-10T12:00:00Z\n"
              "google,Lead,Lead,o2,2026-03-10T12:00:00Z\n")
    orders = "order_id,created_at\no1,2026-03-10T11:00:00Z\no2,2026-03-10T11:00:00Z\n"
    cfg = config_from_dict({
        "google_actions": [{"name": "Purchase", "type": "webpage", "primary": True},
                           {"name": "Offline sale", "type": "upload_clicks", "primary": True},
                           {"name": "Lead", "type": "upload_clicks", "primary": False}],
        "sources": [{"table": "pixel_events", "path": put(tmp_path, "p.csv", pixel)},
                    {"table": "server_events", "path": put(tmp_path, "s.csv", server)},
                    {"table": "orders", "path": put(tmp_path, "o.csv", orders)}]}, path=tmp_path / "audit.toml")
    ws = Workspace(config=cfg)
    ws.load()
    frames, head = google_metrics(ws)
    assert head.values["google"]["primary_action_overlap"] == {"orders": 1, "extra_counts": 1, "rate": 0.5, "rate_n": 2}
    assert frames["google_action_overlap"].to_dict("records") == [
        {"action_a": "Offline sale", "action_b": "Purchase", "orders": 1}]


@pytest.mark.parametrize("seed", [3, 41])
def test_google_and_consent_match_planted_truth(tmp_path, seed):
    """Consent, match keys, validation and the google section equal the truth of the planted labels
    (synth.google) on more than one seed."""
    from capi_audit.audit import run_audit
    from capi_audit.synth.params import ScenarioParams
    from capi_audit.synth.write import write_scenario

    from .helpers import assert_matches

    p = ScenarioParams(seed=seed, days=14, orders_per_day=30.0, enable_day={"meta": 5, "google": 6}, customer_pool=3000)
    write_scenario(p, tmp_path)
    truth = json.loads((tmp_path / "truth.json").read_text())
    summary = run_audit(tmp_path / "audit.toml", tmp_path / "out", charts=False).summary
    for section in ("load", "consent", "match_keys", "validation", "google"):
        assert_matches(summary[section], truth[section], section)
    g = truth["google"]["google"]["enhanced_conversions"]
    assert g["enhanced_24h"] > 0 and g["enhanced_late"] + g["enhancements_without_tag_conversion"] > 0
    assert truth["consent"]["meta"]["ldu_outside_us"] > 0  # EU users with LDU are planted


def test_consent_by_type_and_enhancement_charts():
    from capi_audit import charts

    frame = pd.DataFrame([{"platform": "google", "denied": 2, "known": 10, "denied_ad_user_data": 3, "known_ad_user_data": 5}])
    ax = charts.plot_consent_by_type(frame, platform="google")
    assert [round(b.get_height(), 2) for b in ax.patches] == [0.2, 0.6]
    enh = pd.DataFrame([{"destination": "P", "day": "2026-03-01", "tag_conversions": 4, "enhanced_24h": 2, "enhanced_late": 1}])
    ax = charts.plot_google_enhancements(enh)
    assert [b.get_height() for b in ax.patches] == [2, 1]


# -- issue 13 (session 3): a case-variant Google action read as recoveries ------------------------
def _case_variant_ws(catalogue: bool = False):
    """Google, no destination logged (the action is the event name): the tag counts o1..o3 under
    `Purchase`; the server uploads o1, o2 under `purchase` (a second action, or a case typo) and o4
    (no tag hit at all) under `purchase`; o3 also under `Purchase` (deduplicated with the tag)."""
    import dataclasses

    from capi_audit.config import GoogleAction

    from .test_metric_recovery import DAY0, t, with_periods

    orders = [{"order_id": o, "created_at": t(d)} for d in range(14) for o in (f"o1-{d}", f"o2-{d}", f"o3-{d}", f"o4-{d}")]
    pixel, server = [], []
    for d in range(14):
        for k in (1, 2, 3):
            pixel.append({"platform": "google", "event_id": f"o{k}-{d}", "event_time": t(d, 1), "order_id": f"o{k}-{d}"})
        for k, name in ((1, "purchase"), (2, "purchase"), (4, "purchase"), (3, "Purchase")):
            server.append({"platform": "google", "event_name": name, "event_id": f"o{k}-{d}", "event_time": t(d, 1),
                           "sent_at": t(d, 2), "order_id": f"o{k}-{d}", "gclid": f"g{k}{d}"})
    ws = with_periods(make_ws(pixel=pixel, server=server, orders=orders, enabled={"google": DAY0}))
    if catalogue:
        ws.config = dataclasses.replace(ws.config, google_actions=(
            GoogleAction(name="Purchase", type="webpage", primary=True),
            GoogleAction(name="purchase", type="upload_clicks", primary=True)))
    return ws


def test_case_variant_action_read_as_recovered_orders():
    """Old code: without [[google_actions]], the `purchase` uploads of orders the tag already counted
    under `Purchase` were 'recovered orders' (P = 0 in their own class) with a confident headline.
    They are double counts of an already counted order (two primary actions), and whether they
    count at all needs the catalogue: `reliable: false` with a reason naming it."""
    from capi_audit.metrics import capi_effect

    v = capi_effect(_case_variant_ws(), bootstrap_reps=50)[1].values["google"]
    low, main = v["purchase"], v["Purchase"]
    assert low["capi_added"] == 3 * 14
    assert (low["recovered"], low["server_double_counted"]) == (14, 2 * 14)  # only o4 had no tag hit
    assert low["server_double_counted_by_cause_per_day"]["primary_action_overlap"] == 2.0
    assert low["reliable"] is False and "declare [[google_actions]]" in low["reason"]
    from capi_audit.metrics import headline_sentence

    assert "case" in low["reason"] and "Not reliable" in headline_sentence(low, None)
    # the conversion event's own action is measured either way
    assert main["capi_added"] == 0 and main.get("reliable") is not False


def test_case_variant_with_catalogue_is_measured():
    """With the catalogue both actions are declared primary: the same split, no doubt left."""
    from capi_audit.metrics import capi_effect

    low = capi_effect(_case_variant_ws(catalogue=True), bootstrap_reps=50)[1].values["google"]["purchase"]
    assert (low["recovered"], low["server_double_counted"]) == (14, 2 * 14)
    assert low.get("reliable") is not False


# -- review F18 re-measured: the click-dated column understates a capture-rate change -------------
LAG_PROBS = (0.45, 0.15, 0.10, 0.08, 0.07, 0.06, 0.05, 0.04)  # click-to-conversion lag in days, mean 1.75


def _capture_change(ws: Workspace, orders_per_day: float, switch_day: int) -> float:
    rows = ws.rows("SELECT date, conversions FROM platform_report ORDER BY date")
    vals = [c for _, c in rows]
    return (sum(vals[switch_day:]) / len(vals[switch_day:]) - sum(vals[:switch_day]) / switch_day) / orders_per_day


def test_click_dated_report_understates_capture_change(tmp_path):
    """F18 lag simulation. 1,000 orders a day; the platform captures 70 % of them for 30 days, then
    94 % (true change +0.240). Each conversion's click happened 0-7 days earlier (45 % the same day,
    mean 1.75 days); the report is pulled on the last day, so `Conversions` (dated by click) moves
    conversions after the switch onto pre-switch click days and misses the conversions of the last
    days' clicks that have not happened yet. Measured: click-dated capture 0.714 -> 0.885, change
    0.171 (understated by 28.7 %; the review found 27 % with its lag mix); the conversion-dated
    column, which the loader picks, gives exactly 0.240."""
    import datetime as dt

    days, switch, n = 60, 30, 1000.0
    conv = [n * (0.70 if d < switch else 0.94) for d in range(days)]
    click = [0.0] * days
    for d in range(days):
        for k, p in enumerate(LAG_PROBS):
            if d - k >= 0:
                click[d - k] += conv[d] * p
    day0 = dt.date(2026, 3, 1)
    lines = ["Day,Conversions,Conversions (by conv. time)"]
    lines += [f"{day0 + dt.timedelta(days=d)},{click[d]:.4f},{conv[d]:.4f}" for d in range(days)]
    ws, _ = load(tmp_path, [{"table": "platform_report", "path": put(tmp_path, "both.csv", "\n".join(lines) + "\n"),
                             "format": "google_ads_report"}])
    assert _capture_change(ws, n, switch) == pytest.approx(0.240, abs=1e-9)
    only_click = ["Day,Conversions"] + [f"{day0 + dt.timedelta(days=d)},{click[d]:.4f}" for d in range(days)]
    ws, reps = load(tmp_path, [{"table": "platform_report", "path": put(tmp_path, "click.csv", "\n".join(only_click) + "\n"),
                                "format": "google_ads_report"}])
    biased = _capture_change(ws, n, switch)
    assert biased == pytest.approx(0.171167, abs=1e-5)
    assert 1 - biased / 0.240 == pytest.approx(0.287, abs=1e-3)  # the understatement
    assert "interaction-dated" in reps[0].note
    assert {r[0] for r in ws.rows("SELECT DISTINCT date_basis FROM platform_report")} == {"interaction"}


# -- Google's upload summaries (offline_conversion_upload_*_summary) --------------------------------
SUMMARY = {"results": [
    {"offlineConversionUploadConversionActionSummary": {
        "client": "GOOGLE_ADS_API", "conversionActionId": "555", "conversionActionName": "Offline purchase",
        "status": "NEEDS_ATTENTION", "totalEventCount": "6", "successfulEventCount": "4", "pendingEventCount": "1",
        "dailySummaries": [{"uploadDate": "2026-03-10", "successfulCount": "2", "failedCount": "1", "pendingCount": "0"},
                           {"uploadDate": "2026-03-12", "successfulCount": "2", "failedCount": "0", "pendingCount": "1"}],
        "jobSummaries": [{"jobId": "77", "successfulCount": "4", "failedCount": "1", "pendingCount": "1"}],
        "alerts": [{"error": {"conversionUploadError": "EXPIRED_EVENT"}, "errorPercentage": 0.2}]}},
    {"offline_conversion_upload_client_summary": {
        "client": "GOOGLE_ADS_WEB_CLIENT", "status": "GOOD", "total_event_count": 3, "successful_event_count": 3,
        "pending_event_count": 0,
        "daily_summaries": [{"upload_date": "2026-03-10", "successful_count": 3, "failed_count": 0, "pending_count": 0}]}},
    {"campaign": {"id": "1"}}]}


def test_upload_summaries_load_every_row_accounted(tmp_path):
    """Every total, daily summary, job summary and alert is a row; a result without a summary is a
    reject with its line; broken JSON lines are rejects too."""
    lines = json.dumps(SUMMARY) + "\n{broken\n"
    ws, reps = load(tmp_path, [{"table": "upload_summaries", "path": put(tmp_path, "s.jsonl", lines),
                                "format": "google_upload_summary"}])
    accounted(ws)
    assert (reps[0].rows_read, reps[0].rows_loaded, reps[0].rows_rejected) == (9, 7, 2)
    rows = ws.rows("SELECT level, dimension, destination, CAST(upload_date AS VARCHAR), job_id, successful, failed, "
                   "pending, error, error_share FROM upload_summaries ORDER BY level DESC, dimension, upload_date, job_id")
    assert rows == [
        ("conversion_action", "alert", "Offline purchase", None, None, None, None, None, "EXPIRED_EVENT", 0.2),
        ("conversion_action", "day", "Offline purchase", "2026-03-10", None, 2.0, 1.0, 0.0, None, None),
        ("conversion_action", "day", "Offline purchase", "2026-03-12", None, 2.0, 0.0, 1.0, None, None),
        ("conversion_action", "job", "Offline purchase", None, "77", 4.0, 1.0, 1.0, None, None),
        ("conversion_action", "total", "Offline purchase", None, None, 4.0, 1.0, 1.0, None, None),
        ("client", "day", None, "2026-03-10", None, 3.0, 0.0, 0.0, None, None),
        ("client", "total", None, None, None, 3.0, 0.0, 0.0, None, None)]
    reasons = {r[0] for r in ws.rows("SELECT reason FROM rejects")}
    assert any("no upload summary" in r for r in reasons) and "broken JSON" in reasons
    assert candidates(tmp_path / "s.jsonl", "upload_summaries") == ["google_upload_summary"]  # format = "auto"


UPLOADS_CSV = ("platform,destination,event_name,event_id,event_time,sent_at,status,error,request_id,source_api\n"
          "google,customers/1/conversionActions/555,Offline purchase,o1,2026-03-10T08:00:00Z,2026-03-10T09:00:00Z,accepted,,77,google_ads_api\n"
          "google,customers/1/conversionActions/555,Offline purchase,o2,2026-03-10T08:00:00Z,2026-03-10T09:00:00Z,accepted,,77,google_ads_api\n"
          "google,customers/1/conversionActions/555,Offline purchase,o3,2026-03-10T08:00:00Z,2026-03-10T09:00:00Z,rejected,EXPIRED_EVENT,77,google_ads_api\n"
          "google,customers/1/conversionActions/555,Offline purchase,o4,2026-03-11T08:00:00Z,2026-03-11T09:00:00Z,accepted,,77,google_ads_api\n"
          "google,customers/1/conversionActions/555,Offline purchase,o5,2026-03-12T08:00:00Z,2026-03-12T09:00:00Z,accepted,,77,google_ads_api\n"
          "google,customers/1/conversionActions/555,Offline purchase,o6,2026-03-12T08:00:00Z,2026-03-12T09:00:00Z,accepted,,77,google_ads_api\n"
          "google,customers/1/conversionActions/999,Other,o7,2026-03-10T08:00:00Z,2026-03-10T09:00:00Z,accepted,,78,google_ads_api\n")


def upload_case(tmp_path: Path) -> Workspace:
    """Logged Google uploads next to Google's upload summaries (the upload-comparison statements:
    the fixtures carry no summaries; tests/test_portability.py and the Spark test read this too)."""
    return load(tmp_path, [{"table": "server_events", "path": put(tmp_path, "up.csv", UPLOADS_CSV)},
                           {"table": "upload_summaries", "path": put(tmp_path, "s.json", json.dumps(SUMMARY)),
                            "format": "google_upload_summary"}])[0]


def test_upload_summaries_compared_with_logged_uploads(tmp_path):
    """Logged: on 03-10 three uploads (one rejected EXPIRED_EVENT) - agrees with Google; on 03-11
    one upload Google does not list; on 03-12 two uploads where Google counts three (one pending).
    Job 77 holds all six logged uploads, as Google says."""
    frames, head = google_metrics(upload_case(tmp_path))
    d = head.values["google"]["upload_diagnostics"]
    assert (d["compared"], d["disagree"]) == (4, 2)
    assert d["disagreements"] == [
        "Offline purchase day 2026-03-11: Google counts 0 uploaded events, the logs hold 1",
        "Offline purchase day 2026-03-12: Google counts 3 uploaded events, the logs hold 2"]
    assert (d["google_events"], d["logged_events"]) == (6.0, 6)
    assert d["alerts"] == {"EXPIRED_EVENT": 0.2}
    assert d["status"] == {"(account) GOOGLE_ADS_WEB_CLIENT": "GOOD", "Offline purchase": "NEEDS_ATTENTION"}
    f = frames["google_upload_diagnostics"]
    job = f[f["dimension"] == "job"].iloc[0]
    # Google: 4 successful + 1 failed + 1 pending = the 6 logged, one rejection on both sides
    assert (job["logged"], job["logged_rejected"], bool(job["agree"]), job["reason"]) == (6, 1, True, "")


def test_upload_summary_failures_disagreeing(tmp_path):
    """Google failed two events on a day the logs say were all accepted: the day disagrees."""
    doc = {"offlineConversionUploadConversionActionSummary": {
        "client": "GOOGLE_ADS_API", "conversionActionId": "555", "conversionActionName": "Offline purchase",
        "dailySummaries": [{"uploadDate": "2026-03-10", "successfulCount": "0", "failedCount": "2", "pendingCount": "0"}]}}
    up = ("platform,destination,event_name,event_id,event_time,sent_at,status\n"
          "google,Offline purchase,Offline purchase,o1,2026-03-10T08:00:00Z,2026-03-10T09:00:00Z,accepted\n"
          "google,Offline purchase,Offline purchase,o2,2026-03-10T08:00:00Z,2026-03-10T09:00:00Z,accepted\n")
    ws, _ = load(tmp_path, [{"table": "server_events", "path": put(tmp_path, "up.csv", up)},
                            {"table": "upload_summaries", "path": put(tmp_path, "s.json", json.dumps(doc)),
                             "format": "google_upload_summary"}])
    d = google_metrics(ws)[1].values["google"]["upload_diagnostics"]
    assert d["disagreements"] == ["Offline purchase day 2026-03-10: Google failed 2, the logs rejected 0"]


def test_reload_after_enablement_counted_as_merged_order():
    """Old code: a GA4 hit just before enablement and its reload just after (one transaction id, one
    order) made the order 'merged away' (a post row whose unit is pre). No key links two orders here:
    orders_merged_away is 0; o2's post unit is counted as usual."""
    from capi_audit.metrics import double_counting

    orders = [{"order_id": "o1", "created_at": at(-1)}, {"order_id": "o2", "created_at": at(2)}]
    pixel = [{"platform": "ga4", "event_name": "purchase", "event_id": "o1", "event_time": at(-0.05), "order_id": "o1"},
             {"platform": "ga4", "event_name": "purchase", "event_id": "o1", "event_time": at(0.1), "order_id": "o1"},
             {"platform": "ga4", "event_name": "purchase", "event_id": "o2", "event_time": at(2), "order_id": "o2"}]
    ws = make_ws(pixel=pixel, orders=orders, enabled={"ga4": at(0)})
    v = double_counting(ws)[1].values["ga4"]["Purchase"]
    assert (v["orders_matched"], v["orders_merged_away"]) == (1, 0)


def test_data_manager_request_status_compared(tmp_path):
    """Data Manager `requestStatus.retrieve` answers (in a log line with the request id): the request's
    event count and failures by reason land as a `job` row and `alert` rows; req-1 (10 events, 3
    failed) matches its 10 logged events, 3 of them rejected; req-2 says 4 events, the logs hold 3."""
    dm = [{"request_id": "req-1", "diagnostics": {"requestStatusPerDestination": [{
              "destination": {"productDestinationId": "555"}, "requestStatus": "PARTIAL_SUCCESS",
              "errorInfo": {"errorCounts": [{"recordCount": "1", "reason": "INVALID_GCLID"},
                                            {"recordCount": "2", "reason": "PROCESSING_ERROR_REASON_DECRYPTION_ERROR"}]},
              "eventsIngestionStatus": {"recordCount": "10"}}]}},
          {"requestId": "req-2", "requestStatusPerDestination": [{
              "destination": {"productDestinationId": "555"}, "requestStatus": "SUCCESS",
              "eventsIngestionStatus": {"recordCount": "4"}}]}]
    rows = ["platform,destination,event_name,event_id,event_time,status,request_id,source_api"]
    rows += [f"google,Purchase,Purchase,a{i},2026-03-10T08:00:00Z,{'rejected' if i < 3 else 'accepted'},req-1,data_manager"
             for i in range(10)]
    rows += [f"google,Purchase,Purchase,b{i},2026-03-10T08:00:00Z,accepted,req-2,data_manager" for i in range(3)]
    ws, reps = load(tmp_path, [
        {"table": "server_events", "path": put(tmp_path, "dm.csv", "\n".join(rows) + "\n")},
        {"table": "upload_summaries", "path": put(tmp_path, "st.jsonl", "\n".join(json.dumps(d) for d in dm) + "\n"),
         "format": "google_upload_summary", "options": {"actions": {"555": "Purchase"}}}])
    accounted(ws)
    assert reps[1].rows_loaded == 4 and reps[1].rows_rejected == 0  # two requests, two alerts
    assert ws.rows("SELECT job_id, successful, failed, pending FROM upload_summaries WHERE dimension = 'job' "
                   "ORDER BY job_id") == [("req-1", 7.0, 3.0, 0.0), ("req-2", 4.0, 0.0, 0.0)]
    d = google_metrics(ws)[1].values["google"]["upload_diagnostics"]
    assert d["disagreements"] == ["Purchase data_manager_request req-2: Google counts 4 uploaded events, the logs hold 3"]
    assert d["alerts"] == {"INVALID_GCLID": 0.1, "PROCESSING_ERROR_REASON_DECRYPTION_ERROR": 0.2}
    assert candidates(tmp_path / "st.jsonl", "upload_summaries") == ["google_upload_summary"]
