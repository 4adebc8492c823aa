"""The Workspace: one DuckDB connection, the canonical tables, and the only place SQL runs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from capi_audit import schema
from capi_audit.config import AuditConfig, load_config
from capi_audit.errors import AuditError, InputError

Params = Sequence[Any] | dict[str, Any] | None
_NAMED = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def _bind(sql: str, params: Params) -> Params:
    """Keep only the named parameters the statement uses (DuckDB refuses extra ones)."""
    if isinstance(params, dict):
        used = set(_NAMED.findall(sql))
        return {k: v for k, v in params.items() if k in used}
    return params


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
    ) -> None:
        self.path = str(path) if path else ":memory:"
        self.config = config or AuditConfig()
        self.con = duckdb.connect(self.path)
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.con.execute("SELECT current_setting('memory_limit')")  # validates connection
            self.con.execute("SET memory_limit = $m", {"m": str(memory_limit)})
        if temp_directory:
            self.con.execute("SET temp_directory = $t", {"t": str(temp_directory)})
        # Day boundaries and naive timestamps follow the audit's time zone; UTC is stored.
        self.con.execute("SET TimeZone = $tz", {"tz": self.config.timezone})
        self.con.execute("SET preserve_insertion_order = true")
        try:  # in Jupyter without ipywidgets DuckDB refuses to touch its progress bar setting
            self.con.execute("SET enable_progress_bar = false")
        except duckdb.Error:
            pass
        self.create_tables()

    # -- SQL -----------------------------------------------------------------------------
    def execute(self, sql: str, params: Params = None) -> None:
        """Run a statement with bound parameters."""
        self._cursor(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each row of positional parameters."""
        self.con.executemany(sql, rows)

    def function(self, name: str, fn: Any, args: list[str], returns: str) -> None:
        """Register a Python scalar function for SQL (used to hash raw customer data at load,
        in memory; see io/identities.py)."""
        typ = getattr(duckdb, "sqltype", None) or duckdb.type
        self.con.create_function(name, fn, [typ(a) for a in args], typ(returns),
                                 null_handling="special", side_effects=False)

    def rows(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        """Run a query and return all rows as tuples."""
        return self._cursor(sql, params).fetchall()

    def scalar(self, sql: str, params: Params = None) -> Any:
        """Run a query and return the first column of the first row."""
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    def df(self, sql: str, params: Params = None) -> pd.DataFrame:
        """Run a query and return a (small, finished) result as a DataFrame."""
        return self._cursor(sql, params).df()

    def _cursor(self, sql: str, params: Params) -> duckdb.DuckDBPyConnection:
        params = _bind(sql, params)
        return self.con.execute(sql, params) if params else self.con.execute(sql)

    def drop(self, *names: str) -> None:
        """Drop temporary tables or views by name, whichever they are, if they exist."""
        for name in names:
            kind = self.scalar("SELECT 'VIEW' FROM duckdb_views() WHERE view_name = $n AND temporary "
                               "UNION ALL SELECT 'TABLE' FROM duckdb_tables() WHERE table_name = $n AND temporary",
                               {"n": name})
            if kind:
                self.execute(f"DROP {kind} {name}")

    # -- tables ----------------------------------------------------------------------------
    def create_tables(self) -> None:
        """Create the canonical and accounting tables if they do not exist."""
        for table in schema.TABLES.values():
            self.execute(schema.create_table_sql(table))
        self.execute(schema.LOAD_REPORT_DDL)
        self.execute(schema.REJECTS_DDL)

    def count(self, table: str) -> int:
        """Number of rows in a canonical table."""
        if table not in schema.TABLES and table not in ("load_report", "rejects"):
            raise ValueError(f"unknown table {table!r}")
        return int(self.scalar(f"SELECT count(*) FROM {table}"))

    # -- loading ---------------------------------------------------------------------------
    def load(self, config: AuditConfig | str | Path | None = None) -> list:
        """Load every source of the config; all or nothing. Returns one FileReport per file."""
        from capi_audit.io import FORMATS
        from capi_audit.io.base import finalize

        if config is not None and not isinstance(config, AuditConfig):
            config = load_config(config)
        if config is not None:
            self.config = config
            self.execute("SET TimeZone = $tz", {"tz": self.config.timezone})
        plan = []
        for spec in self.config.sources:
            files = spec.files()
            if not files:
                raise InputError(f"{spec.path}: no file matches")
            for f in files:
                if not f.is_file():
                    raise InputError(f"{f}: file not found")
                plan.append((spec, f))
        from capi_audit.progress import Progress

        progress = Progress("load")
        reports = []
        self.execute("BEGIN TRANSACTION")
        try:
            for spec, f in plan:
                with progress.step(f"{spec.table} <- {f.name}"):
                    reader = FORMATS[spec.format]
                    table = schema.TABLES[spec.table]
                    staged = reader.stage(self, spec, f, table)
                    reports.append(finalize(self, spec, f, table, staged))
        except AuditError:
            self.execute("ROLLBACK")
            raise
        except Exception:
            self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")
        return reports

    def load_report(self) -> pd.DataFrame:
        """The load report: one row per file, sorted."""
        return self.df("SELECT * FROM load_report ORDER BY table_name, file")

    def rejects(self) -> pd.DataFrame:
        """Rejected rows: file, line, column and reason (never the value)."""
        return self.df("SELECT * FROM rejects ORDER BY table_name, file, line")

    def close(self) -> None:
        """Close the connection."""
        self.con.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
