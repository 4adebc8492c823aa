"""Helpers for the vendor CSV exports: encodings, title lines, header lookup, number cleanup."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from capi_audit.errors import InputError


def sniff_text(file: Path, n_lines: int = 12) -> tuple[str, list[str]]:
    """(DuckDB encoding name, first lines decoded) from the BOM: UTF-16 LE/BE or UTF-8."""
    from capi_audit.io.lines import head_bytes

    raw = head_bytes(file, 65536)  # decompressed when gzip
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        enc, text = "utf-16", raw.decode("utf-16", errors="ignore")
    else:
        enc, text = "utf-8", raw.decode("utf-8-sig", errors="replace")
    return enc, text.splitlines()[:n_lines]


def find_header(file: Path, lines: list[str], wanted: tuple[str, ...]) -> tuple[int, list[str], str]:
    """(0-based index of the header line, its column names, delimiter): the first line holding
    any of the wanted column names. Title and date-range lines above it are skipped."""
    low = {w.lower() for w in wanted}
    for i, line in enumerate(lines):
        delim = "\t" if "\t" in line else ","
        cols = [c.strip() for c in next(csv.reader(io.StringIO(line), delimiter=delim))] if line else []
        if any(c.lower() in low for c in cols):
            return i, cols, delim
    raise InputError(f"{file}: no header line with any of {', '.join(wanted)} in the first {len(lines)} lines")


def pick(cols: list[str], candidates: tuple[str, ...]) -> str | None:
    """The first candidate present among cols (case-insensitive), as spelled in cols."""
    low = {c.lower(): c for c in cols}
    for cand in candidates:
        if cand.lower() in low:
            return low[cand.lower()]
    return None


def number(expr: str) -> str:
    """SQL: a report number ('4,838.80', ' --', '', '< 10%') as text DuckDB can cast; empty is 0."""
    t = f"trim(replace(replace({expr}, ',', ''), ' ', ''))"
    return f"CASE WHEN {expr} IS NULL OR {t} IN ('', '--', '-') THEN '0' ELSE {t} END"
