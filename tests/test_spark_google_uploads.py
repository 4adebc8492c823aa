"""DuckDB and Spark agree on the Google upload comparison (logged uploads vs Google's upload
summaries): statements the committed fixtures never run, because they carry no upload summaries.
Only the `google` family runs here (the fixtures' Spark tests cover the others)."""

from __future__ import annotations

import pytest

from capi_audit import metrics
from capi_audit.engine import SparkEngine
from capi_audit.workspace import Workspace

from .test_google import upload_case
from .test_spark_equal import differences, frame_differences


def _google(ws: Workspace):
    fam = next(f for f in metrics.FAMILIES if f.name == "google")
    return fam.run(ws, bootstrap_reps=20)


@pytest.mark.spark
def test_spark_upload_comparison_equals_duckdb(spark, tmp_path):
    with upload_case(tmp_path) as duck:
        cfg = duck.config
        expected = _google(duck)
        tables = {t: str(p) for t, p in duck.export_parquet(tmp_path / "canonical").items()}
    diag = expected.headline.summary()["google"]["upload_diagnostics"]
    assert (diag["compared"], diag["disagree"]) == (4, 2)   # the comparison ran (tests/test_google.py)
    with Workspace.on_engine(SparkEngine(spark, timezone=cfg.timezone), tables, config=cfg) as ws:
        got = _google(ws)
    assert not differences(expected.headline.summary(), got.headline.summary())
    assert not frame_differences(expected.frames, got.frames)
