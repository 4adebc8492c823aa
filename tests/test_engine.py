"""The engine seam: derived relations with their dependencies, rows from Python in one batch,
the [engine] config, and what a non-DuckDB workspace refuses."""

from __future__ import annotations

import datetime as dt

import pytest

from capi_audit.config import config_from_dict
from capi_audit.engine import DuckDBEngine, Engine
from capi_audit.errors import ConfigError
from capi_audit.workspace import Workspace


def test_replacing_a_relation_drops_what_was_built_on_it():
    ws = Workspace()
    ws.execute("CREATE OR REPLACE TEMP TABLE a AS SELECT 1 AS x")
    ws.execute("CREATE OR REPLACE TEMP TABLE b AS SELECT x + 1 AS y FROM a")
    ws.materialize("c", "SELECT y FROM b")
    assert ws.relations() == {"a": [], "b": ["a"], "c": ["b"]}
    ws.execute("CREATE OR REPLACE TEMP TABLE a AS SELECT 5 AS x")
    assert ws.relations() == {"a": []}
    assert ws.scalar("SELECT count(*) FROM duckdb_tables() WHERE table_name IN ('b', 'c')") == 0
    assert ws.scalar("SELECT x FROM a") == 5


def test_declared_dependencies_count_too():
    ws = Workspace()
    ws.materialize("p", "SELECT 1 AS x")
    ws.materialize("q", "SELECT 2 AS x", depends=["p"])
    ws.materialize("p", "SELECT 3 AS x")
    assert "q" not in ws.relations()


def test_from_rows_is_one_batch_with_types():
    ws = Workspace()
    t = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    ws.from_rows("params", [("platform", "VARCHAR"), ("enabled_at", "TIMESTAMPTZ"), ("w", "DOUBLE")],
                 [("meta", t, 1.5), ("google", None, None)])
    assert ws.rows("SELECT platform, enabled_at, w FROM params ORDER BY platform") == [
        ("google", None, None), ("meta", t, 1.5)]
    ws.from_rows("empty", [("code", "VARCHAR")], [])
    assert ws.scalar("SELECT count(*) FROM empty") == 0


def test_statements_reach_listeners_as_written_and_as_rendered():
    eng = DuckDBEngine()
    seen = []
    eng.listeners.append(lambda sql, out: seen.append((sql, out)))
    eng.rows("SELECT ms_between($a, $b)", {"a": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                                            "b": dt.datetime(2026, 1, 1, 0, 0, 2, tzinfo=dt.UTC)})
    assert seen[0][0] == "SELECT ms_between($a, $b)"
    assert "epoch_us" in seen[0][1].lower()


class _Fake(Engine):
    kind = dialect = "spark"

    def set_timezone(self, tz):
        self.tz = tz


def test_a_workspace_on_another_engine_does_not_load():
    ws = Workspace(engine=_Fake())
    with pytest.raises(ConfigError, match="loaders run on DuckDB"):
        ws.load()
    with pytest.raises(ConfigError, match="DuckDB only"):
        ws.executemany("INSERT INTO x VALUES (?)", [(1,)])
    with pytest.raises(ConfigError, match="DuckDB workspace"):
        ws.export_parquet("/tmp/nowhere")


def test_engine_config(tmp_path):
    cfg = config_from_dict({"engine": {"kind": "spark", "format": "delta",
                                       "tables": {"orders": "lake/orders", "pixel_events": "s3://b/px"},
                                       "conf": {"spark.sql.shuffle.partitions": 8}}},
                           path=tmp_path / "audit.toml")
    assert cfg.engine.kind == "spark" and cfg.engine.format == "delta"
    assert cfg.engine.tables["orders"] == str(tmp_path / "lake/orders")
    assert cfg.engine.tables["pixel_events"] == "s3://b/px"
    assert cfg.engine.conf == {"spark.sql.shuffle.partitions": "8"}
    assert config_from_dict({}).engine.kind == "duckdb"


@pytest.mark.parametrize("engine, match", [
    ({"kind": "flink"}, "unknown engine"),
    ({"kind": "spark", "format": "csv"}, "unknown format"),
    ({"kind": "spark", "tables": {"events": "x"}}, "not a canonical table"),
    ({"tables": {"orders": "x"}}, "for kind"),
    ({"kind": "spark", "workers": 3}, "unknown key"),
])
def test_engine_config_errors(engine, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict({"engine": engine})


def test_export_writes_every_canonical_table(tmp_path):
    import pyarrow.parquet as pq

    from tests.helpers import make_ws

    ws = make_ws(orders=[{"order_id": "o1", "created_at": dt.datetime(2026, 3, 1, tzinfo=dt.UTC)}])
    paths = ws.export_parquet(tmp_path)
    from capi_audit import schema

    assert set(paths) == set(schema.TABLES) | {"load_report", "rejects"}
    assert pq.read_table(paths["orders"]).num_rows == 1


@pytest.mark.parametrize("memory, gc", [("1g", "Serial"), ("2048m", "Serial"), ("512", "Serial"),
                                        ("3g", "Parallel"), ("12g", "Parallel"), ("8G", "Parallel")])
def test_spark_driver_collector_follows_the_heap(memory, gc):
    # the serial collector on a 12 GiB driver heap spent about 40 % of the 10M benchmark's first
    # hour in full collections on one core; small heaps (the fixtures) keep it
    from capi_audit.engine import _gc_option

    assert _gc_option(memory) == f"-XX:+Use{gc}GC"
