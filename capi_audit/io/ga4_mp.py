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

from pathlib import Path
from typing import TYPE_CHECKING

from capi_audit import schema
from capi_audit.io.base import Reader, Staged, ensure_file
from capi_audit.io.canonical import read_docs

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


class Ga4MeasurementProtocolReader(Reader):
    """GA4 Measurement Protocol request logs into server_events."""

    name = "ga4_mp_payload"
    tables = ("server_events",)
    options = {"measurement_id": str}  # noqa: RUF012

    def stage(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Staged:
        """Stage one row per event of each logged request."""
        ensure_file(file)
        note = read_docs(ws, file)
        ws.execute(f"""
            CREATE OR REPLACE TEMP TABLE _mp AS
            SELECT line, doc, b, coalesce(CAST(json_array_length(b, '$.events') AS BIGINT), 0) AS n_events
            FROM (SELECT line, doc, {_body_sql()} AS b FROM _jdocs WHERE is_obj)
        """)
        addr = "json_extract(b, '$.user_data.address[0]')"
        ev = "e"
        sent = _first("doc", "$.timestamp", "$.sent_at", "$.time", "$.startedDateTime")
        fields = {
            "platform": "'ga4'",
            "destination": ("coalesce(CAST($dest AS VARCHAR), json_extract_string(doc, '$.measurement_id'), "
                            "NULLIF(regexp_extract(coalesce(json_extract_string(doc, '$.url'), ''), '[?&]measurement_id=([^&#]*)', 1), ''))"),
            "event_name": f"json_extract_string({ev}, '$.name')",
            "event_id": f"json_extract_string({ev}, '$.params.transaction_id')",
            "event_time": f"coalesce({_first(ev, '$.timestamp_micros')}, json_extract_string(b, '$.timestamp_micros'), {sent})",
            "sent_at": sent,
            "value": f"json_extract_string({ev}, '$.params.value')",
            "currency": f"json_extract_string({ev}, '$.params.currency')",
            "em": _hashes("b", "sha256_email_address"),
            "ph": _hashes("b", "sha256_phone_number"),
            "fn": _first(addr, "$.sha256_first_name", "$.first_name"),
            "ln": _first(addr, "$.sha256_last_name", "$.last_name"),
            "ct": _first(addr, "$.city", "$.sha256_city"),
            "st": _first(addr, "$.region", "$.sha256_region"),
            "zp": _first(addr, "$.postal_code", "$.sha256_postal_code"),
            "country": _first(addr, "$.country", "$.sha256_country"),
            "consent_ad_user_data": "json_extract_string(b, '$.consent.ad_user_data')",
            "status": ("CASE WHEN coalesce(json_array_length(doc, '$.validation_messages'), "
                       "json_array_length(doc, '$.response.validationMessages'), 0) > 0 THEN 'rejected' END"),
            "error": _first("doc", "$.validation_messages[0].validationCode", "$.response.validationMessages[0].validationCode"),
            "source_api": "'measurement_protocol'",
        }
        sel = ", ".join(f'{expr} AS "{name}"' for name, expr in fields.items())
        ws.drop("_stage")
        ws.execute(f"""
            CREATE TEMP TABLE _stage AS
            SELECT row_number() OVER (ORDER BY line, i) AS _rec, line AS _line, {sel}
            FROM (SELECT m.*, i, json_extract(b, '$.events[' || i || ']') AS e
                  FROM _mp m CROSS JOIN LATERAL (SELECT unnest(range(m.n_events)) AS i))
            ORDER BY line, i
        """, {"dest": spec.options.get("measurement_id")})
        ws.execute("DROP TABLE IF EXISTS _reader_rejects")
        ws.execute("""
            CREATE TEMP TABLE _reader_rejects AS
            SELECT line, NULL::VARCHAR AS column_name,
                   CASE WHEN b IS NULL THEN 'no Measurement Protocol body (events[])' ELSE 'events[] is empty' END AS reason
            FROM _mp WHERE n_events = 0
            UNION ALL SELECT line, NULL::VARCHAR, CASE WHEN valid THEN 'not a JSON object' ELSE 'broken JSON' END
            FROM _jdocs WHERE NOT is_obj
            UNION ALL SELECT * FROM _refused
        """)
        for t in ("_mp", "_jdocs", "_refused"):
            ws.execute(f"DROP TABLE IF EXISTS {t}")
        return Staged(columns=dict.fromkeys(fields, "VARCHAR"), note=note)
