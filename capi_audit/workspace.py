"""The Workspace: the canonical tables, their engine (DuckDB by default, or Spark), and the only
place SQL runs. Statements are rendered for the engine's dialect by `capi_audit.engine`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from capi_audit import schema
from capi_audit.config import AuditConfig, load_config
from capi_audit.engine import DuckDBEngine, Engine, bind
from capi_audit.errors import AuditError, ConfigError, InputError, stop_requested

Params = Sequence[Any] | dict[str, Any] | None
_NAMED = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_bind = bind
ACCOUNTING = ("load_report", "rejects")
# DuckDB's memory limit while a load runs, unless the workspace was given one: the canonical
# tables of an in-memory workspace then spill to a temporary folder instead of growing with the
# input, and the whole `capi-audit load` stays under 1 GB of peak RSS (docs/loading.md, "Memory").
LOAD_MEMORY_LIMIT = AuditConfig.load_memory_limit  # the default of `[audit] load_memory_limit`


def _is_target(table: str) -> bool:
    """Whether `table` is written in the load transaction (canonical, identities, accounting)."""
    return table in schema.TABLES or table in ACCOUNTING or table == "identities"


def columns_of(table: str) -> list[tuple[str, str]]:
    """(column, DuckDB type) of a canonical or accounting table."""
    if table in schema.TABLES:
        return [(c.name, c.sql_type) for c in schema.TABLES[table].columns]
    import sqlglot
    from sqlglot import exp

    ddl = {"load_report": schema.LOAD_REPORT_DDL, "rejects": schema.REJECTS_DDL}[table]
    tree = sqlglot.parse_one(ddl, read="duckdb")
    return [(c.name, c.args["kind"].sql("duckdb")) for c in tree.find_all(exp.ColumnDef)]


# DuckDB's information_schema spelling of the types the DDL uses
_SQL_TYPE_NAMES = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE", "TEXT": "VARCHAR"}
MULTI_FILE_MIN = 8  # a glob matching at least this many files is read in one multi-file scan
WRITE_BATCH_ROWS = 8_192  # rows per Arrow batch streamed from staging into the load transaction (65,536
# wide event rows held 0.12 GB more at the peak of a 653 MB Parquet load, in the same time)


def _groups(plan: list) -> list:
    """Consecutive plan entries of one source, as (source, [files])."""
    out: list = []
    for spec, f in plan:
        if out and out[-1][0] is spec:
            out[-1][1].append(f)
        else:
            out.append((spec, [f]))
    return out


def file_identity(path: Path) -> str:
    """What makes two paths the same file: device and inode (hard links, symlinks, `./a` and
    `a`), else the resolved path."""
    try:
        st = path.stat()
    except OSError:
        return str(path.resolve())
    return f"{st.st_dev}:{st.st_ino}"


def check_db_path(path: Path) -> None:
    """A `--db` file must be in an existing folder and, when it exists, be a DuckDB database."""
    if path.exists():
        if not path.is_file():
            raise InputError(f"{path}: --db names a folder or special file, not a database file")
        try:
            with open(path, "rb") as fh:
                head = fh.read(16)
        except OSError as exc:
            raise InputError(f"{path}: cannot read the database file: {exc.strerror or exc}") from exc
        if head[8:12] != b"DUCK":
            raise InputError(f"{path}: exists and is not a DuckDB database; name a new file or remove it")
    elif not path.parent.is_dir():
        raise InputError(f"{path}: the folder {path.parent} does not exist; create it first")


def _load_error(exc: Exception, what: str) -> BaseException:
    """The one error a failure inside a load ends as: an interrupt DuckDB raised as "Query
    interrupted" stays an interrupt; anything else is one InputError line (`what`, the exception's
    type and first line, paths redacted)."""
    from capi_audit.parsing import redact_path

    if stop_requested():
        return KeyboardInterrupt()
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return InputError(f"{what}: {type(exc).__name__}: {redact_path(first)}")


class Workspace:
    """Owns one DuckDB connection (in memory, or a file for large data) and the canonical tables."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        config: AuditConfig | None = None,
        threads: int | None = None,
        memory_limit: str | None = None,
        temp_directory: str | Path | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.path = str(path) if path else ":memory:"
        self.config = config or AuditConfig()
        if engine is not None and engine.kind != "duckdb":
            # Another engine: the canonical tables already exist there (attach_tables); no loading.
            self.engine, self.con = engine, None
            engine.set_timezone(self.config.timezone)
            return
        if path:
            check_db_path(Path(path))
        try:
            self.con = duckdb.connect(self.path)
        except duckdb.Error as exc:
            raise InputError(f"{path}: cannot open the database: {str(exc).splitlines()[0]}") from exc
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self._memory_limit = memory_limit
        self._temp_directory = temp_directory
        if memory_limit:
            self.con.execute("SELECT current_setting('memory_limit')")  # validates connection
            self.con.execute("SET memory_limit = $m", {"m": str(memory_limit)})
        if temp_directory:
            self.con.execute("SET temp_directory = $t", {"t": str(temp_directory)})
        # Day boundaries and naive timestamps follow the audit's time zone; UTC is stored.
        self._check_zones(self.config)
        self.con.execute("SET TimeZone = $tz", {"tz": self.config.timezone})
        self.con.execute("SET preserve_insertion_order = true")
        self.engine = DuckDBEngine.wrap(self.con, timezone=self.config.timezone)
        try:  # in Jupyter without ipywidgets DuckDB refuses to touch its progress bar setting
            self.con.execute("SET enable_progress_bar = false")
        except duckdb.Error:
            pass
        self.create_tables()

    def _check_zones(self, config: AuditConfig) -> None:
        """Every configured zone must be one DuckDB's time zone database knows: Python's tz data
        also has `posixrules`, `localtime`, `right/…`, which DuckDB refused mid-run with a message
        naming no key."""
        zones = {"audit.timezone": config.timezone,
                 **{f"report_timezone.{p}": z for p, z in sorted(config.report_timezone.items())}}
        known = {r[0] for r in self.con.execute(
            "SELECT name FROM pg_timezone_names() WHERE list_contains($z, name)", {"z": list(zones.values())}).fetchall()}
        for key, zone in zones.items():
            if zone not in known:
                raise ConfigError(f"{config.path or 'audit.toml'}: key '{key}': time zone {zone!r} is not in DuckDB's "
                                  "time zone database (use an IANA name such as 'Europe/Berlin')")

    # -- SQL -----------------------------------------------------------------------------
    def execute(self, sql: str, params: Params = None) -> None:
        """Run a statement with bound parameters (`CREATE TEMP TABLE x AS q` materializes x)."""
        self.engine.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each row of positional parameters (loaders, DuckDB only)."""
        if self.con is None:
            raise ConfigError("row-by-row statements run on DuckDB only; use Workspace.from_rows")
        self.con.executemany(sql, rows)

    def materialize(self, name: str, query: str, params: Params = None, *, depends: Sequence[str] = ()) -> None:
        """Compute derived relation `name` once (temp table on DuckDB, checkpointed view on
        Spark); relations built on an older `name` are dropped."""
        self.engine.materialize(name, query, params, depends=depends)

    def from_rows(self, name: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> None:
        """Relation `name` from a few rows held in Python (columns as (name, DuckDB type)), in one batch."""
        self.engine.from_rows(name, columns, rows)

    def relations(self) -> dict[str, list[str]]:
        """Derived relations of this workspace and what each was built from."""
        return self.engine.relations()

    def append_arrow(self, table: str, data: Any, *, distinct: bool = False) -> None:
        """Append a pyarrow Table (a batch built by a reader, never one row at a time) to `table`,
        only its distinct rows if `distinct`. During a load, canonical and accounting tables are
        written in the load transaction."""
        select = f"SELECT {'DISTINCT ' if distinct else ''}* FROM _arrow_batch"
        self.con.register("_arrow_batch", data)
        try:
            if self._main is not None and _is_target(table):
                # streamed from the staging connection: a Python object registered on the load
                # transaction's connection stays referenced until the load commits (45 batches of
                # hashed identities appended so held 0.9 GB more than the same rows streamed)
                self.write(table, select)
            else:
                self.con.execute(f"INSERT INTO {table} {select}")
        finally:
            self.con.unregister("_arrow_batch")

    # -- staging (loaders) -----------------------------------------------------------------
    # A load is one transaction (all or nothing), and DuckDB frees a table dropped inside a
    # transaction only when it commits: staging every file there held every intermediate table
    # of every file until the end (about 30 times the size of a payload log). So while a load
    # runs, readers stage on a second connection of the same database, in autocommit mode, where
    # a dropped temporary table is freed at once; only finished rows cross into the transaction
    # (`write`, `append_arrow` to a canonical table, `target`).
    _main: tuple[Engine, Any] | None = None

    @property
    def target(self) -> Engine:
        """The engine of the load transaction (the canonical tables), also while staging."""
        return self._main[0] if self._main is not None else self.engine

    def write(self, table: str, query: str, params: Params = None) -> None:
        """Append the rows of `query` (over staging tables) to canonical or accounting `table`,
        streamed in batches into the load transaction."""
        if self._main is None:
            self.execute(f"INSERT INTO {table} {query}", params)
            return
        sql = self.engine.render(query)
        bound = bind(sql, params)
        rel = self.con.sql(sql, params=bound) if bound else self.con.sql(sql)
        reader = rel.to_arrow_reader(WRITE_BATCH_ROWS)
        con = self._main[1]
        con.register("_arrow_stream", reader)
        try:
            con.execute(f"INSERT INTO {table} SELECT * FROM _arrow_stream")
        finally:
            con.unregister("_arrow_stream")
            reader.close()

    def _begin_staging(self) -> None:
        cur = self.con.cursor()
        self._main = (self.engine, self.con)
        try:  # see __init__: some front ends refuse to touch the progress bar setting
            cur.execute("SET enable_progress_bar = false")
        except duckdb.Error:
            pass
        self.con, self.engine = cur, DuckDBEngine.wrap(cur, timezone=self.config.timezone)
        self.engine.track_derived = False  # staging drops its own tables; no SQL parsing per statement

    def _end_staging(self) -> None:
        if self._main is None:
            return
        cur = self.con
        self.engine, self.con = self._main
        self._main = None
        try:
            cur.close()
        except duckdb.Error:
            pass

    def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        """Run a query and return all rows as tuples."""
        return self.engine.rows(sql, params)

    def scalar(self, sql: str, params: Params = None) -> Any:
        """Run a query and return the first column of the first row."""
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    def df(self, sql: str, params: Params = None) -> pd.DataFrame:
        """Run a query and return a (small, finished) result as a DataFrame."""
        return self.engine.df(sql, params)

    def drop(self, *names: str) -> None:
        """Drop temporary tables or views by name, whichever they are, if they exist."""
        self.engine.drop(*names)

    # -- engines ---------------------------------------------------------------------------
    @classmethod
    def on_engine(cls, engine: Engine, tables: dict[str, str], *, config: AuditConfig | None = None,
                  fmt: str = "parquet") -> Workspace:
        """A workspace whose canonical tables already exist for `engine`: table -> Parquet/Delta path
        (`fmt`), or catalog table name (`fmt="table"`). Tables not named are empty."""
        ws = cls(config=config, engine=engine)
        ws.attach_tables(tables, fmt=fmt)
        return ws

    def attach_tables(self, tables: dict[str, str], *, fmt: str = "parquet") -> None:
        """Register existing canonical tables (and the load accounting, when exported with them)."""
        known = set(schema.TABLES) | set(ACCOUNTING)
        unknown = sorted(set(tables) - known)
        if unknown:
            raise ConfigError(f"[engine.tables]: unknown table(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        self.attached_tables = {k: str(v) for k, v in tables.items()}
        self.attached_format = fmt
        for name in sorted(known):
            if name in tables:
                self.engine.register(name, str(tables[name]), fmt=fmt)
            else:
                self.engine.register_empty(name, columns_of(name))

    def export_parquet(self, out: str | Path) -> dict[str, Path]:
        """Write the canonical tables and the load accounting to out/<table>.parquet: the starting
        point of an audit on another engine (`[engine] kind = "spark"`)."""
        if self.con is None:
            raise ConfigError("export_parquet runs on a DuckDB workspace")
        return self.engine.export_parquet(sorted(schema.TABLES) + list(ACCOUNTING), Path(out))

    # -- tables ----------------------------------------------------------------------------
    def create_tables(self) -> None:
        """Create the canonical and accounting tables if they do not exist; a `--db` file whose
        tables were written by another version of the schema is refused up front (rows were
        inserted by position: a load failed mid-way with "Current transaction is aborted")."""
        existing = {}
        if self.path != ":memory:":
            for t, c, typ in self.con.execute(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position").fetchall():
                existing.setdefault(t, []).append((c, typ))
        for name in [*schema.TABLES, *ACCOUNTING]:
            if name not in existing:
                continue
            want = [(c, _SQL_TYPE_NAMES.get(typ, typ)) for c, typ in columns_of(name)]
            if existing[name] != want:
                have = dict(existing[name])
                missing = [c for c, _ in want if c not in have]
                odd = [f"{c} is {have[c]}" for c, typ in want if c in have and have[c] != typ]
                what = "; ".join(x for x in (
                    f"missing columns {', '.join(missing)}" if missing else "",
                    f"{', '.join(odd)}" if odd else "") if x) or "its columns are in another order or added"
                raise InputError(f"{self.path}: table {name} was written by another version of capi-audit ({what}); "
                                 "name a new --db file or remove this one")
        for table in schema.TABLES.values():
            self.execute(schema.create_table_sql(table))
        self.execute(schema.LOAD_REPORT_DDL)
        self.execute(schema.REJECTS_DDL)

    def holds_load(self) -> bool:
        """True when an earlier load left rows (or its load report) in this workspace."""
        return any(self.count(t) for t in (*schema.TABLES, "load_report"))

    def count(self, table: str) -> int:
        """Number of rows in a canonical table."""
        if table not in schema.TABLES and table not in ("load_report", "rejects"):
            raise ValueError(f"unknown table {table!r}")
        if self.con is None:  # tables attached to another engine do not change: count once
            cache = self.__dict__.setdefault("_counts", {})
            if table not in cache:
                cache[table] = int(self.scalar(f"SELECT count(*) FROM {table}"))
            return cache[table]
        return int(self.scalar(f"SELECT count(*) FROM {table}"))

    # -- loading ---------------------------------------------------------------------------
    def load(self, config: AuditConfig | str | Path | None = None) -> list:
        """Load every source of the config; all or nothing. Returns one FileReport per file."""
        from capi_audit.io import FORMATS

        if self.con is None:
            raise ConfigError("loaders run on DuckDB: load there, export the canonical tables "
                              "(capi-audit export) and point [engine.tables] at them")
        if self.holds_load():
            # a second load appended every row again: orders, events and hashed keys all doubled
            raise ConfigError("this workspace already holds loaded data: loading again would count every row twice; "
                              "open a new Workspace (or a new --db file)")
        if config is not None and not isinstance(config, AuditConfig):
            config = load_config(config)
        if config is not None:
            self.config = config
            self._check_zones(config)
            self.execute("SET TimeZone = $tz", {"tz": self.config.timezone})
        plan = self._plan()
        from capi_audit.io.base import empty_source, finalize_chunks
        from capi_audit.io.lines import is_empty
        from capi_audit.parsing import redact_path
        from capi_audit.progress import Progress

        progress = Progress("load")
        by_file: dict[tuple[str, str], Any] = {}

        def one(spec: Any, f: Path, table: schema.Table) -> None:
            if is_empty(f):
                by_file[(spec.table, str(f))] = empty_source(self, spec, f, table)
                return
            # a streaming reader stages chunk by chunk, each finalized before the next (bounded memory)
            chunks = FORMATS[spec.format].stage_chunks(self, spec, f, table)
            by_file[(spec.table, str(f))] = finalize_chunks(self, spec, [f], table, chunks)[0]

        bound = not self._memory_limit  # DuckDB's default limit: bounded while the load runs, then reset
        if bound:
            if self.path == ":memory:" and not self._temp_directory:
                # an in-memory database spills to `.tmp` in the working folder by default: use a
                # private temporary folder instead, removed with the workspace
                import shutil
                import tempfile
                import weakref

                self._temp_directory = tempfile.mkdtemp(prefix="capi_audit_spill_")
                weakref.finalize(self, shutil.rmtree, self._temp_directory, True)
                self.execute("SET temp_directory = $t", {"t": self._temp_directory})
            self.execute("SET memory_limit = $m", {"m": self.config.load_memory_limit or LOAD_MEMORY_LIMIT})
        self.execute("BEGIN TRANSACTION")
        self._begin_staging()
        try:
            for spec, group in _groups(plan):
                table = schema.TABLES[spec.table]
                reader = FORMATS[spec.format]
                current = group[0]
                try:
                    rest = group
                    if len(group) >= MULTI_FILE_MIN and hasattr(reader, "stage_many"):
                        # many files of one glob: one multi-file scan for those that allow it
                        with progress.step(f"{spec.table} <- {len(group)} files of {redact_path(Path(spec.path).name)}"):
                            chunks, batch, rest = reader.stage_many_chunks(self, spec, group, table)
                            if batch:
                                # a report names its file as shown (redacted): keyed here by the name as given
                                for f, r in zip(batch, finalize_chunks(self, spec, batch, table, chunks), strict=True):
                                    by_file[(spec.table, str(f))] = r
                            else:
                                self.drop("_stage", "_reader_rejects")
                    for current in rest:
                        with progress.step(f"{spec.table} <- {redact_path(current.name)}"):
                            one(spec, current, table)
                except AuditError:
                    raise
                except Exception as exc:  # any reader failure ends as one message naming the file
                    raise _load_error(exc, f"{current}: cannot load into {spec.table} (format {spec.format})") from exc
            # an order hashed by two chunks or files keeps one copy of each identity row
            from capi_audit.io.identities import finish

            try:
                finish(self)
            except AuditError:
                raise
            except Exception as exc:  # one message, as for a reader
                raise _load_error(exc, "identities: cannot keep one copy of each hashed customer key row") from exc
        except BaseException:
            self._end_staging()
            self.execute("ROLLBACK")
            if bound:
                self.execute("RESET memory_limit")
            raise
        self._end_staging()
        reports = [by_file[(spec.table, str(f))] for spec, f in plan]
        self.execute("COMMIT")
        if bound:
            self.execute("RESET memory_limit")
        return reports

    def _plan(self) -> list:
        """(source, file) pairs to load: every file exists; no file is named twice for one table.
        Orders load first: the plausibility window of event times ends a year after the newest order."""
        plan = []
        seen: dict[tuple[str, str], int] = {}
        for i, spec in enumerate(self.config.sources, 1):
            files = spec.files()
            if not files:
                raise InputError(f"{spec.path}: no file matches (sources[{i}])")
            for f in files:
                if not f.exists():
                    if f.is_symlink():
                        raise InputError(f"{f}: a symbolic link whose target is missing or loops (sources[{i}])")
                    raise InputError(f"{f}: file not found (sources[{i}])")
                if not f.is_file():
                    raise InputError(f"{f}: not a regular file (sources[{i}])")
                key = (spec.table, file_identity(f))
                if key in seen:
                    raise InputError(
                        f"{f}: the same file is named twice for table {spec.table} (sources[{seen[key]}] and "
                        f"sources[{i}]): it would count every row twice; remove one source or narrow the glob")
                seen[key] = i
                plan.append((spec, f))
        return sorted(plan, key=lambda p: p[0].table != "orders")

    def load_report(self) -> pd.DataFrame:
        """The load report: one row per file, sorted."""
        return self.df("SELECT * FROM load_report ORDER BY table_name, file")

    def rejects(self) -> pd.DataFrame:
        """Rejected rows: file, line, column and reason (never the value)."""
        return self.df("SELECT * FROM rejects ORDER BY table_name, file, line")

    def close(self) -> None:
        """Close the connection (a shared Spark session stays up)."""
        self.engine.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
