"""Regenerate the committed fixture scenarios in data_fixtures/ (`make fixtures`)."""

from __future__ import annotations

from pathlib import Path

from capi_audit.synth.params import ScenarioParams
from capi_audit.synth.write import write_scenario

ROOT = Path(__file__).resolve().parents[2] / "data_fixtures"

# The main fixture: 60 days, about 60 orders a day, Meta CAPI enabled mid-way, Google 5 days later.
# Realism (issue 12): overdispersed orders, drifting pixel capture, QA orders at go-live, an
# attributed and partly modelled report whose attributed share rises at enablement, last days
# not yet restated.
MAIN = ScenarioParams(seed=7, days=60, orders_per_day=60.0, timezone="Europe/Berlin",
                      enable_day={"meta": 30, "google": 35}, orders_day_cv=0.10, capture_drift=0.04,
                      qa_test_share=0.15, report_share_pre=0.55, report_share_post=0.62,
                      report_modelled=0.08, report_immature_days=3)
# A second, different scenario so tests are not tuned to one dataset: another seed, zone,
# length, volume and defect mix.
SECOND = ScenarioParams(seed=2027, days=42, start="2026-09-14", orders_per_day=35.0,
                        timezone="America/New_York", enable_day={"meta": 21, "google": 24},
                        sales_growth_after_enable=0.25, server_gap_rate=0.12, pixel_reload_rate=0.10,
                        defect_rates={"pixel_missing_event_id": 0.05, "id_mismatch": 0.02,
                                      "server_missing_event_id": 0.04, "name_mismatch": 0.01,
                                      "late": 0.06, "retry_same_key": 0.02, "retry_new_id": 0.05,
                                      "too_old": 0.02},
                        orders_day_cv=0.20, qa_test_share=0.10, report_share_pre=0.40, report_share_post=0.40,
                        report_modelled=0.15, report_immature_days=2, report_gap_days=(6,))


def main() -> None:
    """Write data_fixtures/scenario_main and data_fixtures/scenario_second."""
    write_scenario(MAIN, ROOT / "scenario_main")
    write_scenario(SECOND, ROOT / "scenario_second")
    print(f"wrote {ROOT}")


if __name__ == "__main__":
    main()
