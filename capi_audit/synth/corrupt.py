"""Plant malformed rows in a written CSV scenario, recording exactly what a loader must reject."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# (table, kind, reason, column) — what each planted row is and the reject it must produce.
PLANTS = (
    ("orders", "missing_created_at", "missing required value", "created_at"),
    ("orders", "too_few_fields", "too few fields", None),
    ("orders", "stray_header", "repeated header line", None),
    ("pixel_events", "bad_time", "not a time", "event_time"),
    ("pixel_events", "invalid_utf8", "invalid UTF-8", None),
    ("server_events", "unknown_platform", "not meta, google or ga4", "platform"),
    ("server_events", "too_many_fields", "too many fields", None),
    ("platform_report", "bad_date", "not a date", "date"),
)


def _bad_line(kind: str, header: list[str], good: list[str]) -> bytes:
    row = list(good)
    if kind == "missing_created_at":
        row[header.index("created_at")] = ""
    elif kind == "too_few_fields":
        row = row[:2]
    elif kind == "stray_header":
        row = list(header)
    elif kind == "bad_time":
        row[header.index("event_time")] = "yesterday"
    elif kind == "unknown_platform":
        row[header.index("platform")] = "tiktok"
    elif kind == "too_many_fields":
        row = row + ["extra"]
    elif kind == "bad_date":
        row[header.index("date")] = "31/31/2026"
    line = ",".join(row).encode("utf-8")
    if kind == "invalid_utf8":
        line = line.replace(b"Purchase", b"Purch\xff\xfese", 1)
    return line + b"\n"


def plant_bad_rows(folder: str | Path, *, seed: int = 1) -> list[dict]:
    """Insert one malformed line per PLANTS entry at a seeded position; write planted_rejects.json.

    Only simple rows (no quoted fields) are used as templates, so lines stay one record each.
    """
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    planted = []
    for table in dict.fromkeys(p[0] for p in PLANTS):
        path = folder / f"{table}.csv"
        lines = path.read_bytes().split(b"\n")
        if lines and lines[-1] == b"":
            lines = lines[:-1]
        header = lines[0].decode().split(",")
        kinds = [p for p in PLANTS if p[0] == table]
        positions = sorted(rng.choice(np.arange(1, len(lines)), size=len(kinds), replace=False).tolist())
        out = list(lines)
        offset = 0
        for (tbl, kind, reason, column), pos in zip(kinds, positions, strict=True):
            template = lines[pos].decode().split(",")
            bad = _bad_line(kind, header, template).rstrip(b"\n")
            out.insert(pos + offset, bad)
            planted.append({"table": tbl, "line": pos + offset + 1, "reason": reason, "column": column})
            offset += 1
        path.write_bytes(b"\n".join(out) + b"\n")
    planted.sort(key=lambda p: (p["table"], p["line"]))
    (folder / "planted_rejects.json").write_text(json.dumps(planted, indent=2) + "\n", encoding="utf-8")
    return planted
