"""Captured HTTP requests, whatever the capture: one URL per line, web-server / proxy access-log
lines (`"GET /path?… HTTP/1.1"`, time in `[10/Mar/2026:12:00:00 +0000]`, client address first and
user agent last in the combined format), JSON lines with a `url` (top level, or under `message` /
`request`; optional `postData` / `body` / `request.body`, a time in `timestamp` / `time` /
`startedDateTime`, the client address in `client_ip` / `ip` / `remote_addr` / `request.ip` and the
user agent in `user_agent` / `userAgent` / `request.user_agent` / `headers."user-agent"`, as
server-side GTM and proxy request logs write them), or a HAR export (`log.entries[].request`).

One staging for every request reader (Meta Pixel hits, Google tag hits): `request_chunks(ws, file)`
yields once per chunk of lines with `_req(line, _file, url, body, started, client_ip, client_ua)`
(started: ISO text with offset, or NULL) and `_refused(line, column_name, reason, _file)` for lines the
text reader refused; each chunk replaces the previous one, so memory stays bounded whatever the
size of the capture. A HAR file is one chunk.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from capi_audit.io.canonical import line_chunks
from capi_audit.io.lines import head_bytes

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace


def is_har(file: Path) -> bool:
    """True when a file looks like a HAR export."""
    head = head_bytes(file, 4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{") and b'"log"' in head


def url_decode_safe(x: str) -> str:
    """SQL: x URL-decoded, or x as given when its escapes do not decode to UTF-8 (`%C3%28`): one
    such parameter refused the whole file ("decoded value is invalid UTF8"); kept as sent, the
    row loads, or is rejected by the column's own parse with a reason."""
    return f"coalesce(try(url_decode({x})), {x})"


def url_param(name: str, src: str = "params") -> str:
    """SQL: the URL-decoded value of one query parameter in `src` ('&'-joined parameters)."""
    esc = name.replace(".", r"\.").replace("[", r"\[").replace("]", r"\]")
    return f"NULLIF({url_decode_safe(f'replace(regexp_extract({src}, {chr(39)}[?&]{esc}=([^&#]*){chr(39)}, 1), {chr(39)}+{chr(39)}, {chr(39)} {chr(39)})')}, '')"


def _first(*paths: str) -> str:
    return "coalesce(" + ", ".join(f"json_extract_string(txt, '{p}')" for p in paths) + ")"


_ACCESS_TIME = r"\[[0-9]{2}/[A-Za-z]{3}/[0-9]{4}:[0-9:]{8} [+-][0-9]{4}\]"
_LINES_SQL = f"""
    SELECT line, _file,
        CASE WHEN is_json THEN {_first('$.url', '$.message.url', '$.request.url')}
             WHEN regexp_matches(txt, '"(GET|POST) [^ ]+ HTTP') THEN regexp_extract(txt, '"(?:GET|POST) ([^ ]+) HTTP', 1)
             ELSE NULLIF(regexp_extract(txt, '((?:https?://|/)[^ "]+)', 1), '') END AS url,
        CASE WHEN is_json THEN {_first('$.postData', '$.body', '$.request.body')} END AS body,
        CASE WHEN is_json THEN {_first('$.timestamp', '$.time', '$.startedDateTime')}
             WHEN regexp_matches(txt, '{_ACCESS_TIME}')
             THEN strftime(strptime(regexp_extract(txt, '\\[([^\\]]+)\\]', 1), '%d/%b/%Y:%H:%M:%S %z'), '%Y-%m-%dT%H:%M:%S%z')
             END AS started,
        -- the client address and user agent: JSON fields, or a combined-format access log
        CASE WHEN is_json THEN {_first('$.client_ip', '$.ip', '$.remote_addr', '$.request.ip')}
             WHEN regexp_matches(txt, '^[0-9A-Fa-f:.]+ \\S+ \\S+ \\[') THEN regexp_extract(txt, '^([0-9A-Fa-f:.]+) ', 1)
             END AS client_ip,
        CASE WHEN is_json THEN {_first('$.user_agent', '$.userAgent', '$.request.user_agent', '$.headers."user-agent"')}
             WHEN regexp_matches(txt, '"(GET|POST) [^ ]+ HTTP[^"]*" [0-9]{{3}} \\S+ "[^"]*" "[^"]*"')
             THEN regexp_extract(txt, '"(?:GET|POST) [^ ]+ HTTP[^"]*" [0-9]{{3}} \\S+ "[^"]*" "([^"]*)"', 1) END AS client_ua
    FROM (SELECT line, _file, txt, starts_with(txt, '{{') AND json_valid(txt) AS is_json
          FROM (SELECT line, _file, trim(txt) AS txt FROM _pl WHERE txt IS NOT NULL AND trim(txt) <> ''))
"""


def request_chunks(ws: Workspace, files: Path | list[Path]) -> Iterator[str]:
    """Stage one capture, or many (chunks then span files), chunk by chunk into `_req` and
    `_refused` (both with `_file`); yields a note for the load report with each chunk."""
    for t in ("_pl", "_req"):
        ws.execute(f"DROP TABLE IF EXISTS {t}")
    if isinstance(files, Path) and is_har(files):
        file = files
        ws.execute("""
            CREATE TEMP TABLE _req AS
            SELECT i + 1 AS line, CAST($f AS VARCHAR) AS _file,
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
        ws.execute("CREATE OR REPLACE TEMP TABLE _refused (line BIGINT, column_name VARCHAR, reason VARCHAR, _file VARCHAR)")
        yield "positions are HAR entries"
        return
    for _ in line_chunks(ws, files, "_pl"):
        ws.execute("DROP TABLE IF EXISTS _req")
        ws.execute(f"CREATE TEMP TABLE _req AS {_LINES_SQL}")
        ws.execute("DROP TABLE IF EXISTS _pl")
        yield ""
