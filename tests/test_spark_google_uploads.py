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


@pytest.mark.spark
def test_spark_hash_agreement_on_list_values_equals_duckdb(spark, tmp_path):
    """List-valued keys (Meta accepts several hashes) split into elements on both engines: the
    fixtures send none, so the element join and the long-list fallback run only here."""
    from capi_audit.hashing import hash_value
    from capi_audit.metrics.hash_agreement import LIST_ELEMENTS, hash_agreement

    from .test_hash_agreement import send_em, ws_with_orders

    duck = ws_with_orders(tmp_path)
    bob = hash_value("meta", "em", "bob@example.com")
    own = hash_value("meta", "em", "joe@example.com")
    sends = [("o1", f'["{"0" * 64}", "{bob}"]'), ("o1", f'["{own}"]'), ("o2", f'["{bob}.AQYBAAYA"]'),
             ("o2", "[" + ", ".join(f'"{k:064d}"' for k in range(LIST_ELEMENTS)) + f', "{bob}"]'),
             ("o4", f'["{"1" * 64}"]'), ("o4", "[]")]
    send_em(duck, sends)
    expected = hash_agreement(duck)
    assert expected["meta"]["em"]["mismatch"]["another_orders_customer"] == 3
    tables = {t: str(p) for t, p in duck.export_parquet(tmp_path / "canonical").items()}
    duck.close()
    with Workspace.on_engine(SparkEngine(spark, timezone=duck.config.timezone), tables, config=duck.config) as ws:
        got = hash_agreement(ws)
    assert not differences(expected, got)
