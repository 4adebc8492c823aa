"""What every reader shares: staging, parsing to canonical types, rejects and row accounting.

A reader stages one file into a temporary table `_stage` holding `_rec` (the ordinal of the
record among the records the file reader accepted, from 1), `_line` (source line or element
number when known) and one VARCHAR-or-typed column per canonical column it could find. It also
leaves the records the file reader itself refused in `_reader_rejects(line, reason)`.
`finalize` then parses, rejects and inserts, all in SQL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capi_audit import parsing, schema
from capi_audit.errors import InputError

if TYPE_CHECKING:
    from capi_audit.config import SourceSpec
    from capi_audit.workspace import Workspace


@dataclass
class FileReport:
    """Accounting for one loaded file."""

    table: str
    file: str
    format: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    coerced: dict[str, int] = field(default_factory=dict)
    redacted: dict[str, int] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    skipped: int = 0
    duplicate_rows: int = 0
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Staged:
    """What a reader staged: source type of each canonical column present, and extras."""

    columns: dict[str, str]  # canonical name -> DuckDB type of the staged column
    ignored_columns: tuple[str, ...] = ()
    skipped: int = 0
    note: str = ""
    header_values: dict[str, str] | None = None  # canonical name -> header text (stray headers)
    weighted: bool = False  # `_stage._weight`: source rows each staged row stands for (collapsed rows)
    first_data_line: int | None = None  # CSV: physical line of the first record, to map lines lazily


class Reader:
    """Base class of an input format."""

    name = "base"
    tables: tuple[str, ...] = ()  # canonical tables this format can fill; empty = any

    def stage(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Staged:
        """Create `_stage` and `_reader_rejects` for one file."""
        raise NotImplementedError


def ensure_file(file: Path) -> None:
    """Raise a clear InputError when a file is missing or unreadable."""
    if not file.exists():
        raise InputError(f"{file}: file not found")
    if not file.is_file():
        raise InputError(f"{file}: not a file")


def resolve_columns(
    spec: SourceSpec, table: schema.Table, available: list[str], file: Path
) -> tuple[dict[str, str], list[str]]:
    """Map canonical column -> source column name; fail on missing required columns."""
    mapping: dict[str, str] = {}
    lower = {a.lower(): a for a in available}
    for col in table.columns:
        src = spec.columns.get(col.name, col.name)
        if src in available:
            mapping[col.name] = src
        elif src.lower() in lower:
            mapping[col.name] = lower[src.lower()]
        elif col.name in spec.columns:
            raise InputError(f"{file}: column {src!r} (mapped to {col.name}) not found in the file")
    if table.name == "orders":  # raw customer columns, hashed into identities at load
        from capi_audit.io.identities import mapped

        for raw, src in mapped(spec.columns).items():
            if src in available:
                mapping[raw] = src
            elif src.lower() in lower:
                mapping[raw] = lower[src.lower()]
            else:
                raise InputError(f"{file}: column {src!r} (mapped to {raw}) not found in the file")
    has_default_platform = spec.platform is not None
    for req in table.required:
        if req not in mapping and not (req == "platform" and has_default_platform):
            hint = " (or set `platform` on the source)" if req == "platform" else ""
            raise InputError(
                f"{file}: required column {req!r} for table {table.name} is missing{hint}; "
                f"map it with columns = {{ {req} = \"...\" }}"
            )
    used = set(mapping.values())
    ignored = sorted(a for a in available if a not in used)
    return mapping, ignored


def finalize(ws: Workspace, spec: SourceSpec, file: Path,
             table: schema.Table, staged: Staged) -> FileReport:
    """Parse `_stage` into `table`, record rejects, and return the file's accounting."""
    params: dict[str, Any] = {"tz": ws.config.timezone, "platform": spec.platform}
    selects, reasons = ["_rec", "_line", "_weight" if staged.weighted else "1 AS _weight"], []
    keyish = (schema.TEXT, schema.HASHED_KEY, schema.ADDRESS_KEY)
    # address keys are hashed or clear depending on the row's platform (schema.ADDRESS_KEYS)
    plat_sql = (parsing.parse_expr(schema.PLATFORM, parsing.quote_ident("platform"), staged.columns["platform"])
                if "platform" in staged.columns else "$platform")
    for col in table.columns:
        if col.name in staged.columns:
            src_type = staged.columns[col.name]
            raw = parsing.quote_ident(col.name)
            if col.kind == schema.ADDRESS_KEY:
                selects.append(f"{parsing.address_key(raw, src_type, plat_sql)} AS {col.name}")
            else:
                selects.append(f"{parsing.parse_expr(col.kind, raw, src_type)} AS {col.name}")
            if col.kind in keyish and not col.required:
                # optional text is never coerced, so whether it was given does not matter
                selects.append(f"FALSE AS {col.name}__given")
            elif col.kind in keyish and src_type == "VARCHAR":
                selects.append(f"({raw} IS NOT NULL AND length(trim({raw})) > 0) AS {col.name}__given")
            else:
                selects.append(f"{parsing.given(raw, src_type)} AS {col.name}__given")
        elif col.name == "platform":
            selects.append(f"CAST($platform AS VARCHAR) AS {col.name}")
            selects.append(f"($platform IS NOT NULL) AS {col.name}__given")
        else:
            selects.append(f"CAST(NULL AS {col.sql_type}) AS {col.name}")
            selects.append(f"FALSE AS {col.name}__given")
    if staged.header_values:
        conds = [
            f"CAST({parsing.quote_ident(c)} AS VARCHAR) = ${'h_' + c}"
            for c in staged.header_values
        ]
        params.update({"h_" + c: v for c, v in staged.header_values.items()})
        selects.append(f"({' AND '.join(conds)}) AS _is_header")
    else:
        selects.append("FALSE AS _is_header")
    for col in table.columns:
        if not col.required:
            continue
        what = {"timestamp": "a time", "date": "a date", "double": "a number",
                "platform": "meta, google or ga4"}.get(col.kind, "a value")
        reasons.append(
            f"WHEN NOT {col.name}__given THEN '{col.name}\tmissing required value' "
            f"WHEN {col.name} IS NULL THEN '{col.name}\tnot {what}'"
        )
    reason_sql = "CASE WHEN _is_header THEN '\trepeated header line' " + " ".join(reasons) + " END"
    if not reasons:
        reason_sql = "CASE WHEN _is_header THEN '\trepeated header line' END"
    ws.execute("DROP TABLE IF EXISTS _parsed")
    ws.execute(
        f"CREATE TEMP TABLE _parsed AS SELECT *, {reason_sql} AS _reason "
        f"FROM (SELECT {', '.join(selects)} FROM _stage)",
        params,
    )
    n_parse_rejects = ws.scalar("SELECT count(*) FROM _parsed WHERE _reason IS NOT NULL")
    note = staged.note
    from capi_audit.io.canonical import csv_line_map

    if n_parse_rejects and staged.first_data_line and not csv_line_map(ws, file, staged.first_data_line):
        note = (note + "; " if note else "") + "line numbers unknown (a quoted field spans lines): record ordinals given"
    cols = ", ".join(c.name for c in table.columns)
    # _parsed keeps the source order (insertion order is preserved), so no sort is needed
    ws.execute(f"INSERT INTO {table.name} SELECT {cols} FROM _parsed WHERE _reason IS NULL")
    fname = str(file)
    ws.execute(
        "INSERT INTO rejects SELECT $t, $f, coalesce(_line, _rec + 1), "
        "NULLIF(split_part(_reason, '\t', 1), ''), split_part(_reason, '\t', 2) || "
        "CASE WHEN _weight > 1 THEN ' (with its ' || (_weight - 1) || ' continuation rows)' ELSE '' END "
        "FROM _parsed WHERE _reason IS NOT NULL ORDER BY _rec",
        {"t": table.name, "f": fname},
    )
    ws.execute(
        "INSERT INTO rejects SELECT $t, $f, line, column_name, reason FROM _reader_rejects ORDER BY line",
        {"t": table.name, "f": fname},
    )
    report = FileReport(table=table.name, file=fname, format=spec.format,
                        ignored_columns=list(staged.ignored_columns), skipped=staged.skipped,
                        note=note)
    counts = ws.rows(
        "SELECT coalesce(sum(_weight) FILTER (WHERE _reason IS NULL), 0), "
        "coalesce(sum(_weight) FILTER (WHERE _reason IS NOT NULL), 0) FROM _parsed"
    )[0]
    n_reader = ws.scalar("SELECT count(*) FROM _reader_rejects")
    report.rows_loaded = int(counts[0])
    report.rows_rejected = int(counts[1]) + int(n_reader)
    report.rows_read = report.rows_loaded + report.rows_rejected
    optional = [c for c in table.columns if not c.required and c.name in staged.columns]
    hashed = [c for c in table.columns if c.kind in (schema.HASHED_KEY, schema.ADDRESS_KEY) and c.name in staged.columns]
    exprs = [f"count(*) FILTER (WHERE {c.name}__given AND {c.name} IS NULL)" for c in optional]
    exprs += [f"count(*) FILTER (WHERE {c.name} LIKE '%<plaintext:%')" for c in hashed]
    # exact duplicates: rows whose full-row hash repeats (64-bit hash; collisions negligible)
    exprs.append(f"count(*) - count(DISTINCT hash({cols}))")
    row = ws.rows(f"SELECT {', '.join(exprs)} FROM _parsed WHERE _reason IS NULL")[0]
    report.coerced = {c.name: int(n) for c, n in zip(optional, row[: len(optional)], strict=True) if n}
    report.redacted = {c.name: int(n) for c, n in zip(hashed, row[len(optional): -1], strict=True) if n}
    report.duplicate_rows = int(row[-1])
    ws.execute(
        "INSERT INTO load_report VALUES ($t, $f, $fmt, $r, $l, $j, $c, $i, $s, $n)",
        {"t": table.name, "f": fname, "fmt": spec.format, "r": report.rows_read,
         "l": report.rows_loaded, "j": report.rows_rejected, "c": json.dumps(report.coerced, sort_keys=True),
         "i": json.dumps(report.ignored_columns), "s": report.skipped,
         "n": _join_notes(report)},
    )
    if table.name == "orders":
        from capi_audit.io.identities import ingest

        n_id = ingest(ws, list(staged.columns))
        if n_id:
            ws.execute("UPDATE load_report SET note = concat_ws('; ', NULLIF(note, ''), $n) WHERE file = $f AND table_name = 'orders'",
                       {"n": f"customer keys hashed locally into {n_id} identities rows (raw values not kept)", "f": fname})
    ws.drop("_parsed", "_stage", "_reader_rejects")
    return report


def _join_notes(report: FileReport) -> str:
    parts = [report.note] if report.note else []
    if report.redacted:
        parts.append("plaintext values replaced by markers in: " + ", ".join(
            f"{k} ({v})" for k, v in sorted(report.redacted.items())))
    if report.duplicate_rows:
        parts.append(f"{report.duplicate_rows} exact duplicate rows kept")
    return "; ".join(parts)


READER_REASONS = {
    "MISSING COLUMNS": "too few fields",
    "TOO MANY COLUMNS": "too many fields",
    "INVALID ENCODING": "invalid UTF-8",
    "UNQUOTED VALUE": "malformed quoting",
    "INVALID STATE": "malformed quoting",
    "LINE SIZE OVER MAXIMUM": "line too long",
    "CAST ERROR": "cannot parse",
}
