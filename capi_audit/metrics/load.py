"""Load accounting (design §2 "Load accounting", §4 `load`): every input row loaded or rejected.

The headline gives, per canonical table, rows read, loaded and rejected (all four source tables
are listed, zero when absent). Frames: `load` (one row per file: format, counts, coerced values,
ignored source columns) and `load_rejects` (rejected rows grouped by table, file, column and
reason, counted: values are never kept).

A workspace whose canonical tables were attached on another engine (`[engine.tables]`, e.g. a
lakehouse on Spark) without the load accounting (`load_report`, written by `capi-audit export`)
has nothing to account: capi_audit read no input rows. The section is then `available: false`
with that reason (never zeros, which would read as "nothing loaded"), and the `load` frame lists
what can be known: each table's location and the rows it holds.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pandas as pd

from capi_audit.metrics.common import FamilyResult, Headline, tidy
from capi_audit.parsing import redact_path
from capi_audit.schema import SOURCE_TABLES

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace

_TOTALS_SQL = """
SELECT table_name, sum(rows_read), sum(rows_loaded), sum(rows_rejected)
FROM load_report GROUP BY table_name
"""
_FILES_SQL = """
SELECT table_name, file, format, rows_read, rows_loaded, rows_rejected, coerced, ignored_columns
FROM load_report ORDER BY table_name, file
"""
_REJECTS_SQL = """
SELECT table_name, file, coalesce(column_name, '(whole row)') AS column_name, reason, count(*) AS rows
FROM rejects GROUP BY table_name, file, coalesce(column_name, '(whole row)'), reason
ORDER BY table_name, file, column_name, reason
"""


NOT_LOADED = ("the canonical tables were attached from [engine.tables], not loaded by capi_audit, so "
              "rows read and rejected are unknown (the rows each table holds are in the load frame); "
              "load the sources with capi-audit, or attach the load_report written by capi-audit export")


def _shown_name(path: object) -> str:
    """A file's base name (either slash; a trailing one ignored) as shown: personal parts redacted."""
    return redact_path(str(path).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1])


def compute(ws: Workspace) -> FamilyResult:
    """Family `load`: rows read / loaded / rejected per table; per-file and per-reason frames."""
    attached = getattr(ws, "attached_tables", None)
    if attached is not None and "load_report" not in attached:
        return _attached(ws, attached)
    totals = {t: (r, lo, j) for t, r, lo, j in ws.rows(_TOTALS_SQL)}
    values = {}
    for t in SOURCE_TABLES:
        r, lo, j = totals.get(t, (0, 0, 0))
        values[t] = {"rows_read": int(r or 0), "rows_loaded": int(lo or 0), "rows_rejected": int(j or 0)}
    files = ws.df(_FILES_SQL)
    # names as shown (load_report stores them so; a workspace written before that may not)
    files["file"] = [_shown_name(f) for f in files["file"]]
    files["coerced"] = [_listing(c) for c in files["coerced"]]
    files["ignored_columns"] = [_listing(c) for c in files["ignored_columns"]]
    rejects = ws.df(_REJECTS_SQL)
    rejects["file"] = [_shown_name(f) for f in rejects["file"]]
    return FamilyResult(Headline("load", values),
                        {"load": tidy(files, ["table_name", "file"]),
                         "load_rejects": tidy(rejects, ["table_name", "file", "column_name", "reason"])})


def _attached(ws: Workspace, attached: dict[str, str]) -> FamilyResult:
    """No load accounting: the section says why; the frame gives each source table's rows."""
    fmt = getattr(ws, "attached_format", "parquet")
    rows = [{"table_name": t,
             "file": _shown_name(attached[t])
             if t in attached else "(not named: empty)",
             "format": fmt if t in attached else "", "rows_read": None, "rows_loaded": ws.count(t),
             "rows_rejected": None, "coerced": "", "ignored_columns": ""} for t in SOURCE_TABLES]
    files = pd.DataFrame(rows).astype({"rows_read": "float64", "rows_rejected": "float64"})
    return FamilyResult(Headline("load", available=False, reason=NOT_LOADED), {"load": tidy(files, ["table_name", "file"])})


def _listing(raw: object) -> str:
    """A JSON list or object stored by the loader as readable text ('' when empty)."""
    if raw is None or (isinstance(raw, float) and pd.isna(raw)):
        return ""
    try:
        data = json.loads(str(raw))
    except ValueError:
        return str(raw)
    if isinstance(data, dict):
        return ", ".join(f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}" for k, v in sorted(data.items()))
    if isinstance(data, list):
        return ", ".join(str(v) for v in data)
    return str(data)
