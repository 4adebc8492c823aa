"""One large input file per reader that is not a line-based stream (issue 14: bounded memory).

    python benchmarks/big_inputs.py <kind> <folder> [--mb 500]

writes `<folder>/<file>` of about `--mb` MB and `<folder>/audit.toml` loading it, then prints the
file's name, size and row count. Rows are shaped like real exports (see each writer); a share of
them carries personal data (emails, phones) so hashing and redaction run. CSV, Parquet and JSON
arrays are written by DuckDB (fast, little memory); HAR, pretty-printed documents and upload
summaries by Python, streaming. Deterministic (row i's values are functions of i).

Measure with `/usr/bin/time -f "%e s %M KB" capi-audit load --config <folder>/audit.toml`.
The slow tests in tests/test_big_inputs.py use the same writers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# bytes per row of each kind, measured on the writers below (to aim at a size)
ROW_BYTES = {"orders_csv": 75, "events_csv": 420, "shopify_csv": 90, "meta_ads_csv": 102,
             "google_ads_csv": 57, "google_clicks_csv": 95, "events_parquet": 210, "canonical_array": 400,
             "capi_array": 2000, "har": 1500, "upload_summary": 1500, "pretty_doc": 560}
FILES = {"orders_csv": "orders.csv", "events_csv": "events.csv", "shopify_csv": "shopify.csv",
         "meta_ads_csv": "meta_ads.csv", "google_ads_csv": "google_ads.csv", "google_clicks_csv": "clicks.csv",
         "events_parquet": "events.parquet", "canonical_array": "events.json", "capi_array": "capi.json",
         "har": "capture.har", "upload_summary": "summaries.jsonl", "pretty_doc": "search.json"}
SOURCES = {
    "orders_csv": {"table": "orders", "format": "canonical",
                   "columns": {"email": "email", "phone": "phone"}},
    "events_csv": {"table": "server_events", "format": "canonical"},
    "shopify_csv": {"table": "orders", "format": "shopify_orders"},
    "meta_ads_csv": {"table": "platform_report", "format": "meta_ads_export"},
    "google_ads_csv": {"table": "platform_report", "format": "google_ads_report"},
    "google_clicks_csv": {"table": "server_events", "format": "google_ads_click_conversions"},
    "events_parquet": {"table": "server_events", "format": "canonical"},
    "canonical_array": {"table": "server_events", "format": "canonical"},
    "pretty_doc": {"table": "upload_summaries", "format": "google_upload_summary"},
    "capi_array": {"table": "server_events", "format": "meta_capi_payload"},
    "har": {"table": "pixel_events", "format": "meta_pixel_hits"},
    "upload_summary": {"table": "upload_summaries", "format": "google_upload_summary"},
}

# SQL fragments over `i` (the row number): deterministic pseudo-random text
_H = "md5(CAST(i AS VARCHAR))"
_TIME = "strftime(TIMESTAMP '2026-03-01' + to_seconds(i % 2592000), '%Y-%m-%dT%H:%M:%SZ')"
_EMAIL = f"CASE WHEN i % 10 < 3 THEN 'Buyer.' || substr({_H}, 1, 10) || '@Example.org ' END"
_PHONE = "CASE WHEN i % 10 = 3 THEN '+49 151 ' || lpad(CAST(i % 10000000 AS VARCHAR), 7, '0') END"
_URL = f"'https://shop.example/checkout/thanks?ref=' || {_H} || repeat('x', CAST(i % 200 AS INTEGER))"


def _copy(select: str, n: int, path: Path, opts: str) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute("SET memory_limit = '1GB'; SET threads = 1; SET preserve_insertion_order = true")
    con.execute(f"COPY (SELECT {select} FROM range({n}) t(i) ORDER BY i) TO '{path}' ({opts})")
    con.close()


def _csv(select: str, n: int, path: Path, pre: str = "", post: str = "") -> None:
    if not pre and not post:
        _copy(select, n, path, "FORMAT csv, HEADER true")
        return
    body = path.with_suffix(".body")
    _copy(select, n, body, "FORMAT csv, HEADER true")
    with open(path, "wb") as out, open(body, "rb") as fh:
        out.write(pre.encode())
        while block := fh.read(1 << 24):
            out.write(block)
        out.write(post.encode())
    body.unlink()


def write(kind: str, folder: Path, mb: int) -> tuple[Path, int]:
    """Write one input of `kind` of about `mb` MB into folder with its audit.toml: (file, rows)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILES[kind]
    n = int(mb * 1_000_000 / ROW_BYTES[kind])
    if kind == "orders_csv":  # one order per line; 30% with an email, 10% with a phone
        _csv(f"'#' || (100000 + i) AS order_id, {_TIME} AS created_at, round(10 + (i % 9000) / 100.0, 2) AS value, "
             "'EUR' AS currency, CASE WHEN i % 50 = 0 THEN 'refunded' ELSE 'paid' END AS status, "
             "CASE WHEN i % 4 = 0 THEN 'denied' ELSE 'granted' END AS consent_ads, 'DE' AS country, "
             f"{_EMAIL} AS email, {_PHONE} AS phone", n, path)
    elif kind == "events_csv":  # Meta server events; 30% with a plaintext email (hashed at load)
        _csv(f"'meta' AS platform, '123' AS destination, 'Purchase' AS event_name, 'e' || i AS event_id, "
             f"{_TIME} AS event_time, '#' || (100000 + i) AS order_id, 10.5 AS value, 'EUR' AS currency, "
             f"'website' AS action_source, {_URL} AS event_source_url, "
             f"coalesce(lower(trim({_EMAIL})), sha256('x' || i)) AS em, "
             "'fb.1.1772359200.' || i AS fbp, '203.0.113.' || (i % 250) AS client_ip_address, "
             "'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36' AS client_user_agent", n, path)
    elif kind == "shopify_csv":  # 1-3 line items per order; email and phone on the first row
        _csv("'#' || (1000 + i // 2) AS Name, CASE WHEN i % 2 = 0 THEN "
             f"'buyer.' || substr({_H}, 1, 10) || '@example.org' END AS Email, "
             "CASE WHEN i % 2 = 0 THEN 'paid' END AS \"Financial Status\", "
             "CASE WHEN i % 2 = 0 THEN strftime(TIMESTAMP '2026-03-01' + to_seconds(i % 2592000), '%Y-%m-%d %H:%M:%S +0100') "
             "END AS \"Created at\", "
             "CASE WHEN i % 2 = 0 THEN 'EUR' END AS Currency, CASE WHEN i % 2 = 0 THEN '49.90' END AS Total, "
             "'T-shirt ' || (i % 40) AS \"Lineitem name\", 1 + i % 3 AS \"Lineitem quantity\", "
             "CASE WHEN i % 2 = 0 THEN 'DE' END AS \"Billing Country\", "
             "CASE WHEN i % 6 = 0 THEN '+49 151 ' || lpad(CAST(i % 10000000 AS VARCHAR), 7, '0') END AS Phone, "
             "CASE WHEN i % 2 = 0 THEN 'web' END AS Tags, "
             "CASE WHEN i % 2 = 0 THEN 'consent_ads: granted' END AS \"Note Attributes\"", n, path)
    elif kind == "meta_ads_csv":  # one row per ad and day
        _csv("'Campaign ' || (i % 300) AS \"Campaign name\", 'Ad set ' || (i % 3000) AS \"Ad set name\", "
             "'Ad ' || i AS \"Ad name\", strftime(DATE '2026-01-01' + CAST(i % 365 AS INTEGER), '%Y-%m-%d') AS Day, "
             "i % 5000 AS Reach, i % 9000 AS Impressions, round((i % 10000) / 100.0, 2) AS \"Amount spent (EUR)\", "
             "i % 7 AS \"Website purchases\", round((i % 7) * 49.9, 2) AS \"Website purchases conversion value\", "
             "strftime(DATE '2026-01-01' + CAST(i % 365 AS INTEGER), '%Y-%m-%d') AS \"Reporting starts\", "
             "strftime(DATE '2026-01-01' + CAST(i % 365 AS INTEGER), '%Y-%m-%d') AS \"Reporting ends\"", n, path)
    elif kind == "google_ads_csv":  # title and date-range lines, one row per day, campaign and action
        _csv("strftime(DATE '2026-01-01' + CAST(i % 365 AS INTEGER), '%Y-%m-%d') AS Day, "
             "'Campaign ' || (i % 5000) AS Campaign, 'Purchase ' || (i % 3) AS \"Conversion action\", "
             "round((i % 70) / 10.0, 2) AS Conversions, round((i % 70) * 4.99, 2) AS \"Conv. value\", "
             "round((i % 10000) / 100.0, 2) AS Cost", n, path,
             pre="Campaign report\n\"January 1, 2026 - December 31, 2026\"\n", post="Total: Account,,,1,2,3\n")
    elif kind == "google_clicks_csv":  # the upload template; 30% with an email, 10% with a phone
        _csv(f"'Cj0KCQiA' || {_H} AS \"Google Click ID\", 'Purchase' AS \"Conversion Name\", "
             "strftime(TIMESTAMP '2026-03-01' + to_seconds(i % 2592000), '%Y-%m-%d %H:%M:%S') AS \"Conversion Time\", "
             "49.9 AS \"Conversion Value\", 'EUR' AS \"Conversion Currency\", '#' || (100000 + i) AS \"Order ID\", "
             f"{_EMAIL} AS Email, {_PHONE} AS \"Phone Number\"", n, path,
             pre="Parameters:TimeZone=Europe/Berlin,,,,,,,\n")
    elif kind == "events_parquet":  # wide server_events rows, every canonical column of the benchmark
        _copy(f"CASE WHEN i % 3 = 0 THEN 'google' ELSE 'meta' END AS platform, '123' AS destination, "
              "'Purchase' AS event_name, 'e' || i AS event_id, "
              "TIMESTAMPTZ '2026-03-01 00:00:00+00' + to_seconds(i % 2592000) AS event_time, "
              "'#' || (100000 + i) AS order_id, 10.5 + i % 100 AS value, 'EUR' AS currency, "
              "TIMESTAMPTZ '2026-03-01 00:00:05+00' + to_seconds(i % 2592000) AS sent_at, 'r' || (i // 50) AS request_id, "
              f"'website' AS action_source, {_URL} AS event_source_url, "
              f"coalesce(lower(trim({_EMAIL})), sha256('x' || i)) AS em, sha256('p' || i) AS ph, "
              "CAST(NULL AS VARCHAR) AS fn, CAST(NULL AS VARCHAR) AS ln, 'de' AS country, "
              "'ext-' || i AS external_id, '203.0.113.' || (i % 250) AS client_ip_address, "
              "'Mozilla/5.0 (X11; Linux x86_64)' AS client_user_agent, "
              f"CASE WHEN i % 5 = 0 THEN 'fb.1.1772359200.' || {_H} END AS fbc, 'fb.1.1772359200.' || i AS fbp, "
              f"CASE WHEN i % 3 = 0 THEN 'Cj0K' || {_H} END AS gclid, 'granted' AS consent_ads, "
              "'granted' AS consent_ad_user_data, 'ok' AS status", n, path, "FORMAT parquet, ROW_GROUP_SIZE 122880")
    elif kind == "canonical_array":  # one JSON array of canonical event objects
        _copy(f"'meta' AS platform, 'Purchase' AS event_name, 'e' || i AS event_id, {_TIME} AS event_time, "
              f"10.5 AS value, 'EUR' AS currency, {_URL} AS event_source_url, "
              f"coalesce(lower(trim({_EMAIL})), sha256('x' || i)) AS em, 'fb.1.1772359200.' || i AS fbp",
              n, path, "FORMAT json, ARRAY true")
    elif kind == "capi_array":  # one JSON array of logged CAPI requests of 1 to 50 events
        _copy("'2026-03-01T10:00:00Z' AS sent_at, '123' AS pixel_id, {'data': list_transform(range(1 + i % 9), "
              f"lambda j: {{'event_name': 'Purchase', 'event_time': 1772359200 + i * 10 + j, 'event_id': 'e' || i || '-' || j, "
              f"'action_source': 'website', 'event_source_url': {_URL}, "
              "'user_data': {'em': sha256('x' || i || j), 'fbp': 'fb.1.1.' || i}, "
              "'custom_data': {'value': 10.0, 'currency': 'EUR'}})} AS request, "
              "{'events_received': 1 + i % 9} AS response", n, path, "FORMAT json, ARRAY true")
    elif kind == "har":
        _har(path, n)
    elif kind == "upload_summary":
        _summaries(path, n)
    elif kind == "pretty_doc":
        _pretty(path, n)
    else:
        raise SystemExit(f"unknown kind {kind}")
    src = {**SOURCES[kind], "path": path.name}
    lines = ["[[sources]]"]
    for k, v in src.items():
        if isinstance(v, dict):
            lines.append(f"{k} = {{ " + ", ".join(f'{a} = "{b}"' for a, b in v.items()) + " }")
        else:
            lines.append(f'{k} = "{v}"')
    (folder / "audit.toml").write_text("\n".join(lines) + "\n")
    return path, n


def _har(path: Path, n: int) -> None:
    """A DevTools HAR export: every request of a browsing session, one in ten a Meta Pixel hit
    (with `ud[em]` hashed and a `dl` holding an email in its query for a share), responses with
    bodies as DevTools keeps them."""
    import hashlib

    with open(path, "w") as fh:
        fh.write('{"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"}, "pages": [], "entries": [\n')
        for i in range(n):
            if i % 10 == 0:
                dl = "https%3A%2F%2Fshop.example%2Fthanks%3Femail%3Dbuyer" + str(i) + "%2540example.org" if i % 30 == 0 \
                    else "https%3A%2F%2Fshop.example%2Fthanks"
                url = (f"https://www.facebook.com/tr/?id=123&ev=Purchase&eid=e{i}&ts={(1772359200 + i) * 1000}"
                       f"&dl={dl}&cd[value]=49.9&cd[currency]=EUR&ud[em]={hashlib.sha256(str(i).encode()).hexdigest()}")
            else:
                url = f"https://shop.example/static/asset-{i}.js?v=" + "a" * (i % 300)
            entry = {"startedDateTime": "2026-03-01T10:00:00.000Z", "time": 12.5,
                     "request": {"method": "GET", "url": url, "httpVersion": "HTTP/2",
                                 "headers": [{"name": "User-Agent", "value": "Mozilla/5.0 (X11; Linux x86_64)"},
                                             {"name": "Accept", "value": "*/*"}], "queryString": [], "cookies": [],
                                 "headersSize": -1, "bodySize": 0},
                     "response": {"status": 200, "statusText": "", "httpVersion": "HTTP/2", "headers": [], "cookies": [],
                                  "content": {"size": 600, "mimeType": "text/javascript", "text": "x" * 600},
                                  "redirectURL": "", "headersSize": -1, "bodySize": 600},
                     "cache": {}, "timings": {"send": 0.1, "wait": 10, "receive": 2}}
            fh.write(json.dumps(entry) + (",\n" if i < n - 1 else "\n"))
        fh.write("]}}\n")


def _summaries(path: Path, n: int) -> None:
    """One `offlineConversionUploadConversionActionSummary` result per line (a GAQL search
    answer written as JSON Lines), with 7 daily summaries, 3 job summaries and an alert."""
    with open(path, "w") as fh:
        for i in range(n):
            s = {"resourceName": f"customers/1/offlineConversionUploadConversionActionSummaries/{i}~GOOGLE_ADS_API",
                 "client": "GOOGLE_ADS_API", "conversionActionId": str(456 + i % 20),
                 "conversionActionName": f"Purchase {i % 20}", "status": "GOOD",
                 "totalEventCount": "1000", "successfulEventCount": "950", "pendingEventCount": "10",
                 "dailySummaries": [{"uploadDate": f"2026-03-{d + 1:02d}", "successfulCount": "130", "failedCount": "5",
                                     "pendingCount": "1"} for d in range(7)],
                 "jobSummaries": [{"jobId": str(9000 + i * 3 + j), "successfulCount": "300", "failedCount": "10",
                                   "pendingCount": "0"} for j in range(3)],
                 "alerts": [{"error": {"conversionUploadError": "CLICK_NOT_FOUND"}, "errorPercentage": 0.03}]}
            fh.write(json.dumps({"offlineConversionUploadConversionActionSummary": s}) + "\n")


def _pretty(path: Path, n: int) -> None:
    """One pretty-printed `googleAds:search` page (`{"results": [...]}`, indented as a browser or
    `jq` saves it) of upload summaries."""
    with open(path, "w") as fh:
        fh.write('{\n  "results": [\n')
        for i in range(n):
            s = {"offlineConversionUploadClientSummary": {
                "resourceName": f"customers/{i}/offlineConversionUploadClientSummaries/GOOGLE_ADS_API",
                "client": "GOOGLE_ADS_API", "status": "GOOD", "totalEventCount": "100", "successfulEventCount": "90",
                "pendingEventCount": "1", "dailySummaries": [{"uploadDate": "2026-03-01", "successfulCount": "90",
                                                              "failedCount": "9", "pendingCount": "1"}]}}
            fh.write("    " + json.dumps(s, indent=2).replace("\n", "\n    ") + (",\n" if i < n - 1 else "\n"))
        fh.write('  ],\n  "fieldMask": "offlineConversionUploadClientSummary.status"\n}\n')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=sorted(FILES))
    ap.add_argument("folder", type=Path)
    ap.add_argument("--mb", type=float, default=500)
    a = ap.parse_args()
    path, n = write(a.kind, a.folder, a.mb)
    print(f"{path} {path.stat().st_size / 1e6:.0f} MB {n} rows")


if __name__ == "__main__":
    main()
