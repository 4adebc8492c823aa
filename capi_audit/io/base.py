"""What every reader shares: staging, parsing to canonical types, rejects and row accounting.

A reader stages one file into a temporary table `_stage` holding `_rec` (the ordinal of the
record among the records the file reader accepted, from 1), `_line` (source line or element
number when known) and one VARCHAR-or-typed column per canonical column it could find. It also
leaves the records the file reader itself refused in `_reader_rejects(line, reason)`.
`finalize` then parses, rejects and inserts, all in SQL.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Iterator
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
    file_notes: dict[str, str] | None = None  # file -> its note, where it differs from `note`
    file_skipped: dict[str, int] | None = None  # file -> its skipped lines, instead of `skipped`
    file_ignored: dict[str, tuple[str, ...]] | None = None  # file -> its ignored columns, instead of `ignored_columns`


class Reader:
    """Base class of an input format."""

    name = "base"
    tables: tuple[str, ...] = ()  # canonical tables this format can fill; empty = any
    options: dict[str, type] = {}  # `options` keys this format reads, and their types  # noqa: RUF012

    def stage(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Staged:
        """Create `_stage` and `_reader_rejects` for one file."""
        raise NotImplementedError

    def stage_chunks(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Iterator[Staged]:
        """Stage one file chunk by chunk: at each yield `_stage` and `_reader_rejects` hold one chunk
        (finalized before the next one is staged), and the Staged yielded LAST carries the notes,
        ignored columns and skipped counts of the whole file. One chunk unless a reader streams."""
        yield self.stage(ws, spec, file, table)

    def stage_many_chunks(self, ws: Workspace, spec: SourceSpec, files: list[Path], table: schema.Table
                          ) -> tuple[Iterator[Staged], list[Path], list[Path]]:
        """`stage_many` chunk by chunk (see `stage_chunks`): (chunks, files in the scan, the rest)."""
        staged, batch, rest = self.stage_many(ws, spec, files, table)  # type: ignore[attr-defined]
        return iter([staged]), batch, rest


def collect_chunks(ws: Workspace, chunks: Iterator[Staged]) -> Staged:
    """Gather the chunks of a streaming reader into one `_stage` / `_reader_rejects` (the one-pass
    `stage` of a reader that streams; the load itself finalizes chunk by chunk)."""
    from capi_audit.io.canonical import accumulate

    staged = Staged(columns={})
    for k, chunk in enumerate(chunks):
        staged = chunk
        accumulate(ws, "_stage_all", "SELECT * FROM _stage", first=k == 0)
        accumulate(ws, "_rejects_all", "SELECT * FROM _reader_rejects", first=k == 0)
        ws.drop("_stage", "_reader_rejects")
    ws.execute("ALTER TABLE _stage_all RENAME TO _stage")
    ws.execute("ALTER TABLE _rejects_all RENAME TO _reader_rejects")
    return staged


class StreamingMany:
    """Mixin of a reader whose multi-file path streams (`stage_many_chunks`): its one-pass
    `stage_many` gathers those chunks."""

    def stage_many(self, ws: Workspace, spec: SourceSpec, files: list[Path], table: schema.Table
                   ) -> tuple[Staged, list[Path], list[Path]]:
        """The files of a glob together (see `stage_many_chunks`)."""
        chunks, batch, rest = self.stage_many_chunks(ws, spec, files, table)  # type: ignore[attr-defined]
        return (collect_chunks(ws, chunks) if batch else Staged(columns={})), batch, rest


def lines_batch(files: list[Path], *, json_lines: bool = False, har: bool = False) -> tuple[list[Path], list[Path]]:
    """Split the files of a glob into those that can join one chunked multi-file scan of lines
    (readable, not empty; JSON Lines rather than one array or document; not HAR) and the rest,
    which are loaded alone (where an empty file becomes an empty source and a problem is reported
    with its own message)."""
    from capi_audit.io.canonical import is_json_lines
    from capi_audit.io.lines import is_empty
    from capi_audit.io.requests import is_har

    batch = []
    for f in files:
        try:
            if is_empty(f) or (json_lines and not is_json_lines(f)) or (har and is_har(f)):
                continue
        except (InputError, OSError, UnicodeError):
            continue
        batch.append(f)
    chosen = set(batch)
    return batch, [f for f in files if f not in chosen]


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
    return finalize_files(ws, spec, [file], table, staged)[0]


def finalize_files(ws: Workspace, spec: SourceSpec, files: list[Path],
                   table: schema.Table, staged: Staged) -> list[FileReport]:
    """Parse `_stage` into `table`, record rejects, and return each file's accounting.

    With several files (one multi-file scan), `_stage` has a `_file` column naming each row's
    file and `_reader_rejects` is empty or has a `_file` column too; every aggregate is taken per file."""
    return finalize_chunks(ws, spec, files, table, [staged])


def _parse_sql(ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table, staged: Staged, batch: bool
               ) -> tuple[str, dict[str, Any]]:
    """The query that parses `_stage` into `_parsed` (canonical columns, `<col>__given`, `_reason`)."""
    params: dict[str, Any] = {"tz": ws.config.timezone, "platform": spec.platform, "fname": str(file)}
    selects, reasons = ["_file" if batch else "CAST($fname AS VARCHAR) AS _file",
                        "_rec", "_line", "_weight" if staged.weighted else "1 AS _weight"], []
    keyish = (schema.TEXT, schema.HASHED_KEY, schema.ADDRESS_KEY)
    # address keys are hashed or clear depending on the row's platform (schema.ADDRESS_KEYS)
    plat_sql = (parsing.parse_expr(schema.PLATFORM, parsing.quote_ident("platform"), staged.columns["platform"])
                if "platform" in staged.columns else "$platform")
    for col in table.columns:
        if col.name in staged.columns:
            src_type = staged.columns[col.name]
            raw = parsing.quote_ident(col.name)
            if col.kind == schema.ADDRESS_KEY:
                expr = parsing.address_key(raw, src_type, plat_sql)
            else:
                expr = parsing.parse_expr(col.kind, raw, src_type)
            if col.name in URL_COLUMNS:
                expr = parsing.redact_url_sql(expr)
            elif col.name in FREE_TEXT_COLUMNS:
                expr = parsing.scrub_sql(expr)
            elif col.name in PSEUDONYM_COLUMNS:
                # an id shaped like an email or phone (a mis-mapped column, a shop keying orders by
                # email, an email pasted into a click id) becomes a pseudonym that keeps equal ids
                # equal (linkage holds), never the value
                expr = parsing.pseudonym_sql(expr, north_american=col.name not in ACCOUNT_COLUMNS)
            selects.append(f"{expr} AS {col.name}")
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
    params.update(plausible_window(ws, table))
    for col in table.columns:
        if col.name not in staged.columns:
            continue
        if col.kind == schema.TIMESTAMP:
            reasons.append(f"WHEN {col.name} < $p_from OR {col.name} >= $p_until THEN "
                           f"'{col.name}\toutside the plausible time window' ")
        elif col.kind == schema.DATE:
            reasons.append(f"WHEN {col.name} < CAST($p_from AS DATE) OR {col.name} >= CAST($p_until AS DATE) THEN "
                           f"'{col.name}\toutside the plausible time window' ")
        elif col.kind == schema.DOUBLE:
            reasons.append(f"WHEN NOT isfinite({col.name}) OR abs({col.name}) >= {MAX_ABS_NUMBER} THEN "
                           f"'{col.name}\tnot a finite number of plausible size (|x| < 1e15)' ")
        elif col.name in CATEGORY_COLUMNS and col.name not in spec.columns:
            # a category the file names itself (a pixel hit's `ev`, a payload's currency) holding an
            # email or phone: that row is rejected (one such hit refused the whole capture with a
            # message about a `columns` mapping it did not have); a MAPPED column refuses the file
            reasons.append(f"WHEN {parsing.personal_sql(col.name, north_american=col.name not in ACCOUNT_COLUMNS)} THEN "
                           f"'{col.name}\tholds an email address or phone number where a category belongs' ")
    reason_sql = "CASE WHEN _is_header THEN '\trepeated header line' " + " ".join(reasons) + " END"
    if not reasons:
        reason_sql = "CASE WHEN _is_header THEN '\trepeated header line' END"
    return f"CREATE TEMP TABLE _parsed AS SELECT *, {reason_sql} AS _reason FROM (SELECT {', '.join(selects)} FROM _stage)", params


def finalize_chunks(ws: Workspace, spec: SourceSpec, files: list[Path], table: schema.Table,
                    chunks: Iterable[Staged]) -> list[FileReport]:
    """Parse, reject and insert each chunk a reader stages (`stage_chunks`), so memory is bounded
    by a chunk, not by the file; return each file's accounting over all its chunks.

    Everything that spans chunks is kept exactly as if the file were one chunk: rows are inserted
    in source order (chunks come in file and line order); reject details are kept for the first
    REJECTS_KEPT per file and kind (counts stay exact); exact duplicate rows are counted over the
    whole file (a 64-bit hash per loaded row is kept until the end: 16 bytes a row); a category
    column holding personal data refuses the file with the count over the whole file (the load
    is one transaction, so the rows already inserted are rolled back)."""
    batch = len(files) > 1
    file = files[0]
    cols = ", ".join(c.name for c in table.columns)
    # the rejects' file column is the name as shown (personal parts redacted), never the name as given
    names = {"real": [str(f) for f in files], "shown": [parsing.redact_path(str(f)) for f in files]}
    sums: dict[str, list[int]] = {}  # file -> loaded, rejected (weighted), parse rejects, coerced..., redacted...
    reader_rej: Counter[str] = Counter()
    by_reason: dict[str, Counter[str]] = {}
    personal: dict[str, list] = {}  # category column -> [rows, first file]
    n_id = 0
    unknown_lines = False
    staged: Staged | None = None
    optional: list[schema.Column] = []
    hashed: list[schema.Column] = []
    urls: list[schema.Column] = []
    for k, staged in enumerate(chunks):
        if k == 0:
            ws.drop("_fin_hash", "_fin_kept")
            ws.execute("CREATE TEMP TABLE _fin_hash (fh UBIGINT, h UBIGINT)")
            ws.execute("CREATE TEMP TABLE _fin_kept (_file VARCHAR, kind VARCHAR, n BIGINT)")
        sql, params = _parse_sql(ws, spec, file, table, staged, batch)
        ws.execute("DROP TABLE IF EXISTS _parsed")
        ws.execute(sql, params)
        if table.name != "orders":  # identities read the raw customer columns of orders from _stage
            ws.drop("_stage")  # freed at once (staging runs outside the load transaction)
        n_parse_rejects = ws.scalar("SELECT count(*) FROM _parsed WHERE _reason IS NOT NULL")
        from capi_audit.io.canonical import csv_line_map

        if (not batch and n_parse_rejects and staged.first_data_line and not ws.scalar("SELECT count(_line) FROM _parsed")
                and not csv_line_map(ws, file, staged.first_data_line)):
            unknown_lines = True
        for c, (n, first) in _personal_categories(ws, spec, table, staged).items():
            got = personal.setdefault(c, [0, None])
            got[0] += n
            got[1] = first if got[1] is None else min(got[1], first)
        # _parsed keeps the source order (insertion order is preserved), so no sort is needed
        ws.write(table.name, f"SELECT {cols} FROM _parsed WHERE _reason IS NULL")
        ws.write(
            "rejects", f"SELECT $t, {_shown('p._file')}, coalesce(_line, _rec + 1), "
            "NULLIF(split_part(_reason, '\t', 1), ''), split_part(_reason, '\t', 2) || "
            "CASE WHEN _weight > 1 THEN ' (with its ' || (_weight - 1) || ' continuation rows)' ELSE '' END "
            "FROM (SELECT *, row_number() OVER (PARTITION BY _file ORDER BY _rec) AS _k FROM _parsed WHERE _reason IS NOT NULL) p "
            "LEFT JOIN (SELECT _file, kind, sum(n) AS n FROM _fin_kept GROUP BY ALL) q ON q._file = p._file AND q.kind = 'parse' "
            "WHERE _k <= $cap - coalesce(q.n, 0) ORDER BY p._file, _rec",
            {"t": table.name, "cap": REJECTS_KEPT, **names},
        )
        rej_by_file = "_file" in [r[0] for r in ws.rows("DESCRIBE _reader_rejects")]
        rfile = "_file" if rej_by_file else "CAST($f AS VARCHAR)"
        if batch and not rej_by_file and ws.scalar("SELECT count(*) FROM _reader_rejects"):
            raise AssertionError("a multi-file scan names the file of each reader reject")
        ws.write(
            "rejects", f"SELECT $t, {_shown('r._file')}, line, column_name, reason FROM (SELECT line, column_name, reason, "
            f"{rfile} AS _file, row_number() OVER (PARTITION BY {rfile} ORDER BY line) AS _k FROM _reader_rejects) r "
            "LEFT JOIN (SELECT _file, kind, sum(n) AS n FROM _fin_kept GROUP BY ALL) q ON q._file = r._file AND q.kind = 'reader' "
            "WHERE _k <= $cap - coalesce(q.n, 0) ORDER BY r._file, line",
            {"t": table.name, "f": str(file), "cap": REJECTS_KEPT, **names})
        ws.execute(
            "INSERT INTO _fin_kept SELECT _file, kind, count(*) FROM ("
            "SELECT _file, 'parse' AS kind FROM _parsed WHERE _reason IS NOT NULL "
            f"UNION ALL SELECT {rfile}, 'reader' FROM _reader_rejects) GROUP BY ALL", {"f": str(file)})
        for f, r, n in ws.rows(
                "SELECT _file, r, count(*) FROM (SELECT _file, split_part(_reason, '\t', 2) AS r FROM _parsed "
                "WHERE _reason IS NOT NULL UNION ALL "
                f"SELECT {rfile}, regexp_replace(reason, '[0-9][0-9,]*', 'N', 'g') FROM _reader_rejects) GROUP BY ALL",
                {"f": str(file)}):
            by_reason.setdefault(f, Counter())[r] += n
        for f, n in ws.rows(f"SELECT {rfile}, count(*) FROM _reader_rejects GROUP BY 1", {"f": str(file)}):
            reader_rej[str(f)] += int(n)
        optional = [c for c in table.columns if not c.required and c.name in staged.columns]
        hashed = [c for c in table.columns
                  if (c.kind in (schema.HASHED_KEY, schema.ADDRESS_KEY) or c.name in PSEUDONYM_COLUMNS)
                  and c.name in staged.columns]
        urls = [c for c in table.columns if c.name in URL_COLUMNS + FREE_TEXT_COLUMNS and c.name in staged.columns]
        exprs = ["coalesce(sum(_weight) FILTER (WHERE _reason IS NULL), 0)",
                 "coalesce(sum(_weight) FILTER (WHERE _reason IS NOT NULL), 0)",
                 "count(*) FILTER (WHERE _reason IS NOT NULL)"]
        exprs += [f"count(*) FILTER (WHERE _reason IS NULL AND {c.name}__given AND {c.name} IS NULL)" for c in optional]
        exprs += [f"count(*) FILTER (WHERE _reason IS NULL AND {c.name} LIKE '%<plaintext:%')" for c in hashed]
        exprs += [f"count(*) FILTER (WHERE _reason IS NULL AND {c.name} LIKE '%<redacted%')" for c in urls]
        for f, *row in ws.rows(f"SELECT _file, {', '.join(exprs)} FROM _parsed GROUP BY _file"):
            got = sums.setdefault(f, [0] * len(exprs))
            sums[f] = [a + int(b) for a, b in zip(got, row, strict=True)]
        # exact duplicates over the whole file: rows whose full-row hash repeats (64-bit hash;
        # collisions negligible), counted at the end over every chunk
        ws.execute(f"INSERT INTO _fin_hash SELECT hash(_file), hash({cols}) FROM _parsed WHERE _reason IS NULL")
        if table.name == "orders":  # raw customer columns -> identities (hashes only)
            from capi_audit.io.identities import ingest

            n_id += ingest(ws, list(staged.columns))
        ws.drop("_parsed", "_stage", "_reader_rejects")
    if staged is None:
        raise AssertionError("a reader stages at least one chunk")
    for c, (n, first) in personal.items():
        if n:
            src = spec.columns.get(c)
            mapped = f" (mapped from source column {parsing.scrub(src)!r})" if src else ""
            raise InputError(
                f"{Path(first)}: column {c}{mapped} holds {n} values shaped like email addresses or phone numbers; "
                "a category column must not hold personal data: check the `columns` mapping")
    dups = {int(fh): int(n) for fh, n in ws.rows("SELECT fh, count(*) - count(DISTINCT h) FROM _fin_hash GROUP BY fh")}
    fhash = dict(ws.rows("SELECT f, hash(f) FROM (SELECT unnest($f) AS f)", {"f": [str(f) for f in files]}))
    ws.drop("_fin_hash", "_fin_kept")
    note = staged.note
    if unknown_lines:
        note = (note + "; " if note else "") + "line numbers unknown (a quoted field spans lines): record ordinals given"
    n_exprs = 3 + len(optional) + len(hashed) + len(urls)
    reports = []
    ignored = [parsing.scrub(c) for c in staged.ignored_columns]
    for f in files:
        fname = str(f)
        row = sums.get(fname, [0] * n_exprs)
        n_loaded, n_rej_weighted, n_parse_rej = row[0], row[1], row[2]
        n_reader_rej = reader_rej.get(fname, 0)
        row = row[3:]
        file_note = (staged.file_notes or {}).get(fname, note)
        n_unlisted = n_parse_rej + n_reader_rej - min(n_parse_rej, REJECTS_KEPT) - min(n_reader_rej, REJECTS_KEPT)
        if n_unlisted:
            top = sorted((by_reason.get(fname) or Counter()).items(), key=lambda x: (-x[1], x[0]))[:5]
            file_note = (file_note + "; " if file_note else "") + (
                f"{n_unlisted} more rejected rows not listed (details kept for the first "
                f"{REJECTS_KEPT} per kind); most common reasons: " + ", ".join(f"{r} ({n})" for r, n in top))
        own = (staged.file_ignored or {}).get(fname)
        report = FileReport(table=table.name, file=parsing.redact_path(fname), format=spec.format,
                            ignored_columns=[parsing.scrub(c) for c in own] if own is not None else list(ignored),
                            skipped=staged.skipped if staged.file_skipped is None else staged.file_skipped.get(fname, 0),
                            note=parsing.scrub(file_note))
        report.rows_loaded = n_loaded
        report.rows_rejected = n_rej_weighted + int(n_reader_rej)
        report.rows_read = report.rows_loaded + report.rows_rejected
        report.coerced = {c.name: int(n) for c, n in zip(optional, row[: len(optional)], strict=True) if n}
        report.redacted = {c.name: int(n) for c, n in zip(hashed + urls, row[len(optional):], strict=True) if n}
        report.duplicate_rows = dups.get(int(fhash[fname]), 0)
        reports.append(report)
    write_load_report(ws, reports)
    if table.name == "orders" and n_id:
        rows = (f"{n_id} identities rows" if not batch
                else f"identities ({n_id} rows for the {len(files)} files scanned together)")
        for f in files:
            ws.target.execute("UPDATE load_report SET note = concat_ws('; ', NULLIF(note, ''), $n) "
                              "WHERE file = $f AND table_name = 'orders'",
                              {"n": f"customer keys hashed locally into {rows} (raw values not kept)",
                               "f": parsing.redact_path(str(f))})
    return reports


def _shown(col: str) -> str:
    """SQL: a staged file name as shown (`parsing.redact_path`, bound as $real / $shown lists);
    a name not listed is scrubbed in SQL."""
    return f"coalesce(list_extract($shown, list_position($real, {col})), {parsing.scrub_sql(col)})"


def write_load_report(ws: Workspace, reports: list[FileReport]) -> None:
    """Append the reports' rows to `load_report` (one batch)."""
    import pyarrow as pa

    ws.append_arrow("load_report", pa.table({
        "table_name": [r.table for r in reports], "file": [r.file for r in reports],
        "format": [r.format for r in reports],
        "rows_read": pa.array([r.rows_read for r in reports], pa.int64()),
        "rows_loaded": pa.array([r.rows_loaded for r in reports], pa.int64()),
        "rows_rejected": pa.array([r.rows_rejected for r in reports], pa.int64()),
        "coerced": [json.dumps(r.coerced, sort_keys=True) for r in reports],
        "ignored_columns": [json.dumps(r.ignored_columns) for r in reports],
        "skipped": pa.array([r.skipped for r in reports], pa.int64()),
        "note": [join_notes(r) for r in reports],
    }))


# Free text and URLs may carry personal data the sender pasted in; ids may be an email.
URL_COLUMNS = ("page_url", "event_source_url")
FREE_TEXT_COLUMNS = ("error", "client_user_agent")
# Ids stored as given: every one passes the email / phone detector (`parsing.pseudonym_sql`).
PSEUDONYM_COLUMNS = ("order_id", "event_id", "request_id", "job_id", "external_id", "fbc", "fbp", "gclid", "gbraid",
                     "wbraid", "client_ip_address", "client", "destination_id")
# Columns whose values become chart categories and table labels: personal data there means a
# mis-mapped column, and the file is refused.
CATEGORY_COLUMNS = ("platform", "destination", "event_name", "currency", "action_source", "country", "region",
                    "status", "source", "date_basis", "data_processing_options", "test_event_code", "source_api",
                    "level", "dimension")
# Account ids: the North-American phone form is not looked for there (a Google Ads customer id is
# written 123-456-7890); emails and `+` phones still are.
ACCOUNT_COLUMNS = ("destination", "destination_id", "client")
MAX_ABS_NUMBER = "CAST(1e15 AS DOUBLE)"
REJECTS_KEPT = 1000  # reject details kept per file and kind (parse / reader); counts stay exact
DEFAULT_UNTIL = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def plausible_window(ws: Workspace, table: schema.Table) -> dict[str, dt.datetime]:
    """[p_from, p_until): times outside are rejected. The end defaults to one year after the newest
    order (orders load first), else 2100-01-01; orders themselves are bounded by 2100-01-01."""
    cfg = ws.config
    until = cfg.plausible_until
    if until is None:
        newest = None if table.name == "orders" else ws.target.rows(
            "SELECT max(created_at) FROM orders WHERE created_at >= $f AND created_at < $u",
            {"f": cfg.plausible_from, "u": DEFAULT_UNTIL})[0][0]
        until = newest + dt.timedelta(days=365) if newest is not None else DEFAULT_UNTIL
    return {"p_from": cfg.plausible_from, "p_until": until}


def _personal_categories(ws: Workspace, spec: SourceSpec, table: schema.Table, staged: Staged
                         ) -> dict[str, tuple[int, str]]:
    """Category columns MAPPED by `columns` whose `_parsed` values are shaped like emails or
    phones: column -> (rows, first file). Such a column is a mis-mapping and refuses the file
    (`finalize_chunks`); an unmapped one rejects its rows (`_parse_sql`)."""
    cats = [c.name for c in table.columns
            if c.name in CATEGORY_COLUMNS and c.name in staged.columns and c.name in spec.columns]
    if not cats:
        return {}
    row = ws.rows("SELECT " + ", ".join(
        f"count(*) FILTER (WHERE {personal}), min(_file) FILTER (WHERE {personal})"
        for c in cats for personal in [parsing.personal_sql(c, north_american=c not in ACCOUNT_COLUMNS)])
        + " FROM _parsed WHERE _reason IS NULL")[0]
    return {c: (int(n), first) for c, n, first in zip(cats, row[::2], row[1::2], strict=True) if n}


def empty_source(ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> FileReport:
    """An empty file (nothing but whitespace) is an empty source: no rows, a note."""
    report = FileReport(table=table.name, file=parsing.redact_path(str(file)), format=spec.format,
                        note="empty file: no rows")
    ws.target.execute(
        "INSERT INTO load_report VALUES ($t, $f, $fmt, 0, 0, 0, '{}', '[]', 0, $n)",
        {"t": table.name, "f": report.file, "fmt": spec.format, "n": report.note},
    )
    return report


def join_notes(report: FileReport) -> str:
    """The note load_report stores: the reader's note, values replaced by markers, exact duplicates."""
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
