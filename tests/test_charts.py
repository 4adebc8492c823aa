"""Charts: assertions on the returned Axes, no global style change, deterministic files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.testing.compare import compare_images

from capi_audit import charts

FIXTURE = Path(__file__).resolve().parents[1] / "data_fixtures" / "scenario_main" / "audit.toml"


@pytest.fixture(scope="module")
def result(fixture_audit):
    """scenario_main's result (conftest: computed once per run)."""
    return fixture_audit("scenario_main").result


def test_dedup_daily_bars_and_labels(result):
    before = dict(matplotlib.rcParams)
    ax = charts.plot_dedup_daily(result.frames["dedup_daily"], platform="meta")
    assert dict(matplotlib.rcParams) == before  # style applied in a context only
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "platform reported" and "pixel only" in labels
    assert ax.get_ylabel() == "conversions per day"
    f = result.frames["dedup_daily"]
    f = f[(f.platform == "meta") & (f.event_name == "Purchase")]
    heights = sum(p.get_height() for p in ax.patches)
    assert heights == pytest.approx(f["expected"].sum())
    plt.close(ax.figure)


def test_waterfall_steps_add_up_to_the_reported_change(result):
    v = result.summary["recovery"]["meta"]["Purchase"]
    ax = charts.plot_waterfall(charts.waterfall_frame(v))
    bars = ax.patches
    top = bars[-2].get_y() + bars[-2].get_height()
    assert top == pytest.approx(v["reported_change_per_day"], abs=1e-9)  # the identity, drawn
    assert bars[-1].get_height() == pytest.approx(v["reported_change_per_day"])
    assert [t.get_text() for t in ax.get_xticklabels()][0] == "CAPI: recovered"
    plt.close(ax.figure)


def test_capi_daily_shades_the_gap(result):
    ax = charts.plot_capi_daily(result.frames["capi_effect"], platform="meta", conv_class="Purchase")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "recovered" in labels and "P: pixel alone" in labels
    plt.close(ax.figure)


def test_bridge_marks_the_enable_day(result):
    ax = charts.plot_bridge(result.frames["recovery"], platform="meta", conv_class="Purchase")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["ρ = R ÷ L", "π = P ÷ O"] and "CAPI enabled" in labels
    plt.close(ax.figure)


def test_tiers_sum_to_one(result):
    ax = charts.plot_identifier_tiers(result.frames["match_keys_tiers"])
    widths = {}
    for p in ax.patches:
        widths.setdefault(round(p.get_y(), 3), 0.0)
        widths[round(p.get_y(), 3)] += p.get_width()
    assert all(w == pytest.approx(1.0) for w in widths.values())
    assert ax.get_xlim() == (0, 1)
    plt.close(ax.figure)


def test_empty_frames_draw_no_data():
    ax = charts.plot_dedup_daily(pd.DataFrame())
    assert ax.texts[0].get_text() == "no data"
    plt.close(ax.figure)


def test_every_chart_saves_png_and_svg_deterministically(second_report, tmp_path):
    """Every chart of a result, drawn again in this process, is byte-identical to the PNG and SVG
    the report saved for the same result (conftest's scenario_second report: drawn in the
    notebook kernel, another process): one drawing compared with another, and nothing in the
    report's charts folder that write_charts does not draw."""
    from capi_audit.result import AuditResult

    a = charts.write_charts(AuditResult.read(second_report), tmp_path / "a")
    b = sorted((second_report / "charts").iterdir())
    assert sorted(p.name for p in a) == [p.name for p in b] and len(a) >= 2 * 9
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert [digest(p) for p in sorted(a)] == [digest(p) for p in b]
    svg = (tmp_path / "a" / "meta_dedup_daily.svg").read_text()
    assert "ORD-" not in svg and "@" not in svg  # aggregates only


def test_image_comparison_with_tolerance(result, tmp_path):
    """The same chart drawn into a caller's Axes matches the stand-alone drawing."""
    first = charts.save(charts.plot_payload_rules(result.frames["validation"], platform="meta"), tmp_path, "one")[0]
    with charts.house_style():
        fig, ax = plt.subplots()
    charts.plot_payload_rules(result.frames["validation"], platform="meta", ax=ax)
    second = charts.save(ax, tmp_path, "two")[0]
    assert compare_images(str(first), str(second), tol=1.0) is None
    img = plt.imread(first)
    assert img.shape[0] > 100 and np.isfinite(img).all()


def test_dates_show_the_year_when_the_span_crosses_one():
    days = pd.date_range("2025-12-20", "2026-01-10").date
    f = pd.DataFrame({"platform": "meta", "event_name": "Purchase", "day": days, "expected": 1, "both": 1,
                      "pixel_only": 0, "server_only": 0, "outside_window_counts": 0, "missing_event_id": 0,
                      "reported": 1.0})
    ax = charts.plot_dedup_daily(f, platform="meta", enabled_at=pd.Timestamp("2026-01-01"))
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all(lab[-4:] in ("2025", "2026") for lab in labels)
    assert "CAPI enabled" in [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(ax.figure)
    same_year = f[pd.to_datetime(f["day"]).dt.year == 2026]
    ax = charts.plot_dedup_daily(same_year, platform="meta")
    ax.figure.canvas.draw()
    assert not any("2026" in t.get_text() for t in ax.get_xticklabels())
    plt.close(ax.figure)


def test_chart_list_follows_the_registry_and_omits_platforms_without_data(result):
    names = [n for n, _, _ in charts.chart_list(result)]
    assert "meta_dedup_daily" in names and "identifier_tiers" in names
    only_meta = type(result)(summary=result.summary, frames={k: (v[v["platform"] == "meta"] if "platform" in v else v)
                                                            for k, v in result.frames.items()}, config=result.config)
    assert not any(n.startswith("google_") for n, _, _ in charts.chart_list(only_meta))
