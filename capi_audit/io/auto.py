"""`format = "auto"`: pick the reader by looking at a file's content."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from capi_audit import schema
from capi_audit.errors import InputError
from capi_audit.io.base import Reader, Staged, StreamingMany, collect_chunks, ensure_file
from capi_audit.io.csvtools import sniff_text
from capi_audit.io.lines import head_text

if TYPE_CHECKING:
    from capi_audit.config import SourceSpec
    from capi_audit.workspace import Workspace


def _first_doc(file: Path) -> dict | None:
    text = head_text(file, 1 << 20).lstrip("\ufeff \t\r\n")
    for candidate in (text, text.split("\n", 1)[0]):
        try:
            doc = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(doc, list) and doc and isinstance(doc[0], dict):
            return doc[0]
        if isinstance(doc, dict):
            return doc
    return None


GOOGLE_TAG_PATHS = ("/pagead/conversion/", "/g/collect")


def _google_doc(doc: dict) -> str | None:
    """google_upload_summary / google_upload_log / ga4_mp_payload when a JSON document has their shape."""
    res = doc.get("results") if isinstance(doc.get("results"), list) and doc.get("results") else [doc]
    if isinstance(res[0], dict) and any(k.replace("_", "").lower().startswith("offlineconversionupload") for k in res[0]):
        return "google_upload_summary"
    diag = doc.get("diagnostics") if isinstance(doc.get("diagnostics"), dict) else {}
    if "request" not in doc and ("requestStatusPerDestination" in doc or "requestStatusPerDestination" in diag):
        return "google_upload_summary"  # a Data Manager requestStatus.retrieve answer
    body = doc.get("request") if isinstance(doc.get("request"), dict) else doc
    if any(k in body for k in ("conversions", "conversionAdjustments", "conversion_adjustments")) or (
            "events" in body and "destinations" in body):
        return "google_upload_log"
    for cand in (doc, doc.get("body"), doc.get("payload")):
        if isinstance(cand, str):
            try:
                cand = json.loads(cand)
            except ValueError:
                continue
        if isinstance(cand, dict) and isinstance(cand.get("events"), list) and (
                "client_id" in cand or "app_instance_id" in cand or "measurement_id=" in str(doc.get("url", ""))):
            return "ga4_mp_payload"
    return None


def _has_google_hits(file: Path) -> bool:
    head = file.read_bytes()[:1 << 20].decode("utf-8", errors="replace")
    return any(p in head for p in GOOGLE_TAG_PATHS) and "/tr?" not in head and "/tr/?" not in head


def candidates(file: Path, table: str) -> list[str]:
    """Formats whose signature the file matches, for the given table, best first."""
    name = file.name.lower()
    found: list[str] = []
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            cols = set(pq.read_schema(file).names)
        except Exception as exc:  # pyarrow raises several types for a corrupt file
            raise InputError(f"{file}: not a readable Parquet file ({type(exc).__name__})") from exc
        found = ["ga4_export"] if {"event_params", "event_timestamp"} <= cols else ["canonical"]
    else:
        enc, lines = sniff_text(file, 6)
        first = lines[0].strip() if lines else ""
        doc = _first_doc(file) if first.startswith(("{", "[")) else None
        google = _google_doc(doc) if doc is not None else None
        if google:
            found.append(google)
        elif doc is not None and _has_google_hits(file) and ("log" in doc or "url" in doc or "message" in doc):
            found.append("google_tag_hits")
        elif doc is not None:
            if "log" in doc and isinstance(doc.get("log"), dict):
                found.append("meta_pixel_hits")
            if "data" in doc or any(k in doc for k in ("request", "body", "payload")):
                found.append("meta_capi_payload")
            if "event_params" in doc or "event_timestamp" in doc:
                found.append("ga4_export")
            if "url" in doc or "message" in doc:
                found.append("meta_pixel_hits")
            if not found:
                found.append("canonical")
        elif first.startswith("data="):
            found.append("meta_capi_payload")
        elif any(p in first for p in GOOGLE_TAG_PATHS):
            found.append("google_tag_hits")
        elif "/tr" in first and ("ev=" in first or "id=" in first):
            found.append("meta_pixel_hits")
        else:
            header = " ".join(lines[:4]).lower()
            cols = {c.strip().lower() for c in next(csv.reader(io.StringIO(first), delimiter="\t" if "\t" in first else ","), [])}
            if "google click id" in header or first.lower().startswith("parameters:"):
                found.append("google_ads_click_conversions")
            if "lineitem quantity" in cols or {"name", "created at", "financial status"} <= cols or {"name", "created at", "total"} <= cols:
                found.append("shopify_orders")
            if cols & {"reporting starts", "amount spent", "website purchases", "purchases", "inicio del informe"} or (
                    "day" in cols and any("purchase" in c or "amount spent" in c for c in cols)):
                found.append("meta_ads_export")
            if ("conv. value" in header or "conversions" in header or "_conversions" in header) and (
                    "impr." in header or "cost" in header or "conversion action" in header or "report" in lines[0].lower()):
                found.append("google_ads_report")
            canon = {c.name for c in schema.TABLES[table].columns}
            if set(schema.TABLES[table].required) - {"platform"} <= cols and cols <= canon | {"platform"}:
                found.append("canonical")
    from capi_audit.io import FORMATS

    return [f for f in dict.fromkeys(found) if not FORMATS[f].tables or table in FORMATS[f].tables]


class AutoReader(StreamingMany, Reader):
    """Delegates to the reader the content points to."""

    name = "auto"
    tables = ()

    @property
    def options(self) -> dict[str, type]:  # type: ignore[override]
        """Any option of the format the content points to."""
        from capi_audit.io import FORMATS

        return {k: v for r in FORMATS.values() if r is not self for k, v in r.options.items()}

    def stage(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Staged:
        """Detect the format, then stage with that reader."""
        return collect_chunks(ws, self.stage_chunks(ws, spec, file, table))

    def stage_chunks(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Iterator[Staged]:
        """Detect the format, then stage with that reader, chunk by chunk."""
        from capi_audit.io import FORMATS

        ensure_file(file)
        found = candidates(file, table.name)
        if len(found) != 1:
            what = ", ".join(found) if found else "none of the known formats"
            raise InputError(f"{file}: cannot tell the format for table {table.name} (candidates: {what}); "
                             "set format = \"…\" on the source")
        def tagged(note: str) -> str:
            return f"format detected: {found[0]}" + (f"; {note}" if note else "")

        for staged in FORMATS[found[0]].stage_chunks(ws, spec, file, table):
            notes = {f: tagged(n) for f, n in staged.file_notes.items()} if staged.file_notes else None
            yield Staged(**{**staged.__dict__, "note": tagged(staged.note), "file_notes": notes})

    def stage_many_chunks(self, ws: Workspace, spec: SourceSpec, files: list[Path], table: schema.Table
                          ) -> tuple[Iterator[Staged], list[Path], list[Path]]:
        """A glob under `auto`: the files the content points to one format (the most common one)
        are staged together by that format's multi-file path (chunk by chunk where it streams);
        the others load alone."""
        from dataclasses import replace

        from capi_audit.io import FORMATS

        by: dict[str, list[Path]] = {}
        for f in files:
            try:
                found = candidates(f, table.name)
            except Exception:  # noqa: BLE001 - loaded alone, where the problem is reported
                continue
            if len(found) == 1:
                by.setdefault(found[0], []).append(f)
        if not by:
            return iter(()), [], files
        fmt, group = max(by.items(), key=lambda kv: len(kv[1]))
        reader = FORMATS[fmt]
        if len(group) < 2 or not hasattr(reader, "stage_many"):
            return iter(()), [], files
        chunks, batch, _ = reader.stage_many_chunks(ws, spec, group, table)
        if not batch:
            return iter(()), [], files

        def noted() -> Iterator[Staged]:
            for staged in chunks:
                notes = {}
                for f in map(str, batch):
                    own = (staged.file_notes or {}).get(f, staged.note)
                    notes[f] = f"format detected: {fmt}" + (f"; {own}" if own else "")
                yield replace(staged, file_notes=notes)

        chosen = set(batch)
        return noted(), [f for f in files if f in chosen], [f for f in files if f not in chosen]
