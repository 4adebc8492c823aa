"""Bounded memory on one large file of the readers that are not line streams (issue 14): JSON
arrays, HAR captures, Google upload summaries, pretty-printed documents, the CSV exports and
Parquet.

Fast tests: a JSON array, a HAR capture and an upload summary file are finalized chunk by chunk
(the chunk size `canonical.CHUNK_BYTES` shrunk to one byte), with exactly the accounting, rows and
rejects of one chunk; a pretty-printed document too large to parse whole is refused with one line
saying what to do. Slow tests: one ~500 MB file of each kind (benchmarks/big_inputs.py writes
them) loads under 1 GB of peak RSS.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capi_audit.io import canonical
from tests.test_bounded_memory import _count_chunks, _load
from tests.test_hostile import _peak_rss_mb, capi_event, cli, one_error, write_config


def _canonical_array(path: Path) -> int:
    items: list = []
    for i in range(30):
        if i % 7 == 3:
            items.append([1, 2])  # not an object: a reader reject
        elif i % 5 == 4:
            items.append({"platform": "meta", "event_name": "Purchase", "event_id": f"b{i}", "event_time": "soon"})
        else:
            items.append({"platform": "meta", "event_name": "Purchase", "event_id": "dup" if i in (6, 20) else f"e{i}",
                          "event_time": "2026-03-01T10:00:00Z", "value": 1.5, "em": "Buyer@Example.org",
                          "event_source_url": f"https://shop.example/?email=a{i}%40example.org"})
    path.write_text(json.dumps(items, indent=1))
    return len(items)


def _capi_array(path: Path) -> int:
    reqs = [{"sent_at": "2026-03-01T10:00:00Z", "pixel_id": "123",
             "request": {"data": [capi_event(i * 10 + j) for j in range(1 + i % 4)]}, "response": {"events_received": 1}}
            for i in range(12)]
    reqs.insert(5, "not a request")
    path.write_text(json.dumps(reqs))
    return sum(1 + i % 4 for i in range(12)) + 1


def _summary(i: int) -> dict:
    return {"offlineConversionUploadConversionActionSummary": {
        "client": "GOOGLE_ADS_API", "conversionActionId": str(456 + i), "status": "GOOD", "totalEventCount": "10",
        "successfulEventCount": "9", "pendingEventCount": "0",
        "dailySummaries": [{"uploadDate": f"2026-03-0{d + 1}", "successfulCount": "3", "failedCount": "1"} for d in range(2)],
        "alerts": [{"error": {"conversionUploadError": "CLICK_NOT_FOUND"}, "errorPercentage": 0.1}]}}


def _summary_lines(path: Path) -> int:
    lines = [json.dumps(_summary(i)) if i % 5 else ('{"results": broken' if i % 2 else '{"other": 1}') for i in range(20)]
    path.write_text("\n".join(lines) + "\n")
    return 16 * 4 + 4


def _summary_array(path: Path) -> int:
    path.write_text(json.dumps([_summary(i) if i % 4 else {"nothing": i} for i in range(16)]))
    return 12 * 4 + 4


def _har(path: Path, kind: str) -> int:
    entries = []
    for i in range(40):
        if kind == "meta" and i % 3 == 0:
            url = f"https://www.facebook.com/tr/?id=1&ev=Purchase&eid=e{i}&ts={(1772359200 + i) * 1000}&dl=https%3A%2F%2Fs.example%2F"
        elif kind == "google" and i % 3 == 0:
            url = f"https://www.googleadservices.com/pagead/conversion/123/?label=L&oid=o{i}&value=1"
        elif i % 3 == 1 and kind == "meta":
            url = "https://www.facebook.com/tr/?id=1&ev=Purchase&ts=soon"  # a pixel hit with no readable time
        else:
            url = f"https://shop.example/app-{i}.js"
        entries.append({"startedDateTime": "2026-03-01T10:00:00.000Z", "time": 3,
                        "request": {"method": "GET", "url": url, "headers": [{"name": "user-agent", "value": "UA/1"}]},
                        "response": {"status": 200, "content": {"text": "x" * 100}}})
    entries.insert(7, "not an entry")
    path.write_text(json.dumps({"log": {"version": "1.2", "entries": entries}}, indent=2))
    return len(entries)


CASES = {
    "canonical_array": ("server_events", "e.json", "canonical", _canonical_array),
    "capi_array": ("server_events", "c.json", "meta_capi_payload", _capi_array),
    "summary_lines": ("upload_summaries", "s.jsonl", "google_upload_summary", _summary_lines),
    "summary_array": ("upload_summaries", "s.json", "google_upload_summary", _summary_array),
    "har_meta": ("pixel_events", "h.har", "meta_pixel_hits", lambda p: _har(p, "meta")),
    "har_google": ("pixel_events", "h.har", "google_tag_hits", lambda p: _har(p, "google")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_chunked_whole_documents_keep_the_accounting_of_one_chunk(tmp_path, monkeypatch, case):
    table, name, fmt, write = CASES[case]
    write(tmp_path / name)
    whole = _load(tmp_path, table, name, fmt)
    chunks = _count_chunks(monkeypatch)
    monkeypatch.setattr(canonical, "CHUNK_BYTES", 1)  # every element, line or entry its own chunk
    split = _load(tmp_path, table, name, fmt)
    assert len(chunks) >= 10, len(chunks)  # really finalized chunk by chunk
    assert split == whole  # reports (notes, skipped, duplicates), rows in order, rejects
    (rep,), rows, rejects = split
    assert rep["rows_read"] == rep["rows_loaded"] + rep["rows_rejected"] == len(rows) + len(rejects)
    assert rep["rows_loaded"] > 0 and rep["rows_rejected"] > 0


def test_chunked_json_array_counts_duplicates_and_redacts_across_chunks(tmp_path, monkeypatch):
    _canonical_array(tmp_path / "e.json")
    monkeypatch.setattr(canonical, "CHUNK_BYTES", 1)
    (rep,), rows, rejects = _load(tmp_path, "server_events", "e.json", "canonical")
    assert rep["duplicate_rows"] == 1  # the two `dup` events, in different chunks (their URLs equal once redacted)
    assert rep["redacted"]["event_source_url"] == rep["rows_loaded"]
    assert "positions are array elements" in rep["note"]
    assert [r[1] for r in rejects] == [4, 5, 10, 11, 15, 18, 20, 25, 30]  # element numbers, across chunks
    assert len(rows) == 21


def test_pretty_printed_document_over_the_limit_is_refused_with_what_to_do(tmp_path, capsys, monkeypatch):
    # a pretty-printed document over the whole-document limit was read as JSON Lines: every line
    # rejected as broken JSON (a 480 MB search page: 16 million rejects, nothing loaded)
    doc = {"results": [_summary(i) for i in range(200)]}
    (tmp_path / "search.json").write_text(json.dumps(doc, indent=2))
    monkeypatch.setattr(canonical, "SINGLE_DOC_MAX_BYTES", 10_000, raising=False)
    cfg = write_config(tmp_path, [{"table": "upload_summaries", "path": "search.json", "format": "google_upload_summary"}])
    one_error(*cli(capsys, "load", "--config", str(cfg))[::2], "search.json", "pretty-printed JSON document",
              "JSON Lines")


def test_json_lines_over_the_document_limit_still_load(tmp_path, monkeypatch):
    # a large JSON Lines file whose first line is broken is not mistaken for one document
    lines = ['{"broken": ', *(json.dumps(_summary(i)) for i in range(50))]
    (tmp_path / "s.jsonl").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(canonical, "SINGLE_DOC_MAX_BYTES", 1_000, raising=False)
    (rep,), rows, rejects = _load(tmp_path, "upload_summaries", "s.jsonl", "google_upload_summary")
    assert (rep["rows_loaded"], rep["rows_rejected"], [r[1] for r in rejects]) == (200, 1, [1])


def test_har_broken_midway_is_one_error_naming_the_entry(tmp_path, capsys):
    _har(tmp_path / "h.har", "meta")
    text = (tmp_path / "h.har").read_text()
    (tmp_path / "h.har").write_text(text[: len(text) * 2 // 3])
    cfg = write_config(tmp_path, [{"table": "pixel_events", "path": "h.har", "format": "meta_pixel_hits"}])
    one_error(*cli(capsys, "load", "--config", str(cfg))[::2], "h.har", "not a valid HAR capture", "after entry")


# -- slow: peak RSS of `capi-audit load` on one ~500 MB file of each kind -------------------------
BIG = ["orders_csv", "events_csv", "shopify_csv", "meta_ads_csv", "google_ads_csv", "google_clicks_csv",
       "events_parquet", "canonical_array", "capi_array", "har", "upload_summary"]


# rows each kind loads from n written rows (else n)
LOADED = {"capi_array": lambda n: sum(1 + i % 9 for i in range(n)),  # requests of 1 to 9 events
          "har": lambda n: (n + 9) // 10,  # one entry in ten is a pixel hit
          "upload_summary": lambda n: 12 * n}  # a total, 7 days, 3 jobs and an alert per summary


@pytest.mark.slow
@pytest.mark.parametrize("kind", BIG)
def test_one_500mb_file_of_each_kind_loads_under_1gb(tmp_path, kind):
    # on main: a 468 MB HAR could not load (DuckDB asked for 512 MiB to read it whole; the load's
    # limit is 500 MB); see docs/loading.md for every kind's figures before and after
    from benchmarks.big_inputs import write

    path, n = write(kind, tmp_path, 500)
    rc, peak, out = _peak_rss_mb(tmp_path, tmp_path / "audit.toml")
    path.unlink()
    print(f"{kind}: peak {peak:.0f} MB")
    assert rc == 0, out
    assert f" {LOADED.get(kind, lambda m: m)(n)} " in out, out  # every row loaded
    assert peak < 1024, peak


@pytest.mark.slow
def test_500mb_csv_with_a_rejected_row_after_a_blank_line_loads_under_1gb(tmp_path):
    # A rejected row makes the load map each record to its physical line: that read the whole
    # file's text into a table (1.09 GB at the peak for this 476 MB file), then updated every
    # staged row in place (DuckDB holds updated values in memory)
    from benchmarks.big_inputs import write

    path, n = write("events_csv", tmp_path, 500)
    with path.open("rb") as src, (tmp_path / "e.csv").open("wb") as dst:
        for i, ln in enumerate(src, 1):
            if i == 500_000:
                dst.write(b"\nmeta,123,Purchase,eX,not a time,1,1,EUR,website,,,,,\n")
            dst.write(ln)
    path.unlink()
    (tmp_path / "e.csv").rename(path)
    rc, peak, out = _peak_rss_mb(tmp_path, tmp_path / "audit.toml")
    path.unlink()
    print(f"events_csv with a reject: peak {peak:.0f} MB")
    assert rc == 0, out
    assert f" {n} " in out and "500001" in out, out  # every good row loaded; the bad one on its line
    assert peak < 1024, peak


def test_parquet_finalized_by_row_ranges_keeps_the_accounting_of_one_chunk(tmp_path, monkeypatch):
    import duckdb

    duckdb.execute(f"""COPY (SELECT 'meta' AS platform, 'Purchase' AS event_name, 'e' || (i % 17) AS event_id,
        CASE WHEN i % 7 = 3 THEN TIMESTAMPTZ '1970-01-01 00:00:00+00' ELSE TIMESTAMPTZ '2026-03-01 10:00:00+00' END AS event_time,
        CASE WHEN i % 5 = 0 THEN 'Buyer@Example.org' END AS em, 1.5 AS value FROM range(40) t(i) ORDER BY i)
        TO '{tmp_path / "e.parquet"}' (FORMAT parquet, ROW_GROUP_SIZE 8)""")
    whole = _load(tmp_path, "server_events", "e.parquet", "canonical")
    chunks = _count_chunks(monkeypatch)
    monkeypatch.setattr(canonical, "PARQUET_CHUNK_ROWS", 3, raising=False)
    split = _load(tmp_path, "server_events", "e.parquet", "canonical")
    assert len(chunks) >= 10, len(chunks)
    assert split == whole
    (rep,), rows, rejects = split
    assert (rep["rows_read"], rep["rows_loaded"], rep["rows_rejected"]) == (40, 34, 6)
    assert [r[1] for r in rejects] == [4, 11, 18, 25, 32, 39]  # row numbers across chunks
    assert rep["duplicate_rows"] == whole[0][0]["duplicate_rows"] > 0
