"""`capi-audit run` on the fixture scenarios: every figure matches the planted truth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capi_audit.audit import SECTIONS

from .helpers import assert_matches

FIXTURES = Path(__file__).resolve().parents[1] / "data_fixtures"


@pytest.fixture(scope="module", params=["scenario_main", "scenario_second"])
def audited(request, fixture_audit):
    """The fixture's audit (conftest: computed once per run and written to a result folder)."""
    a = fixture_audit(request.param)
    return a.result, a.truth, a.out


@pytest.mark.parametrize("section", [s for s in SECTIONS])
def test_section_matches_truth(audited, section):
    result, truth, _ = audited
    assert_matches(result.summary[section], truth[section], section)


def test_summary_json_has_stable_sections(audited):
    _, _, out = audited
    summary = json.loads((out / "summary.json").read_text())
    for s in SECTIONS:
        assert s in summary
    assert summary["load"]["server_events"]["rows_rejected"] == 0
    # rates are fractions in [0, 1]
    for plat in summary["dedup"].values():
        for m in plat.values():
            for k in ("event_coverage", "dedup_rate"):
                assert m[k] is None or 0 <= m[k] <= 1


def test_truth_is_internally_consistent(audited):
    _, truth, _ = audited
    for plat, evs in truth["dedup"].items():
        m = evs["Purchase"] if "Purchase" in evs else evs["purchase"]  # GA4 fires `purchase`
        px_units = m["both"] + m["both_outside_window"] + m["pixel_only"] + m["missing_event_id_pixel"]
        assert m["event_coverage"] == pytest.approx((m["both"] + m["both_outside_window"] + m["method_b"]) / px_units)
        for dc in truth["double_counting"][plat].values():
            causes = sum(c["total"] for c in dc["extra_counts"].values())
            assert causes == dc["counted_units"] - dc["orders_matched"] == dc["pre_existing"] + dc["server_caused"]
        terms = ("capi_reported_per_day", "net_new_per_day", "pixel_capture_change_per_day",
                 "attribution_change_per_day")
        if plat in truth["recovery"]:  # GA4 has no report in the scenarios
            rec = truth["recovery"][plat]["Purchase"]
            assert abs(sum(rec[k] for k in terms) - rec["reported_change_per_day"]) < 1e-9
        eff = truth["capi_effect"][plat]["Purchase"]
        assert eff["recovered"] + eff["server_double_counted"] + eff["unlinked_added"] == eff["capi_added"]
        assert sum(eff["recovered_by_consent_per_day"].values()) == pytest.approx(eff["recovered_per_day"])
        tiers = truth["match_keys"][plat]["identifier_tiers"]
        assert sum(tiers.values()) == pytest.approx(1.0)


def test_fixtures_carry_google_ga4_and_consent_cases(audited):
    """Both fixtures plant the Google Ads, GA4 and consent cases of issue 13 (truth from labels)."""
    _, truth, _ = audited
    assert {"google", "ga4"} <= set(truth["dedup"]) and {"google", "ga4"} <= set(truth["capi_effect"])
    g = truth["google"]["google"]
    assert g["primary_action_overlap"]["orders"] > 0 and g["enhanced_conversions"]["enhanced_24h"] > 0
    assert {"Purchase", "purchase", "Offline purchase"} <= set(truth["capi_effect"]["google"])
    assert truth["capi_effect"]["google"]["Offline purchase"]["server_double_counted"] > 0
    assert truth["capi_effect"]["google"]["Offline purchase"]["reliable"] is False
    assert truth["dedup"]["ga4"]["purchase"]["missing_event_id_pixel"] > 0
    assert truth["double_counting"]["ga4"]["Purchase"]["pre_existing"] > 0
    assert truth["capi_effect"]["ga4"]["Purchase"]["recovered"] > 0
    c = truth["consent"]
    assert c["meta"]["ldu_outside_us"] > 0 and c["google"]["cookieless_pings"] > 0
    assert c["ga4"]["server_sent_restricted"] > 0
