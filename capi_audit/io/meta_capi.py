"""`meta_capi_payload`: request bodies a server sent to Meta's Conversions API -> server_events.

Accepts, one per line or as one document: the body `{"data": [...], "test_event_code": ...}`; a
log record wrapping it (`request` / `body` / `payload`, as an object or JSON text) with a send
time (`sent_at`, `timestamp`, `time`, `request_time`, `logged_at`) and the API response
(`events_received` -> accepted; an `error` object -> rejected, with its message); or the
form-encoded body `data=<url-encoded JSON array>`. Each event in `data` is one row.
Field facts: https://developers.facebook.com/docs/marketing-api/conversions-api/parameters
(domain/meta.md §1-2). Lists in user_data are kept (design §2); plaintext in hash-required keys
is replaced at load. Events sent with a test_event_code are counted in the load report: Meta
does not drop them (domain/meta.md §1.1).
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
from capi_audit.io.canonical import accumulate, bad_docs_sql, doc_chunks, parse_once, path_list
from capi_audit.io.lines import PAYLOAD_MAX_LINE_BYTES

if TYPE_CHECKING:
    from capi_audit.config import SourceSpec
    from capi_audit.workspace import Workspace

EVENT_KEYS = ("event_name", "event_time", "user_data", "custom_data", "event_source_url", "event_id",
              "action_source", "opt_out", "data_processing_options", "data_processing_options_country",
              "data_processing_options_state", "app_data", "referrer_url", "original_event_data",
              "customer_segmentation", "messaging_channel", "advanced_measurement_table", "attribution_data")
USER_KEYS = ("em", "ph", "fn", "ln", "db", "ge", "ct", "st", "zp", "country", "external_id",
             "client_ip_address", "client_user_agent", "fbc", "fbp", "subscription_id", "fb_login_id",
             "lead_id", "anon_id", "madid", "page_id", "page_scoped_user_id", "ctwa_clid", "ig_account_id",
             "ig_sid", "f5first", "f5last", "fi", "dobd", "dobm", "doby")
SENT_KEYS = ("sent_at", "timestamp", "time", "request_time", "logged_at")
BODY_KEYS = ("request", "body", "payload")


def _body_sql() -> str:
    # The request body of a document: itself, a wrapped object, wrapped JSON text, or form text.
    parts = ["CASE WHEN json_type(doc, '$.data') IN ('ARRAY', 'VARCHAR') THEN doc"]
    for k in BODY_KEYS:
        parts.append(f"WHEN json_type(doc, '$.{k}') = 'OBJECT' THEN CAST(json_extract(doc, '$.{k}') AS VARCHAR)")
        parts.append(f"WHEN json_type(doc, '$.{k}') = 'VARCHAR' AND json_valid(json_extract_string(doc, '$.{k}')) "
                     f"THEN json_extract_string(doc, '$.{k}')")
    return " ".join(parts) + " END"


def _text(path: str, src: str = "ev") -> str:
    """A scalar as text, a list as JSON text."""
    return (f"CASE WHEN json_type({src}, '{path}') IN ('ARRAY', 'OBJECT') THEN CAST(json_extract({src}, '{path}') AS VARCHAR) "
            f"ELSE json_extract_string({src}, '{path}') END")


def _columns(paths: list[str]) -> dict[str, str]:
    """The staged columns read from `_events`. Each event is parsed ONCE: every path is extracted
    into one list `_x` (its paths are appended to `paths`), and the columns read its small elements
    (thirty parses per event of a 1,000-event batch took gigabytes)."""

    def x(path: str, *, raw: bool = False) -> str:
        if path not in paths:
            paths.append(path)
        e = f"_x[{paths.index(path) + 1}]"
        return e if raw else (f"CASE WHEN json_type({e}) IN ('ARRAY', 'OBJECT') THEN CAST({e} AS VARCHAR) "
                              f"ELSE json_extract_string({e}, '$') END")

    cols = {
        "event_name": x("$.event_name"), "event_id": x("$.event_id"),
        "event_time": x("$.event_time"), "action_source": x("$.action_source"),
        "event_source_url": x("$.event_source_url"),
        "order_id": x("$.custom_data.order_id"), "value": x("$.custom_data.value"),
        "currency": x("$.custom_data.currency"),
        "data_processing_options": f"NULLIF(array_to_string(CAST(json_extract_string({x('$.data_processing_options', raw=True)}, '$[*]') AS VARCHAR[]), ','), '')",
        "sent_at": "sent_raw", "request_id": "request_id", "destination": "dataset",
        "test_event_code": "test_code",
        "status": "resp_status", "error": "resp_error",
    }
    for k in schema.HASHED_KEYS + ("external_id", "client_ip_address", "client_user_agent", "fbc", "fbp"):
        cols[k] = x(f"$.user_data.{k}")
    return cols


# The response's verdict on a request, computed once per request (each of its events carries it):
# the whole response copied into each event of a 10,000-event request with a 20 KB error message
# ran out of memory. Meta's messages are a sentence or two; a longer one is cut.
ERROR_CHARS = 1000
RESPONSE_SQL = (
    "CASE WHEN json_type(resp, '$.error') = 'OBJECT' THEN 'rejected' "
    "WHEN json_extract(resp, '$.events_received') IS NOT NULL THEN 'accepted' END AS resp_status, "
    "CASE WHEN json_type(resp, '$.error') = 'OBJECT' THEN concat_ws(' ', "
    f"left(json_extract_string(resp, '$.error.message'), {ERROR_CHARS}), "
    "'(code ' || left(json_extract_string(resp, '$.error.code'), 40) "
    "|| coalesce('/' || left(json_extract_string(resp, '$.error.error_subcode'), 40), '') || ')') END AS resp_error")


class MetaCapiPayloadReader(StreamingMany, Reader):
    """Conversions API request bodies (and logs wrapping them) into server_events."""

    name = "meta_capi_payload"
    tables = ("server_events",)

    def stage(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Staged:
        """Stage one row per event in every request body of the file (all chunks at once)."""
        return collect_chunks(ws, self.stage_chunks(ws, spec, file, table))

    def stage_chunks(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Iterator[Staged]:
        """Stage one row per event in every request body, one chunk of lines at a time."""
        ensure_file(file)
        return self._chunks(ws, file)

    def stage_many_chunks(self, ws: Workspace, spec: SourceSpec, files: list[Path], table: schema.Table
                          ) -> tuple[Iterator[Staged], list[Path], list[Path]]:
        """Stage the JSON Lines files of a glob together, in chunks that span files (time linear
        in the lines, memory bounded by a chunk); other files are left to the one-file path."""
        batch, rest = lines_batch(files, json_lines=True)
        if len(batch) < 2:
            return iter(()), [], files
        return self._chunks(ws, batch), batch, rest

    def _chunks(self, ws: Workspace, files: Path | list[Path]) -> Iterator[Staged]:
        paths: list[str] = []
        cols = _columns(paths)
        sel = ", ".join(f'{expr} AS "{name}"' for name, expr in cols.items())
        unknown: set[str] = set()
        n_staged = 0
        n_test: dict[str, int] = {}
        notes: list[str] = []
        # one chunk of lines at a time: each pass over the JSON holds one chunk, the chunk's rows
        # are finalized (parsed, rejected, inserted) at the yield, and its tables are freed before
        # the next one (the load stages outside its transaction)
        for k, chunk_note in enumerate(doc_chunks(ws, files, count_events=True, max_line=PAYLOAD_MAX_LINE_BYTES)):
            notes += [chunk_note] if chunk_note and k == 0 else []
            # form-encoded bodies (`data=<url-encoded JSON>`) become JSON documents (only those are parsed again)
            ws.execute("""
                CREATE OR REPLACE TEMP TABLE _jdocs AS
                SELECT line, _file, doc, CASE WHEN valid THEN TRUE ELSE json_valid(doc) END AS valid,
                       CASE WHEN valid THEN is_obj ELSE json_valid(doc) AND starts_with(ltrim(doc), '{') END AS is_obj
                FROM (SELECT line, _file, valid, is_obj,
                          CASE WHEN NOT valid AND starts_with(trim(doc), 'data=')
                               THEN '{"data": ' || coalesce(try(url_decode(regexp_extract(trim(doc), '^data=([^&]*)', 1))), '') || '}'
                               ELSE doc END AS doc
                      FROM _jdocs)
            """)
            sent = "coalesce(" + ", ".join(f"json_extract_string(doc, '$.{sk}')" for sk in SENT_KEYS) + ")"
            bodies_sql = f"""
                CREATE OR REPLACE TEMP TABLE _bodies AS
                SELECT line, _file, {sent} AS sent_raw,
                    CASE WHEN json_type(b, '$.data') = 'VARCHAR' AND json_valid(json_extract_string(b, '$.data'))
                         THEN json_extract_string(b, '$.data') ELSE CAST(json_extract(b, '$.data') AS VARCHAR) END AS data,
                    json_extract_string(b, '$.test_event_code') AS test_code,
                    coalesce(json_extract(doc, '$.response'), json_extract(doc, '$.result')) AS resp,
                    -- the request this event came in (one invalid event rejects all of it), and the
                    -- dataset it was posted to (`/<pixel id>/events`), when the log has them
                    coalesce(json_extract_string(doc, '$.request_id'), json_extract_string(doc, '$.fbtrace_id'),
                             json_extract_string(doc, '$.response.fbtrace_id'),
                             regexp_extract(_file, '[^/]+$', 0) || ':' || CAST(line AS VARCHAR)) AS request_id,
                    coalesce(json_extract_string(doc, '$.pixel_id'), json_extract_string(doc, '$.dataset_id'),
                             json_extract_string(b, '$.pixel_id'),
                             NULLIF(regexp_extract(coalesce(json_extract_string(doc, '$.url'), json_extract_string(doc, '$.endpoint'),
                                                            json_extract_string(doc, '$.path'), ''), '/([0-9]+)/events', 1), '')) AS dataset
                FROM (SELECT *, _paths_of_b AS _b FROM (SELECT *, {_body_sql()} AS b FROM (
                      SELECT line, _file, doc, _paths_of_doc AS _d FROM _jdocs WHERE is_obj)))
            """
            ws.execute(parse_once(bodies_sql))
            # rejects first, so that each table is dropped as soon as the next one is built
            # an empty list is rejected too (Meta refuses a request without events): a line that
            # gives no event and no reject would vanish from the accounting
            no_data = ("SELECT line, NULL::VARCHAR, CASE WHEN data IS NULL OR json_type(data) <> 'ARRAY' "
                       "THEN 'no data array of events' ELSE 'an empty data array: the request held no events' END, "
                       "_file FROM _bodies WHERE data IS NULL OR json_type(data) <> 'ARRAY' OR json_array_length(data) = 0")
            accumulate(ws, "_reader_rejects", f"{bad_docs_sql(count_events=True, with_file=True)} UNION ALL {no_data}",
                       first=True)
            ws.drop("_jdocs", "_refused")
            ws.execute(f"""
                CREATE OR REPLACE TEMP TABLE _events AS
                SELECT line, _file, sent_raw, test_code, resp_status, resp_error, request_id, dataset, i,
                    -- the SDK's EventRequest.get_params() gives each event as JSON text
                    CASE WHEN json_type(e) = 'VARCHAR' AND json_valid(json_extract_string(e, '$'))
                         THEN CAST(json_extract_string(e, '$') AS JSON) ELSE e END AS ev
                -- unnest the list: the whole batch is not copied into every event's row
                FROM (SELECT line, _file, sent_raw, test_code, resp_status, resp_error, request_id, dataset,
                             unnest(range(len(arr))) AS i, unnest(arr) AS e
                      FROM (SELECT line, _file, sent_raw, test_code, {RESPONSE_SQL}, request_id, dataset,
                                   CAST(json_extract(data, '$[*]') AS JSON[]) AS arr
                            FROM _bodies WHERE data IS NOT NULL AND json_type(data) = 'ARRAY'))
            """)
            ws.drop("_bodies")
            accumulate(ws, "_stage", f"SELECT _file, row_number() OVER (ORDER BY _file, line, i) + $rec0 AS _rec, "
                       f"line AS _line, 'meta' AS platform, {sel} "
                       f"FROM (SELECT *, json_extract(ev, {path_list(paths)}) AS _x FROM _events) "
                       "ORDER BY _file, line, i", {"rec0": n_staged}, first=True)
            n_staged += ws.scalar("SELECT count(*) FROM _stage")
            unknown.update(r[0] for r in ws.rows(
                "SELECT DISTINCT k FROM (SELECT unnest(json_keys(ev)) AS k FROM _events) WHERE k NOT IN "
                f"({', '.join(repr(k) for k in EVENT_KEYS)}) UNION "
                "SELECT DISTINCT 'user_data.' || k FROM (SELECT unnest(json_keys(ev, '$.user_data')) AS k FROM _events "
                "WHERE json_type(ev, '$.user_data') = 'OBJECT') WHERE k NOT IN "
                f"({', '.join(repr(k) for k in USER_KEYS)})"))
            for f, n in ws.rows("SELECT _file, count(*) FROM _events WHERE test_code IS NOT NULL GROUP BY 1"):
                n_test[f] = n_test.get(f, 0) + n
            for t in ("_bodies", "_events"):
                ws.execute(f"DROP TABLE IF EXISTS {t}")
            # what the file showed so far: the last chunk's Staged carries the whole file's notes
            file_notes = {f: "; ".join([*notes, f"{n} events sent with a test_event_code (Meta counts them)"])
                          for f, n in n_test.items() if n}
            yield Staged(columns={c: "VARCHAR" for c in ["platform", *cols]}, ignored_columns=tuple(sorted(unknown)),
                         note="; ".join(notes), file_notes=file_notes)
