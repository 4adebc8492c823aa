"""Captured HTTP requests, whatever the capture: one URL per line, web-server / proxy access-log
lines (`"GET /path?… HTTP/1.1"`, time in `[10/Mar/2026:12:00:00 +0000]`), JSON lines with a `url`
(top level, or under `message` / `request`; optional `postData` / `body`, and a time in
`timestamp` / `time` / `startedDateTime`, as server-side GTM request logs write them), or a HAR
export (`log.entries[].request`).

`stage_requests(ws, file)` leaves `_req(line, url, body, started)` (started: ISO text with offset
or NULL) and `_refused(line, column_name, reason)` for lines the text reader refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from capi_audit.io.canonical import read_lines

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace


def is_har(file: Path) -> bool:
    """True when a file looks like a HAR export."""
    with open(file, "rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{") and b'"log"' in head


def url_param(name: str, src: str = "params") -> str:
    """SQL: the URL-decoded value of one query parameter in `src` ('&'-joined parameters)."""
    esc = name.replace(".", r"\.").replace("[", r"\[").replace("]", r"\]")
    return f"NULLIF(url_decode(replace(regexp_extract({src}, '[?&]{esc}=([^&#]*)', 1), '+', ' ')), '')"


def stage_requests(ws: Workspace, file: Path) -> str:
    """Create `_req` and `_refused` from a capture file; returns a note for the load report."""
    for t in ("_pl", "_req"):
        ws.execute(f"DROP TABLE IF EXISTS {t}")
    if is_har(file):
        ws.execute("""
            CREATE TEMP TABLE _req AS
            SELECT i + 1 AS line,
                json_extract_string(e, '$.request.url') AS url,
                json_extract_string(e, '$.request.postData.text') AS body,
                json_extract_string(e, '$.startedDateTime') AS started
            FROM (SELECT unnest(range(CAST(json_array_length(j, '$.log.entries') AS BIGINT))) AS i, j
                  FROM (SELECT CAST(content AS JSON) AS j FROM read_text($f)))
            CROSS JOIN LATERAL (SELECT json_extract(j, '$.log.entries[' || i || ']') AS e)
        """, {"f": str(file)})
        ws.execute("CREATE OR REPLACE TEMP TABLE _refused (line BIGINT, column_name VARCHAR, reason VARCHAR)")
        return "positions are HAR entries"
    read_lines(ws, file, "_pl")
    ws.execute("""
        CREATE TEMP TABLE _req AS
        WITH raw AS (SELECT line, trim(txt) AS txt FROM _pl WHERE txt IS NOT NULL AND trim(txt) <> ''),
        j AS (SELECT line, txt, starts_with(txt, '{') AND json_valid(txt) AS is_json FROM raw)
        SELECT line,
            CASE WHEN is_json
                 THEN coalesce(json_extract_string(txt, '$.url'), json_extract_string(txt, '$.message.url'),
                               json_extract_string(txt, '$.request.url'))
                 WHEN regexp_matches(txt, '"(GET|POST) [^ ]+ HTTP') THEN regexp_extract(txt, '"(?:GET|POST) ([^ ]+) HTTP', 1)
                 ELSE NULLIF(regexp_extract(txt, '((?:https?://|/)[^ "]+)', 1), '') END AS url,
            CASE WHEN is_json
                 THEN coalesce(json_extract_string(txt, '$.postData'), json_extract_string(txt, '$.body'),
                               json_extract_string(txt, '$.request.body')) END AS body,
            CASE WHEN is_json
                 THEN coalesce(json_extract_string(txt, '$.timestamp'), json_extract_string(txt, '$.time'),
                               json_extract_string(txt, '$.startedDateTime'))
                 WHEN regexp_matches(txt, '\\[[0-9]{2}/[A-Za-z]{3}/[0-9]{4}:[0-9:]{8} [+-][0-9]{4}\\]')
                 THEN strftime(strptime(regexp_extract(txt, '\\[([^\\]]+)\\]', 1), '%d/%b/%Y:%H:%M:%S %z'), '%Y-%m-%dT%H:%M:%S%z') END AS started
        FROM j
    """)
    ws.execute("DROP TABLE IF EXISTS _pl")
    return ""
