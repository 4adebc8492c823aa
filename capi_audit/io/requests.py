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
size of the capture. A HAR file is streamed entry by entry (ijson) and cut into chunks too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from capi_audit.errors import InputError
from capi_audit.io.canonical import line_chunks
from capi_audit.io.lines import head_bytes, open_binary

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


def param_pattern(name: str) -> str:
    """The regular expression of one query parameter's raw value (group 1) in '&'-joined text."""
    esc = name.replace(".", r"\.").replace("[", r"\[").replace("]", r"\]")
    return f"[?&]{esc}=([^&#]*)"


def decode_param(raw: str) -> str:
    """SQL: a parameter's raw value (`raw`) URL-decoded, NULL when empty. A `+` is a space (form
    encoding), except a leading `+` before a digit: browsers send a plus as `%2B`, so
    `ud[external_id]=+14155550123` was written by hand and is a phone (decoded as a space it became
    a bare digit run the email/phone detector does not take for a phone)."""
    plus_kept = f"replace(regexp_replace({raw}, '^\\+([0-9])', '%2B\\1'), '+', ' ')"
    return f"NULLIF({url_decode_safe(plus_kept)}, '')"


def url_param(name: str, src: str = "params") -> str:
    """SQL: the URL-decoded value of one query parameter in `src` ('&'-joined parameters)."""
    return decode_param(f"regexp_extract({src}, '{param_pattern(name)}', 1)")


# every JSON path the request-log SQL reads, extracted in ONE call per line: DuckDB parses the
# document once per call, so one call per path parsed a 10 MB line fourteen times at once and two
# such lines ran out of the load's 500 MB (the whole file refused)
_PATHS = ("$.url", "$.message.url", "$.request.url", "$.postData", "$.body", "$.request.body",
          "$.timestamp", "$.time", "$.startedDateTime", "$.client_ip", "$.ip", "$.remote_addr", "$.request.ip",
          "$.user_agent", "$.userAgent", "$.request.user_agent", '$.headers."user-agent"')


def _first(*paths: str) -> str:
    """SQL: the first of `paths` the line's JSON has (from the one extraction `_j`)."""
    return "coalesce(" + ", ".join(f"_j[{_PATHS.index(p) + 1}]" for p in paths) + ")"


_PATHS_SQL = ", ".join("'" + p + "'" for p in _PATHS)
_ACCESS_TIME = r"\[[0-9]{2}/[A-Za-z]{3}/[0-9]{4}:[0-9:]{8} [+-][0-9]{4}\]"
# A line is JSON when it starts with `{` and parses: `_j` is then the list of its paths' values
# (NULL when it does not parse). The line is parsed once and not copied (no trim, no separate
# json_valid): each copy or parse of a 30 MB line costs its size several times over in DuckDB's
# memory, and the load runs under a 400 MB limit. Only a line that does not parse and starts or
# ends with a Unicode space (NBSP, U+3000: the JSON parser refuses them, DuckDB's trim takes them
# off) is trimmed and parsed again. Other lines (URLs, access logs) are short; the patterns allow
# the spaces a trim took off.
_SP = r"[\s\p{Zs}]*"
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
             WHEN regexp_matches(txt, '^{_SP}[0-9A-Fa-f:.]+ \\S+ \\S+ \\[') THEN regexp_extract(txt, '^{_SP}([0-9A-Fa-f:.]+) ', 1)
             END AS client_ip,
        CASE WHEN is_json THEN {_first('$.user_agent', '$.userAgent', '$.request.user_agent', '$.headers."user-agent"')}
             WHEN regexp_matches(txt, '"(GET|POST) [^ ]+ HTTP[^"]*" [0-9]{{3}} \\S+ "[^"]*" "[^"]*"')
             THEN regexp_extract(txt, '"(?:GET|POST) [^ ]+ HTTP[^"]*" [0-9]{{3}} \\S+ "[^"]*" "([^"]*)"', 1) END AS client_ua
    FROM (SELECT *, _j IS NOT NULL AS is_json
          FROM (SELECT line, _file, txt,
                       CASE WHEN regexp_matches(txt, '^{_SP}[{{]') THEN coalesce(try(json_extract_string(txt, [{_PATHS_SQL}])),
                           CASE WHEN regexp_matches(txt, '^\\p{{Zs}}|\\p{{Zs}}$')
                                THEN try(json_extract_string(trim(txt), [{_PATHS_SQL}])) END) END AS _j
                FROM _pl WHERE txt IS NOT NULL AND regexp_matches(txt, '[^\\p{{Zs}}]')))
"""


def request_chunks(ws: Workspace, files: Path | list[Path]) -> Iterator[str]:
    """Stage one capture, or many (chunks then span files), chunk by chunk into `_req` and
    `_refused` (both with `_file`); yields a note for the load report with each chunk."""
    for t in ("_pl", "_req"):
        ws.execute(f"DROP TABLE IF EXISTS {t}")
    if isinstance(files, Path) and is_har(files):
        yield from _har_chunks(ws, files)
        return
    for _ in line_chunks(ws, files, "_pl"):
        ws.execute("DROP TABLE IF EXISTS _req")
        ws.execute(f"CREATE TEMP TABLE _req AS {_LINES_SQL}")
        ws.execute("DROP TABLE IF EXISTS _pl")
        yield ""


HAR_CHUNK_ENTRIES = 50_000  # at most this many HAR entries per chunk (and about CHUNK_BYTES of text)


def _text(v: object) -> str | None:
    """A JSON value as `json_extract_string` gives it: text as is, anything else as its JSON."""
    import json

    return v if isinstance(v, str) or v is None else json.dumps(v, default=str)


def _har_chunks(ws: Workspace, file: Path) -> Iterator[str]:
    """A HAR export streamed entry by entry (ijson: a capture of every request of a session is
    easily hundreds of MB, and parsing it whole took more memory than DuckDB's load limit), into
    `_req` / `_refused` one chunk at a time; positions are entry numbers from 1. Only the small
    parts of an entry are kept (URL, posted text, start time, user agent); response bodies are
    skipped by the parser."""
    import ijson
    import pyarrow as pa

    from capi_audit.io import canonical
    from capi_audit.io.lines import MAX_LINE_BYTES

    cols: dict[str, list] = {k: [] for k in ("line", "url", "body", "started", "client_ua")}
    refused: list[tuple[int, str]] = []
    size = 0

    def flush() -> str:
        ws.drop("_req", "_refused")
        n = len(cols["line"])
        ws.execute("CREATE TEMP TABLE _req (line BIGINT, _file VARCHAR, url VARCHAR, body VARCHAR, started VARCHAR, "
                   "client_ip VARCHAR, client_ua VARCHAR)")
        ws.append_arrow("_req", pa.table({
            "line": pa.array(cols["line"], pa.int64()), "_file": pa.array([str(file)] * n, pa.string()),
            "url": pa.array(cols["url"], pa.string()), "body": pa.array(cols["body"], pa.string()),
            "started": pa.array(cols["started"], pa.string()), "client_ip": pa.array([None] * n, pa.string()),
            "client_ua": pa.array(cols["client_ua"], pa.string())}))
        ws.execute("CREATE TEMP TABLE _refused (line BIGINT, column_name VARCHAR, reason VARCHAR, _file VARCHAR)")
        if refused:
            ws.append_arrow("_refused", pa.table({
                "line": pa.array([r[0] for r in refused], pa.int64()), "column_name": pa.array([None] * len(refused), pa.string()),
                "reason": pa.array([r[1] for r in refused], pa.string()), "_file": pa.array([str(file)] * len(refused), pa.string())}))
        for v in cols.values():
            v.clear()
        refused.clear()
        return "positions are HAR entries"

    n = 0
    with open_binary(file) as fh:
        try:
            for n, e in enumerate(ijson.items(fh, "log.entries.item", use_float=True), 1):
                req = e.get("request") if isinstance(e, dict) else None
                req = req if isinstance(req, dict) else {}
                post = req.get("postData")
                heads = req.get("headers")
                ua = next((h.get("value") for h in (heads if isinstance(heads, list) else [])
                           if isinstance(h, dict) and str(h.get("name", "")).lower() == "user-agent"), None)
                row = (n, _text(req.get("url")), _text(post.get("text")) if isinstance(post, dict) else None,
                       _text(e.get("startedDateTime")) if isinstance(e, dict) else None, _text(ua) or None)
                del e, req, post, heads
                length = sum(len(x) for x in row[1:] if isinstance(x, str))
                if length > MAX_LINE_BYTES:  # the limit of one line elsewhere (a real request is a few kB)
                    refused.append((n, f"a request of {length / 2**20:.0f} MiB, over the {MAX_LINE_BYTES >> 20} MiB "
                                       "limit of one request"))
                    continue
                for k, v in zip(cols, row, strict=True):
                    cols[k].append(v)
                size += length
                if size > canonical.CHUNK_BYTES or len(cols["line"]) >= HAR_CHUNK_ENTRIES:
                    yield flush()
                    size = 0
        except ijson.JSONError as exc:
            raise InputError(f"{file}: not a valid HAR capture (broken JSON after entry {n}: "
                             f"{str(exc).splitlines()[0][:200]}); export it again") from exc
    yield flush()
