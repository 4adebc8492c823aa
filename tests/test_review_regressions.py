"""Regressions found by the review of match keys, validation, latency, consent and the findings /
gates an analyst reads: each test is named after the failure it guards against."""

from __future__ import annotations

import pytest

from capi_audit import findings as findings_module
from capi_audit.findings import RULE_ACTIONS, findings, post_days
from capi_audit.gates import DEFAULT_GATES, evaluate
from capi_audit.metrics import latency, payload_validity
from capi_audit.metrics.match_keys import compute as match_keys_compute
from capi_audit.metrics.validation import RULES
from capi_audit.result import AuditResult, ConfigEcho

from .helpers import at, make_ws

AGE_GATE = next(g for g in DEFAULT_GATES if g["name"] == "no_events_past_age_limit")


def test_ga4_event_backdated_over_72h_passes_the_age_limit_gate():
    # GA4 Measurement Protocol drops events backdated over 72 h: past the platform's age limit, so
    # the default gate "no events past the age limit" must see it (it read Meta's rule only).
    ws = make_ws(server=[{"platform": "ga4", "event_name": "purchase", "event_id": "t1", "event_time": at(0),
                          "sent_at": at(80)},
                         {"platform": "ga4", "event_name": "purchase", "event_id": "t2", "event_time": at(0),
                          "sent_at": at(1)}])
    v = payload_validity(ws)[1].values["ga4"]
    assert v["event_too_old"] == 1 and v["mp_backdated_over_72h"] == 1
    assert evaluate({"validation": {"ga4": v}}, AGE_GATE, "Purchase")["status"] == "fail"


def test_age_limit_gate_passes_when_no_event_has_a_send_time():
    # without sent_at the age of a send is unknown: 0 events too old would be a confident wrong number
    ws = make_ws(server=[{"event_id": "a", "event_time": at(0)}, {"event_id": "b", "event_time": at(1)}])
    v = payload_validity(ws)[1].values["meta"]
    assert v["event_too_old"] is None and v["event_in_future"] is None
    assert v["events"] == 2 and v["events_without_sent_at"] == 2
    assert evaluate({"validation": {"meta": v}}, AGE_GATE, "Purchase")["status"] == "inconclusive"
    # one event with a send time makes the rule computable again (over the events that have one)
    ws = make_ws(server=[{"event_id": "a", "event_time": at(0)},
                         {"event_id": "b", "event_time": at(0), "sent_at": at(24 * 8)}])
    assert payload_validity(ws)[1].values["meta"]["event_too_old"] == 1


def test_latency_has_no_share_over_the_dedup_window_nor_n():
    # design §3.8: shares over 1 h, 24 h, W and the age limit; every rate carries its n
    rows = [{"event_id": str(i), "event_time": at(0), "sent_at": at(h)} for i, h in enumerate([0.5, 47, 49, 50])]
    v = latency(make_ws(server=rows))[1].values["meta"]
    assert v["share_over_window"] == 0.5 and v["n"] == 4
    v = latency(make_ws(server=rows, windows={"meta": 24}))[1].values["meta"]
    assert v["share_over_window"] == 0.75
    g = latency(make_ws(server=[{"platform": "google", "event_id": "1", "event_time": at(0), "sent_at": at(100)}]))
    assert g[1].values["google"]["share_over_window"] is None  # no window: not 0 %


def test_match_keys_shares_have_no_denominator():
    ws = make_ws(server=[{"event_id": "a", "event_time": at(0), "em": "a" * 64}, {"event_id": "b", "event_time": at(0)},
                         {"platform": "google", "event_id": "c", "event_time": at(0)}])
    v = match_keys_compute(ws).headline.values
    assert v["meta"]["n"] == 2 and v["meta"]["em"]["present"] == 0.5 and v["google"]["n"] == 1


def _result(summary, **cfg):
    base = dict(timezone="Europe/Berlin", conversion_event="Purchase", platforms=("meta",),
                enabled_at={"meta": "2026-03-02T23:00:00+00:00"}, windows={"meta": 48.0},
                first_day="2026-02-01", last_day="2026-03-31")
    base.update(cfg)
    return AuditResult(summary=summary, config=ConfigEcho(**base))


def test_findings_cost_per_day_divides_by_the_recovery_whole_weeks():
    # double counting covers every day from the enable day (2026-03-03 Berlin) to 2026-03-31: 29
    # days; the recovery section's 14 whole-week post days left out burn-in and settle days and
    # inflated the cost per day by 29/14
    r = _result({"recovery": {"meta": {"Purchase": {"post_days": 14, "whole_weeks": 2}}},
                 "double_counting": {"meta": {"Purchase": {
                     "orders_matched": 1000, "extra_counts": {"id_mismatch": {"server_caused": 58, "total": 58}}}}}})
    assert post_days(r, "meta") == 29
    f = next(x for x in findings(r) if x.rule == "double_counting_cause")
    assert f.per_day == pytest.approx(2.0) and "over 29 days" in f.cost


def test_payload_finding_cost_divides_all_day_counts_by_post_days():
    # validation counts every server event of every day: per day over the days the events span
    r = _result({"validation": {"meta": {"missing_action_source": 40, "events": 400, "days": 40}}})
    f = next(x for x in findings(r) if x.rule == "payload_rule")
    assert f.per_day == pytest.approx(1.0) and "over 40 days" in f.cost and "40 of 400" in f.figure


def test_google_and_ga4_payload_rules_yield_no_finding():
    # every rule the validation family counts reaches the findings (Google's were silently dropped)
    assert set(RULES) - set(RULE_ACTIONS) - set(getattr(findings_module, "RULES_WITHOUT_FINDING", ())) == set()
    r = _result({"validation": {"google": {"address_field_hashed": 5, "consent_missing_ad_user_data": 3,
                                           "events": 10, "days": 5}}}, platforms=("google",))
    assert {x.figure.split(":")[0] for x in findings(r) if x.rule == "payload_rule"} == {
        "Address field hashed (Google wants it in clear)", "Upload without ad_user_data consent"}


def test_google_action_name_makes_meta_events_purchases():
    # [[google_actions]] primary actions are Google Ads classes: a Meta "Lead" is not a purchase,
    # and the Google action (its destination) is one even when the event name differs
    import dataclasses

    from capi_audit.config import GoogleAction

    ws = make_ws(server=[
        {"platform": "meta", "event_name": "Lead", "event_id": "l1", "event_time": at(0)},
        {"platform": "google", "event_name": "conversion", "destination": "Lead", "event_id": "g1",
         "event_time": at(0), "gclid": "Cj0KCQabcdefghij"},
        {"platform": "google", "event_name": "conversion", "destination": "Newsletter", "event_id": "g2",
         "event_time": at(0), "gclid": "Cj0KCQabcdefghij"}])
    ws.config = dataclasses.replace(ws.config, google_actions=(GoogleAction(name="Lead"),))
    v = payload_validity(ws)[1].values
    assert v["meta"]["purchase_missing_value"] == 0 and v["meta"]["purchase_missing_currency"] == 0
    assert v["google"]["purchase_missing_value"] == 1 and v["google"]["purchase_missing_currency"] == 1


def _orders(n=4):
    return [{"order_id": f"o{i}", "created_at": at(i), "consent_ads": "granted" if i % 2 else "denied"}
            for i in range(n)]


def test_consent_without_server_logs_reads_as_a_100_percent_server_gap():
    # only browser logs loaded: the server gap, server violations are not measured, not 100 % / 0
    from capi_audit.metrics import consent

    v = consent(make_ws(pixel=[{"event_id": "o1", "event_time": at(1)}], orders=_orders()))[1].values["meta"]
    assert v["server_gap_rate"] is None and v["server_sent_without_consent"] is None
    assert v["browser_loss_rate"] == 0.5 and "no server event" in v["reason"]
    gate = next(g for g in DEFAULT_GATES if g["name"] == "no_server_sends_without_consent")
    assert evaluate({"consent": {"meta": v}}, gate, "Purchase")["status"] == "inconclusive"
    r = _result({"consent": {"meta": v}})
    assert not [x for x in findings(r) if x.rule == "server_gap"]


def test_consent_without_browser_logs_passes_the_pixel_consent_gate():
    from capi_audit.metrics import consent

    ws = make_ws(server=[{"event_id": "x", "order_id": "o1", "event_time": at(1)}], orders=_orders())
    v = consent(ws)[1].values["meta"]
    assert v["browser_loss_rate"] is None and v["pixel_fired_without_consent"] is None
    assert v["server_gap_rate"] == 0.5
    gate = next(g for g in DEFAULT_GATES if g["name"] == "no_pixel_fires_without_consent")
    assert evaluate({"consent": {"meta": v}}, gate, "Purchase")["status"] == "inconclusive"
    # server events that link to no order measure nothing either
    ws = make_ws(server=[{"event_id": "x", "event_time": at(1)}], pixel=[{"event_id": "o1", "event_time": at(1)}],
                 orders=_orders())
    v = consent(ws)[1].values["meta"]
    assert v["server_gap_rate"] is None and "links to an order" in v["reason"]


def test_plaintext_email_sent_by_the_browser_tag_passes_the_plaintext_gate():
    # a pixel hit carrying ud[em] in clear is raw personal data leaving too
    ws = make_ws(pixel=[{"event_id": "a", "event_time": at(0), "em": "<plaintext:email>"},
                        {"event_id": "b", "event_time": at(0), "em": "a" * 64}],
                 server=[{"event_id": "a", "event_time": at(0), "em": "a" * 64}])
    v = match_keys_compute(ws).headline.values["meta"]
    assert v["pixel"]["n"] == 2 and v["pixel"]["em"]["plaintext_pii"] == 0.5 and v["em"]["plaintext_pii"] == 0
    gate = next(g for g in DEFAULT_GATES if g["name"] == "no_plaintext_pii")
    assert evaluate({"match_keys": {"meta": v}}, gate, "Purchase")["status"] == "fail"
    f = [x for x in findings(_result({"match_keys": {"meta": v}})) if x.rule == "plaintext_pii"]
    assert len(f) == 1 and "of 2 browser hits carry em" in f[0].figure


def test_latency_traceback_when_every_sent_event_is_a_test_order():
    ws = make_ws(server=[{"event_id": "t1", "order_id": "T", "event_time": at(0), "sent_at": at(1)}],
                 orders=[{"order_id": "T", "created_at": at(0), "is_test": True}])
    head = latency(ws)[1]
    assert head.available is False and "test order" in head.reason
    for h in (payload_validity(ws)[1], match_keys_compute(ws).headline):
        assert h.available is False and "test order" in h.reason  # not an empty section a gate skips


def test_server_gap_counts_orders_from_before_the_server_existed_without_an_enable_time():
    # no [capi_enabled_at]: orders before the platform's first server event were never candidates
    from capi_audit.metrics import consent

    orders = [{"order_id": f"o{d}", "created_at": at(24 * d), "consent_ads": "granted"} for d in range(10)]
    server = [{"event_id": f"o{d}", "order_id": f"o{d}", "event_time": at(24 * d + 1)} for d in range(5, 9)]
    pixel = [{"event_id": f"o{d}", "event_time": at(24 * d)} for d in range(10)]
    v = consent(make_ws(orders=orders, server=server, pixel=pixel))[1].values["meta"]
    assert (v["server_gap_rate"], v["server_gap_rate_n"]) == (0.2, 5)  # o9 of o5..o9, not 6 of 10
    assert v["server_gap_since"].startswith("2026-03-15T00:00")
    v = consent(make_ws(orders=orders, server=server, pixel=pixel, enabled={"meta": at(0)}))[1].values["meta"]
    assert (v["server_gap_rate"], v["server_gap_rate_n"]) == (0.6, 10) and "server_gap_since" not in v


def test_coverage_gate_not_applicable_when_the_site_fires_a_case_variant():
    # Meta coverage of `purchase` (config: Purchase) at 25 % must fail the default gate, not skip it
    gate = next(g for g in DEFAULT_GATES if g["name"] == "meta_event_coverage")
    summary = {"dedup": {"meta": {"purchase": {"event_coverage": 0.25, "both": 50, "pixel_only": 150, "pixel_units": 200}}}}
    assert evaluate(summary, gate, "Purchase")["status"] == "fail"
    aliased = {"dedup": {"meta": {"Order Completed": {"event_coverage": 0.25, "both": 50, "pixel_only": 150, "pixel_units": 200},
                                  "Lead": {"event_coverage": 0.1, "both": 1, "pixel_only": 500, "pixel_units": 501}}}}
    out = evaluate(aliased, gate, "Purchase", ("Order Completed",))
    assert out["status"] == "fail" and [o["path"] for o in out["observed"]] == [
        "dedup.meta.Order Completed.event_coverage"]


def test_coverage_finding_missing_for_a_case_variant_of_the_conversion_event():
    r = _result({"dedup": {"meta": {"purchase": {"event_coverage": 0.25, "pixel_only": 150}}}})
    assert [x.rule for x in findings(r) if x.rule == "event_coverage_below_goal"] == ["event_coverage_below_goal"]


def test_coverage_gate_inconclusive_on_a_failing_coverage_with_enough_pixel_units():
    # 60 covered of 110 pixel units (50 hits without event ID): coverage 54.5 % over n = 110 must
    # fail; n read as both + pixel_only (60) made it "inconclusive: n below 100"
    gate = next(g for g in DEFAULT_GATES if g["name"] == "meta_event_coverage")
    d = {"event_coverage": 60 / 110, "both": 60, "pixel_only": 0, "missing_event_id_pixel": 50,
         "both_outside_window": 0, "pixel_units": 110}
    out = evaluate({"dedup": {"meta": {"Purchase": d}}}, gate, "Purchase")
    assert out["status"] == "fail" and out["observed"][0]["n"] == 110


def test_consent_violation_counts_have_no_denominator():
    from capi_audit.metrics import consent

    ws = make_ws(server=[{"event_id": "x", "order_id": "o0", "event_time": at(1)}],
                 pixel=[{"event_id": "o2", "event_time": at(2)}], orders=_orders())
    v = consent(ws)[1].values["meta"]
    assert (v["server_sent_without_consent"], v["server_sent_without_consent_n"]) == (1, 2)
    assert (v["pixel_fired_without_consent"], v["pixel_fired_without_consent_n"]) == (1, 2)
    f = [x for x in findings(_result({"consent": {"meta": v}})) if x.rule == "consent_violation"]
    assert {x.figure for x in f} == {"Server sent despite denial: 1 of 2 denied orders",
                                     "Browser fired despite denial: 1 of 2 denied orders"}


def test_match_quality_proxy_per_event_name_is_missing():
    # design §3.7: a transparent match_quality_proxy per event name. Meta: 8 equal slots
    ws = make_ws(server=[
        {"event_id": "a", "event_time": at(0), "em": "a" * 64, "ph": "b" * 64, "fbp": "fb.1.1712345678901.123"},
        {"event_id": "b", "event_time": at(0)},
        {"event_id": "c", "event_name": "Lead", "event_time": at(0), "fn": "c" * 64, "ln": "d" * 64},
        {"platform": "google", "event_id": "g", "event_time": at(0), "gclid": "Cj0KCQabcdefghij", "em": "e" * 64}])
    v = match_keys_compute(ws).headline.values
    assert v["meta"]["match_quality_proxy"]["Purchase"] == {"slot_share": 3 / 8 / 2, "n": 2, "slots": 8}
    assert v["meta"]["match_quality_proxy"]["Lead"] == {"slot_share": 1 / 8, "n": 1, "slots": 8}
    assert v["google"]["match_quality_proxy"]["Purchase"] == {"slot_share": 0.5, "n": 1, "slots": 4}


def test_rules_that_are_not_the_platforms_read_not_applicable_not_zero():
    # a Meta-only rule (fbc shape, action_source) on Google, a Google-only rule on Meta, and the
    # send-age limit Google Ads uploads do not have: left out of the platform's figures and NA in
    # the frame, where a 0 read as "checked, clean" and the age gate counted Google as passing
    rows = [{"platform": "google", "event_id": "g1", "event_time": at(0), "sent_at": at(24 * 30),
             "gclid": "Cj0KCQabcdefghij"},
            {"platform": "meta", "event_id": "m1", "event_time": at(0), "sent_at": at(1)}]
    frame, head = payload_validity(make_ws(server=rows))
    g, m = head.values["google"], head.values["meta"]
    for rule in ("event_too_old", "missing_action_source", "malformed_fbc", "click_id_too_old"):
        assert rule not in g
    for rule in ("gbraid_and_wbraid", "consent_missing_ad_user_data", "order_id_contains_pii", "mp_backdated_over_72h"):
        assert rule not in m
    assert m["event_too_old"] == 0 and g["event_in_future"] == 0 and g["unhashed_key"] == 0
    gf = frame[frame["platform"] == "google"]
    assert gf["event_too_old"].isna().all() and (gf["event_in_future"] == 0).all()
    # the age gate reads Meta's figure and ignores Google's missing one
    gate = evaluate({"validation": head.values}, AGE_GATE, "Purchase")
    assert gate["status"] == "pass" and [o["path"] for o in gate["observed"]] == ["validation.meta.event_too_old"]


def test_test_order_linked_by_event_id_only_is_left_out_of_every_family():
    # A test order whose server event and pixel hit carry the order number only as event_id (the
    # pixel's eventID, no order_id): units.py linked it and left it out, but the families that
    # filtered test orders on order_id alone (match keys, latency, the pixel plaintext share, ev)
    # counted it. Order key `auto` and `event_id` both link it; `order_id` does not.
    import dataclasses

    from capi_audit.metrics.common import prepare

    orders = [{"order_id": "T", "created_at": at(0), "is_test": True},
              {"order_id": "A", "created_at": at(0)}]
    server = [{"event_id": "T", "event_time": at(0), "sent_at": at(30), "em": "<plaintext:email>"},
              {"event_id": "A", "event_time": at(0), "sent_at": at(0.5), "em": "a" * 64}]
    pixel = [{"event_id": "T", "event_time": at(0), "em": "<plaintext:email>"},
             {"event_id": "A", "event_time": at(0), "em": "a" * 64}]
    for key, kept in (("auto", 1), ("event_id", 1), ("order_id", 2)):
        ws = make_ws(orders=orders, server=server, pixel=pixel)
        ws.config = dataclasses.replace(ws.config, order_key=key)
        v = match_keys_compute(ws).headline.values["meta"]
        assert v["n"] == kept and v["em"]["plaintext_pii"] == (kept - 1) / kept, key
        assert v["pixel"]["n"] == kept and v["pixel"]["em"]["plaintext_pii"] == (kept - 1) / kept, key
        lat = latency(ws)[1].values["meta"]
        assert lat["n"] == kept and lat["share_over_24h"] == (kept - 1) / kept, key
        prepare(ws)
        assert ws.scalar("SELECT count(*) FROM ev") == 2 * kept, key
