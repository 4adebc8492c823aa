"""Many files of one glob in one pass: DuckDB's multi-file readers with a `filename` column.

A glob of thousands of small daily exports used to be staged file by file (a few hundred
milliseconds of fixed cost each). Here the files that can join one scan are read together and
every row keeps its file in `_stage._file`, so `finalize_files` accounts per file exactly as for
one file (rows, rejects with file and line, notes, skipped rows, ignored columns).

CSV (`stage_csv_many`): files are grouped by layout (header, lines above the first record,
delimiter); each group is one `read_csv` over its files, and the groups are put together by
column name. A file joins only when the scan can be checked against it line for line: UTF-8, one
kind of line ending, no empty line, no gzip without a `.gz` name, and afterwards exactly one
record per physical line after the header. Any other file (and any file whose layout cannot be
read) is left to the one-file path, with its tolerant reading, exact line numbers and messages.

Parquet (`stage_parquet_many`): files whose mapped columns have the same source names and types
are one `read_parquet(..., union_by_name = true)`; the others load alone.

Formats whose rows need more than renaming (vendor exports) stage each group of files sharing a
layout, transform it with the same SQL as one file (partitioned by `_file`), and the groups are
stacked (`stack_groups`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capi_audit import parsing
from capi_audit.errors import InputError
from capi_audit.io.base import Staged
from capi_audit.io.lines import count_lines, is_empty, is_gzip

if TYPE_CHECKING:
    from capi_audit import schema
    from capi_audit.config import SourceSpec
    from capi_audit.workspace import Workspace

# At most this many distinct layouts (headers, schemas) join one scan; files of further layouts
# load alone (a glob of daily exports has one or two).
MAX_GROUPS = 16
# Not one file's problem but the scan's: the file is loaded alone, where it gets its own message.
SKIP_ERRORS = (InputError, OSError, UnicodeError, ValueError, LookupError)


@dataclass(frozen=True)
class CsvLayout:
    """How one CSV file of a glob is read: its header, the columns wanted under their staged
    names, the physical lines before the first record, the delimiter."""

    file: Path
    header: tuple[str, ...]
    wanted: dict[str, str]  # staged name -> source column (a source column may feed several)
    skip: int = 1
    delim: str = ","
    encoding: str = "utf-8"
    extra: dict[str, Any] = field(default_factory=dict)  # format-specific facts (notes, zones)


# A file larger than this (uncompressed) loads alone: its fixed cost is small beside its reading,
# and a scan holds all its files' rows at once (a 4 kB gzip of one 200 MB line took 0.74 GB in a
# scan, 0.43 GB alone). The files of one scan hold at most SCAN_MAX_BYTES together.
FILE_MAX_BYTES = 16 * 1024 * 1024
SCAN_MAX_BYTES = 512 * 1024 * 1024
# A header wider than this loads alone (nine files of 40,000 columns took 0.49 GB in one scan;
# alone, only the mapped columns are kept).
MAX_COLUMNS = 2000


def data_size(file: Path) -> int:
    """Bytes of the file's content: a gzip's uncompressed size from its trailer (modulo 4 GiB,
    so a huge stream may look small: count_lines still streams it), else the file's size."""
    size = file.stat().st_size
    if is_gzip(file) and size >= 18:
        with open(file, "rb") as fh:
            fh.seek(-4, 2)
            return max(size, int.from_bytes(fh.read(4), "little"))
    return size


def small_files(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """(files that may join one scan, the rest): each at most FILE_MAX_BYTES, together at most
    SCAN_MAX_BYTES."""
    batch, rest, total = [], [], 0
    for f in files:
        try:
            n = data_size(f)
        except OSError:
            n = FILE_MAX_BYTES + 1
        if n <= FILE_MAX_BYTES and total + n <= SCAN_MAX_BYTES:
            batch.append(f)
            total += n
        else:
            rest.append(f)
    return batch, rest


def _joinable(lay: CsvLayout) -> int | None:
    """Records the scan must find in the file (non-empty physical lines after the header), or
    None when the file cannot be checked line for line and must load alone."""
    if lay.encoding != "utf-8" or len(set(lay.header)) != len(lay.header) or not 0 < len(lay.header) <= MAX_COLUMNS:
        return None
    f = lay.file
    if is_gzip(f) and not f.name.lower().endswith(".gz"):
        return None  # DuckDB picks the decompression by the file name
    nonempty, stats = count_lines(f, start=1)
    if stats.encoding != "utf-8" or len(stats.endings) > 1 or nonempty != stats.physical:
        return None  # mixed endings or empty lines: the one-file path numbers them exactly
    return stats.physical - lay.skip


def reject_rows(ws: Workspace, query: str, params: dict | None = None) -> None:
    """Append reader rejects `query` gives as (line, column_name, reason, _file) to
    `_reader_rejects`, with or without its `_file` column (multi-file or one-file staging)."""
    has_file = "_file" in [r[0] for r in ws.rows("DESCRIBE _reader_rejects")]
    cols = "line, column_name, reason" + (", _file" if has_file else "")
    ws.execute(f"INSERT INTO _reader_rejects ({cols}) SELECT {cols} FROM ({query})", params)


def stage_csv_many(ws: Workspace, layouts: list[CsvLayout], *, header_rows: bool = False,
                   defaults: dict[str, str | None] | None = None) -> list[Path]:
    """Read the CSV files that can join one multi-file scan into `_stage(_file, _rec, _line,
    <staged names>)` and an empty `_reader_rejects(line, column_name, reason, _file)`; returns
    the files read (the others are left alone). With header_rows, a record repeating its file's
    header in every wanted column is a reject (`repeated header line`), as `finalize` makes it for
    one file. `defaults` fills a staged name a layout lacks (the source's default platform)."""
    groups: dict[tuple, list[tuple[CsvLayout, int]]] = {}
    small = set(small_files([lay.file for lay in layouts])[0])
    for lay in layouts:
        if lay.file not in small:
            continue
        try:
            n = _joinable(lay)
        except SKIP_ERRORS:
            n = None
        if n is None or n < 0:
            continue
        key = (lay.header, lay.skip, lay.delim)
        if key in groups or len(groups) < MAX_GROUPS:
            groups.setdefault(key, []).append((lay, n))
    names: list[str] = []
    for members in groups.values():
        for canon in members[0][0].wanted:
            if canon not in names:
                names.append(canon)
    expected: dict[str, int] = {}
    parts: list[str] = []
    ws.drop("_stage", "_reader_rejects")
    q = parsing.quote_ident
    for g, ((header, skip, delim), members) in enumerate(groups.items()):
        pos = {h: f"c{i}" for i, h in enumerate(header)}
        wanted = members[0][0].wanted
        keep = sorted({int(pos[src][1:]) for src in wanted.values()}) or [0]
        sel = [f"{pos[wanted[c]]} AS {q(c)}" if c in wanted else
               (f"CAST($d_{i} AS VARCHAR) AS {q(c)}" if c in (defaults or {}) else f"CAST(NULL AS VARCHAR) AS {q(c)}")
               for i, c in enumerate(names)]
        hdr = (" AND ".join(f"{pos[src]} IS NOT DISTINCT FROM $h{g}_{i}" for i, src in enumerate(wanted.values()))
               if header_rows and wanted else "FALSE")
        params: dict[str, Any] = {"f": [str(m[0].file) for m in members], "d": delim, "skip": skip,
                                  "cols": {f"c{i}": "VARCHAR" for i in range(len(header))}}
        params.update({f"h{g}_{i}": src for i, src in enumerate(wanted.values())})
        params.update({f"d_{i}": (defaults or {}).get(c) for i, c in enumerate(names) if c not in wanted
                       and c in (defaults or {})})
        ws.drop(f"_rawg{g}", f"_csvg{g}")
        ws.execute(
            f"CREATE TEMP TABLE _csvg{g} AS SELECT _file, {', '.join(f'c{i}' for i in keep)} FROM read_csv($f, columns=$cols, "
            "skip=$skip, header=false, auto_detect=false, delim=$d, quote='\"', escape='\"', strict_mode=true, "
            "ignore_errors=true, filename='_file')", params)
        # the table keeps the scan's order (files in the order given, lines in file order)
        ws.execute(
            f"CREATE TEMP TABLE _rawg{g} AS SELECT _file, row_number() OVER (PARTITION BY _file ORDER BY rowid) + $skip AS _line, "
            f"{hdr} AS _hdr{', ' + ', '.join(sel) if sel else ''} FROM _csvg{g}",
            params)
        ws.drop(f"_csvg{g}")
        expected.update({str(lay.file): n for lay, n in members})
        parts.append(f"SELECT * FROM _rawg{g}")
    if not parts:
        ws.execute("CREATE TEMP TABLE _reader_rejects (line BIGINT, column_name VARCHAR, reason VARCHAR, _file VARCHAR)")
        return []
    ws.execute(f"CREATE TEMP TABLE _stage AS {' UNION ALL BY NAME '.join(parts)}")
    ws.drop(*(f"_rawg{g}" for g in range(len(parts))))
    got = dict(ws.rows("SELECT _file, count(*) FROM _stage GROUP BY 1"))
    bad = [f for f, n in expected.items() if got.get(f, 0) != n]
    if bad:  # a line the reader refused or split differently: that file loads alone
        ws.execute("DELETE FROM _stage WHERE list_contains($bad, _file)", {"bad": bad})
    ws.execute("CREATE TEMP TABLE _reader_rejects AS SELECT _line AS line, CAST(NULL AS VARCHAR) AS column_name, "
               "'repeated header line' AS reason, _file FROM _stage WHERE _hdr")
    cols = ", ".join(q(c) for c in names)
    ws.execute("CREATE OR REPLACE TEMP TABLE _stage AS SELECT _file, row_number() OVER (ORDER BY _file, _line) AS _rec, "
               f"_line{', ' + cols if cols else ''} FROM _stage WHERE NOT _hdr ORDER BY _file, _line")
    order = {str(lay.file): k for k, lay in enumerate(layouts)}
    return sorted((Path(f) for f in expected if f not in bad), key=lambda p: order[str(p)])


Transform = Callable[["Workspace", list[CsvLayout]], Staged]


def stack_groups(ws: Workspace, files: list[Path], layout_of: Callable[[Path], tuple[CsvLayout, Hashable]],
                 transform: Transform) -> tuple[Staged, list[Path], list[Path]]:
    """Stage the CSV files of a glob with one multi-file scan per group of files sharing a layout
    key (what changes the format's SQL), transform each group as one file would be
    (`transform(ws, layouts)` on `_stage` / `_reader_rejects`, partitioned by `_file`), and stack
    the groups into one `_stage` / `_reader_rejects`. Returns (staged, files in the scan, rest).

    `layout_of(file)` reads a file's layout; a file it refuses (its message is the one-file
    path's to give) is left alone, as are empty files."""
    keyed: dict[Hashable, list[CsvLayout]] = {}
    for f in files:
        try:
            if is_empty(f):
                continue
            lay, key = layout_of(f)
        except SKIP_ERRORS:
            continue
        if key in keyed or len(keyed) < MAX_GROUPS:
            keyed.setdefault(key, []).append(lay)
    batch: list[Path] = []
    parts: list[Staged] = []
    for lays in keyed.values():
        got = stage_csv_many(ws, lays)
        if not got:
            ws.drop("_stage", "_reader_rejects")
            continue
        joined = set(got)
        staged = transform(ws, [lay for lay in lays if lay.file in joined])
        k = len(parts)
        ws.drop(f"_sg{k}", f"_rg{k}")
        ws.execute(f"ALTER TABLE _stage RENAME TO _sg{k}")
        ws.execute(f"ALTER TABLE _reader_rejects RENAME TO _rg{k}")
        batch += got
        parts.append(staged)
    if len(batch) < 2:
        ws.drop(*(f"_sg{k}" for k in range(len(parts))), *(f"_rg{k}" for k in range(len(parts))))
        return Staged(columns={}), [], files
    ws.drop("_stage", "_reader_rejects")
    stage_union = " UNION ALL BY NAME ".join(f"SELECT * FROM _sg{k}" for k in range(len(parts)))
    ws.execute(f"CREATE TEMP TABLE _stage AS SELECT * EXCLUDE (_rec), row_number() OVER (ORDER BY _file, _rec) AS _rec "
               f"FROM ({stage_union}) ORDER BY _file, _rec")
    ws.execute("CREATE TEMP TABLE _reader_rejects AS " + " UNION ALL ".join(
        f"SELECT line, column_name, reason, _file FROM _rg{k}" for k in range(len(parts))))
    ws.drop(*(f"_sg{k}" for k in range(len(parts))), *(f"_rg{k}" for k in range(len(parts))))
    chosen = set(batch)
    return merge_staged(parts), [f for f in files if f in chosen], [f for f in files if f not in chosen]


class LayoutGlob:
    """Mixin of a CSV-export reader with `_layout(ws, spec, file)` (its layout and the key of what
    changes its SQL) and `_transform(ws, spec, layouts)`: a glob is one multi-file scan per layout
    group (`stack_groups`), each group transformed as one file would be."""

    def stage_many(self, ws: Workspace, spec: SourceSpec, files: list[Path], table: schema.Table
                   ) -> tuple[Staged, list[Path], list[Path]]:
        """Many exports of one glob: one multi-file scan per layout (see `stack_groups`)."""
        return stack_groups(ws, files, lambda f: self._layout(ws, spec, f),  # type: ignore[attr-defined]
                            lambda ws_, lays: self._transform(ws_, spec, lays))  # type: ignore[attr-defined]


def one_file(staged: Staged, file: Path, note: str = "", **kw: Any) -> Staged:
    """The Staged of a one-file read from a transform's per-file Staged: its note (after `note`,
    e.g. the CSV reader's), skipped rows and ignored columns."""
    f = str(file)
    return replace(staged, note="; ".join(n for n in (note, (staged.file_notes or {}).get(f, staged.note)) if n),
                   skipped=(staged.file_skipped or {}).get(f, staged.skipped),
                   ignored_columns=(staged.file_ignored or {}).get(f, staged.ignored_columns),
                   file_notes=None, file_skipped=None, file_ignored=None, **kw)


def merge_staged(parts: list[Staged]) -> Staged:
    """One Staged for the stacked groups: columns united, per-file notes, skipped rows and
    ignored columns kept per file."""
    columns: dict[str, str] = {}
    notes: dict[str, str] = {}
    skipped: dict[str, int] = {}
    ignored: dict[str, tuple[str, ...]] = {}
    for p in parts:
        columns.update(p.columns)
        notes.update(p.file_notes or {})
        skipped.update(p.file_skipped or {})
        ignored.update(p.file_ignored or {})
    first = parts[0]
    return replace(first, columns=columns, file_notes=notes, file_skipped=skipped, file_ignored=ignored,
                   weighted=any(p.weighted for p in parts), header_values=None, first_data_line=None)


# -- Parquet ---------------------------------------------------------------------------------
def _sql_str(text: str) -> str:
    # a view cannot hold a bound parameter, so file paths are quoted as SQL string literals
    return "'" + text.replace("'", "''") + "'"


def stage_parquet_many(ws: Workspace, files: list[Path], resolve: Callable[[list[str], Path], tuple[dict, list]]
                       ) -> tuple[Staged, list[Path], list[Path]]:
    """Stage the Parquet files of a glob with ONE `read_parquet([...], filename, union_by_name)`.

    Files join when their mapped columns have the same source names and types as the largest such
    group (columns they do not map may differ: union_by_name); each keeps its row numbers
    (`file_row_number`). Others (another typing, unreadable, missing a required column) load alone.
    `resolve(column names, file)` is the source's column resolution (mapping, ignored)."""
    import pyarrow.parquet as pq

    sigs: dict[tuple, list[Path]] = {}
    info: dict[Path, tuple[dict, list]] = {}
    for f in small_files(files)[0]:
        try:
            schema = pq.read_schema(f)
            mapping, ignored = resolve(list(schema.names), f)
        except Exception:  # noqa: BLE001 - unreadable or unmappable: the one-file path says why
            continue
        if len(set(schema.names)) != len(schema.names) or "file_row_number" in schema.names:
            continue  # loaded alone (the one-file path numbers rows itself)
        sig = tuple(sorted((c, s, str(schema.field(s).type)) for c, s in mapping.items()))
        info[f] = (mapping, ignored)
        sigs.setdefault(sig, []).append(f)
    if not sigs:
        return Staged(columns={}), [], files
    batch = max(sigs.values(), key=len)
    if len(batch) < 2:
        return Staged(columns={}), [], files
    mapping = info[batch[0]][0]
    try:
        types = dict(ws.rows(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet({_sql_str(str(batch[0]))}))"))
    except Exception:  # noqa: BLE001
        return Staged(columns={}), [], files
    q = parsing.quote_ident
    sel = ", ".join(f"{q(src)} AS {q(canon)}" for canon, src in mapping.items())
    # the file-name column must not clash with a column of the files (a file may have `_file`)
    names = {n.lower() for f in batch for n in pq.read_schema(f).names}
    fcol = next(c for c in ("_file", "_capi_file", "_capi_audit_file_name") if c not in names)
    file_list = "[" + ", ".join(_sql_str(str(f)) for f in batch) + "]"
    ws.drop("_stage", "_reader_rejects")
    # a table, not a view: parsing reads `_stage` in several statements; with a view over 2,000
    # one-row files the load peaked at 1.36 GB, with a table at 0.34 GB
    ws.execute(f"CREATE TEMP TABLE _stage AS SELECT {q(fcol)} AS _file, file_row_number + 1 AS _rec, file_row_number + 1 AS _line"
               f"{', ' + sel if sel else ''} FROM read_parquet({file_list}, filename={_sql_str(fcol)}, file_row_number=true, "
               "union_by_name=true)")
    ws.execute("CREATE TEMP TABLE _reader_rejects (line BIGINT, column_name VARCHAR, reason VARCHAR, _file VARCHAR)")
    chosen = set(batch)
    staged = Staged(columns={c: types[s] for c, s in mapping.items()}, ignored_columns=tuple(info[batch[0]][1]),
                    file_ignored={str(f): tuple(info[f][1]) for f in batch})
    return staged, [f for f in files if f in chosen], [f for f in files if f not in chosen]
