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

from pathlib import Path
from typing import TYPE_CHECKING

from capi_audit import schema
from capi_audit.io.base import Reader, Staged, ensure_file
from capi_audit.io.canonical import read_lines

if TYPE_CHECKING:
    from capi_audit.config import SourceSpec
    from capi_audit.workspace import Workspace

def param(name: str, src: str = "params") -> str:
    """SQL: the URL-decoded value of one pixel parameter (brackets already decoded in src)."""
    esc = name.replace("[", r"\[").replace("]", r"\]")
    return f"NULLIF(url_decode(replace(regexp_extract({src}, '[?&]{esc}=([^&#]*)', 1), '+', ' ')), '')"


def is_har(file: Path) -> bool:
    """True when a file looks like a HAR export."""
    with open(file, "rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{") and b'"log"' in head


class MetaPixelHitsReader(Reader):
    """Meta Pixel requests (URLs, access logs, HAR) into pixel_events."""

    name = "meta_pixel_hits"
    tables = ("pixel_events",)

    def stage(self, ws: Workspace, spec: SourceSpec, file: Path, table: schema.Table) -> Staged:
        """Stage one row per pixel hit; count and skip other requests."""
        ensure_file(file)
        for t in ("_pl", "_req"):
            ws.execute(f"DROP TABLE IF EXISTS {t}")
        if is_har(file):
            ws.execute("""
                CREATE TEMP TABLE _req AS
                SELECT i + 1 AS line,
                    json_extract_string(e, '$.request.url') AS url,
                    json_extract_string(e, '$.request.postData.text') AS body,
                    json_extract_string(e, '$.startedDateTime') AS started,
                    CAST(NULL AS VARCHAR) AS client_ip,
                    NULLIF(regexp_extract(CAST(json_extract(e, '$.request.headers') AS VARCHAR),
                        '"name":\\s*"[Uu]ser-[Aa]gent",\\s*"value":\\s*"([^"]*)"', 1), '') AS client_ua
                FROM (SELECT unnest(range(len(arr))) AS i, unnest(arr) AS e
                      FROM (SELECT CAST(json_extract(CAST(content AS JSON), '$.log.entries[*]') AS JSON[]) AS arr
                            FROM read_text($f)))
            """, {"f": str(file)})
            ws.execute("CREATE OR REPLACE TEMP TABLE _refused (line BIGINT, column_name VARCHAR, reason VARCHAR)")
            note = "positions are HAR entries"
        else:
            read_lines(ws, file, "_pl")
            ws.execute("""
                CREATE TEMP TABLE _req AS
                WITH raw AS (SELECT line, trim(txt) AS txt FROM _pl WHERE txt IS NOT NULL AND trim(txt) <> '')
                SELECT line,
                    CASE WHEN starts_with(txt, '{') AND json_valid(txt)
                         THEN coalesce(json_extract_string(txt, '$.url'), json_extract_string(txt, '$.message.url'),
                                       json_extract_string(txt, '$.request.url'))
                         WHEN regexp_matches(txt, '"(GET|POST) [^ ]+ HTTP') THEN regexp_extract(txt, '"(?:GET|POST) ([^ ]+) HTTP', 1)
                         ELSE NULLIF(regexp_extract(txt, '((?:https?://|/)[^ "]+)', 1), '') END AS url,
                    CASE WHEN starts_with(txt, '{') AND json_valid(txt)
                         THEN coalesce(json_extract_string(txt, '$.postData'), json_extract_string(txt, '$.body')) END AS body,
                    CASE WHEN regexp_matches(txt, '\\[[0-9]{2}/[A-Za-z]{3}/[0-9]{4}:[0-9:]{8} [+-][0-9]{4}\\]')
                         THEN strftime(strptime(regexp_extract(txt, '\\[([^\\]]+)\\]', 1), '%d/%b/%Y:%H:%M:%S %z'), '%Y-%m-%dT%H:%M:%S%z') END AS started,
                    -- the client address and user agent: JSON fields, or a combined-format access log
                    CASE WHEN starts_with(txt, '{') AND json_valid(txt)
                         THEN coalesce(json_extract_string(txt, '$.client_ip'), json_extract_string(txt, '$.ip'),
                                       json_extract_string(txt, '$.remote_addr'), json_extract_string(txt, '$.request.ip'))
                         WHEN regexp_matches(txt, '^[0-9A-Fa-f:.]+ \\S+ \\S+ \\[') THEN regexp_extract(txt, '^([0-9A-Fa-f:.]+) ', 1) END AS client_ip,
                    CASE WHEN starts_with(txt, '{') AND json_valid(txt)
                         THEN coalesce(json_extract_string(txt, '$.user_agent'), json_extract_string(txt, '$.userAgent'),
                                       json_extract_string(txt, '$.request.user_agent'), json_extract_string(txt, '$.headers."user-agent"'))
                         WHEN regexp_matches(txt, '"(GET|POST) [^ ]+ HTTP[^"]*" [0-9]{3} \\S+ "[^"]*" "[^"]*"')
                         THEN regexp_extract(txt, '"(?:GET|POST) [^ ]+ HTTP[^"]*" [0-9]{3} \\S+ "[^"]*" "([^"]*)"', 1) END AS client_ua
                FROM raw
            """)
            note = ""
        ws.execute("""
            CREATE OR REPLACE TEMP TABLE _req AS
            SELECT line, url, started, client_ip, client_ua,
                '&' || regexp_replace(regexp_replace(coalesce(regexp_extract(url, '\\?(.*)$', 1), '') || '&' ||
                    coalesce(body, ''), '%5[Bb]', '[', 'g'), '%5[Dd]', ']', 'g') AS params,
                url IS NOT NULL AND regexp_matches(url, '/tr/?(\\?|$)') AS is_tr
            FROM _req
        """)
        ws.execute(f"""
            CREATE OR REPLACE TEMP TABLE _req AS
            SELECT *, is_tr AND {param('ev')} IS NOT NULL AS is_hit FROM _req
        """)
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
        ws.drop("_stage")
        ws.execute(f"CREATE TEMP TABLE _stage AS SELECT row_number() OVER (ORDER BY line) AS _rec, line AS _line, {sel} "
                   "FROM _req WHERE is_hit ORDER BY line")
        skipped = ws.scalar("SELECT count(*) FROM _req WHERE url IS NOT NULL AND NOT is_hit")
        ws.execute("DROP TABLE IF EXISTS _reader_rejects")
        ws.execute("CREATE TEMP TABLE _reader_rejects AS "
                   "SELECT line, NULL::VARCHAR AS column_name, 'no request URL' AS reason FROM _req WHERE url IS NULL "
                   "UNION ALL SELECT * FROM _refused")
        for t in ("_refused", "_pl", "_req"):
            ws.execute(f"DROP TABLE IF EXISTS {t}")
        notes = [n for n in (note, f"{skipped} requests that are not pixel hits skipped" if skipped else "") if n]
        return Staged(columns=dict.fromkeys(fields, "VARCHAR"), skipped=int(skipped), note="; ".join(notes))
