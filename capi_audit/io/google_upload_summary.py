"""`google_upload_summary`: Google Ads offline-conversion upload diagnostics, as Google summarizes them.

The Google Ads API resources `offline_conversion_upload_conversion_action_summary` (per conversion
action and upload client) and `offline_conversion_upload_client_summary` (per account and client)
hold Google's own counts of what it did with the uploads: per summary `status` (`EXCELLENT`,
`GOOD`, `NEEDS_ATTENTION`, `NO_RECENT_UPLOAD`), `totalEventCount`, `successfulEventCount`,
`pendingEventCount`, `dailySummaries[]` and `jobSummaries[]` (`OfflineConversionSummary`:
`uploadDate` or `jobId`, `successfulCount`, `failedCount`, `pendingCount`) and `alerts[]` (an
error code and its `errorPercentage`, from the most recent day with uploads).
https://developers.google.com/google-ads/api/reference/rpc/latest/OfflineConversionUploadConversionActionSummary,
https://developers.google.com/google-ads/api/reference/rpc/latest/OfflineConversionSummary

Input: the JSON a GAQL query returns (`googleAds:search` pages `{"results": [...]}`, a
`searchStream` array of such pages, or one result row per line), in the JSON (camelCase) or the
protobuf (snake_case) spelling. Each summary lands as one `total` row plus one row per daily
summary (`day`), per job summary (`job`) and per alert (`alert`) in table `upload_summaries`; a
result that holds neither summary is rejected with its line (or array element). Counts are what
Google says; the only derived figure is a summary total's failed count (total − successful −
pending: the resource has no failed total). Data Manager `requestStatus.retrieve` answers
(`requestStatusPerDestination[]`) land as `data_manager_request` rows: per destination a `job` row
(request id, events, failures, pending while PROCESSING) and an `alert` per error reason. `options = { actions = { "<id>" = "Purchase" } }` names
conversion actions by id as the upload log loader does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from capi_audit import schema
from capi_audit.io.base import Reader, Staged, collect_chunks, ensure_file
from capi_audit.io.canonical import doc_chunks
from capi_audit.io.google_upload import _g, _j, action_names, gather_docs
from capi_audit.io.multi import one_file

if TYPE_CHECKING:
    from pathlib import Path

    from capi_audit.config import SourceSpec
    from capi_audit.workspace import Workspace

ACTION = "$.offlineConversionUploadConversionActionSummary"
CLIENT = "$.offlineConversionUploadClientSummary"
DM = "$.requestStatusPerDestination"


def _list(e: str, path: str) -> str:
    """SQL: the objects of a JSON list (camel or snake spelling) as JSON[] (empty when absent)."""
    return f"coalesce(CAST(json_extract({_j(e, path)}, '$[*]') AS JSON[]), CAST([] AS JSON[]))"


class GoogleUploadSummaryReader(Reader):
    """Google Ads API offline conversion upload summaries into `upload_summaries`."""

    name = "google_upload_summary"
    tables = ("upload_summaries",)
    options = {"actions": dict}  # noqa: RUF012

    def stage(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Staged:
        """Stage one row per summary total, daily summary, job summary and alert (all chunks at once)."""
        return collect_chunks(ws, self.stage_chunks(ws, spec, file, table))

    def stage_chunks(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Iterator[Staged]:
        """Stage one chunk of lines (or of a JSON array's elements) at a time, each finalized before
        the next is read (bounded memory, see canonical.doc_chunks)."""
        ensure_file(file)
        action_names(spec, file)
        return self._chunks(ws, spec, file)

    def _chunks(self, ws: Workspace, spec: SourceSpec, file: Path) -> Iterator[Staged]:
        n_staged = 0
        for note in doc_chunks(ws, file):
            staged = self._stage_docs(ws, spec, [file], rec0=n_staged)
            n_staged += ws.scalar("SELECT count(*) FROM _stage")
            yield one_file(staged, file, note)

    def stage_many(self, ws: Workspace, spec: SourceSpec, files: list[Path], table: schema.Table
                   ) -> tuple[Staged, list[Path], list[Path]]:
        """The JSON Lines files of a glob in one pass (chunks of lines spanning files); `search`
        pages that are one array or one pretty-printed document, and empty files, load alone."""
        batch, rest = gather_docs(ws, spec, files)
        if not batch:
            return Staged(columns={}), [], files
        return self._stage_docs(ws, spec, batch), batch, rest

    def _stage_docs(self, ws: Workspace, spec: SourceSpec, files: list[Path], rec0: int = 0) -> Staged:
        """`_jdocs` / `_refused` (one file's or many files' lines, `_file` each) -> `_stage`, its
        records numbered from rec0 + 1."""
        actions = action_names(spec, files[0])
        ws.execute(f"""
            CREATE OR REPLACE TEMP TABLE _res AS
            SELECT _file, line, row_number() OVER (PARTITION BY _file, line ORDER BY k) AS k, res FROM (
                SELECT _file, line, generate_subscripts(rs, 1) AS k, unnest(rs) AS res FROM (
                    SELECT _file, line, CASE WHEN json_type(doc, '$.results') = 'ARRAY'
                                      THEN {_list('doc', '$.results')} ELSE [CAST(doc AS JSON)] END AS rs
                    FROM _jdocs WHERE is_obj))
        """)
        ws.execute(f"""
            CREATE OR REPLACE TEMP TABLE _sums AS
            SELECT _file, line, k, CASE WHEN a IS NOT NULL THEN 'conversion_action' WHEN c IS NOT NULL THEN 'client'
                                 WHEN dm IS NOT NULL THEN 'data_manager_request' END AS level,
                coalesce(a, c, res) AS s, dm
            FROM (SELECT _file, line, k, res, {_j('res', ACTION)} AS a, {_j('res', CLIENT)} AS c,
                         coalesce({_j('res', DM)}, {_j('res', '$.diagnostics' + DM[1:])},
                                  {_j('res', '$.response' + DM[1:])}) AS dm
                  FROM _res)
        """)
        ws.execute("CREATE OR REPLACE TEMP TABLE _amap (k VARCHAR, action VARCHAR)")
        if actions:
            ws.execute("INSERT INTO _amap SELECT unnest($k), unnest($v)", {"k": list(actions), "v": list(actions.values())})
        aid = _g("s", "$.conversionActionId")
        dest = (f"coalesce((SELECT action FROM _amap WHERE _amap.k = {aid} LIMIT 1), "
                f"{_g('s', '$.conversionActionName')}, {aid})")
        common = {
            "platform": "'google'", "level": "level", "client": _g("s", "$.client"),
            "destination": f"CASE WHEN level = 'conversion_action' THEN {dest} END",
            "destination_id": f"CASE WHEN level = 'conversion_action' THEN {aid} END",
            "status": _g("s", "$.status"),
        }
        total = {**common, "dimension": "'total'", "upload_date": "NULL", "job_id": "NULL",
                 "successful": _g("s", "$.successfulEventCount"),
                 "failed": f"try_cast({_g('s', '$.totalEventCount')} AS DOUBLE) - coalesce(try_cast("
                           f"{_g('s', '$.successfulEventCount')} AS DOUBLE), 0) - coalesce(try_cast("
                           f"{_g('s', '$.pendingEventCount')} AS DOUBLE), 0)",
                 "pending": _g("s", "$.pendingEventCount"), "error": "NULL", "error_share": "NULL"}
        entry = {**common, "upload_date": _g("x", "$.uploadDate"), "job_id": _g("x", "$.jobId"),
                 "successful": _g("x", "$.successfulCount"), "failed": _g("x", "$.failedCount"),
                 "pending": _g("x", "$.pendingCount"), "error": "NULL", "error_share": "NULL"}
        # an alert's error is a oneof (conversionUploadError, conversionAdjustmentUploadError, ...):
        # the code is the value of its only key
        alert = {**common, "dimension": "'alert'", "upload_date": "NULL", "job_id": "NULL",
                 "successful": "NULL", "failed": "NULL", "pending": "NULL",
                 "error": "json_extract_string(json_extract(x, '$.error'), '$.' || json_keys(json_extract(x, '$.error'))[1])",
                 "error_share": _g("x", "$.errorPercentage")}
        cols = list(total)

        def sel(fields: dict[str, str], dim: str | None = None) -> str:
            f = dict(fields)
            if dim:
                f["dimension"] = f"'{dim}'"
            return ", ".join(f'CAST({f[c]} AS VARCHAR) AS "{c}"' for c in cols)

        ads = "level IN ('conversion_action', 'client')"
        parts = [f"SELECT _file, line, k, 0 AS part, 0 AS i, {sel(total)} FROM _sums WHERE {ads}"]
        for n, (path, dim, fields) in enumerate((("$.dailySummaries", "day", entry), ("$.jobSummaries", "job", entry),
                                                 ("$.alerts", "alert", alert)), 1):
            parts.append(f"SELECT _file, line, k, {n} AS part, i, {sel(fields, dim)} FROM ("
                         f"SELECT _sums.*, generate_subscripts(xs, 1) AS i, unnest(xs) AS x FROM ("
                         f"SELECT *, {_list('s', path)} AS xs FROM _sums WHERE {ads}) _sums)")
        # Data Manager requestStatus.retrieve: per destination, the request's event count
        # (eventsIngestionStatus.recordCount, failed ones included), error counts by reason and the
        # status (SUCCESS / PARTIAL_SUCCESS / FAILURE / PROCESSING: all pending)
        # https://developers.google.com/data-manager/api/reference/rest/v1/requestStatus/retrieve
        recs = f"try_cast({_g('x', '$.eventsIngestionStatus.recordCount')} AS DOUBLE)"
        errs = (f"coalesce(list_sum(list_transform({_list('x', '$.errorInfo.errorCounts')}, "
                f"lambda e: try_cast(coalesce(json_extract_string(e, '$.recordCount'), "
                f"json_extract_string(e, '$.record_count')) AS DOUBLE))), 0)")
        st = f"upper(coalesce({_g('x', '$.requestStatus')}, ''))"
        req = (f"coalesce({_g('s', '$.requestId')}, json_extract_string(s, '$.request_id'), "
               f"{_g('s', '$.response.requestId')})")
        dm_dest = (f"coalesce((SELECT action FROM _amap WHERE _amap.k = {_g('x', '$.destination.productDestinationId')} "
                   f"LIMIT 1), {_g('x', '$.destination.productDestinationId')})")
        dm_common = {"platform": "'google'", "level": "level", "client": "'DATA_MANAGER'", "destination": dm_dest,
                     "destination_id": _g("x", "$.destination.productDestinationId"),
                     "status": _g("x", "$.requestStatus"), "upload_date": "NULL", "job_id": req}
        dm_job = {**dm_common, "dimension": "'job'",
                  "successful": f"CASE WHEN {st} = 'FAILURE' OR {st} = 'PROCESSING' THEN 0 ELSE {recs} - {errs} END",
                  "failed": f"CASE WHEN {st} = 'FAILURE' THEN {recs} WHEN {st} = 'PROCESSING' THEN 0 ELSE {errs} END",
                  "pending": f"CASE WHEN {st} = 'PROCESSING' THEN {recs} ELSE 0 END",
                  "error": "NULL", "error_share": "NULL"}
        dm_alert = {**dm_common, "dimension": "'alert'", "successful": "NULL", "failed": "NULL", "pending": "NULL",
                    "error": "coalesce(json_extract_string(e, '$.reason'), '')",
                    "error_share": f"try_cast(coalesce(json_extract_string(e, '$.recordCount'), json_extract_string(e, "
                                   f"'$.record_count')) AS DOUBLE) / NULLIF({recs}, 0)"}
        dests = ("SELECT _sums.*, generate_subscripts(xs, 1) AS i, unnest(xs) AS x FROM ("
                 "SELECT *, CAST(json_extract(dm, '$[*]') AS JSON[]) AS xs FROM _sums "
                 "WHERE level = 'data_manager_request') _sums")
        parts.append(f"SELECT _file, line, k, 4 AS part, i, {sel(dm_job)} FROM ({dests})")
        parts.append(f"SELECT _file, line, k, 5 AS part, i * 1000 + j, {sel(dm_alert)} FROM ("
                     f"SELECT d.*, generate_subscripts(es, 1) AS j, unnest(es) AS e FROM ("
                     f"SELECT *, {_list('x', '$.errorInfo.errorCounts')} AS es FROM ({dests})) d)")
        ws.drop("_stage")
        names = ", ".join(f'"{c}"' for c in cols)
        ws.execute(f"""
            CREATE TEMP TABLE _stage AS
            SELECT _file, row_number() OVER (ORDER BY _file, line, k, part, i) + $rec0 AS _rec, line AS _line, {names}
            FROM ({' UNION ALL '.join(parts)}) ORDER BY _file, line, k, part, i
        """, {"rec0": rec0})
        refused_file = "_file" if "_file" in [r[0] for r in ws.rows("DESCRIBE _refused")] else "CAST($f AS VARCHAR)"
        ws.execute("DROP TABLE IF EXISTS _reader_rejects")
        ws.execute(f"""
            CREATE TEMP TABLE _reader_rejects AS
            SELECT line, NULL::VARCHAR AS column_name,
                   'no upload summary (offlineConversionUploadConversionActionSummary, '
                   || 'offlineConversionUploadClientSummary or Data Manager requestStatusPerDestination) in this result'
                   AS reason, _file
            FROM _sums WHERE level IS NULL
            UNION ALL SELECT line, NULL::VARCHAR, CASE WHEN valid THEN 'not a JSON object' ELSE 'broken JSON' END, _file
            FROM _jdocs WHERE NOT is_obj
            -- a page whose results list is empty gives no result: rejected, or the line would vanish
            UNION ALL SELECT line, NULL::VARCHAR, 'a page with an empty results list (nothing to load)', _file
            FROM _jdocs WHERE is_obj AND json_type(doc, '$.results') = 'ARRAY' AND json_array_length(doc, '$.results') = 0
            UNION ALL SELECT line, column_name, reason, {refused_file} FROM _refused
        """, {"f": str(files[0])})
        for t in ("_res", "_sums", "_amap", "_jdocs", "_refused"):
            ws.execute(f"DROP TABLE IF EXISTS {t}")
        return Staged(columns=dict.fromkeys(cols, "VARCHAR"))
