"""`ga4_mp_payload`: logged GA4 Measurement Protocol requests -> server_events (platform `ga4`).

One JSON document per line (or a JSON array): either the request body itself or a log record
wrapping it (`body` / `payload` as an object or JSON text, `url` with `measurement_id=` in its
query, a send time in `timestamp` / `sent_at` / `time`, optional `measurement_id`, and an
optional debug-endpoint answer in `validation_messages` / `response.validationMessages`).
One row per element of `events[]` (https://developers.google.com/analytics/devguides/collection/protocol/ga4/reference):
- event_name `events[].name`; event_id `events[].params.transaction_id`; value / currency from
  `params`; event_time = the event's `timestamp_micros`, else the request's, else the send time
  (backdating beyond 72 h is a validation finding, not a load error);
- consent: `consent.ad_user_data` (MP carries no ad_storage);
- `user_data`: `sha256_email_address`, `sha256_phone_number` (arrays kept as sent), and the first
  `address[]` entry's `sha256_first_name` / `sha256_last_name` (hashed) and `city`, `region`,
  `postal_code`, `country` (in clear, as GA4 wants them; https://developers.google.com/analytics/devguides/collection/ga4/uid-data).
  An unhashed name or email where a hash is due is counted and replaced by a marker at load.
The collect endpoint answers 2xx even for malformed payloads, so `status` is set only from the
debug endpoint's validation messages (`rejected` with the first validation code) and is
otherwise left unknown. `client_id` is not kept (it is not a match key the audit checks).
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
from capi_audit.io.canonical import accumulate, doc_chunks, parse_once
from capi_audit.io.lines import PAYLOAD_MAX_LINE_BYTES

if TYPE_CHECKING:
    from capi_audit.config import SourceSpec
    from capi_audit.workspace import Workspace


def _body_sql() -> str:
    parts = ["CASE WHEN json_exists(doc, '$.events') THEN CAST(doc AS JSON)"]
    for key in ("body", "payload", "request.body"):
        parts.append(f"WHEN json_type(doc, '$.{key}') = 'OBJECT' THEN json_extract(doc, '$.{key}')")
        parts.append(f"WHEN json_type(doc, '$.{key}') = 'VARCHAR' AND json_valid(json_extract_string(doc, '$.{key}')) "
                     f"THEN CAST(json_extract_string(doc, '$.{key}') AS JSON)")
    return " ".join(parts) + " END"


def _first(e: str, *paths: str) -> str:
    return "coalesce(" + ", ".join(f"json_extract_string({e}, '{p}')" for p in paths) + ")"


def _hashes(b: str, key: str) -> str:
    # a list stays a JSON array (present if any value, valid only if every value is)
    return (f"CASE WHEN json_type({b}, '$.user_data.{key}') = 'ARRAY' THEN CAST(json_extract({b}, '$.user_data.{key}') AS VARCHAR) "
            f"ELSE json_extract_string({b}, '$.user_data.{key}') END")


class Ga4MeasurementProtocolReader(StreamingMany, Reader):
    """GA4 Measurement Protocol request logs into server_events."""

    name = "ga4_mp_payload"
    tables = ("server_events",)
    options = {"measurement_id": str}  # noqa: RUF012

    def stage(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Staged:
        """Stage one row per event of each logged request (all chunks at once)."""
        return collect_chunks(ws, self.stage_chunks(ws, spec, file, table))

    def stage_chunks(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Iterator[Staged]:
        """Stage one row per event of each logged request, one chunk of lines at a time."""
        ensure_file(file)
        return self._chunks(ws, spec, file)

    def stage_many_chunks(self, ws: Workspace, spec: SourceSpec, files: list[Path], table: schema.Table
                          ) -> tuple[Iterator[Staged], list[Path], list[Path]]:
        """Stage the JSON Lines files of a glob together, in chunks that span files (time linear
        in the lines, memory bounded by a chunk); other files are left to the one-file path."""
        batch, rest = lines_batch(files, json_lines=True)
        if len(batch) < 2:
            return iter(()), [], files
        return self._chunks(ws, spec, batch), batch, rest

    def _chunks(self, ws: Workspace, spec: SourceSpec, files: Path | list[Path]) -> Iterator[Staged]:
        addr = "json_extract(b, '$.user_data.address[0]')"
        sent = _first("doc", "$.timestamp", "$.sent_at", "$.time", "$.startedDateTime")
        # per request (each document and body parsed once, see canonical.parse_once)
        request = {
            "destination": ("coalesce(CAST($dest AS VARCHAR), json_extract_string(doc, '$.measurement_id'), "
                            "NULLIF(regexp_extract(coalesce(json_extract_string(doc, '$.url'), ''), '[?&]measurement_id=([^&#]*)', 1), ''))"),
            "sent_at": sent,
            "b_time": "json_extract_string(b, '$.timestamp_micros')",
            "em": _hashes("b", "sha256_email_address"),
            "ph": _hashes("b", "sha256_phone_number"),
            "fn": _first(addr, "$.sha256_first_name", "$.first_name"),
            "ln": _first(addr, "$.sha256_last_name", "$.last_name"),
            "ct": _first(addr, "$.city", "$.sha256_city"),
            "st": _first(addr, "$.region", "$.sha256_region"),
            "zp": _first(addr, "$.postal_code", "$.sha256_postal_code"),
            "country": _first(addr, "$.country", "$.sha256_country"),
            "consent_ad_user_data": "json_extract_string(b, '$.consent.ad_user_data')",
            "status": ("CASE WHEN coalesce(json_array_length(json_extract(doc, '$.validation_messages')), "
                       "json_array_length(json_extract(doc, '$.response.validationMessages')), 0) > 0 THEN 'rejected' END"),
            "error": _first("doc", "$.validation_messages[0].validationCode", "$.response.validationMessages[0].validationCode"),
        }
        req_sel = ", ".join(f'{expr} AS "{name}"' for name, expr in request.items())
        # per event of `events[]`
        fields = {
            "platform": "'ga4'", "destination": "destination",
            "event_name": "json_extract_string(e, '$.name')",
            "event_id": "json_extract_string(e, '$.params.transaction_id')",
            "event_time": "coalesce(json_extract_string(e, '$.timestamp_micros'), b_time, sent_at)",
            "sent_at": "sent_at",
            "value": "json_extract_string(e, '$.params.value')",
            "currency": "json_extract_string(e, '$.params.currency')",
            **{c: c for c in ("em", "ph", "fn", "ln", "ct", "st", "zp", "country", "consent_ad_user_data", "status", "error")},
            "source_api": "'measurement_protocol'",
        }
        sel = ", ".join(f'{expr} AS "{name}"' for name, expr in fields.items())
        mp_sql = parse_once(f"""
            CREATE OR REPLACE TEMP TABLE _mp AS
            SELECT line, _file, b IS NULL AS no_body, {req_sel},
                   CASE WHEN json_type(b, '$.events') = 'ARRAY' THEN CAST(json_extract(json_extract(b, '$.events'), '$[*]') AS JSON[]) END AS evs
            FROM (SELECT *, _paths_of_b AS _b FROM (SELECT *, {_body_sql()} AS b FROM (
                  SELECT line, _file, doc, _paths_of_doc AS _d FROM _jdocs WHERE is_obj)))
        """)
        note, n_staged = "", 0
        # one chunk of lines at a time (bounded memory; see canonical.doc_chunks)
        for chunk_note in doc_chunks(ws, files, max_line=PAYLOAD_MAX_LINE_BYTES):
            note = note or chunk_note
            ws.execute(mp_sql, {"dest": spec.options.get("measurement_id")})
            accumulate(ws, "_stage", f"""
                SELECT _file, row_number() OVER (ORDER BY _file, line, i) + $rec0 AS _rec, line AS _line, {sel}
                FROM (SELECT *, unnest(range(len(evs))) AS i, unnest(evs) AS e FROM _mp WHERE len(evs) > 0)
                ORDER BY _file, line, i
            """, {"rec0": n_staged}, first=True)
            n_staged += ws.scalar("SELECT count(*) FROM _stage")
            accumulate(ws, "_reader_rejects", """
                SELECT line, NULL::VARCHAR AS column_name,
                       CASE WHEN no_body THEN 'no Measurement Protocol body (events[])' ELSE 'events[] is empty' END AS reason,
                       _file
                FROM _mp WHERE coalesce(len(evs), 0) = 0
                UNION ALL SELECT line, NULL::VARCHAR, CASE WHEN valid THEN 'not a JSON object' ELSE 'broken JSON' END, _file
                FROM _jdocs WHERE NOT is_obj
                UNION ALL SELECT line, column_name, reason, _file FROM _refused
            """, first=True)
            for t in ("_mp", "_jdocs", "_refused"):
                ws.execute(f"DROP TABLE IF EXISTS {t}")
            yield Staged(columns=dict.fromkeys(fields, "VARCHAR"), note=note)  # finalized before the next chunk
