"""`ga4_export`: GA4 BigQuery export rows -> pixel_events (platform `ga4`, its own platform:
GA4 deduplicates purchases by transaction_id apart from Google Ads conversion actions).

One row per event, as JSON Lines, a JSON array (BigQuery console "Save results") or Parquet.
`event_timestamp` is microseconds UTC; `ecommerce.transaction_id` is the dedup key (`(not set)`
is no id); `value` / `currency` / `page_location` come from `event_params`, else
`ecommerce.purchase_revenue`; ad_storage consent from `privacy_info.ads_storage` (Yes / No / Unset;
the export has no ad_user_data);
the click id from `collected_traffic_source.gclid`
(https://support.google.com/analytics/answer/7029846, domain/google.md §5). A custom
`order_id` event parameter, when a shop sends one, is used as the order reference.
`options = { measurement_id = "G-…" }` sets the destination (the export names the stream by
`stream_id`, Measurement Protocol logs by measurement id: give the same id to both so GA4's dedup
key agrees).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from capi_audit import schema
from capi_audit.io.base import Reader, Staged, collect_chunks, ensure_file
from capi_audit.io.canonical import bad_docs_sql, doc_chunks, kind_of

if TYPE_CHECKING:
    from capi_audit.config import SourceSpec
    from capi_audit.workspace import Workspace

NOT_SET = ("(not set)", "(not provided)", "")
GCLID = "json_extract_string(doc, '$.collected_traffic_source.gclid')"


def ep(key: str) -> str:
    """SQL: an event parameter's value as text, whichever typed slot holds it."""
    item = (f"list_filter(CAST(json_extract(doc, '$.event_params[*]') AS JSON[]), "
            f"lambda p: json_extract_string(p, '$.key') = '{key}')[1]")
    return (f"coalesce(json_extract_string({item}, '$.value.string_value'), json_extract_string({item}, '$.value.int_value'), "
            f"json_extract_string({item}, '$.value.double_value'), json_extract_string({item}, '$.value.float_value'))")


def _unset(expr: str) -> str:
    return f"CASE WHEN {expr} IN {tuple(NOT_SET)} THEN NULL ELSE {expr} END"


class Ga4ExportReader(Reader):
    """GA4 BigQuery export rows into pixel_events."""

    name = "ga4_export"
    tables = ("pixel_events",)
    options = {"measurement_id": str}  # noqa: RUF012

    def stage(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Staged:
        """Stage one row per exported event (all chunks at once)."""
        return collect_chunks(ws, self.stage_chunks(ws, spec, file, table))

    def stage_chunks(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Iterator[Staged]:
        """Stage one row per exported event: JSON Lines one chunk of lines at a time (bounded
        memory, see canonical.doc_chunks); Parquet and a JSON array in one chunk."""
        ensure_file(file)
        return self._chunks(ws, spec, file)

    def _chunks(self, ws: Workspace, spec: SourceSpec, file: Path) -> Iterator[Staged]:
        if kind_of(file) == "parquet":
            ws.execute("DROP TABLE IF EXISTS _jdocs")
            ws.execute("CREATE TEMP TABLE _jdocs AS SELECT file_row_number + 1 AS line, CAST(to_json(t) AS VARCHAR) AS doc, "
                       "TRUE AS valid, TRUE AS is_obj, CAST($f AS VARCHAR) AS _file "
                       "FROM read_parquet($f, file_row_number=true) t", {"f": str(file)})
            ws.execute("CREATE OR REPLACE TEMP TABLE _refused (line BIGINT, column_name VARCHAR, reason VARCHAR, _file VARCHAR)")
            yield self._stage_docs(ws, spec, 0, "")
            return
        n_staged = 0
        for note in doc_chunks(ws, file):
            staged = self._stage_docs(ws, spec, n_staged, note)
            n_staged += ws.scalar("SELECT count(*) FROM _stage")
            yield staged

    def _stage_docs(self, ws: Workspace, spec: SourceSpec, rec0: int, note: str) -> Staged:
        """`_stage` and `_reader_rejects` from the documents of `_jdocs` / `_refused` (one chunk)."""
        tid = _unset("json_extract_string(doc, '$.ecommerce.transaction_id')")
        fields = {
            "platform": "'ga4'",
            "destination": "CAST($dest AS VARCHAR)",
            "event_name": "json_extract_string(doc, '$.event_name')",
            "event_id": f"coalesce({tid}, {_unset(ep('transaction_id'))})",
            "event_time": "json_extract_string(doc, '$.event_timestamp')",
            "order_id": f"coalesce({_unset(ep('order_id'))}, {tid}, {_unset(ep('transaction_id'))})",
            "value": f"coalesce({ep('value')}, json_extract_string(doc, '$.ecommerce.purchase_revenue'))",
            "currency": ep("currency"),
            "gclid": f"coalesce({_unset(GCLID)}, {ep('gclid')}, "
                     f"NULLIF(regexp_extract({ep('page_location')}, '[?&]gclid=([^&#]*)', 1), ''))",
            "consent_ads": "json_extract_string(doc, '$.privacy_info.ads_storage')",
            "page_url": ep("page_location"),
        }
        sel = ", ".join(f'{expr} AS "{name}"' for name, expr in fields.items())
        ws.drop("_stage")
        ws.execute(f"CREATE TEMP TABLE _stage AS SELECT row_number() OVER (ORDER BY line) + $rec0 AS _rec, line AS _line, {sel} "
                   "FROM _jdocs WHERE is_obj ORDER BY line", {"dest": spec.options.get("measurement_id"), "rec0": rec0})
        ws.execute("DROP TABLE IF EXISTS _reader_rejects")
        ws.execute(f"CREATE TEMP TABLE _reader_rejects AS {bad_docs_sql(with_file=True)}")
        for t in ("_jdocs", "_refused"):
            ws.execute(f"DROP TABLE IF EXISTS {t}")
        return Staged(columns=dict.fromkeys(fields, "VARCHAR"), note=note)
