"""The typed result: computed once, written, read back equal; sections derive from the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from capi_audit.audit import compute
from capi_audit.cli import main
from capi_audit.errors import ConfigError
from capi_audit.metrics import FAMILIES, REGISTRY, Family, FamilyResult
from capi_audit.metrics.common import Headline
from capi_audit.result import AuditResult
from tests.helpers import at, make_ws

FIXTURE = Path(__file__).resolve().parents[1] / "data_fixtures" / "scenario_main" / "audit.toml"


@pytest.fixture(scope="module")
def result(fixture_audit):
    """scenario_main's result (conftest: computed once per run)."""
    return fixture_audit("scenario_main").result


def test_round_trip_is_equal(result, tmp_path):
    result.write(tmp_path / "r")
    back = AuditResult.read(tmp_path / "r")
    assert back == result
    assert sorted(p.stem for p in (tmp_path / "r" / "frames").glob("*.parquet")) == sorted(result.frames)
    assert json.loads((tmp_path / "r" / "summary.json").read_text()) == back.summary


def test_round_trip_detects_a_changed_frame(result, tmp_path):
    result.write(tmp_path / "r")
    back = AuditResult.read(tmp_path / "r")
    back.frames["dedup"].loc[0, "both"] += 1
    assert back != result


def test_sections_follow_the_registry(result):
    assert [s.name for s in result.sections] == [f.name for f in FAMILIES]
    assert set(REGISTRY) <= set(result.summary)
    for name, frame in result.frames.items():  # every frame belongs to one family by name
        assert any(name == f.name or name.startswith(f.name + "_") for f in FAMILIES), name
        assert isinstance(frame, pd.DataFrame)


def test_config_echo(result):
    cfg = result.config
    assert cfg.timezone == "Europe/Berlin" and cfg.conversion_event == "Purchase"
    assert cfg.platforms == ("ga4", "google", "meta")
    assert cfg.windows == {"ga4": None, "google": None, "meta": 48.0}
    assert cfg.enabled_at["meta"] == "2026-03-02T23:00:00+00:00"
    assert cfg.age_limit_s == {"ga4": 72 * 3600, "meta": 7 * 86400}
    assert cfg.first_day == "2026-02-01" and cfg.last_day == "2026-04-01"


def test_availability_is_a_field():
    ws = make_ws(server=[{"event_id": "a", "event_time": at(), "sent_at": at(1)}])
    r = compute(ws, bootstrap_reps=10)
    rec = r.section("recovery")
    assert rec.available is False and "orders" in rec.reason
    assert "platform_report" in rec.needs
    assert r.section("latency").available is True


def test_unreliable_figures_are_listed():
    r = AuditResult(summary={"dedup": {"meta": {"Purchase": {"event_coverage": 0.5, "reliable": False,
                                                             "reason": "link rate too low"}}}})
    assert r.section("dedup").unreliable() == [("meta · Purchase", "link rate too low")]


def test_read_rejects_a_folder_that_is_not_a_result(tmp_path):
    with pytest.raises(ConfigError, match="not a result folder"):
        AuditResult.read(tmp_path)


def test_run_writes_the_result_folder(tmp_path, capsys):
    # a short synthetic scenario: the command's shape, not the fixture's figures (test_truth)
    assert main(["synth", "--out", str(tmp_path / "s"), "--days", "8", "--orders-per-day", "10", "--seed", "3"]) == 0
    assert main(["run", "--config", str(tmp_path / "s" / "audit.toml"), "--out", str(tmp_path / "o"), "--no-charts"]) == 0
    r = AuditResult.read(tmp_path / "o")
    assert "dedup_daily" in r.frames and r.config.conversion_event == "Purchase"
    assert "Loaded:" in capsys.readouterr().out


def test_a_registered_family_needs_no_other_code(monkeypatch, result, tmp_path):
    """A new family (as linkage / capi_effect will add) renders through the generic views."""
    import capi_audit.metrics as metrics
    from capi_audit import notebook as nb

    def compute_new(ws):
        return FamilyResult(Headline("linkage", {"meta": {"server": {"link_rate": 0.5, "events": 10}}}),
                            {"linkage": pd.DataFrame({"platform": ["meta"], "link_rate": [0.5]})})

    fam = Family("linkage", "Linkage: events to orders", compute_new, needs="orders")
    monkeypatch.setattr(metrics, "FAMILIES", (*metrics.FAMILIES, fam))
    monkeypatch.setitem(metrics.REGISTRY, "linkage", fam)
    # the shape of a workspace is enough here: a tiny one with orders (the family needs them)
    with make_ws(orders=[{"order_id": "o1", "created_at": at(0)}],
                 pixel=[{"event_id": "o1", "event_time": at(0), "order_id": "o1"}]) as ws:
        r = compute(ws, bootstrap_reps=10)
    assert r.summary["linkage"]["meta"]["server"]["link_rate"] == 0.5
    block = nb.section(r, "linkage")
    assert "50.0 %" in block.html and "Link rate" in block.html and "Linkage" in str(r.section("linkage").title)


def test_frame_cells_show_local_days_as_dates_and_times_with_minutes():
    import pandas as pd

    from capi_audit import fmt

    f = pd.DataFrame({"day": [pd.Timestamp("2026-02-01")], "first_seen": [pd.Timestamp("2026-02-01 13:05")]})
    cells = fmt.frame_cells(f)
    assert cells.iloc[0].tolist() == ["2026-02-01", "2026-02-01 13:05"]
