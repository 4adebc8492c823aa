"""The canonical format: CSV (also .csv.gz), Parquet and JSON Lines / JSON with canonical columns.

All reading goes through DuckDB's own readers. CSV is read with an explicit schema (every column
VARCHAR, header taken from the first line) so that a malformed line is a rejected row rather than
a failed sniff, and strict mode so that a line with too many fields is rejected, not truncated.
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import TYPE_CHECKING

from capi_audit import parsing, schema
from capi_audit.errors import InputError
from capi_audit.io.base import READER_REASONS, Reader, Staged, ensure_file, resolve_columns

if TYPE_CHECKING:
    from capi_audit.config import SourceSpec
    from capi_audit.workspace import Workspace

_REJ = "rejects_table='_rej', rejects_scan='_rejscan'"


def kind_of(file: Path) -> str:
    """'csv', 'parquet' or 'json' from the file name."""
    name = file.name.lower()
    for suffix, kind in ((".csv", "csv"), (".csv.gz", "csv"), (".tsv", "csv"), (".parquet", "parquet"),
                         (".jsonl", "json"), (".ndjson", "json"), (".json", "json"),
                         (".jsonl.gz", "json"), (".ndjson.gz", "json")):
        if name.endswith(suffix):
            return kind
    raise InputError(f"{file}: cannot tell the file type from its name (use .csv, .csv.gz, .parquet, .jsonl or .json)")


def read_header(file: Path, delim: str = ",") -> list[str]:
    """Column names from the first line of a CSV file (BOM and gzip handled)."""
    opener = gzip.open if file.name.lower().endswith(".gz") else open
    try:
        with opener(file, "rb") as fh:
            first = fh.readline()
    except OSError as exc:
        raise InputError(f"{file}: cannot read: {exc}") from exc
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{file}: line 1 (header) is not UTF-8") from exc
    if not text.strip():
        raise InputError(f"{file}: empty file or empty header line")
    return next(csv.reader(io.StringIO(text), delimiter=delim))


def stage_csv(ws: Workspace, file: Path, header: list[str], wanted: dict[str, str],
              delim: str = ",", *, skip: int = 1, encoding: str = "utf-8") -> None:
    """Read a CSV into `_stage` (only the wanted columns, renamed) and `_reader_rejects`."""
    if len(set(header)) != len(header):
        raise InputError(f"{file}: header repeats a column name")
    columns = {f"c{i}": "VARCHAR" for i in range(len(header))}
    pos = {h: f"c{i}" for i, h in enumerate(header)}
    sel = ", ".join(f"{pos[src]} AS {parsing.quote_ident(canon)}" for canon, src in wanted.items())
    for t in ("_rej", "_rejscan", "_raw"):
        ws.execute(f"DROP TABLE IF EXISTS {t}")
    try:
        ws.execute(
            "CREATE TEMP TABLE _raw AS SELECT * FROM read_csv($f, columns=$cols, skip=$skip, header=false, "
            "auto_detect=false, delim=$d, quote='\"', escape='\"', strict_mode=true, encoding=$enc, "
            f"store_rejects=true, {_REJ})",
            {"f": str(file), "cols": columns, "d": delim, "skip": skip, "enc": encoding},
        )
    except Exception as exc:  # DuckDB raises a plain exception type for unsplittable files
        msg = str(exc).splitlines()[0]
        hint = (" (mixed line endings? convert the file to one style)"
                if "invalid state" in msg.lower() else "")
        raise InputError(f"{file}: DuckDB's CSV reader cannot split this file into records{hint}: {msg}") from exc
    ws.drop("_stage")
    ws.execute(f"CREATE TEMP TABLE _stage AS SELECT rowid - (SELECT min(rowid) FROM _raw) + 1 AS _rec, CAST(NULL AS BIGINT) AS _line, {sel} FROM _raw")
    ws.execute("DROP TABLE _raw")
    reasons = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in READER_REASONS.items())
    ws.execute("DROP TABLE IF EXISTS _reader_rejects")
    ws.execute(
        "CREATE TEMP TABLE _reader_rejects AS SELECT line, NULL::VARCHAR AS column_name, "
        f"CASE min(error_type) {reasons} ELSE lower(min(error_type)) END AS reason "
        "FROM _rej GROUP BY line"
    )


def read_lines(ws: Workspace, file: Path, table: str) -> None:
    """Read a text file into `table(line, txt)` with physical line numbers (blank lines kept as
    NULL) and the lines DuckDB refused (invalid UTF-8) into `_refused(line, column_name, reason)`."""
    for t in ("_lrej", "_lrejscan", "_raw_lines", table, "_refused"):
        ws.execute(f"DROP TABLE IF EXISTS {t}")
    ws.execute(
        "CREATE TEMP TABLE _raw_lines AS SELECT line FROM read_csv($f, columns={'line': 'VARCHAR'}, "
        "delim=E'\\x01', quote='', escape='', header=false, auto_detect=false, strict_mode=false, "
        "store_rejects=true, rejects_table='_lrej', rejects_scan='_lrejscan')",
        {"f": str(file)},
    )
    # the lines reader drops only lines it refuses (and numbers them), so line k of the file is
    # the k-th of (kept rows and refused lines) in order
    ws.execute(
        f"CREATE TEMP TABLE {table} AS WITH refused AS (SELECT DISTINCT line FROM _lrej), "
        "n AS (SELECT (SELECT count(*) FROM _raw_lines) + (SELECT count(*) FROM refused) AS total), "
        "kept AS (SELECT range + 1 AS line, row_number() OVER (ORDER BY range) - 1 AS i "
        "         FROM range((SELECT total FROM n)) WHERE range + 1 NOT IN (SELECT line FROM refused)) "
        "SELECT k.line, r.line AS txt FROM kept k "
        "JOIN (SELECT rowid - (SELECT min(rowid) FROM _raw_lines) AS i, line FROM _raw_lines) r ON r.i = k.i"
    )
    ws.execute("CREATE TEMP TABLE _refused AS SELECT DISTINCT line, NULL::VARCHAR AS column_name, "
               "'invalid UTF-8' AS reason FROM _lrej")
    for t in ("_lrej", "_lrejscan", "_raw_lines"):
        ws.execute(f"DROP TABLE IF EXISTS {t}")


def csv_line_map(ws: Workspace, file: Path, first_data_line: int = 2) -> bool:
    """Give each staged CSV record its physical line: the lines not blank, not the header and
    not refused by the reader, in order. False when the count disagrees (multi-line fields)."""
    read_lines(ws, file, "_phys")
    ws.execute("CREATE OR REPLACE TEMP TABLE _phys AS SELECT line, (txt IS NULL) AS blank FROM _phys "
               "UNION ALL SELECT line, FALSE FROM _refused")
    ws.execute(
        "CREATE OR REPLACE TEMP TABLE _datalines AS SELECT line, row_number() OVER (ORDER BY line) AS _rec "
        "FROM _phys WHERE line >= $first AND NOT blank AND line NOT IN (SELECT line FROM _reader_rejects)",
        {"first": first_data_line},
    )
    n_lines = ws.scalar("SELECT count(*) FROM _datalines")
    n_recs = ws.scalar("SELECT count(*) FROM _parsed")
    ok = n_lines == n_recs
    if ok:
        ws.execute("UPDATE _parsed SET _line = d.line FROM _datalines d WHERE d._rec = _parsed._rec")
    for t in ("_refused", "_phys", "_datalines"):
        ws.execute(f"DROP TABLE IF EXISTS {t}")
    return ok


def read_docs(ws: Workspace, file: Path) -> str:
    """Read a JSON file into `_jdocs(line, doc, valid, is_obj)` and refused lines into
    `_refused(line, column_name, reason)`. JSON Lines give physical line numbers; one pretty-printed
    document or an array of documents gives element numbers. Returns a note for the report."""
    for t in ("_lrej", "_lrejscan", "_jl", "_jlines", "_refused"):
        ws.execute(f"DROP TABLE IF EXISTS {t}")
    note = ""
    single = False
    if not is_json_array(file) and _multiline(file):
        single = bool(ws.scalar("SELECT CASE WHEN json_valid(content) THEN json_type(content) = 'OBJECT' ELSE FALSE END FROM read_text($f)",
                                {"f": str(file)}))
    if is_json_array(file) or single:
        try:
            ws.execute(
                "CREATE TEMP TABLE _jlines AS SELECT row_number() OVER () AS line, CAST(json AS VARCHAR) AS doc "
                "FROM read_json_objects($f, format='array')" if is_json_array(file) else
                "CREATE TEMP TABLE _jlines AS SELECT 1 AS line, CAST(content AS VARCHAR) AS doc FROM read_text($f)",
                {"f": str(file)},
            )
        except Exception as exc:
            raise InputError(f"{file}: not a valid JSON array: {str(exc).splitlines()[0]}") from exc
        ws.execute("CREATE TEMP TABLE _refused (line BIGINT, column_name VARCHAR, reason VARCHAR)")
        note = "positions are array elements" if is_json_array(file) else "one JSON document"
    else:
        read_lines(ws, file, "_jl")
        ws.execute("CREATE TEMP TABLE _jlines AS SELECT line, txt AS doc FROM _jl WHERE txt IS NOT NULL AND trim(txt) <> ''")
    # json_type fails on invalid JSON and SQL does not short-circuit, hence the CASE.
    ws.execute(
        "CREATE OR REPLACE TEMP TABLE _jdocs AS SELECT line, doc, json_valid(doc) AS valid, "
        "CASE WHEN json_valid(doc) THEN json_type(doc) = 'OBJECT' ELSE FALSE END AS is_obj FROM _jlines"
    )
    for t in ("_lrej", "_lrejscan", "_jl", "_jlines"):
        ws.execute(f"DROP TABLE IF EXISTS {t}")
    return note


def _multiline(file: Path) -> bool:
    with open(file, "rb") as fh:
        head = fh.read(65536)
    lines = [ln for ln in head.splitlines() if ln.strip()]
    return len(lines) > 1 and not lines[0].rstrip().endswith(b"}")


def bad_docs_sql() -> str:
    """Rows of `_jdocs` that are not JSON objects, as reader rejects."""
    return ("SELECT line, NULL::VARCHAR AS column_name, CASE WHEN valid THEN 'not a JSON object' "
            "ELSE 'broken JSON' END AS reason FROM _jdocs WHERE NOT is_obj UNION ALL SELECT * FROM _refused")


def stage_json(ws: Workspace, file: Path, table: schema.Table, spec: SourceSpec) -> Staged:
    """Read JSON Lines / JSON into `_stage`: one object per row, broken lines rejected."""
    note = read_docs(ws, file)
    keys = [r[0] for r in ws.rows(
        "SELECT DISTINCT unnest(json_keys(doc)) FROM _jdocs WHERE is_obj ORDER BY 1"
    )]
    mapping, ignored = resolve_columns(spec, table, keys, file)
    params: dict[str, str] = {}
    sels = []
    for i, (canon, src) in enumerate(mapping.items()):
        params[f"p{i}"] = "$." + '"' + src.replace('"', '\\"') + '"'
        path = f"$p{i}"
        sels.append(
            f"CASE WHEN json_type(doc, {path}) IN ('ARRAY', 'OBJECT') THEN CAST(json_extract(doc, {path}) AS VARCHAR) "
            f"ELSE json_extract_string(doc, {path}) END AS {parsing.quote_ident(canon)}"
        )
    ws.drop("_stage")
    sel_sql = (", " + ", ".join(sels)) if sels else ""
    ws.execute(
        f"CREATE TEMP TABLE _stage AS SELECT row_number() OVER (ORDER BY line) AS _rec, line AS _line{sel_sql} "
        "FROM _jdocs WHERE is_obj ORDER BY line",
        params,
    )
    ws.execute("DROP TABLE IF EXISTS _reader_rejects")
    ws.execute(f"CREATE TEMP TABLE _reader_rejects AS {bad_docs_sql()}")
    for t in ("_jdocs", "_refused"):
        ws.execute(f"DROP TABLE IF EXISTS {t}")
    return Staged(columns=dict.fromkeys(mapping, "VARCHAR"), ignored_columns=tuple(ignored), note=note)


def _sql_str(text: str) -> str:
    # A view cannot hold a bound parameter, so the file path is quoted as a SQL string literal.
    return "'" + text.replace("'", "''") + "'"


def stage_parquet(ws: Workspace, file: Path, table: schema.Table, spec: SourceSpec) -> Staged:
    """Read Parquet into `_stage` keeping native types; positions are row numbers from 1."""
    try:
        described = ws.rows("DESCRIBE SELECT * FROM read_parquet($f)", {"f": str(file)})
    except Exception as exc:
        raise InputError(f"{file}: not a readable Parquet file: {str(exc).splitlines()[0]}") from exc
    types = {r[0]: r[1] for r in described}
    mapping, ignored = resolve_columns(spec, table, list(types), file)
    sel = ", ".join(f"{parsing.quote_ident(src)} AS {parsing.quote_ident(canon)}" for canon, src in mapping.items())
    ws.drop("_stage")
    # a view: Parquet is typed and positioned already, so parsing reads the file directly
    ws.execute(
        f"CREATE TEMP VIEW _stage AS SELECT file_row_number + 1 AS _rec, file_row_number + 1 AS _line"
        f"{', ' + sel if sel else ''} FROM read_parquet({_sql_str(str(file))}, file_row_number=true)"
    )
    ws.execute("DROP TABLE IF EXISTS _reader_rejects")
    ws.execute("CREATE TEMP TABLE _reader_rejects (line BIGINT, column_name VARCHAR, reason VARCHAR)")
    return Staged(columns={c: types[s] for c, s in mapping.items()}, ignored_columns=tuple(ignored))


def is_json_array(file: Path) -> bool:
    """True when a .json file holds one array rather than one object per line."""
    opener = gzip.open if file.name.lower().endswith(".gz") else open
    with opener(file, "rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"[")


class CanonicalReader(Reader):
    """Files whose columns already carry the canonical names (or are mapped with `columns`)."""

    name = "canonical"
    tables = ()

    def stage(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Staged:
        """Stage a canonical CSV, Parquet or JSON file."""
        ensure_file(file)
        kind = kind_of(file)
        if kind == "parquet":
            return stage_parquet(ws, file, table, spec)
        if kind == "json":
            return stage_json(ws, file, table, spec)
        delim = "\t" if file.name.lower().endswith(".tsv") else ","
        header = read_header(file, delim)
        mapping, ignored = resolve_columns(spec, table, header, file)
        stage_csv(ws, file, header, mapping, delim)
        return Staged(columns=dict.fromkeys(mapping, "VARCHAR"), ignored_columns=tuple(ignored),
                      header_values=dict(mapping), first_data_line=2)
