"""`google_tag_hits`: browser Google tag requests -> pixel_events, platform per request:

- Google Ads conversion hits, `/pagead/conversion/<conversion id>/?label=…` -> platform `google`.
  `oid` (or `transaction_id`) is the transaction id, `value`, `currency_code`, click ids from
  `gclid` / `gclaw` (the `_gcl_aw` cookie), `gbraid` / `gclgb`, `wbraid`, or the page URL in `url`;
  advanced-matching `em=tv.1~em.<hash>`. The conversion action is `AW-<id>/<label>` unless the
  source maps labels to action names: `options = { actions = { "<label>" = "Purchase" } }` (the
  action name is then the destination and event name, so a tag hit and an upload to the same
  action share the dedup key, design v2 §3.0). Redirect copies of the same hit
  (`/pagead/1p-conversion/`) and remarketing hits (`/pagead/viewthroughconversion/`) are skipped
  and counted, not loaded: counting them would count one conversion twice.
- GA4 gtag hits, `/g/collect?v=2&tid=G-…&en=purchase&ep.transaction_id=…` -> platform `ga4`,
  one row per event (a POST body carries one event per line); `epn.value` / `ep.value`, `cu`.

Both read `gcs` (ad_storage) and `gcd` (ad_storage, ad_user_data; capi_audit.io.consent_mode).
A hit in denied storage (ad_storage for Ads, analytics_storage for GA4) carrying no click id and
no `auid` cookie id is a cookieless Advanced Consent Mode ping (`cookieless`; https://support.google.com/google-ads/answer/10000067). The
page URL is kept without its query string. Any other request is skipped and counted.

The same reader takes server-side GTM request logs: the browser's hits as the server container
received them (JSON lines with `url`/`body`/`timestamp`, or access-log lines).
Parameter names are those seen in captures of gtag.js; Google does not document them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from capi_audit import schema
from capi_audit.errors import InputError
from capi_audit.io.base import (
    Reader,
    Staged,
    StreamingMany,
    collect_chunks,
    ensure_file,
    lines_batch,
)
from capi_audit.io.canonical import accumulate
from capi_audit.io.consent_mode import gcd_sql, gcs_ad_storage_sql, gcs_analytics_storage_sql
from capi_audit.io.requests import decode_param, param_pattern, request_chunks

if TYPE_CHECKING:
    from capi_audit.config import SourceSpec
    from capi_audit.workspace import Workspace

ADS_PATH = r"/pagead/conversion/([0-9]+)/?(\?|$)"
GA4_PATH = r"/g/collect/?(\?|$)"


# every parameter the fields read. A GA4 POST event's parameters are its body line's, then the
# request's query string's: the query's values are extracted and decoded once per request (`_q_<name>`), not
# copied into every event (events x query length: 850 requests of 25 events with a 10 kB query ran
# out of the load's memory)
_QNAMES = ("auid", "cu", "currency", "currency_code", "dl", "em", "en", "ep.transaction_id", "ep.value", "epn.value",
           "gbraid", "gcd", "gclaw", "gclgb", "gclid", "gcs", "label", "oid", "tid", "transaction_id", "url", "value",
           "wbraid")


def _q(name: str) -> str:
    return '"_q_' + name + '"'


def _p(name: str) -> str:
    """SQL: one parameter of an event: from its body line (`bp`) when there, else from the query."""
    pat = param_pattern(name)
    body = decode_param(f"regexp_extract(bp, '{pat}', 1)")
    return f"CASE WHEN regexp_matches(bp, '{pat}') THEN {body} ELSE {_q(name)} END"


def _query_values() -> str:
    """SQL: `_req` with each parameter of a request's query string, decoded, as column `_q_<name>`
    (the query cut out once, each raw value extracted once, then decoded)."""
    raws = ", ".join(f"regexp_extract(_query, '{param_pattern(n)}', 1) AS \"_r_{n}\"" for n in _QNAMES)
    decoded = ", ".join(decode_param(f'"_r_{n}"') + f" AS {_q(n)}" for n in _QNAMES)
    return (f"(SELECT *, {decoded} FROM (SELECT *, {raws} FROM "
            "(SELECT *, '&' || coalesce(regexp_extract(url, '\\?(.*)$', 1), '') AS _query FROM _req)))")


def _page_param(name: str) -> str:
    # a click id carried in the (URL-encoded) page address the hit reports
    return f"NULLIF(regexp_extract(coalesce({_p('url')}, {_p('dl')}, ''), '[?&]{name}=([^&#]*)', 1), '')"


def _strip_query(expr: str) -> str:
    return f"NULLIF(regexp_replace({expr}, '[?#].*$', ''), '')"


class GoogleTagHitsReader(StreamingMany, Reader):
    """Google Ads conversion and GA4 gtag requests (URLs, access logs, sGTM logs, HAR)."""

    name = "google_tag_hits"
    tables = ("pixel_events",)
    options = {"actions": dict, "event_name": str}  # noqa: RUF012

    def stage(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Staged:
        """Stage one row per conversion hit / GA4 event; count and skip other requests (all chunks at once)."""
        return collect_chunks(ws, self.stage_chunks(ws, spec, file, table))

    def stage_chunks(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Iterator[Staged]:
        """Stage one row per conversion hit / GA4 event; count and skip other requests, one chunk of lines at a time."""
        ensure_file(file)
        return self._chunks(ws, spec, file)

    def stage_many_chunks(self, ws: Workspace, spec: SourceSpec, files: list[Path], table: schema.Table
                          ) -> tuple[Iterator[Staged], list[Path], list[Path]]:
        """Stage the captures of a glob together, in chunks that span files (time linear in the
        lines, memory bounded by a chunk); HAR and empty files are left to the one-file path."""
        batch, rest = lines_batch(files, har=True)
        if len(batch) < 2:
            return iter(()), [], files
        return self._chunks(ws, spec, batch), batch, rest

    def _chunks(self, ws: Workspace, spec: SourceSpec, files: Path | list[Path]) -> Iterator[Staged]:
        actions = spec.options.get("actions", {})
        if not isinstance(actions, dict) or not all(isinstance(v, str) for v in actions.values()):
            raise InputError(f"{spec.path}: options.actions must map conversion labels to action names")
        conv_id = f"regexp_extract(url, '{ADS_PATH}', 1)"
        label = _p("label")
        ad_storage = f"coalesce({gcs_ad_storage_sql(_p('gcs'))}, {gcd_sql(_p('gcd'), 'ad_storage')})"
        analytics = f"coalesce({gcs_analytics_storage_sql(_p('gcs'))}, {gcd_sql(_p('gcd'), 'analytics_storage')})"
        gclid = f"coalesce({_p('gclid')}, {_p('gclaw')}, {_page_param('gclid')})"
        gbraid = f"coalesce({_p('gbraid')}, {_p('gclgb')}, {_page_param('gbraid')})"
        wbraid = f"coalesce({_p('wbraid')}, {_page_param('wbraid')})"
        em = f"NULLIF(regexp_extract(coalesce({_p('em')}, ''), '(?:^|~)em\\.([^~]+)', 1), '')"
        action = ("(SELECT action FROM _amap WHERE _amap.k = " + label + " OR _amap.k = " + conv_id
                  + " || '/' || " + label + " LIMIT 1)")
        fields = {
            "platform": "CASE WHEN is_ads THEN 'google' ELSE 'ga4' END",
            "destination": f"CASE WHEN is_ads THEN coalesce({action}, 'AW-' || {conv_id} || '/' || coalesce({label}, '')) "
                           f"ELSE {_p('tid')} END",
            "event_name": f"CASE WHEN is_ads THEN coalesce({action}, CAST($ev AS VARCHAR)) ELSE {_p('en')} END",
            "event_id": f"CASE WHEN is_ads THEN coalesce({_p('oid')}, {_p('transaction_id')}) "
                        f"ELSE coalesce({_p('ep.transaction_id')}, {_p('transaction_id')}) END",
            "event_time": "started",
            "value": f"CASE WHEN is_ads THEN {_p('value')} ELSE coalesce({_p('epn.value')}, {_p('ep.value')}) END",
            "currency": f"CASE WHEN is_ads THEN coalesce({_p('currency_code')}, {_p('currency')}) ELSE {_p('cu')} END",
            "gclid": gclid, "gbraid": gbraid, "wbraid": wbraid,
            "em": f"CASE WHEN is_ads THEN {em} END",
            "consent_ads": ad_storage,
            "consent_ad_user_data": gcd_sql(_p("gcd"), "ad_user_data"),
            # the storage that decides whether the hit carries cookies: ad_storage for the Ads tag,
            # analytics_storage for GA4
            "cookieless": f"CASE WHEN (CASE WHEN is_ads THEN {ad_storage} ELSE {analytics} END) = 'denied' "
                          f"AND {gclid} IS NULL AND {gbraid} IS NULL AND {wbraid} IS NULL AND {_p('auid')} IS NULL "
                          "THEN 'true' ELSE 'false' END",
            "page_url": _strip_query(f"coalesce({_p('url')}, {_p('dl')})"),
        }
        sel = ", ".join(f'{expr} AS "{name}"' for name, expr in fields.items())
        ws.execute("CREATE OR REPLACE TEMP TABLE _amap (k VARCHAR, action VARCHAR)")
        if actions:
            ws.execute("INSERT INTO _amap SELECT unnest($k), unnest($v)",
                       {"k": list(actions), "v": list(actions.values())})
        note, n_staged = "", 0
        counts: dict[str, list[int]] = {}  # file -> [other requests, GA4 hits without an event, copies]
        mapped = f"labels mapped to actions: {json.dumps(actions, sort_keys=True)}" if actions else ""

        def notes(skipped: int, copies: int) -> str:
            return "; ".join(n for n in (
                note,
                f"{skipped} requests that are not Google Ads conversions or GA4 events skipped" if skipped else "",
                f"of them {copies} redirect copies or remarketing hits (/pagead/1p-conversion, viewthroughconversion)" if copies else "",
                mapped,
            ) if n)

        # one chunk of the capture at a time (bounded memory; see requests.request_chunks)
        for chunk_note in request_chunks(ws, files):
            note = chunk_note
            ws.execute(f"""
                CREATE OR REPLACE TEMP TABLE _req AS
                SELECT *, url IS NOT NULL AND regexp_matches(url, '{ADS_PATH}') AS is_ads,
                       url IS NOT NULL AND regexp_matches(url, '{GA4_PATH}') AS is_ga4
                FROM _req
            """)
            # one row per event: a GA4 POST body holds one event per line (its own parameters first,
            # then the request's shared ones); an Ads hit is one conversion. A view, and the body is
            # not carried: a table of the events, each with its request's body and query string, grew
            # with the square of the events (20,000 events in a 751 KB file ran out of memory)
            qcols = ", ".join(_q(n) for n in _QNAMES)
            qvals = _query_values()
            ws.execute(f"""
                CREATE OR REPLACE TEMP VIEW _hits AS
                SELECT line, _file, url, started, is_ads, is_ga4, sub, '&' || coalesce(body_line, '') AS bp, {qcols}
                FROM (
                    SELECT line, _file, url, started, is_ads, is_ga4, {qcols},
                           generate_subscripts(parts, 1) AS sub, unnest(parts) AS body_line
                    FROM (SELECT line, _file, url, started, is_ads, is_ga4, {qcols},
                                 CASE WHEN is_ga4 AND body IS NOT NULL AND trim(body) <> ''
                                      THEN list_filter(string_split(replace(body, chr(13), ''), chr(10)), lambda x: trim(x) <> '')
                                      ELSE [NULL::VARCHAR] END AS parts
                          FROM {qvals})
                )
            """)
            # the fields are computed first, so the numbering and the sort hold only their small values
            names = ", ".join(f'"{name}"' for name in fields)
            accumulate(ws, "_stage", f"""
                SELECT _file, row_number() OVER (ORDER BY _file, line, sub) + $rec0 AS _rec, line AS _line, {names}
                FROM (SELECT _file, line, sub, {sel} FROM _hits WHERE is_ads OR (is_ga4 AND {_p('en')} IS NOT NULL))
                ORDER BY _file, line, sub
            """, {"ev": spec.options.get("event_name", ws.config.conversion_event), "rec0": n_staged}, first=True)
            n_staged += ws.scalar("SELECT count(*) FROM _stage")
            for f, *got in ws.rows(f"""
                SELECT _file, count(*) FILTER (WHERE url IS NOT NULL AND NOT is_ads AND NOT is_ga4),
                       count(*) FILTER (WHERE is_ga4 AND {_p('en')} IS NULL),
                       count(*) FILTER (WHERE url IS NOT NULL AND regexp_matches(url, '/pagead/(1p-conversion|viewthroughconversion)/'))
                FROM _hits GROUP BY _file
            """):
                counts[f] = [a + b for a, b in zip(counts.get(f, [0, 0, 0]), got, strict=True)]
            accumulate(ws, "_reader_rejects",
                       "SELECT line, NULL::VARCHAR AS column_name, 'no request URL' AS reason, _file FROM _req WHERE url IS NULL "
                       "UNION ALL SELECT line, column_name, reason, _file FROM _refused", first=True)
            ws.execute("DROP VIEW IF EXISTS _hits")
            for t in ("_refused", "_req"):
                ws.execute(f"DROP TABLE IF EXISTS {t}")
            # this chunk is finalized at the yield; the last Staged carries the whole file's notes
            yield Staged(columns=dict.fromkeys(fields, "VARCHAR"), note=notes(0, 0),
                         file_notes={f: notes(o + n, c) for f, (o, n, c) in counts.items()},
                         file_skipped={f: o + n for f, (o, n, _c) in counts.items()})
        ws.execute("DROP TABLE IF EXISTS _amap")
