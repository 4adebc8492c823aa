"""DuckDB and Spark agree on every figure of summary.json, on both committed fixtures.

The canonical tables are loaded once in DuckDB, exported to Parquet (the engine boundary of
design §2) and audited again by the same metric code on Spark local: scenario_main through the
library, scenario_second through `capi-audit run --engine spark` (result folders compared, frames
included). Integers, strings, booleans
and nulls must be identical; floats equal to 1e-9 relative (engines may sum in another order).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from capi_audit.config import load_config
from capi_audit.engine import SparkEngine
from capi_audit.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
REPS = 200


def leaves(obj: Any, path: str = "") -> dict[str, Any]:
    """Every leaf of a summary, by its path."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(leaves(v, f"{path}/{k}"))
        return out
    if isinstance(obj, list):
        out = {}
        for i, v in enumerate(obj):
            out.update(leaves(v, f"{path}[{i}]"))
        return out
    return {path: obj}


def differences(a: dict, b: dict, *, rel: float = 1e-9) -> list[str]:
    """Paths where two summaries differ (a missing leaf is a difference)."""
    la, lb = leaves(a), leaves(b)
    out = [f"{p}: only in one summary" for p in sorted(set(la) ^ set(lb))]
    for p in sorted(set(la) & set(lb)):
        x, y = la[p], lb[p]
        if isinstance(x, float) or isinstance(y, float):
            if type(x) is not type(y) or not math.isclose(float(x), float(y), rel_tol=rel, abs_tol=1e-12):
                out.append(f"{p}: duckdb {x!r} vs spark {y!r}")
        elif x != y or type(x) is not type(y):
            out.append(f"{p}: duckdb {x!r} vs spark {y!r}")
    return out


def test_differences_sees_every_kind_of_change():
    a = {"x": {"n": 1, "r": 0.5, "s": "a", "l": [1, None]}}
    assert differences(a, a) == []
    assert differences(a, {"x": {"n": 2, "r": 0.5, "s": "a", "l": [1, None]}})
    assert differences(a, {"x": {"n": 1, "r": 0.5000001, "s": "a", "l": [1, None]}})
    assert differences(a, {"x": {"n": 1, "r": 0.5, "s": "a", "l": [1, 0]}})
    assert differences(a, {"x": {"n": 1.0, "r": 0.5, "s": "a", "l": [1, None]}})
    assert differences(a, {"x": {"n": 1, "r": 0.5, "s": "a"}})


@pytest.mark.spark
def test_spark_summary_equals_duckdb(spark_main_audit, fixture_audit):
    """scenario_main through the library: conftest audits it once on DuckDB and once on Spark
    (from the DuckDB workspace's Parquet export), with the same bootstrap replicates."""
    expected = fixture_audit("scenario_main").result.summary
    got = spark_main_audit["summary"]
    n = len(leaves(expected))
    assert n > 100, "the summary lost its figures"
    diff = differences(expected, got)
    assert not diff, f"{len(diff)} of {n} figures differ:\n" + "\n".join(diff[:40])


def frame_differences(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> list[str]:
    """Names of frames that differ between two results (values to 1e-9 relative, dtypes free)."""
    out = [f"{n}: only in one result" for n in sorted(set(a) ^ set(b))]
    for n in sorted(set(a) & set(b)):
        x, y = a[n].reset_index(drop=True), b[n].reset_index(drop=True)
        try:
            pd.testing.assert_frame_equal(x, y, check_dtype=False, check_index_type=False,
                                          check_column_type=False, rtol=1e-9, atol=1e-12)
        except (AssertionError, TypeError, ValueError) as exc:
            out.append(f"{n}: {str(exc).splitlines()[0][:200]}")
    return out


@pytest.mark.spark
def test_run_engine_spark_writes_the_same_result_folder(spark, second_report, tmp_path):
    """`capi-audit run --engine spark` (load in DuckDB, export, metrics on Spark) writes a result
    folder equal to the DuckDB run's (conftest's scenario_second report): summary, config echo and
    every frame read back. The folder is engine-agnostic: `capi-audit report --result` renders it
    (every notebook executed by papermill) into the same pages as the DuckDB result."""
    from capi_audit.cli import main
    from capi_audit.result import AuditResult
    from tests.test_report import PAGES, _strip_images, assert_clean_page

    config = ROOT / "data_fixtures" / "scenario_second" / "audit.toml"
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "spark"), "--no-charts",
                 "--engine", "spark"]) == 0
    duck, spk = AuditResult.read(second_report), AuditResult.read(tmp_path / "spark")
    assert not differences(duck.summary, spk.summary)
    assert duck.config == spk.config
    diff = frame_differences(duck.frames, spk.frames)
    assert not diff, "\n".join(diff)

    out = tmp_path / "report"
    assert main(["report", "--result", str(tmp_path / "spark"), "--out", str(out)]) == 0
    for page in PAGES:
        text = (out / f"{page}.html").read_text()
        assert_clean_page(text)
        assert _strip_images(text) == _strip_images((second_report / f"{page}.html").read_text()), page


@pytest.mark.spark
def test_lakehouse_tables_without_load_report_are_not_zeros(spark, tmp_path):
    """Regression (issue 15): a Spark audit over lakehouse tables (no load_report) showed a load
    section of zeros, as if nothing had been loaded. It is now `available: false` with the reason,
    and the load frame gives the rows each attached table holds."""
    from capi_audit import metrics
    from capi_audit.audit import open_workspace
    from capi_audit.metrics.load import NOT_LOADED
    from tests.conftest import write
    from tests.helpers import at, make_ws

    ws = make_ws(orders=[{"order_id": "o1", "created_at": at(0)}, {"order_id": "o2", "created_at": at(1)}],
                 pixel=[{"event_id": "o1", "event_time": at(0), "order_id": "o1"}])
    paths = ws.export_parquet(tmp_path / "lake")
    toml = write(tmp_path / "audit.toml", f"""
        [audit]
        timezone = "UTC"
        [engine]
        kind = "spark"
        [engine.tables]
        orders = "{paths['orders']}"
        pixel_events = "{paths['pixel_events']}"
        """)

    with open_workspace(load_config(toml)) as lake:
        out = metrics.family("load").run(lake)
    assert out.headline.summary() == {"available": False, "reason": NOT_LOADED}
    frame = out.frames["load"].set_index("table_name")
    assert frame.loc["orders", "rows_loaded"] == 2 and frame.loc["pixel_events", "rows_loaded"] == 1
    assert frame.loc["server_events", "rows_loaded"] == 0
    assert frame.loc["orders", "file"] == "orders.parquet"
    assert frame.loc["server_events", "file"] == "(not named: empty)"
    assert frame["rows_read"].isna().all()

    # with the accounting exported next to the tables, the section is the loader's, as on DuckDB
    tables = {t: str(p) for t, p in paths.items()}
    with Workspace.on_engine(SparkEngine(spark), tables) as lake:
        section = metrics.family("load").run(lake).headline.summary()
    from capi_audit.schema import SOURCE_TABLES

    assert set(section) == set(SOURCE_TABLES)
