"""`google_upload_log`: logged Google Ads API and Data Manager API uploads with their answers.

One JSON document per line (or a JSON array): `{"request": {...}, "response": {...},
"timestamp": "…"}` (a bare request is read too; `diagnostics` may hold a Data Manager
`requestStatus.retrieve` answer). Field names are read in the JSON (camelCase) and the protobuf
(snake_case) spelling. Which table a source fills decides what is read from the file:

- `server_events` <- Google Ads API `UploadClickConversions` requests (`conversions[]`:
  `conversionAction`, `conversionDateTime`, `orderId`, `gclid` / `gbraid` / `wbraid`,
  `conversionValue`, `currencyCode`, `userIdentifiers[].hashedEmail` / `hashedPhoneNumber`,
  `consent.adUserData`; source_api `google_ads_api`) and Data Manager `events.ingest` requests
  (`events[]`: `transactionId`, `eventTimestamp`, `adIdentifiers`, `userData.userIdentifiers[]`
  with `emailAddress`, `phoneNumber`, `address{givenName, familyName, regionCode, postalCode}`,
  event or request `consent.adUserData`; source_api `data_manager`, whose hashes may be base64).
  Status: with a response, a conversion named by a partial-failure error
  (`partialFailureError.details[].errors[]`, located by `fieldPathElements[].index`) is
  `rejected` and `error` holds Google's reason code (e.g. `EXPIRED_EVENT`, `CLICK_NOT_FOUND`),
  the others are `accepted`; a request-level `error` rejects every event of the request; a Data
  Manager request status `SUCCESS` / `FAILURE` marks its events accepted / rejected, and
  `PARTIAL_SUCCESS` leaves them unknown with the reason counts in `error` (Data Manager does not
  say which events failed). Without a response the status is unknown.
  https://developers.google.com/google-ads/api/docs/conversions/upload-clicks,
  https://developers.google.com/data-manager/api/reference/rest/v1/events/ingest
- `enhancements` <- `UploadConversionAdjustments` requests whose `adjustmentType` is
  `ENHANCEMENT` (enhanced conversions for web: `orderId`, `gclidDateTimePair`,
  `userIdentifiers[]` with `addressInfo`): they add no conversion
  (https://developers.google.com/google-ads/api/docs/conversions/upload-online).

Lines of the other kinds (and restatements / retractions) are skipped and counted.
`options = { actions = { "<conversion action id or resource name>" = "Purchase" } }` names the
conversion actions (the destination and event name; unnamed ones keep the resource name).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from capi_audit import schema
from capi_audit.errors import InputError
from capi_audit.io.base import Reader, Staged, collect_chunks, ensure_file, lines_batch
from capi_audit.io.canonical import accumulate, doc_chunks
from capi_audit.io.multi import small_files

if TYPE_CHECKING:
    from capi_audit.config import SourceSpec
    from capi_audit.workspace import Workspace


def _snake(path: str) -> str:
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", path).lower()


def _g(e: str, path: str) -> str:
    """SQL: a string at a JSON path, camelCase or snake_case."""
    alts = dict.fromkeys((path, _snake(path)))
    return "coalesce(" + ", ".join(f"json_extract_string({e}, '{p}')" for p in alts) + ")"


def _j(e: str, path: str) -> str:
    """SQL: a JSON value at a path, camelCase or snake_case."""
    alts = dict.fromkeys((path, _snake(path)))
    return "coalesce(" + ", ".join(f"json_extract({e}, '{p}')" for p in alts) + ")"


def _first_of(e: str, list_path: str, key: str) -> str:
    """SQL: the first non-null `key` among the objects of a JSON list (camel or snake)."""
    alts = [f"list_filter(CAST(json_extract_string({e}, '{lp}[*].{k}') AS VARCHAR[]), lambda x: x IS NOT NULL)[1]"
            for lp, k in dict.fromkeys(((list_path, key), (_snake(list_path), _snake(key))))]
    return "coalesce(" + ", ".join(alts) + ")"


def action_names(spec: SourceSpec, file: Path) -> dict[str, str]:
    """`options.actions` (conversion action id -> name), checked."""
    actions = spec.options.get("actions", {})
    if not isinstance(actions, dict) or not all(isinstance(v, str) for v in actions.values()):
        raise InputError(f"{file}: options.actions must map conversion action ids to names")
    return actions


def gather_docs(ws: Workspace, spec: SourceSpec, files: list[Path]) -> tuple[list[Path], list[Path]]:
    """The JSON Lines files of a glob read in one pass into `_jdocs` / `_refused` (chunks of lines
    spanning files, each line keeping its file): (those files, the others). Files too large for a
    scan, JSON arrays, pretty-printed documents and empty files are left to load alone; fewer than
    two files: ([], files) and nothing staged."""
    batch, _ = lines_batch(small_files(files)[0], json_lines=True)
    if len(batch) < 2:
        return [], files
    chosen = set(batch)
    action_names(spec, batch[0])
    for k, _ in enumerate(doc_chunks(ws, batch)):
        accumulate(ws, "_alldocs", "SELECT * FROM _jdocs", first=k == 0)
        accumulate(ws, "_allrefused", "SELECT * FROM _refused", first=k == 0)
    ws.drop("_jdocs", "_refused")
    ws.execute("ALTER TABLE _alldocs RENAME TO _jdocs")
    ws.execute("ALTER TABLE _allrefused RENAME TO _refused")
    return batch, [f for f in files if f not in chosen]


class GoogleUploadLogReader(Reader):
    """Google Ads API / Data Manager upload logs into server_events or enhancements."""

    name = "google_upload_log"
    tables = ("server_events", "enhancements")
    options = {"actions": dict}  # noqa: RUF012

    def stage(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Staged:
        """Stage one row per uploaded conversion, Data Manager event or enhancement (all chunks at once)."""
        return collect_chunks(ws, self.stage_chunks(ws, spec, file, table))

    def stage_chunks(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Iterator[Staged]:
        """Stage one row per uploaded conversion, Data Manager event or enhancement, one chunk of
        lines at a time (bounded memory, see canonical.doc_chunks; a JSON array is one chunk)."""
        ensure_file(file)
        action_names(spec, file)
        return self._chunks(ws, spec, file, table)

    def _chunks(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Iterator[Staged]:
        counts: dict[str, list[int]] = {}  # skipped requests and adjustments, over the chunks so far
        for note in doc_chunks(ws, file):
            yield self._stage_docs(ws, spec, [file], table, counts=counts, note=note)

    def stage_many(self, ws: Workspace, spec: SourceSpec, files: list[Path], table: schema.Table
                   ) -> tuple[Staged, list[Path], list[Path]]:
        """The JSON Lines logs of a glob in one pass (chunks of lines spanning files, each line
        keeping its file); JSON arrays, pretty-printed documents and empty files load alone."""
        batch, rest = gather_docs(ws, spec, files)
        if not batch:
            return Staged(columns={}), [], files
        return self._stage_docs(ws, spec, batch, table), batch, rest

    def _stage_docs(self, ws: Workspace, spec: SourceSpec, files: list[Path], table: schema.Table,
                    counts: dict[str, list[int]] | None = None, note: str = "") -> Staged:
        """`_jdocs` / `_refused` (one file's or many files' lines, `_file` each) -> `_stage`. With
        `counts` (a file read chunk by chunk), skipped counts add up over the chunks."""
        actions = action_names(spec, files[0])
        req = ("CASE WHEN json_type(doc, '$.request') = 'OBJECT' THEN json_extract(doc, '$.request') "
               "ELSE CAST(doc AS JSON) END")
        ws.execute(f"""
            CREATE OR REPLACE TEMP TABLE _up AS
            SELECT _file, line, doc, r, json_extract(doc, '$.response') AS resp,
                coalesce(json_extract(doc, '$.diagnostics'), json_extract(doc, '$.response')) AS diag,
                CASE WHEN json_type(r, '$.conversions') = 'ARRAY' THEN 'clicks'
                     WHEN coalesce(json_type(r, '$.conversionAdjustments'), json_type(r, '$.conversion_adjustments')) = 'ARRAY' THEN 'adjustments'
                     WHEN json_type(r, '$.events') = 'ARRAY' AND json_exists(r, '$.destinations') THEN 'data_manager'
                     ELSE 'other' END AS kind,
                coalesce(json_extract_string(doc, '$.timestamp'), json_extract_string(doc, '$.sent_at'),
                         json_extract_string(doc, '$.time')) AS sent
            FROM (SELECT _file, line, doc, {req} AS r FROM _jdocs WHERE is_obj)
        """)
        # partial-failure errors: (line, index of the failed operation, Google's reason code)
        pfe = f"{_j('resp', '$.partialFailureError')}"
        ws.execute(f"""
            CREATE OR REPLACE TEMP TABLE _errs AS
            SELECT _file, line, try_cast(coalesce(json_extract_string(err, '$.location.fieldPathElements[0].index'),
                                           json_extract_string(err, '$.location.field_path_elements[0].index')) AS BIGINT) AS idx,
                   json_extract_string(ec, '$.' || json_keys(ec)[1]) AS code
            FROM (SELECT _file, line, err, coalesce(json_extract(err, '$.errorCode'), json_extract(err, '$.error_code')) AS ec
                  FROM (SELECT _file, line, unnest(CAST(json_extract({pfe}, '$.details[*].errors[*]') AS JSON[])) AS err
                        FROM _up WHERE {pfe} IS NOT NULL))
        """)
        ws.execute("CREATE OR REPLACE TEMP TABLE _amap (k VARCHAR, action VARCHAR)")
        if actions:
            ws.execute("INSERT INTO _amap SELECT unnest($k), unnest($v)", {"k": list(actions), "v": list(actions.values())})

        def named(res: str) -> str:
            return (f"coalesce((SELECT action FROM _amap WHERE _amap.k = {res} "
                    f"OR _amap.k = regexp_extract({res}, '([^/]+)$', 1) LIMIT 1), {res})")

        req_error = f"coalesce({_g('resp', '$.error.status')}, {_g('resp', '$.error.message')})"
        err_status = (f"CASE WHEN {req_error} IS NOT NULL THEN 'rejected' "
                      "WHEN x.code IS NOT NULL THEN 'rejected' WHEN resp IS NOT NULL THEN 'accepted' END")
        err_text = f"coalesce(x.code, {req_error})"
        if table.name == "enhancements":
            kinds, list_path = ("adjustments",), "$.conversionAdjustments"
            c = "c"
            fields = {
                "platform": "'google'",
                "destination": named(_g(c, "$.conversionAction")),
                "order_id": _g(c, "$.orderId"),
                "adjusted_at": f"coalesce({_g(c, '$.adjustmentDateTime')}, sent, {_g(c, '$.gclidDateTimePair.conversionDateTime')})",
                "conversion_time": _g(c, "$.gclidDateTimePair.conversionDateTime"),
                "em": _first_of(c, "$.userIdentifiers", "hashedEmail"),
                "ph": _first_of(c, "$.userIdentifiers", "hashedPhoneNumber"),
                "fn": _first_of(c, "$.userIdentifiers", "addressInfo.hashedFirstName"),
                "ln": _first_of(c, "$.userIdentifiers", "addressInfo.hashedLastName"),
                "ct": _first_of(c, "$.userIdentifiers", "addressInfo.city"),
                "st": _first_of(c, "$.userIdentifiers", "addressInfo.state"),
                "zp": _first_of(c, "$.userIdentifiers", "addressInfo.postalCode"),
                "country": _first_of(c, "$.userIdentifiers", "addressInfo.countryCode"),
                "gclid": _g(c, "$.gclidDateTimePair.gclid"),
                "request_id": f"coalesce({_g('resp', '$.jobId')}, json_extract_string(doc, '$.request_id'))",
                "status": err_status, "error": err_text,
            }
            keep = f"upper(coalesce({_g(c, '$.adjustmentType')}, '')) = 'ENHANCEMENT'"
        else:
            kinds, list_path = ("clicks", "data_manager"), None
            c = "c"
            dm = "kind = 'data_manager'"
            dm_status = f"upper(coalesce({_g('diag', '$.requestStatusPerDestination[0].requestStatus')}, ''))"
            dm_reasons = ("array_to_string(CAST(coalesce(json_extract_string(diag, '$.requestStatusPerDestination[0].errorInfo.errorCounts[*].reason'), "
                          "json_extract_string(diag, '$.request_status_per_destination[0].error_info.error_counts[*].reason')) AS VARCHAR[]), ',')")
            fields = {
                "platform": "'google'",
                "destination": f"CASE WHEN {dm} THEN {named(_g('r', '$.destinations[0].productDestinationId'))} "
                               f"ELSE {named(_g(c, '$.conversionAction'))} END",
                "event_name": f"CASE WHEN {dm} THEN {named(_g('r', '$.destinations[0].productDestinationId'))} "
                              f"ELSE {named(_g(c, '$.conversionAction'))} END",
                "event_id": f"CASE WHEN {dm} THEN {_g(c, '$.transactionId')} ELSE {_g(c, '$.orderId')} END",
                "order_id": f"CASE WHEN {dm} THEN {_g(c, '$.transactionId')} ELSE {_g(c, '$.orderId')} END",
                "event_time": f"CASE WHEN {dm} THEN {_g(c, '$.eventTimestamp')} ELSE {_g(c, '$.conversionDateTime')} END",
                "sent_at": "sent",
                "value": f"coalesce({_g(c, '$.conversionValue')}, {_g(c, '$.value')})",
                "currency": f"coalesce({_g(c, '$.currencyCode')}, {_g(c, '$.currency')})",
                "gclid": f"coalesce({_g(c, '$.gclid')}, {_g(c, '$.adIdentifiers.gclid')})",
                "gbraid": f"coalesce({_g(c, '$.gbraid')}, {_g(c, '$.adIdentifiers.gbraid')})",
                "wbraid": f"coalesce({_g(c, '$.wbraid')}, {_g(c, '$.adIdentifiers.wbraid')})",
                "em": f"CASE WHEN {dm} THEN {_first_of(c, '$.userData.userIdentifiers', 'emailAddress')} "
                      f"ELSE {_first_of(c, '$.userIdentifiers', 'hashedEmail')} END",
                "ph": f"CASE WHEN {dm} THEN {_first_of(c, '$.userData.userIdentifiers', 'phoneNumber')} "
                      f"ELSE {_first_of(c, '$.userIdentifiers', 'hashedPhoneNumber')} END",
                "fn": f"CASE WHEN {dm} THEN {_first_of(c, '$.userData.userIdentifiers', 'address.givenName')} END",
                "ln": f"CASE WHEN {dm} THEN {_first_of(c, '$.userData.userIdentifiers', 'address.familyName')} END",
                "zp": f"CASE WHEN {dm} THEN {_first_of(c, '$.userData.userIdentifiers', 'address.postalCode')} END",
                "country": f"CASE WHEN {dm} THEN {_first_of(c, '$.userData.userIdentifiers', 'address.regionCode')} END",
                "consent_ad_user_data": f"coalesce({_g(c, '$.consent.adUserData')}, {_g('r', '$.consent.adUserData')})",
                "request_id": f"coalesce({_g('resp', '$.requestId')}, {_g('resp', '$.jobId')}, json_extract_string(doc, '$.request_id'))",
                "status": f"CASE WHEN {dm} AND {req_error} IS NULL THEN CASE {dm_status} WHEN 'SUCCESS' THEN 'accepted' "
                          f"WHEN 'FAILURE' THEN 'rejected' END ELSE {err_status} END",
                "error": f"CASE WHEN {dm} AND {req_error} IS NULL THEN NULLIF({dm_reasons}, '') ELSE {err_text} END",
                "source_api": f"CASE WHEN {dm} THEN 'data_manager' ELSE 'google_ads_api' END",
            }
            keep = "TRUE"
        lists = {
            "clicks": "json_extract(r, '$.conversions')",
            "data_manager": "json_extract(r, '$.events')",
            "adjustments": f"{_j('r', list_path or '$.conversionAdjustments')}",
        }
        # one row per item, carrying only the small parts of its request that the fields read (a
        # copy of the whole request per item grew with the square of the items: a 500 MB log of
        # 200-conversion requests needed over 18 GB). Of a request-level error only its status and
        # message (cut at 1,000 characters) are carried: its details list every conversion, and a
        # copy per conversion ran a 172 KB log of one 300-conversion request out of memory
        small = ("json_object('destinations', json_extract(r, '$.destinations'), 'consent', json_extract(r, '$.consent')) AS r, "
                 "CASE WHEN resp IS NOT NULL THEN json_object('error', json_object('status', json_extract(resp, '$.error.status'), "
                 "'message', left(json_extract_string(resp, '$.error.message'), 1000)), "
                 "'requestId', json_extract(resp, '$.requestId'), 'request_id', json_extract(resp, '$.request_id'), "
                 "'jobId', json_extract(resp, '$.jobId'), 'job_id', json_extract(resp, '$.job_id')) END AS resp, "
                 "json_object('requestStatusPerDestination', json_extract(diag, '$.requestStatusPerDestination'), "
                 "'request_status_per_destination', json_extract(diag, '$.request_status_per_destination')) AS diag, "
                 "json_object('request_id', json_extract(doc, '$.request_id')) AS doc")
        items = " UNION ALL ".join(
            f"SELECT * EXCLUDE (arr), unnest(range(len(arr))) AS i, unnest(arr) AS c FROM ("
            f"SELECT _file, line, kind, sent, {small}, CAST(json_extract({lists[k]}, '$[*]') AS JSON[]) AS arr "
            f"FROM _up WHERE kind = '{k}')"
            for k in kinds)
        ws.execute(f"CREATE OR REPLACE TEMP TABLE _items AS SELECT * FROM ({items})")
        ws.execute("""
            CREATE OR REPLACE TEMP TABLE _items AS
            SELECT t.*, x.code FROM _items t
            LEFT JOIN (SELECT _file, line, idx, min(code) AS code FROM _errs GROUP BY _file, line, idx) x
              ON x._file = t._file AND x.line = t.line AND x.idx = t.i
        """)
        sel = ", ".join(f'{expr} AS "{name}"' for name, expr in fields.items())
        ws.drop("_stage")
        ws.execute(f"""
            CREATE TEMP TABLE _stage AS
            SELECT _file, row_number() OVER (ORDER BY _file, line, i) AS _rec, line AS _line, {sel}
            FROM _items x WHERE {keep} ORDER BY _file, line, i
        """)
        skip_items = dict(ws.rows(f"SELECT _file, count(*) FROM _items x WHERE NOT ({keep}) GROUP BY _file"))
        skip_lines = dict(ws.rows("SELECT _file, count(*) FROM _up WHERE kind NOT IN ('other', $a, $b) GROUP BY _file",
                                  {"a": kinds[0], "b": kinds[-1]}))
        refused_file = "_file" if "_file" in [r[0] for r in ws.rows("DESCRIBE _refused")] else "CAST($f AS VARCHAR)"
        # a request whose list is empty gives no item: rejected, or the line would vanish
        empty = "".join(
            f" UNION ALL SELECT line, NULL::VARCHAR, 'an empty list: the request held nothing to upload', _file "
            f"FROM _up WHERE kind = '{k}' AND coalesce(json_array_length({lists[k]}), 0) = 0" for k in kinds)
        ws.execute("DROP TABLE IF EXISTS _reader_rejects")
        ws.execute(f"""
            CREATE TEMP TABLE _reader_rejects AS
            SELECT line, NULL::VARCHAR AS column_name,
                   'not a Google Ads API or Data Manager upload (no conversions[], conversionAdjustments[] or events[])' AS reason,
                   _file
            FROM _up WHERE kind = 'other'
            UNION ALL SELECT line, NULL::VARCHAR, CASE WHEN valid THEN 'not a JSON object' ELSE 'broken JSON' END, _file
            FROM _jdocs WHERE NOT is_obj
            UNION ALL SELECT line, column_name, reason, {refused_file} FROM _refused{empty}
        """, {"f": str(files[0])})
        for t in ("_up", "_errs", "_items", "_amap", "_jdocs", "_refused"):
            ws.execute(f"DROP TABLE IF EXISTS {t}")
        notes, skipped = {}, {}
        counts = {} if counts is None else counts
        for f in map(str, files):
            got = counts.setdefault(f, [0, 0])
            got[0] += int(skip_lines.get(f, 0))
            got[1] += int(skip_items.get(f, 0))
            n_lines, n_items = got
            notes[f] = "; ".join(n for n in (
                note,
                f"{n_lines} requests of another kind skipped (load them into the other table: uploads -> "
                "server_events, enhancements -> enhancements)" if n_lines else "",
                f"{n_items} adjustments that are not enhancements (restatements, retractions) skipped" if n_items else "",
            ) if n)
            skipped[f] = n_lines + n_items
        return Staged(columns=dict.fromkeys(fields, "VARCHAR"), file_skipped=skipped, file_notes=notes)
