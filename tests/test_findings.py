"""Findings come from summary figures by the documented rules, ranked by severity then cost."""

from __future__ import annotations

from capi_audit.findings import audit_window, findings, headline_sentences, post_days
from capi_audit.result import AuditResult, ConfigEcho

CFG = ConfigEcho(timezone="Europe/Berlin", conversion_event="Purchase", platforms=("meta",),
                 enabled_at={"meta": "2026-03-02T23:00:00+00:00"}, windows={"meta": 48.0},
                 first_day="2026-02-01", last_day="2026-03-12")


def _result(summary):
    return AuditResult(summary=summary, config=CFG)


def test_double_counting_cause_costs_per_day_and_action():
    r = _result({"double_counting": {"meta": {"Purchase": {
        "orders_matched": 1000, "extra_counts": {"id_mismatch": {"server_caused": 50, "total": 60},
                                                 "outside_window": {"server_caused": 3, "total": 3}}}}}})
    assert post_days(r, "meta") == 10  # 2026-03-03 .. 2026-03-12 in Berlin
    f = [x for x in findings(r) if x.severity != "info"]  # sections absent from this summary are info
    assert [x.rule for x in f] == ["double_counting_cause", "double_counting_cause"]
    top = f[0]
    assert top.severity == "high" and top.per_day == 5.0
    assert "5.0 conversions/day" in top.cost and "event ID" in top.action
    assert f[1].severity == "low"  # 0.3 % of orders reached


def test_v1_shape_of_double_counting_is_read_too():
    r = _result({"double_counting": {"meta": {"orders_matched": 100, "id_mismatch": 10}}})
    assert findings(r)[0].figure.startswith("Server does not reuse the browser event ID")


def test_coverage_consent_plaintext_and_missing_sections():
    r = _result({
        "dedup": {"meta": {"Purchase": {"event_coverage": 0.6, "pixel_only": 40}, "Lead": {"event_coverage": 0.1}}},
        "consent": {"meta": {"server_sent_without_consent": 2, "pixel_fired_without_consent": 0}},
        "match_keys": {"meta": {"em": {"plaintext_pii": 0.01}, "ph": {"plaintext_pii": 0.0}}},
        "recovery": {"available": False, "reason": "no orders loaded"},
    })
    rules = [(x.rule, x.severity) for x in findings(r)]
    assert ("event_coverage_below_goal", "high") in rules and len([x for x in rules if x[0] == "event_coverage_below_goal"]) == 1
    assert ("consent_violation", "high") in rules and ("plaintext_pii", "high") in rules
    assert rules[-1][1] == "info"  # unavailable sections last
    order = ["high", "medium", "low", "info"]
    assert [order.index(s) for _, s in rules] == sorted(order.index(s) for _, s in rules)


def test_a_section_shaped_otherwise_yields_no_finding_and_no_crash():
    r = _result({"double_counting": {"meta": {"orders_matched": "many"}}, "validation": {"meta": ["x"]}})
    assert all(x.rule == "not_measured" for x in findings(r))


def test_headline_prefers_a_family_sentence():
    r = _result({"capi_effect": {"meta": {"Purchase": {"sentence": "After enabling CAPI, the server added 3/day."}}}})
    assert headline_sentences(r) == ["Meta · Purchase: After enabling CAPI, the server added 3/day."]
    assert ("Meta server events enabled", "2026-03-03 00:00 (Europe/Berlin)") in audit_window(r)


def test_event_coverage_is_one_finding_per_place_to_fix():
    """Demo, session 3: GA4's one destination repeated the class's coverage finding (same figure,
    same cost twice in the ranking). One destination: the class; several: each destination."""
    one = {"purchase": {"event_coverage": 0.55, "pixel_only": 437,
                        "destinations": {"G-1": {"event_coverage": 0.55, "pixel_only": 437}}}}
    two = {"purchase": {"event_coverage": 0.55, "pixel_only": 437,
                        "destinations": {"G-1": {"event_coverage": 0.5, "pixel_only": 300},
                                         "G-2": {"event_coverage": 0.6, "pixel_only": 137}}}}
    for dedup, want in ((one, ["event coverage 55.0 % for purchase (goal 75 %)"]),
                        (two, ["event coverage 50.0 % for purchase · destinations · G-1 (goal 75 %)",
                               "event coverage 60.0 % for purchase · destinations · G-2 (goal 75 %)"])):
        got = [f.figure for f in findings(_result({"dedup": {"ga4": dedup}}))
               if f.rule == "event_coverage_below_goal"]
        assert sorted(got) == want


def test_a_destination_the_server_never_sends_to_says_so():
    dedup = {"Purchase": {"event_coverage": 0.8, "pixel_only": 40, "destinations": {
        "111": {"event_coverage": 0.85, "pixel_only": 25, "server_units": 500},
        "222": {"event_coverage": 0.0, "pixel_only": 15, "server_units": 0}}}}
    got = [f for f in findings(_result({"dedup": {"meta": dedup}})) if f.rule == "event_coverage_below_goal"]
    assert len(got) == 1 and "222" in got[0].figure and "leftover browser tag" in got[0].action
