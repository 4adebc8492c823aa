"""Engines: where the audit's SQL runs (design §2, §6: the canonical tables are the boundary).

An `Engine` owns the connection, renders each statement for its dialect
(`capi_audit.sql.dialect`), binds parameters and materializes derived relations. The
`Workspace` is still the only place SQL runs; it delegates here.

- `DuckDBEngine` (default): one DuckDB connection; loaders write the canonical tables into it.
- `SparkEngine`: a SparkSession; the canonical tables are Parquet/Delta paths or catalog tables
  registered as views (loaders stay DuckDB: a Spark audit starts from tables that already exist,
  or from a DuckDB workspace exported with `Workspace.export_parquet`).

Derived relations (`CREATE OR REPLACE TEMP TABLE name AS <query>` or `Engine.materialize`) are
recorded with the relations they read; replacing one drops every relation built on it, so a
stale derived table can never be read. DuckDB materializes a temp table; Spark a view over a
local checkpoint (lineage cut, computed once).
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import sqlglot
from sqlglot import exp

from capi_audit.errors import ConfigError, stop_requested
from capi_audit.sql.dialect import NotPortable, mentions_project_function, quote_ident, render

Params = Sequence[Any] | dict[str, Any] | None
_NAMED = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_CREATE_AS = re.compile(r"^\s*CREATE\s+(OR\s+REPLACE\s+)?TEMP(ORARY)?\s+TABLE\s+([A-Za-z_][A-Za-z0-9_]*)\s+AS\s+(.*)$",
                        re.IGNORECASE | re.DOTALL)

# Spark SQL types of the canonical columns' DuckDB types (schema.py).
SPARK_TYPES = {"VARCHAR": "STRING", "TIMESTAMPTZ": "TIMESTAMP", "DOUBLE": "DOUBLE", "BOOLEAN": "BOOLEAN",
               "DATE": "DATE", "BIGINT": "BIGINT", "INTEGER": "INT"}


def spark_type(duckdb_type: str) -> str:
    """The Spark SQL type of a DuckDB column type (TEXT and VARCHAR are STRING, TIMESTAMPTZ is
    TIMESTAMP: an instant in Spark's session zone)."""
    return SPARK_TYPES.get(duckdb_type.upper()) or exp.DataType.build(duckdb_type, dialect="duckdb").sql("spark")


def bind(sql: str, params: Params) -> Params:
    """Keep only the named parameters the statement uses (engines refuse extra ones)."""
    if isinstance(params, dict):
        used = set(_NAMED.findall(sql))
        return {k: v for k, v in params.items() if k in used}
    return params


def _reads(query: str) -> set[str]:
    """Names of the relations a query reads (CTE names excluded)."""
    try:
        tree = sqlglot.parse_one(query, read="duckdb")
    except sqlglot.errors.ParseError:
        return set()
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    return {t.name.lower() for t in tree.find_all(exp.Table) if t.name and t.name.lower() not in ctes}


class Engine:
    """Base: relation bookkeeping and the statement log; subclasses run the SQL."""

    dialect = "duckdb"
    kind = "duckdb"

    def __init__(self) -> None:
        self.derived: dict[str, set[str]] = {}     # relation -> relations it was built from
        self.listeners: list[Callable[[str, str], None]] = []   # (source sql, rendered sql)

    # -- to implement ------------------------------------------------------------------------
    def _run(self, sql: str, params: Params) -> Any:
        raise NotImplementedError

    def _store(self, name: str, query: str, params: Params) -> None:
        raise NotImplementedError

    def _drop(self, name: str) -> None:
        raise NotImplementedError

    def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def df(self, sql: str, params: Params = None) -> pd.DataFrame:
        raise NotImplementedError

    def from_rows(self, name: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> None:
        """Make relation `name` (columns as (name, DuckDB type)) from a few rows held in Python."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    # -- shared ------------------------------------------------------------------------------
    def render(self, sql: str) -> str:
        """The statement in this engine's dialect."""
        out = render(sql, self.dialect) if self.dialect != "duckdb" or mentions_project_function(sql) else sql
        for listen in self.listeners:
            listen(sql, out)
        return out

    def execute(self, sql: str, params: Params = None) -> None:
        """Run a statement; `CREATE [OR REPLACE] TEMP TABLE x AS q` materializes a derived relation."""
        m = _CREATE_AS.match(sql) if self.track_derived else None
        if m:
            self.materialize(m.group(3), m.group(4), params)
            return
        self._run(sql, params)

    # Whether `CREATE TEMP TABLE x AS q` records what x was built from (parsing q), so that
    # replacing a relation drops those built on it. Loaders' staging manages its own tables.
    track_derived = True

    def materialize(self, name: str, query: str, params: Params = None, *, depends: Sequence[str] = ()) -> None:
        """Compute relation `name` from `query` once; relations built on an older `name` are dropped."""
        key = name.lower()
        reads = (_reads(query) | {d.lower() for d in depends}) - {key}
        self._store(name, query, params)
        self._forget_dependents(key)
        self.derived[key] = reads

    def _forget_dependents(self, key: str) -> None:
        stale = [n for n, deps in self.derived.items() if key in deps and n != key]
        for n in stale:
            self.derived.pop(n, None)
            self._drop(n)
            self._forget_dependents(n)

    def drop(self, *names: str) -> None:
        """Drop derived relations (or temporary tables) by name, if they exist."""
        for name in names:
            self.derived.pop(name.lower(), None)
            self._drop(name)

    def relations(self) -> dict[str, list[str]]:
        """Derived relations and the relations each was built from (sorted, for inspection)."""
        return {k: sorted(v) for k, v in sorted(self.derived.items())}


class DuckDBEngine(Engine):
    """The default engine: one DuckDB connection (in memory or a file)."""

    dialect = kind = "duckdb"

    def __init__(self, path: str = ":memory:", *, timezone: str = "UTC", con: Any = None) -> None:
        import duckdb

        super().__init__()
        self.con = con if con is not None else duckdb.connect(path)
        self.set_timezone(timezone)

    @classmethod
    def wrap(cls, con: Any, *, timezone: str = "UTC") -> DuckDBEngine:
        """An engine over an open connection (the workspace's)."""
        return cls(con=con, timezone=timezone)

    def set_timezone(self, tz: str) -> None:
        """Naive timestamps and local casts follow the audit's time zone; UTC is stored."""
        self.con.execute("SET TimeZone = $tz", {"tz": tz})

    def _cursor(self, sql: str, params: Params) -> Any:
        sql = self.render(sql)
        params = bind(sql, params)
        try:
            return self.con.execute(sql, params) if params else self.con.execute(sql)
        except RuntimeError:
            if stop_requested():  # DuckDB's "Query interrupted": the command stops (cli.main)
                raise KeyboardInterrupt from None
            raise

    def _run(self, sql: str, params: Params) -> Any:
        return self._cursor(sql, params)

    def _store(self, name: str, query: str, params: Params) -> None:
        self._cursor(f"CREATE OR REPLACE TEMP TABLE {name} AS {query}", params)

    def _drop(self, name: str) -> None:
        kind = self.con.execute(
            "SELECT 'VIEW' FROM duckdb_views() WHERE view_name = $n AND temporary "
            "UNION ALL SELECT 'TABLE' FROM duckdb_tables() WHERE table_name = $n AND temporary", {"n": name}
        ).fetchall()
        if kind:
            self.con.execute(f"DROP {kind[0][0]} {name}")

    def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        return self._cursor(sql, params).fetchall()

    def df(self, sql: str, params: Params = None) -> pd.DataFrame:
        return self._cursor(sql, params).df()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.con.executemany(sql, rows)

    def from_rows(self, name: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> None:
        import pyarrow as pa

        cols = ", ".join(f"{quote_ident(c)} {t}" for c, t in columns)
        data = pa.table({f"c{i}": pa.array([r[i] for r in rows]) if rows else pa.array([], pa.null())
                         for i in range(len(columns))})
        self.con.register("_rows_batch", data)
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} ({cols})")
            if rows:
                sel = ", ".join(f"CAST(c{i} AS {t})" for i, (_, t) in enumerate(columns))
                self.con.execute(f"INSERT INTO {name} SELECT {sel} FROM _rows_batch")
        finally:
            self.con.unregister("_rows_batch")
        self._forget_dependents(name.lower())
        self.derived[name.lower()] = set()

    def export_parquet(self, tables: Sequence[str], out: Path) -> dict[str, Path]:
        """Write each table to out/<table>.parquet (the canonical tables keep their UTC instants)."""
        out.mkdir(parents=True, exist_ok=True)
        paths = {}
        for t in tables:
            p = out / f"{t}.parquet"
            self.con.execute(f"COPY (SELECT * FROM {t}) TO '{_sql_path(p)}' (FORMAT parquet)")
            paths[t] = p
        return paths

    def close(self) -> None:
        self.con.close()


def _sql_path(p: Path) -> str:
    return str(p).replace("'", "''")


# -- Spark ---------------------------------------------------------------------------------------
def _gc_option(driver_memory: str) -> str:
    """The JVM's collector for a driver heap: serial for small heaps (fixtures: least overhead),
    parallel above 2 GiB. With the serial collector a 12 GiB heap at 10M events spent 1,400 s of
    the first hour in 270 full collections of about 5 s each, on one core (BENCHMARKS.md)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)b?\s*", driver_memory.lower())
    if not m:
        return "-XX:+UseParallelGC"
    scale = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}[m.group(2)]
    # Spark reads a bare number as MiB
    size = float(m.group(1)) * (scale if m.group(2) else 2**20)
    return "-XX:+UseSerialGC" if size <= 2 * 2**30 else "-XX:+UseParallelGC"


def spark_session(*, master: str = "local[2]", app: str = "capi_audit", conf: dict[str, str] | None = None) -> Any:
    """A SparkSession sized for a small machine: few shuffle partitions, adaptive execution on, no
    UI, UTC session time zone, Arrow transfers. An existing active session is reused as is (on a
    cluster, configure it there)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise ConfigError("the Spark engine needs pyspark: pip install 'capi_audit[spark]' (and a Java runtime)") from exc
    if shutil.which("java") is None and not _java_home():
        raise ConfigError("the Spark engine needs a Java runtime (java not found on PATH, JAVA_HOME unset)")
    import warnings

    # pyspark warns on every pandas hand-over that it does not know pandas 3 yet; the hand-overs
    # here are small finished results whose types are normalized in SparkEngine.df.
    warnings.filterwarnings("ignore", message=".*does not yet fully support pandas.*")
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    settings = {
        "spark.sql.shuffle.partitions": "4",
        "spark.default.parallelism": "2",
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.adaptive.coalescePartitions.enabled": "true",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # DuckDB semantics: x / 0 is NULL, overflowing casts in try_cast are NULL
        "spark.sql.ansi.enabled": "false",
        "spark.driver.memory": "1g",
        "spark.sql.autoBroadcastJoinThreshold": str(32 * 1024 * 1024),
        "spark.sql.caseSensitive": "false",
    }
    settings.update(conf or {})
    if "spark.driver.extraJavaOptions" not in settings:
        settings["spark.driver.extraJavaOptions"] = f"{_gc_option(settings['spark.driver.memory'])} -Xss16m"
    builder = SparkSession.builder.master(master).appName(app)
    for k, v in settings.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _java_home() -> bool:
    import os

    home = os.environ.get("JAVA_HOME")
    return bool(home) and Path(home, "bin", "java").exists()


class SparkEngine(Engine):
    """Runs the audit's SQL on Spark; canonical tables must already exist as views or tables."""

    dialect = kind = "spark"

    def __init__(self, spark: Any = None, *, timezone: str = "UTC", master: str = "local[2]",
                 conf: dict[str, str] | None = None) -> None:
        super().__init__()
        self.spark = spark or spark_session(master=master, conf=conf)
        self.timezone = timezone
        self._frames: dict[str, Any] = {}

    def set_timezone(self, tz: str) -> None:
        # The session stays UTC; local days come from local_date(ts, $tz).
        self.timezone = tz

    def _frame(self, sql: str, params: Params) -> Any:
        if params is not None and not isinstance(params, dict):
            raise NotPortable("the Spark engine binds named parameters ($name) only")
        text = self.render(sql)
        args = bind(sql, params) or None
        return self.spark.sql(text, args=args) if args else self.spark.sql(text)

    def _run(self, sql: str, params: Params) -> Any:
        head = sql.lstrip()[:40].upper()
        if head.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            return None
        if head.startswith("INSERT") or re.match(r"CREATE\s+(OR\s+REPLACE\s+)?TEMP(ORARY)?\s+TABLE", head):
            raise NotPortable("row-by-row tables are not portable: build small relations with "
                              "Workspace.from_rows and derived ones with CREATE TEMP TABLE ... AS")
        if head.startswith("DROP"):
            m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*$", sql.strip())
            if m:
                self.drop(m.group(1))
            return None
        return self._frame(sql, params).collect()

    def _store(self, name: str, query: str, params: Params) -> None:
        frame = self._frame(query, params).localCheckpoint(eager=True)
        old = self._frames.pop(name.lower(), None)
        frame.createOrReplaceTempView(name)
        self._frames[name.lower()] = frame
        if old is not None:
            old.unpersist()

    def _drop(self, name: str) -> None:
        old = self._frames.pop(name.lower(), None)
        self.spark.catalog.dropTempView(name)
        if old is not None:
            old.unpersist()

    def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        return [tuple(self._value(v) for v in r) for r in self._frame(sql, params).collect()]

    def _value(self, v: Any) -> Any:
        # Spark hands back naive datetimes in the session zone (UTC); DuckDB aware ones in the audit zone.
        if isinstance(v, dt.datetime) and v.tzinfo is None:
            from zoneinfo import ZoneInfo

            return v.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(self.timezone))
        return v

    def df(self, sql: str, params: Params = None) -> pd.DataFrame:
        from pyspark.sql import types as T

        frame = self._frame(sql, params)
        out = frame.toPandas()
        for field in frame.schema.fields:
            col = field.name
            if isinstance(field.dataType, T.TimestampType):
                out[col] = pd.to_datetime(out[col]).dt.tz_localize("UTC").dt.tz_convert(self.timezone)
            elif isinstance(field.dataType, T.DateType):
                out[col] = pd.to_datetime(out[col]).astype("datetime64[us]")
            elif isinstance(field.dataType, T.DecimalType):
                out[col] = out[col].astype("float64")
        return out

    def from_rows(self, name: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> None:
        # An inline table (VALUES, the values bound as parameters): a local relation whose size
        # Spark knows, so joins on it are broadcast. (createDataFrame of Python rows is an RDD of
        # unknown size, read back through Python workers: every `LEFT JOIN u_params w ON
        # w.platform = ...` became a sort-merge join shuffling the large side by a key of a handful
        # of values, one task holding nearly all rows.)
        cast = ", ".join(f"CAST(c{j} AS {spark_type(t)}) AS {quote_ident(c, 'spark')}"
                         for j, (c, t) in enumerate(columns))
        args: dict[str, Any] = {}
        if rows:
            tuples = []
            for i, r in enumerate(rows):
                marks = []
                for j, v in enumerate(r):
                    args[f"r{i}_{j}"] = v
                    marks.append(f":r{i}_{j}")
                tuples.append("(" + ", ".join(marks) + ")")
            names = ", ".join(f"c{j}" for j in range(len(columns)))
            text = f"SELECT {cast} FROM VALUES {', '.join(tuples)} AS t({names})"
        else:
            nulls = ", ".join(f"CAST(NULL AS {spark_type(t)}) AS c{j}" for j, (_, t) in enumerate(columns))
            text = f"SELECT {cast} FROM (SELECT {nulls}) t WHERE FALSE"
        frame = self.spark.sql(text, args=args) if args else self.spark.sql(text)
        frame.createOrReplaceTempView(name)
        self._frames[name.lower()] = frame
        self._forget_dependents(name.lower())
        self.derived[name.lower()] = set()

    def register(self, name: str, source: str, *, fmt: str = "parquet") -> None:
        """Expose a canonical table: a Parquet/Delta path, or a catalog table (`fmt="table"`)."""
        if fmt == "table":
            frame = self.spark.table(source)
        else:
            frame = self.spark.read.format(fmt).load(source)
        frame.createOrReplaceTempView(name)

    def register_empty(self, name: str, columns: Sequence[tuple[str, str]]) -> None:
        """An empty relation with the canonical schema (a table the audit has no data for)."""
        self.from_rows(name, columns, [])
        self.derived.pop(name.lower(), None)

    def close(self) -> None:
        for name in list(self._frames):
            self._drop(name)
