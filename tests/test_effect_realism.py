"""Periods config, the report time zone, the synthetic report's realism and its truth (issue 12)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pytest

from capi_audit.audit import run_audit
from capi_audit.errors import ConfigError
from capi_audit.metrics import recovery
from capi_audit.synth import ScenarioParams, write_scenario
from capi_audit.synth.reports import conversion_dated, interaction_dated, report_frame

from .conftest import write
from .helpers import assert_matches, make_ws
from .test_config import cfg

BASE = ScenarioParams(seed=5, days=42, orders_per_day=30.0, enable_day={"meta": 21, "google": 24},
                      customer_pool=5000)


def test_periods_config_keys(tmp_path):
    c = cfg(tmp_path, """
        [audit]
        timezone = "Europe/Berlin"
        burn_in_days = 1
        settle_days = 0
        [report_timezone]
        google = "America/New_York"
    """)
    assert (c.burn_in_days, c.settle_days) == (1, 0)
    assert c.report_zone("google") == "America/New_York" and c.report_zone("meta") == "Europe/Berlin"
    assert (cfg(tmp_path, "[audit]\n").burn_in_days, cfg(tmp_path, "[audit]\n").settle_days) == (2, 3)
    for bad, word in (("[audit]\nsettle_days = -1\n", "settle_days"), ("[audit]\nburn_in_days = 1.5\n", "burn_in_days"),
                      ('[report_timezone]\nmeta = "Mars/Base"\n', "time zone"),
                      ('[report_timezone]\nbing = "UTC"\n', "bing")):
        with pytest.raises(ConfigError, match=word):
            load_config_text(tmp_path, bad)


def load_config_text(tmp_path, text):
    from capi_audit.config import load_config

    return load_config(write(tmp_path / "bad.toml", text))


def test_report_days_are_cut_in_the_report_zone():
    """A report in New York days compared with logs in UTC days would shift R against L by one
    day for late-evening orders; with [report_timezone] the logs are cut in the report's days."""
    orders, pixel, rep = [], [], []
    day0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    for d in range(28):
        ts = day0 + dt.timedelta(days=d, hours=2)  # 02:00 UTC = the previous evening in New York
        orders.append({"order_id": f"o{d}", "created_at": ts})
        pixel.append({"event_id": f"o{d}", "event_time": ts, "order_id": f"o{d}"})
        local_day = (ts - dt.timedelta(hours=5)).date()
        rep.append({"platform": "meta", "date": local_day, "event_name": "Purchase", "conversions": float(d % 2)})
    ws = make_ws(pixel=pixel, orders=orders, report=rep, enabled={"meta": day0 + dt.timedelta(days=14, hours=5)})
    ws.config = dataclasses.replace(ws.config, burn_in_days=0, settle_days=0,
                                    report_timezone={"meta": "America/New_York"})
    frame, head = recovery(ws, bootstrap_reps=50)
    f = frame[frame["period"].isin(["pre", "post"])]
    # each report day holds exactly the one order of that New York day
    assert (f["O"] == 1).all() and (f["P"] == 1).all()
    assert head.values["meta"]["Purchase"]["report_coverage"]["timezone"] == "America/New_York"


def test_synthetic_report_is_attributed_modelled_and_immature():
    p = dataclasses.replace(BASE, report_share_pre=0.5, report_share_post=0.7, report_modelled=0.1,
                            report_immature_days=3)
    counts = np.full(p.days, 40.0)
    conv = conversion_dated(p, "meta", counts)
    assert conv[:18].mean() == pytest.approx(0.5 * 40 * 1.1, rel=0.15)
    assert conv[21:38].mean() == pytest.approx(0.7 * 40 * 1.1, rel=0.15)
    assert any(v != round(v) for v in conv)  # fractional (modelled) values
    assert conv[-1] < conv[-4] * 0.5  # the last day is far from complete
    click = interaction_dated(p, conv)
    # the same conversions on earlier days: only clicks before the first day fall out
    assert conv.sum() - conv[:4].sum() - 1 <= click.sum() <= conv.sum() + 1
    frame, written = report_frame(dataclasses.replace(p, report_date_basis="both", report_gap_days=(5,)),
                                  {"meta": counts, "google": counts})
    assert set(frame["date_basis"]) == {"conversion", "interaction"}
    assert np.isnan(written["meta"][5]) and "2026-02-06" not in set(frame["date"])


@pytest.mark.parametrize("seed", [3, 11])
def test_realistic_scenario_matches_its_truth(tmp_path, seed):
    """Every §3.3–§3.5 figure of a scenario with all the realism planted equals the truth from
    the labels; the report's two date bases are not summed (the conversion-dated rows are used)."""
    p = dataclasses.replace(BASE, seed=seed, orders_day_cv=0.15, capture_drift=0.05, qa_test_share=0.1,
                            report_share_pre=0.5, report_share_post=0.6, report_modelled=0.1,
                            report_date_basis="both", report_immature_days=3, report_gap_days=(9,))
    write_scenario(p, tmp_path)
    res = run_audit(tmp_path / "audit.toml", tmp_path / "out", charts=False)
    truth = json.loads((tmp_path / "truth.json").read_text())
    for section in ("capi_effect", "recovery"):
        assert_matches(res.summary[section], truth[section], section)
    v = res.summary["recovery"]["meta"]["Purchase"]
    assert v["reliable"] is False and "gaps" in v["reason"]
    assert v["report_coverage"]["date_basis"] == ["conversion"]
