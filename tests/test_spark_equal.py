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

from capi_audit import audit
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
@pytest.mark.parametrize("fixture", ["scenario_main"])   # scenario_second: through the CLI below
def test_spark_summary_equals_duckdb(spark, fixture, tmp_path):
    cfg = load_config(ROOT / "data_fixtures" / fixture / "audit.toml")
    with Workspace(config=cfg) as duck:
        duck.load()
        expected = audit.compute(duck, bootstrap_reps=REPS).summary
        tables = {t: str(p) for t, p in duck.export_parquet(tmp_path / "canonical").items()}
    with Workspace.on_engine(SparkEngine(spark, timezone=cfg.timezone), tables, config=cfg) as ws:
        got = audit.compute(ws, bootstrap_reps=REPS).summary
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
def test_run_engine_spark_writes_the_same_result_folder(spark, tmp_path):
    """`capi-audit run --engine spark` (load in DuckDB, export, metrics on Spark) writes a result
    folder equal to the DuckDB run's: summary, config echo and every frame read back."""
    from capi_audit.cli import main
    from capi_audit.result import AuditResult

    config = ROOT / "data_fixtures" / "scenario_second" / "audit.toml"
    for engine in ("duckdb", "spark"):
        assert main(["run", "--config", str(config), "--out", str(tmp_path / engine),
                     "--no-charts", "--engine", engine]) == 0
    duck, spk = AuditResult.read(tmp_path / "duckdb"), AuditResult.read(tmp_path / "spark")
    assert not differences(duck.summary, spk.summary)
    assert duck.config == spk.config
    diff = frame_differences(duck.frames, spk.frames)
    assert not diff, "\n".join(diff)
