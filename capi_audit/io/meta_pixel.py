"""`meta_pixel_hits`: browser Meta Pixel requests -> pixel_events.

Reads request URLs one per line, web-server / proxy access-log lines (`"GET /tr?… HTTP/1.1"`),
JSON lines with a `url` (top level, or under `message` / `request`; optional `postData` / `body`), or a HAR file exported from browser
dev tools (`log.entries[].request`). Parameters come from the query string and a form body
(`ev`, `eid`, `ts` in ms, `cd[value]`, `cd[currency]`, `cd[order_id]`, `fbp`, `fbc`, `dl`, the
dataset `id`, advanced matching `ud[em]`, `ud[ph]`, `ud[external_id]`; the client IP and user agent
from a combined-format access log, JSON fields or HAR request headers;
https://developers.facebook.com/docs/meta-pixel/advanced, domain/meta.md §7). Requests that
are not pixel hits (no `/tr` path with an `ev`) are skipped and counted, not rejected.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from capi_audit import schema
from capi_audit.io.base import (
    Reader,
    Staged,
    StreamingMany,
    collect_chunks,
    ensure_file,
    lines_batch,
)
from capi_audit.io.canonical import accumulate
from capi_audit.io.requests import request_chunks, url_param

if TYPE_CHECKING:
    from capi_audit.config import SourceSpec
    from capi_audit.workspace import Workspace


def param(name: str, src: str = "params") -> str:
    """SQL: the URL-decoded value of one pixel parameter (brackets already decoded in src)."""
    return url_param(name, src)


class MetaPixelHitsReader(StreamingMany, Reader):
    """Meta Pixel requests (URLs, access logs, HAR) into pixel_events."""

    name = "meta_pixel_hits"
    tables = ("pixel_events",)

    def stage(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Staged:
        """Stage one row per pixel hit; count and skip other requests (all chunks at once)."""
        return collect_chunks(ws, self.stage_chunks(ws, spec, file, table))

    def stage_chunks(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Iterator[Staged]:
        """Stage one row per pixel hit; count and skip other requests, one chunk of lines at a time."""
        ensure_file(file)
        return self._chunks(ws, file)

    def stage_many_chunks(self, ws: Workspace, spec: SourceSpec, files: list[Path], table: schema.Table
                          ) -> tuple[Iterator[Staged], list[Path], list[Path]]:
        """Stage the captures of a glob together, in chunks that span files (time linear in the
        lines, memory bounded by a chunk); HAR and empty files are left to the one-file path."""
        batch, rest = lines_batch(files, har=True)
        if len(batch) < 2:
            return iter(()), [], files
        return self._chunks(ws, batch), batch, rest

    def _chunks(self, ws: Workspace, files: Path | list[Path]) -> Iterator[Staged]:
        fields = {
            "platform": "'meta'", "event_name": param("ev"), "event_id": param("eid"),
            "event_time": f"coalesce({param('ts')}, started)", "order_id": param("cd[order_id]"),
            "value": param("cd[value]"), "currency": param("cd[currency]"), "fbp": param("fbp"),
            "fbc": param("fbc"), "page_url": param("dl"),
            # the dataset (pixel) id: part of Meta's dedup key
            "destination": param("id"),
            # advanced matching the tag sent (hashed by the pixel)
            "external_id": param("ud[external_id]"), "em": param("ud[em]"), "ph": param("ud[ph]"),
            "client_ip_address": "NULLIF(client_ip, '')", "client_user_agent": "NULLIF(client_ua, '')",
        }
        sel = ", ".join(f'{expr} AS "{name}"' for name, expr in fields.items())
        note, n_staged = "", 0
        skipped: dict[str, int] = {}
        # one chunk of the capture at a time (bounded memory; see requests.request_chunks)
        for chunk_note in request_chunks(ws, files):
            note = chunk_note
            ws.execute("""
                CREATE OR REPLACE TEMP TABLE _req AS
                SELECT line, _file, url, started, client_ip, client_ua,
                    '&' || regexp_replace(regexp_replace(coalesce(regexp_extract(url, '\\?(.*)$', 1), '') || '&' ||
                        coalesce(body, ''), '%5[Bb]', '[', 'g'), '%5[Dd]', ']', 'g') AS params,
                    url IS NOT NULL AND regexp_matches(url, '/tr/?(\\?|$)') AS is_tr
                FROM _req
            """)
            ws.execute(f"""
                CREATE OR REPLACE TEMP TABLE _req AS
                SELECT *, is_tr AND {param('ev')} IS NOT NULL AS is_hit FROM _req
            """)
            accumulate(ws, "_stage", f"SELECT _file, row_number() OVER (ORDER BY _file, line) + $rec0 AS _rec, "
                       f"line AS _line, {sel} FROM _req WHERE is_hit ORDER BY _file, line", {"rec0": n_staged}, first=True)
            n_staged += ws.scalar("SELECT count(*) FROM _stage")
            for f, n in ws.rows("SELECT _file, count(*) FROM _req WHERE url IS NOT NULL AND NOT is_hit GROUP BY 1"):
                skipped[f] = skipped.get(f, 0) + n
            accumulate(ws, "_reader_rejects",
                       "SELECT line, NULL::VARCHAR AS column_name, 'no request URL' AS reason, _file FROM _req WHERE url IS NULL "
                       "UNION ALL SELECT line, column_name, reason, _file FROM _refused", first=True)
            for t in ("_refused", "_req"):
                ws.execute(f"DROP TABLE IF EXISTS {t}")
            # this chunk is finalized at the yield; the last Staged carries the whole file's notes
            file_notes = {f: "; ".join(n for n in (note, f"{m} requests that are not pixel hits skipped") if n)
                          for f, m in skipped.items() if m}
            yield Staged(columns=dict.fromkeys(fields, "VARCHAR"), note=note, file_notes=file_notes,
                         file_skipped=dict(skipped))
