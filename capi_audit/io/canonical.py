"""The canonical format: CSV (also .csv.gz), Parquet and JSON Lines / JSON with canonical columns.

All reading goes through DuckDB's own readers. CSV is read with an explicit schema (every column
VARCHAR, header taken from the first line) so that a malformed line is a rejected row rather than
a failed sniff, and strict mode so that a line with too many fields is rejected, not truncated.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from capi_audit import parsing, schema
from capi_audit.errors import InputError
from capi_audit.io.base import READER_REASONS, Reader, Staged, ensure_file, resolve_columns
from capi_audit.io.lines import (
    MAX_LINE_BYTES,
    LineStats,
    count_lines,
    detect_encoding,
    head_bytes,
    head_text,
    is_empty,
    is_gzip,
    iter_lines,
)

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
    """Column names from the first line of a CSV file (BOM, gzip and UTF-16 handled)."""
    for _n, text, refused in iter_lines(file):
        if refused is not None:
            raise InputError(f"{file}: line 1 (header) cannot be read: {refused.reason}")
        if not text or not text.strip():
            raise InputError(f"{file}: empty file or empty header line")
        return next(csv.reader(io.StringIO(text), delimiter=delim))
    raise InputError(f"{file}: empty file or empty header line")


def check_used_names(file: Path, header: list[str], used: object) -> None:
    """A header may repeat a name the load does not use (two empty names after a trailing comma,
    two `Notes` columns): only a column the load reads must be unambiguous."""
    from collections import Counter

    counts = Counter(header)
    twice = sorted({u for u in used if counts.get(u, 0) > 1})  # type: ignore[attr-defined]
    if twice:
        raise InputError(f"{file}: the header repeats the column {parsing.scrub(twice[0])!r}, which the load reads: "
                         "rename one of them")


# DuckDB keeps at most this many rows in its rejects table per file; a file with more rejects is
# read again through the tolerant path, which counts every reject exactly in bounded memory.
FAST_REJECTS_LIMIT = 1000


def stage_csv(ws: Workspace, file: Path, header: list[str], wanted: dict[str, str],
              delim: str = ",", *, skip: int = 1, encoding: str = "utf-8", file_column: bool = False) -> str:
    """Read a CSV into `_stage` (only the wanted columns, renamed) and `_reader_rejects`; returns a
    note for the load report ('' when none).

    Fast path: DuckDB's strict reader. Its result is cross-checked against the file's non-empty
    physical lines (records + rejected lines must equal them); when the reader cannot split the
    file (mixed line endings), the check fails (an unterminated quote swallowing lines, quoted
    fields spanning lines), rejects are many or the reader fails outright, the file is read again
    by the tolerant path (loads stage outside their transaction, so a failed read leaves nothing
    behind). Only a file whose bytes cannot be read (I/O error, corrupt gzip) is refused.
    With file_column, `_stage` also names the file in `_file` (as a multi-file scan does).
    """
    check_used_names(file, header, wanted.values())
    columns = {f"c{i}": "VARCHAR" for i in range(len(header))}
    pos = {}
    for i, h in enumerate(header):
        pos.setdefault(h, f"c{i}")
    sel = ", ".join(f"{pos[src]} AS {parsing.quote_ident(canon)}" for canon, src in wanted.items())
    # only the wanted columns are kept (a header of 30,000 columns cost 0.9 GB when all were)
    keep = sorted({int(pos[src][1:]) for src in wanted.values()}) or [0]
    for t in ("_rej", "_rejscan", "_raw", "_reader_rejects"):
        ws.execute(f"DROP TABLE IF EXISTS {t}")
    # DuckDB cannot split mixed line endings: such files go straight to the tolerant path.
    nonempty, stats = count_lines(file, start=skip + 1)
    fast = len(stats.endings) <= 1
    note = ""
    read = (f"CREATE TEMP TABLE _raw AS SELECT {', '.join(f'c{i}' for i in keep)} FROM read_csv($f, columns=$cols, skip=$skip, header=false, "
            "auto_detect=false, delim=$d, quote='\"', escape='\"', strict_mode=true, encoding=$enc, {opts})")
    params = {"f": str(file), "cols": columns, "d": delim, "skip": skip, "enc": encoding}
    try:
        if fast:
            # DuckDB's rejects table costs memory per bad line (one row per missing column, with the
            # line's text): first read without it; only a few bad lines are read again with it.
            ws.execute(read.format(opts="ignore_errors=true"), params)
            n_bad = nonempty - ws.scalar("SELECT count(*) FROM _raw")
            if n_bad < 0 or n_bad > FAST_REJECTS_LIMIT // 2:
                fast = False
            elif n_bad > 0:
                ws.execute("DROP TABLE _raw")
                ws.execute(read.format(opts=f"store_rejects=true, rejects_limit={FAST_REJECTS_LIMIT}, {_REJ}"), params)
            else:
                ws.execute("CREATE TEMP TABLE _rej (line BIGINT, error_type VARCHAR)")
    except Exception as exc:  # noqa: BLE001 - DuckDB raises plain exception types for files it cannot split
        msg = parsing.scrub((str(exc).strip().splitlines() or [type(exc).__name__])[0])
        note = f"DuckDB's CSV reader failed ({msg[:200]}); read line by line instead"
        fast = False
    if fast:
        n_rec, n_rej_rows, n_rej_lines = ws.rows(
            "SELECT (SELECT count(*) FROM _raw), count(*), count(DISTINCT line) FROM _rej")[0]
        fast = n_rej_rows < FAST_REJECTS_LIMIT and nonempty == n_rec + n_rej_lines
    ws.drop("_stage")
    fcol = "CAST($fname AS VARCHAR) AS _file, " if file_column else ""
    if fast:
        ws.execute(f"CREATE TEMP TABLE _stage AS SELECT rowid - (SELECT min(rowid) FROM _raw) + 1 AS _rec, "
                   f"CAST(NULL AS BIGINT) AS _line, {fcol}{sel} FROM _raw", {"fname": str(file)})
        reasons = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in READER_REASONS.items())
        ws.execute(
            "CREATE TEMP TABLE _reader_rejects AS SELECT line, NULL::VARCHAR AS column_name, "
            f"CASE min(error_type) {reasons} ELSE lower(min(error_type)) END AS reason "
            "FROM _rej GROUP BY line"
        )
    else:
        for t in ("_raw", "_rej", "_rejscan"):
            ws.execute(f"DROP TABLE IF EXISTS {t}")
        _tolerant_csv(ws, file, len(header), delim, skip, keep)
        ws.execute(f"CREATE TEMP TABLE _stage AS SELECT row_number() OVER (ORDER BY _line) AS _rec, _line, {fcol}{sel} "
                   "FROM _raw ORDER BY _line", {"fname": str(file)})
    for t in ("_raw", "_rej", "_rejscan"):
        ws.execute(f"DROP TABLE IF EXISTS {t}")
    return note


def _tolerant_csv(ws: Workspace, file: Path, ncols: int, delim: str, skip: int, keep: list[int]) -> None:
    """Split a CSV in Python, line by line, into `_raw(_line, c0..)` and `_reader_rejects`.

    Any mix of LF / CRLF / CR endings is accepted. A record continues onto the next physical
    line while a double quote is open; a quote still open at the end of the file rejects its
    first line ("unterminated quote") and every later line ("inside a quote opened on line N"),
    so no line vanishes. Each record is split by Python's csv module; a wrong number of fields
    or malformed quoting rejects that record alone. Rows are appended in batches.
    """
    import pyarrow as pa

    cols = [f"c{i}" for i in keep]  # the columns kept (positions in the header)
    ws.execute("CREATE TEMP TABLE _raw (_line BIGINT, " + ", ".join(f"{c} VARCHAR" for c in cols) + ")")
    ws.execute("CREATE TEMP TABLE _reader_rejects (line BIGINT, column_name VARCHAR, reason VARCHAR)")
    lines_out: list[int] = []
    fields_out: list[list[str]] = [[] for _ in cols]
    rej_n: list[int] = []
    rej_r: list[str] = []

    def reject(n: int, reason: str) -> None:
        rej_n.append(n)
        rej_r.append(reason)

    def flush() -> None:
        if lines_out:
            data = {"_line": pa.array(lines_out, pa.int64())}
            data.update({c: pa.array(v, pa.string()) for c, v in zip(cols, fields_out, strict=True)})
            ws.append_arrow("_raw", pa.table(data))
            lines_out.clear()
            for v in fields_out:
                v.clear()
        if rej_n:
            ws.append_arrow("_reader_rejects", pa.table({
                "line": pa.array(rej_n, pa.int64()), "column_name": pa.array([None] * len(rej_n), pa.string()),
                "reason": pa.array(rej_r, pa.string())}))
            rej_n.clear()
            rej_r.clear()

    def emit(n: int, texts: list[str]) -> None:
        try:
            rows = list(csv.reader([t + "\n" for t in texts], delimiter=delim, strict=True))
        except csv.Error:
            rows = []
        if len(rows) != 1:
            reject(n, "malformed quoting" + (f" (lines {n}-{n + len(texts) - 1})" if len(texts) > 1 else ""))
            return
        row = rows[0]
        if len(row) != ncols:
            reject(n, "too few fields" if len(row) < ncols else "too many fields")
            return
        lines_out.append(n)
        for v, i in zip(fields_out, keep, strict=True):
            v.append(row[i])

    pending: list[str] = []
    pending_start = 0
    pending_nums: list[int] = []
    for n, txt, refused in iter_lines(file):
        if n <= skip:
            continue
        if refused is not None:
            reject(n, refused.reason + (f" (inside a quote opened on line {pending_start})" if pending else ""))
            continue
        if pending:
            pending.append(txt or "")
            if txt:
                pending_nums.append(n)
            if (txt or "").count('"') % 2 == 1:
                emit(pending_start, pending)
                pending = []
        elif txt is None:
            continue  # an empty line outside a record is no record
        elif txt.count('"') % 2 == 1:
            pending, pending_start, pending_nums = [txt], n, []
        else:
            emit(n, [txt])
        if len(lines_out) + len(rej_n) >= 100_000:
            flush()
    if pending:
        reject(pending_start, "unterminated quote: the quote opened on this line never closes")
        for m in pending_nums:
            reject(m, f"inside a quote opened on line {pending_start}")
    flush()


# Text staged per chunk by the payload readers: bounds the memory of each SQL pass (DuckDB's JSON
# functions hold the parsed documents of a whole vector, up to 2,048 lines of up to 32 MiB each).
CHUNK_BYTES = 8 * 1024 * 1024


def _line_batches(file: Path, stats: LineStats, *, count_events: bool, chunk_bytes: int,
                  max_line: int = MAX_LINE_BYTES) -> Iterator[tuple]:
    """Batches (line numbers, texts, refused line numbers, reasons) of about chunk_bytes of text."""
    import pyarrow as pa

    nums: list[int] = []
    txts: list[str | None] = []
    ref_n: list[int] = []
    ref_r: list[str] = []
    size = 0

    def batch() -> tuple:
        return (pa.table({"line": pa.array(nums, pa.int64()), "txt": pa.array(txts, pa.string())}),
                pa.table({"line": pa.array(ref_n, pa.int64()), "column_name": pa.array([None] * len(ref_n), pa.string()),
                          "reason": pa.array(ref_r, pa.string())}))

    for n, txt, refused in iter_lines(file, stats, max_line=max_line):
        if refused is not None:
            reason = refused.reason
            if count_events and refused.events is not None:
                reason += (f"; it held {refused.events} events (counted by their \"event_name\" keys)"
                           if refused.events else "; the number of events it held is unknown")
            ref_n.append(n)
            ref_r.append(reason)
        else:
            nums.append(n)
            txts.append(txt)
            size += len(txt) if txt else 0
        if size > chunk_bytes or len(nums) + len(ref_n) >= 200_000:
            yield batch()
            nums, txts, ref_n, ref_r, size = [], [], [], [], 0
    yield batch()


def line_chunks(ws: Workspace, files: Path | list[Path], table: str, *, count_events: bool = False,
                chunk_bytes: int | None = None, max_line: int = MAX_LINE_BYTES) -> Iterator[None]:
    """A file's lines read one chunk at a time, over one file or many (a chunk may span files): when it
    yields, `table(line, txt, _file)` and `_refused(line, column_name, reason, _file)` hold the
    lines of one chunk (about chunk_bytes of text, in file and line order); the next chunk
    replaces them. Yields at least once (no lines gives empty tables)."""
    import pyarrow as pa

    files = [files] if isinstance(files, Path) else files
    chunk_bytes = CHUNK_BYTES if chunk_bytes is None else chunk_bytes  # read at call time: tests shrink it

    def batches() -> Iterator[tuple]:
        pend: list[tuple] = []  # (file name, lines, refused) of the files in this chunk
        size = 0
        for f in files:
            for lines, refused in _line_batches(f, LineStats(), count_events=count_events, chunk_bytes=chunk_bytes,
                                                max_line=max_line):
                pend.append((str(f), lines, refused))
                size += lines.nbytes
                if size > chunk_bytes or sum(x[1].num_rows for x in pend) >= 200_000:
                    yield pend
                    pend, size = [], 0
        yield pend

    for pend in batches():
        for t in (table, "_refused"):
            ws.execute(f"DROP TABLE IF EXISTS {t}")
        ws.execute(f"CREATE TEMP TABLE {table} (line BIGINT, txt VARCHAR, _file VARCHAR)")
        ws.execute("CREATE TEMP TABLE _refused (line BIGINT, column_name VARCHAR, reason VARCHAR, _file VARCHAR)")
        for t, k in ((table, 1), ("_refused", 2)):
            parts = [x[k].append_column("_file", pa.array([x[0]] * x[k].num_rows, pa.string())) for x in pend if x[k].num_rows]
            if parts:
                ws.append_arrow(t, pa.concat_tables(parts))
        del pend
        yield


def accumulate(ws: Workspace, name: str, query: str, params: dict | None = None, *, first: bool) -> None:
    """Create temporary table `name` from `query` (first chunk) or append the query's rows to it."""
    if first:
        ws.drop(name)
        # `IF NOT EXISTS` keeps it a plain table, not a derived relation that the engine would drop
        # when the chunk tables it was built from are replaced by the next chunk
        ws.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} AS {query}", params)
    else:
        ws.execute(f"INSERT INTO {name} {query}", params)


def csv_line_map(ws: Workspace, file: Path, first_data_line: int = 2) -> bool:
    """Give each staged CSV record its physical line: the lines not blank, not the header and
    not refused by the reader, in order. False when the count disagrees (multi-line fields)."""
    _line_flags(ws, file, "_phys")
    ws.execute(
        "CREATE OR REPLACE TEMP TABLE _datalines AS SELECT line, row_number() OVER (ORDER BY line) AS _rec "
        "FROM _phys WHERE line >= $first AND NOT blank AND line NOT IN (SELECT line FROM _reader_rejects)",
        {"first": first_data_line},
    )
    n_lines = ws.scalar("SELECT count(*) FROM _datalines")
    n_recs = ws.scalar("SELECT count(*) FROM _parsed")
    ok = n_lines == n_recs
    if ok:
        # a rebuild, not an UPDATE of every row: DuckDB keeps updated values in memory until they
        # commit, a new table spills; _parsed stays in source (_rec) order
        ws.execute("CREATE OR REPLACE TEMP TABLE _parsed AS SELECT p.* REPLACE (d.line AS _line) "
                   "FROM _parsed p JOIN _datalines d ON d._rec = p._rec ORDER BY p._rec")
    for t in ("_refused", "_phys", "_datalines"):
        ws.execute(f"DROP TABLE IF EXISTS {t}")
    return ok


def _line_flags(ws: Workspace, file: Path, table: str) -> None:
    """`table(line, blank)`: every physical line of a file and whether it is empty (a line the text
    reader refuses is not). Only the flags are kept: keeping each line's text to test it held a
    whole 476 MB CSV in a table and 1.09 GB at the peak."""
    import pyarrow as pa

    ws.execute(f"DROP TABLE IF EXISTS {table}")
    ws.execute(f"CREATE TEMP TABLE {table} (line BIGINT, blank BOOLEAN)")
    nums: list[int] = []
    blank: list[bool] = []
    for n, txt, refused in iter_lines(file):
        nums.append(n)
        blank.append(txt is None and refused is None)
        if len(nums) >= 1_000_000:
            ws.append_arrow(table, pa.table({"line": pa.array(nums, pa.int64()), "blank": pa.array(blank, pa.bool_())}))
            nums, blank = [], []
    if nums:
        ws.append_arrow(table, pa.table({"line": pa.array(nums, pa.int64()), "blank": pa.array(blank, pa.bool_())}))


# One pretty-printed JSON document is parsed whole (by Python to recognise it, by DuckDB to read
# it): a larger one is refused with what to do. A JSON array is streamed element by element
# (DuckDB's array reader) and finalized in chunks, whatever its size.
SINGLE_DOC_MAX_BYTES = 32 * 1024 * 1024


def _whole_docs(ws: Workspace, file: Path) -> str | None:
    """A JSON array or one pretty-printed document into `_jall(line, doc, _file, _chunk)`, its
    elements numbered from 1 and cut into chunks of about CHUNK_BYTES of text (at most 200,000
    elements); returns the note, or None when the file is JSON Lines."""
    single = False
    array = is_json_array(file)
    if not array and _multiline(file) and not is_gzip(file):
        size = file.stat().st_size
        if size >= SINGLE_DOC_MAX_BYTES:
            if _pretty_printed(file):
                raise InputError(
                    f"{file}: one pretty-printed JSON document of {size / 1e6:.0f} MB; documents over "
                    f"{SINGLE_DOC_MAX_BYTES // (1024 * 1024)} MiB are not read whole: write it as JSON Lines "
                    "(one object per line, e.g. `jq -c '.results[]'`) or as a JSON array")
        else:
            # one pretty-printed object? (probed in Python: DuckDB's read_text fails on invalid UTF-8)
            try:
                with open(file, "rb") as fh:
                    single = isinstance(json.loads(fh.read().decode("utf-8-sig")), dict)
            except (ValueError, OSError):
                single = False
    if not (array or single):
        return None
    chunk_bytes = CHUNK_BYTES  # read at call time: tests shrink it
    try:
        # a streaming window (no ORDER BY): elements keep the file's order
        ws.execute(
            "CREATE TEMP TABLE _jall AS SELECT line, doc, CAST($f AS VARCHAR) AS _file, "
            "CAST((cum - n) // $cb AS BIGINT) + (line - 1) // 200000 AS _chunk FROM ("
            "SELECT row_number() OVER () AS line, doc, n, sum(n) OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum "
            "FROM (SELECT CAST(json AS VARCHAR) AS doc, strlen(CAST(json AS VARCHAR)) AS n "
            "FROM read_json_objects($f, format='array')))" if array else
            "CREATE TEMP TABLE _jall AS SELECT 1 AS line, CAST(content AS VARCHAR) AS doc, CAST($f AS VARCHAR) AS _file, "
            "0 AS _chunk FROM read_text($f)",
            {"f": str(file), "cb": chunk_bytes},
        )
    except Exception as exc:
        raise InputError(f"{file}: not a valid JSON array: {str(exc).splitlines()[0]}") from exc
    return "positions are array elements" if array else "one JSON document"


def _pretty_printed(file: Path) -> bool:
    """True when a file starts like one pretty-printed JSON object (its first line an opening
    brace, none of its first lines a whole JSON value), not like JSON Lines."""
    lines = [ln for ln in head_text(file).splitlines() if ln.strip()][:50]
    if not lines or not lines[0].lstrip().startswith("{"):
        return False
    for ln in lines:
        try:
            json.loads(ln)
            return False
        except ValueError:
            continue
    return True


def _whole_doc_chunks(ws: Workspace, note: str) -> Iterator[str]:
    """The chunks of `_jall` one at a time into `_jdocs` (and an empty `_refused`), yielding the note."""
    for (k,) in ws.rows("SELECT DISTINCT _chunk FROM _jall ORDER BY 1"):
        ws.drop("_jlines", "_refused")
        # _chunk grows with the element number: row groups of other chunks are skipped by their min/max
        ws.execute("CREATE TEMP TABLE _jlines AS SELECT line, doc, _file FROM _jall WHERE _chunk = $k ORDER BY line", {"k": k})
        ws.execute("CREATE TEMP TABLE _refused (line BIGINT, column_name VARCHAR, reason VARCHAR, _file VARCHAR)")
        _docs_from_jlines(ws)
        yield note
    ws.drop("_jall")


def _docs_from_jlines(ws: Workspace) -> None:
    # json_type fails on invalid JSON and SQL does not short-circuit, hence the CASE.
    ws.execute(
        "CREATE OR REPLACE TEMP TABLE _jdocs AS SELECT line, doc, valid, valid AND starts_with(ltrim(doc), '{') AS is_obj, _file "
        "FROM (SELECT *, json_valid(doc) AS valid FROM _jlines)"
    )
    for t in ("_lrej", "_lrejscan", "_jl", "_jlines"):
        ws.execute(f"DROP TABLE IF EXISTS {t}")


def doc_chunks(ws: Workspace, files: Path | list[Path], *, count_events: bool = False,
               max_line: int = MAX_LINE_BYTES) -> Iterator[str]:
    """Read a JSON file one chunk of JSON Lines at a time, over one file or many (see `line_chunks`): when
    it yields (the note), `_jdocs(line, doc, valid, is_obj, _file)` and `_refused` hold one chunk.
    A JSON array (one file only) is cut into chunks of elements the same way; one pretty-printed
    document is one chunk."""
    for t in ("_lrej", "_lrejscan", "_jl", "_jlines", "_refused", "_jall"):
        ws.execute(f"DROP TABLE IF EXISTS {t}")
    note = _whole_docs(ws, files) if isinstance(files, Path) else None
    if note is not None:
        yield from _whole_doc_chunks(ws, note)
        return
    for _ in line_chunks(ws, files, "_jl", count_events=count_events, max_line=max_line):
        ws.execute("DROP TABLE IF EXISTS _jlines")
        ws.execute("CREATE TEMP TABLE _jlines AS SELECT line, txt AS doc, _file FROM _jl WHERE txt IS NOT NULL AND trim(txt) <> ''")
        _docs_from_jlines(ws)
        yield ""


def is_json_lines(file: Path) -> bool:
    """True when a JSON file is JSON Lines (not one array, not one pretty-printed document), so it
    can join a multi-file scan of payload logs."""
    return not is_json_array(file) and not _multiline(file)


_JSON_CALL = re.compile(r"(json_extract_string|json_extract|json_type)\((doc|b), '(\$\.[^']+)'\)")


def parse_once(sql: str) -> str:
    """Rewrite `f(doc, '$.k')` calls so each document is parsed once: every path of `doc` (of `b`)
    is extracted in one `json_extract(doc, [paths])` call into `_d` (`_b`), and each call reads
    its small element. Parsing a 3 MB batch twenty times per row cost gigabytes."""
    paths: dict[str, list[str]] = {"doc": [], "b": []}

    def sub(m: re.Match) -> str:
        fn, src, path = m.groups()
        lst = paths[src]
        if path not in lst:
            lst.append(path)
        e = f"_{src[0]}[{lst.index(path) + 1}]"
        return {"json_extract_string": f"json_extract_string({e}, '$')", "json_extract": e,
                "json_type": f"json_type({e})"}[fn]

    out = _JSON_CALL.sub(sub, sql)
    return (out.replace("_paths_of_doc", f"json_extract(doc, {path_list(paths['doc'])})")
               .replace("_paths_of_b", f"json_extract(b, {path_list(paths['b'])})"))


def path_list(paths: list[str]) -> str:
    # constant JSON paths from this module (never data), as a SQL list literal
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def _multiline(file: Path) -> bool:
    lines = [ln for ln in head_text(file).splitlines() if ln.strip()]
    return len(lines) > 1 and not lines[0].rstrip().endswith("}")


def bad_docs_sql(*, count_events: bool = False, with_file: bool = False) -> str:
    """Rows of `_jdocs` that are not JSON objects, as reader rejects. With count_events (payload
    logs), a broken line's reason says how many events it held, counted by `"event_name"` keys.
    With with_file (chunked readers, `doc_chunks`), each reject names its file in `_file`."""
    n = "((length(doc) - length(replace(doc, '\"event_name\"', ''))) // 12)"
    held = (f"|| CASE WHEN NOT valid AND {n} > 0 THEN '; it held ' || {n} "
            "|| ' events (counted by their \"event_name\" keys)' ELSE '' END" if count_events else "")
    f = ", _file" if with_file else ""
    return ("SELECT line, NULL::VARCHAR AS column_name, CASE WHEN valid THEN 'not a JSON object' "
            f"ELSE 'broken JSON' END {held} AS reason{f} FROM _jdocs WHERE NOT is_obj "
            f"UNION ALL SELECT line, column_name, reason{f} FROM _refused")


def stage_json(ws: Workspace, file: Path, table: schema.Table, spec: SourceSpec) -> Staged:
    """Read JSON Lines / JSON into `_stage`: one object per row, broken lines rejected (all chunks at
    once; the load itself streams with `json_chunks`)."""
    from capi_audit.io.base import collect_chunks

    return collect_chunks(ws, json_chunks(ws, spec, table, file))


def json_chunks(ws: Workspace, spec: SourceSpec, table: schema.Table, files: Path | list[Path]) -> Iterator[Staged]:
    """Stage JSON Lines (one file, or the files of a glob: chunks then span files) one chunk of
    lines at a time, each finalized at its yield: memory is bounded by a chunk (CHUNK_BYTES of
    text), not by the file. Two passes: the first reads the keys of every object (columns are
    resolved on the keys of the whole file, or of all the files of a glob together), the second
    stages. A JSON array or one pretty-printed document (one file only) is one chunk."""
    batch = not isinstance(files, Path)
    first_file = files[0] if isinstance(files, list) else files
    keys: set[str] = set()
    any_obj = False
    for _ in doc_chunks(ws, files):
        keys.update(r[0] for r in ws.rows("SELECT DISTINCT unnest(json_keys(doc)) FROM _jdocs WHERE is_obj"))
        any_obj = any_obj or bool(ws.scalar("SELECT count(*) FROM _jdocs WHERE is_obj"))
    ws.drop("_jdocs", "_refused")
    if keys or any_obj:
        mapping, ignored = resolve_columns(spec, table, sorted(keys), first_file)
    else:  # no line is a JSON object: every line is a reject, whatever the columns
        mapping, ignored = {}, []
    params, sels = _json_selects(mapping)
    sel_sql = (", " + ", ".join(sels)) if sels else ""
    n_staged = 0
    for note in doc_chunks(ws, files):
        accumulate(ws, "_stage", f"SELECT _file, row_number() OVER (ORDER BY _file, line) + $rec0 AS _rec, "
                   f"line AS _line{sel_sql} FROM {JSON_VALUES} ORDER BY _file, line",
                   {**params, "rec0": n_staged}, first=True)
        n_staged += ws.scalar("SELECT count(*) FROM _stage")
        accumulate(ws, "_reader_rejects", bad_docs_sql(with_file=True), first=True)
        ws.drop("_jdocs", "_refused")
        yield Staged(columns=dict.fromkeys(mapping, "VARCHAR"), ignored_columns=tuple(ignored),
                     note="" if batch else note)


def _json_selects(mapping: dict[str, str]) -> tuple[dict[str, object], list[str]]:
    """Bound JSON paths and the SELECT items that read each mapped key (objects and lists as their
    JSON text, scalars as text), named by their canonical column. The items read `_x`, the list of
    every mapped key's value (`json_extract(doc, $jpaths)`, see `JSON_VALUES`): one parse per
    document. Two calls per column parsed a document fifty times, and 2,000 ordinary event lines
    of 1.4 kB with 25 keys ran out of the load's 400 MB."""
    sels = []
    for i, canon in enumerate(mapping, 1):
        sels.append(
            f"CASE WHEN json_type(_x[{i}]) IN ('ARRAY', 'OBJECT') THEN CAST(_x[{i}] AS VARCHAR) "
            f"ELSE json_extract_string(_x[{i}], '$') END AS {parsing.quote_ident(canon)}")
    return {"jpaths": ["$." + '"' + src.replace('"', '\\"') + '"' for src in mapping.values()]}, sels


JSON_VALUES = "(SELECT *, json_extract(doc, $jpaths::VARCHAR[]) AS _x FROM _jdocs WHERE is_obj)"


def stage_json_many(ws: Workspace, spec: SourceSpec, files: list[Path], table: schema.Table
                    ) -> tuple[Staged, list[Path], list[Path]]:
    """Stage the JSON Lines files of a glob in one pass (all chunks at once; see `json_many_chunks`)."""
    from capi_audit.io.base import collect_chunks

    chunks, batch, rest = json_many_chunks(ws, spec, files, table)
    return (collect_chunks(ws, chunks) if batch else Staged(columns={})), batch, rest


def json_many_chunks(ws: Workspace, spec: SourceSpec, files: list[Path], table: schema.Table
                     ) -> tuple[Iterator[Staged], list[Path], list[Path]]:
    """Stage the JSON Lines files of a glob in one scan (chunks of lines spanning files): `_stage`
    with `_file`, reader rejects per file. Columns are resolved on the keys of all the files
    together (ignored columns are listed for the whole glob). Arrays, pretty-printed documents
    and empty files are left to the one-file path."""
    from capi_audit.io.base import lines_batch

    batch, rest = lines_batch(files, json_lines=True)
    if len(batch) < 2:
        return iter(()), [], files
    return json_chunks(ws, spec, table, batch), batch, rest


def _sql_str(text: str) -> str:
    # A view cannot hold a bound parameter, so the file path is quoted as a SQL string literal.
    return "'" + text.replace("'", "''") + "'"


# Parquet rows finalized per chunk: the parsed copy of a chunk of wide event rows stays small (a
# 500 MB file of 2.4 million wide rows in one chunk peaked at 0.97 GB).
PARQUET_CHUNK_ROWS = 500_000


def stage_parquet(ws: Workspace, file: Path, table: schema.Table, spec: SourceSpec) -> Staged:
    """Read Parquet into `_stage` keeping native types; positions are row numbers from 1."""
    return next(parquet_chunks(ws, file, table, spec, whole=True))


def parquet_chunks(ws: Workspace, file: Path, table: schema.Table, spec: SourceSpec, *,
                   whole: bool = False) -> Iterator[Staged]:
    """`_stage` as a view over PARQUET_CHUNK_ROWS rows of the file at a time (by the reader's row
    number), each finalized before the next; with whole, one view over the whole file."""
    try:
        described = ws.rows("DESCRIBE SELECT * FROM read_parquet($f)", {"f": str(file)})
        n_rows = ws.scalar("SELECT count(*) FROM read_parquet($f)", {"f": str(file)})
    except Exception as exc:
        raise InputError(f"{file}: not a readable Parquet file: {str(exc).splitlines()[0]}") from exc
    types = {r[0]: r[1] for r in described}
    mapping, ignored = resolve_columns(spec, table, list(types), file)
    sel = ", ".join(f"{parsing.quote_ident(src)} AS {parsing.quote_ident(canon)}" for canon, src in mapping.items())
    staged = Staged(columns={c: types[s] for c, s in mapping.items()}, ignored_columns=tuple(ignored))
    # a view: Parquet is typed and positioned already, so parsing reads the file directly
    if "file_row_number" in types:  # the reader's row-number column would clash with the file's own: one chunk
        ws.drop("_stage", "_reader_rejects")
        ws.execute("CREATE TEMP TABLE _reader_rejects (line BIGINT, column_name VARCHAR, reason VARCHAR)")
        ws.execute(
            f"CREATE TEMP VIEW _stage AS SELECT row_number() OVER () AS _rec, row_number() OVER () AS _line"
            f"{', ' + sel if sel else ''} FROM read_parquet({_sql_str(str(file))})")
        yield staged
        return
    size = PARQUET_CHUNK_ROWS  # read at call time: tests shrink it
    bounds = [(0, None)] if whole or n_rows <= size else [(lo, lo + size) for lo in range(0, int(n_rows), size)]
    for lo, hi in bounds:
        ws.drop("_stage", "_reader_rejects")
        ws.execute("CREATE TEMP TABLE _reader_rejects (line BIGINT, column_name VARCHAR, reason VARCHAR)")
        # constant row numbers from this function (a view holds no bound parameter)
        where = "" if hi is None else f" WHERE file_row_number >= {int(lo)} AND file_row_number < {int(hi)}"
        ws.execute(
            f"CREATE TEMP VIEW _stage AS SELECT file_row_number + 1 AS _rec, file_row_number + 1 AS _line"
            f"{', ' + sel if sel else ''} FROM read_parquet({_sql_str(str(file))}, file_row_number=true){where}"
        )
        yield staged


def is_json_array(file: Path) -> bool:
    """True when a .json file holds one array rather than one object per line."""
    head = head_text(file, 1 << 20).lstrip(" \t\r\n")
    if not head.startswith("["):
        return False
    # JSON Lines whose first line happens to be an array are not one array document
    lines = [ln for ln in head.splitlines() if ln.strip()]
    if len(lines) > 1:
        try:
            json.loads(lines[0])
            return False
        except ValueError:
            pass
    return True


class CanonicalReader(Reader):
    """Files whose columns already carry the canonical names (or are mapped with `columns`)."""

    name = "canonical"
    tables = ()

    def stage_many(self, ws: Workspace, spec: SourceSpec, files: list[Path], table: schema.Table
                   ) -> tuple[Staged, list[Path], list[Path]]:
        """Stage many small files of one glob in ONE multi-file scan (time linear in rows).

        Returns (staged, files in the scan, files left for the one-file path). JSON Lines: chunks
        of lines spanning files. Parquet: one `read_parquet` over the files whose mapped columns
        agree in name and type. CSV: one `read_csv` per header (io/multi.py), for the files that
        can be checked line for line; any other file is loaded alone (tolerant path, exact line
        numbers)."""
        from capi_audit.io.multi import CsvLayout, stage_csv_many, stage_parquet_many

        kinds = {kind_of(f) for f in files}
        if kinds == {"json"}:
            return stage_json_many(ws, spec, files, table)
        if kinds == {"parquet"}:
            return stage_parquet_many(ws, files, lambda names, f: resolve_columns(spec, table, names, f))
        layouts = []
        ignored: dict[str, tuple[str, ...]] = {}
        for f in files:
            if kind_of(f) != "csv" or is_empty(f):
                continue
            delim = "\t" if f.name.lower().endswith(".tsv") else ","
            try:
                header = read_header(f, delim)
                mapping, ign = resolve_columns(spec, table, header, f)
            except (InputError, OSError, UnicodeError, csv.Error):
                continue  # loaded alone, where its problem is reported
            layouts.append(CsvLayout(f, tuple(header), dict(mapping), 1, delim))
            ignored[str(f)] = tuple(ign)
        batch = stage_csv_many(ws, layouts, header_rows=True,
                               defaults={"platform": spec.platform} if spec.platform is not None else None)
        if len(batch) < 2:
            ws.drop("_stage", "_reader_rejects")
            return Staged(columns={}), [], files
        names = [r[0] for r in ws.rows("DESCRIBE _stage")]
        columns = {c: "VARCHAR" for c in names if c not in ("_file", "_rec", "_line")}
        chosen = set(batch)
        staged = Staged(columns=columns, ignored_columns=ignored[str(batch[0])],
                        file_ignored={str(f): ignored[str(f)] for f in batch})
        return staged, [f for f in files if f in chosen], [f for f in files if f not in chosen]

    def stage_chunks(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Iterator[Staged]:
        """JSON Lines stream chunk by chunk (`json_chunks`), Parquet by row ranges
        (`parquet_chunks`); CSV is one chunk."""
        ensure_file(file)
        if kind_of(file) == "json":
            return json_chunks(ws, spec, table, file)
        if kind_of(file) == "parquet":
            return parquet_chunks(ws, file, table, spec)
        return super().stage_chunks(ws, spec, file, table)

    def stage_many_chunks(self, ws: Workspace, spec: SourceSpec, files: list[Path], table: schema.Table
                          ) -> tuple[Iterator[Staged], list[Path], list[Path]]:
        """JSON Lines globs stream chunk by chunk (`json_many_chunks`); others as `stage_many`."""
        if all(kind_of(f) == "json" for f in files):
            return json_many_chunks(ws, spec, files, table)
        return super().stage_many_chunks(ws, spec, files, table)

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
        # a UTF-16 CSV (Excel's "Unicode text") was read as UTF-8: every row rejected
        note = stage_csv(ws, file, header, mapping, delim, encoding=detect_encoding(head_bytes(file, 4)))
        return Staged(columns=dict.fromkeys(mapping, "VARCHAR"), ignored_columns=tuple(ignored),
                      header_values=dict(mapping), first_data_line=2, note=note)
