"""Hostile inputs, second pass (issue 14): many files of every format in one pass, the plain `load`
output of huge key sets, and cases the first suite did not cover.

Each test is named after the failure it guards against.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from capi_audit import Workspace
from capi_audit.config import config_from_dict

# -- many files of every format: one pass, the same accounting as file by file ----------------
SHOP = "Name,Email,Created at,Currency,Total,Billing Country,Tags,Note Attributes\n"
META = "\ufeffDay,Website purchases,Amount spent (EUR),Reporting starts,Reporting ends\n"
GADS = "Conversions report\nAll time\nDay,Conversion action,Conversions,Conversions (by conv. time),Conv. value\n"
CLICK = "Parameters:TimeZone=UTC\nGoogle Click ID,Conversion Name,Conversion Time,Conversion Value,Conversion Currency,Order ID\n"
SERVER = "platform,event_name,event_id,event_time,value\n"


def _upload(i: int, *, kind: str = "clicks") -> str:
    if kind == "other":
        return json.dumps({"timestamp": "2026-03-01T10:00:00Z", "request": {"something": []}})
    if kind == "adjust":
        return json.dumps({"timestamp": "2026-03-01T10:00:00Z", "request": {"conversionAdjustments": [
            {"conversionAction": "customers/1/conversionActions/5", "adjustmentType": "ENHANCEMENT", "orderId": f"O{i}"}]}})
    return json.dumps({"timestamp": "2026-03-01T10:00:00Z", "request": {"conversions": [
        {"conversionAction": "customers/1/conversionActions/5", "conversionDateTime": "2026-03-01 10:00:00+00:00",
         "orderId": f"O{i}", "gclid": f"g{i}", "conversionValue": 1, "currencyCode": "EUR"},
        {"conversionAction": "customers/1/conversionActions/5", "conversionDateTime": "2026-03-01 10:05:00+00:00",
         "orderId": f"P{i}", "gclid": f"h{i}", "conversionValue": 2, "currencyCode": "EUR"}]},
        "response": {"partialFailureError": {"details": [{"errors": [{"errorCode": {"conversionUploadError": "EXPIRED_EVENT"},
                                                                      "location": {"fieldPathElements": [{"index": 1}]}}]}]}}})


def _summary(i: int) -> str:
    return json.dumps({"offlineConversionUploadConversionActionSummary": {
        "conversionActionId": str(i), "conversionActionName": "Purchase", "client": "GOOGLE_ADS_API", "status": "EXCELLENT",
        "totalEventCount": 10, "successfulEventCount": 9, "pendingEventCount": 0,
        "dailySummaries": [{"uploadDate": "2026-03-01", "successfulCount": 9, "failedCount": 1, "pendingCount": 0}]}})


def _files(fmt: str, d: Path) -> tuple[str, str]:
    """Twelve daily files of one format with hostile members; returns (table, glob)."""
    day = lambda i: f"2026-03-{1 + i:02d}"  # noqa: E731
    files: dict[str, str | bytes] = {}
    if fmt == "canonical_csv":
        ext, table = "csv", "server_events"
        for i in range(12):
            files[f"s{i:02d}"] = SERVER + f"meta,Purchase,e{i},{day(i)}T10:00:00Z,1\n"
        files["s02"] = SERVER + "meta,Purchase,a,not a time,1\nmeta,Purchase,b,2026-03-02T10:00:00Z,1e308\n"
        files["s04"] = "event_time,event_name,platform,Extra\n2026-03-04T10:00:00Z,Purchase,meta,x\n"  # another header
        files["s06"] = SERVER + "meta,Purchase,c,2026-03-06T10:00:00Z\n"  # too few fields: loads alone
        files["s08"] = SERVER + SERVER + "meta,Purchase,d,2026-03-08T10:00:00Z,1\n"  # repeated header line
        files["s09"] = "event_name,event_time\nPurchase,2026-03-09T10:00:00Z\n"  # no platform column: source default
        files["s10"] = SERVER + "\nmeta,Purchase,e,2026-03-10T10:00:00Z,1\n"  # a blank line: loads alone
        files["s07"] = (SERVER + "meta,Purchase,f,2026-03-07T10:00:00Z,1\n").replace("\n", "\r\n")  # CRLF
        files["s11"] = "\ufeff" + SERVER + 'meta,Purchase,"g, quoted",2026-03-11T10:00:00Z,1'  # BOM, no final newline
    elif fmt == "canonical_parquet":
        ext, table = "parquet", "server_events"
        for i in range(12):
            files[f"s{i:02d}"] = pa.table({"platform": ["meta", "meta"], "event_name": ["Purchase", "Purchase"],
                                           "event_time": pa.array([1772359200 + i, 0], pa.int64()), "value": [1.0, 2.0]})
        files["s03"] = pa.table({"value": [3.0], "event_name": ["Purchase"], "platform": ["meta"], "zz": [1],
                                 "event_time": pa.array([1772359200], pa.int64())})  # other order, extra column
        files["s05"] = pa.table({"platform": ["meta"], "event_name": ["Purchase"], "event_time": ["2026-03-05T10:00:00Z"],
                                 "value": [1.0]})  # event_time typed as text: loads alone
        files["s07"] = pa.table({"platform": pa.array([], pa.string()), "event_name": pa.array([], pa.string()),
                                 "event_time": pa.array([], pa.int64()), "value": pa.array([], pa.float64())})
    elif fmt == "shopify_orders":
        ext, table = "csv", "orders"
        for i in range(12):
            files[f"s{i:02d}"] = SHOP + (f"#{i},c{i}@example.com,{day(i)} 10:00:00 +0100,EUR,10.0,DE,,consent_ads: granted\n"
                                         f"#{i},c{i}@example.com,{day(i)} 10:00:00 +0100,,,,,\n")
        files["s02"] = SHOP + "#x,,never,EUR,1,DE,test,\n#x,,,,,,,\n#y,,2026-03-02 10:00:00 +0100,EUR,1,DE,test,\n"
        files["s04"] = "Name,Created at,Total\n#4,2026-03-05 10:00:00 +0100,4\n"
        files["s06"] = SHOP + "#6,short\n"
        files["s07"] = ("\ufeff" + SHOP + "#7,,2026-03-08 10:00:00 +0100,EUR,1,DE,Test,\n").replace("\n", "\r\n")
        files["s08"] = SHOP + '#8,,2026-03-09 10:00:00 +0100,EUR,1,DE,"vip, test",\n#8,,2026-03-09 10:00:00 +0100,,,,,\n'
    elif fmt == "meta_ads_export":
        ext, table = "csv", "platform_report"
        for i in range(12):
            files[f"s{i:02d}"] = (META + f"{day(i)},5.0,100.00,{day(i)},{day(i)}\n,12.0,100.00,{day(0)},{day(11)}\n"
                                  + ",60.0,1200.00,,\n")  # a multi-day line (rejected) and a total line (skipped)
        files["s02"] = META + f"{day(2)},5.0,1,{day(2)},{day(3)}\n{day(2)},x,1,{day(2)},{day(2)}\n"
        files["s04"] = "Reporting starts,Reporting ends,Purchases\n2026-03-05,2026-03-05,3\n"
        files["s06"] = META + f"{day(6)},5.0\n"
    elif fmt == "google_ads_report":
        ext, table = "csv", "platform_report"
        for i in range(12):
            files[f"s{i:02d}"] = GADS + f"{day(i)},Purchase,2.30,2.00, --\nTotal: account,,2.30,2.00,0\n"
        files["s02"] = GADS + "someday,Purchase,1,1,1\n2026-03-03,Purchase,\"1,234.5\",\"1,000\",1\n"
        files["s04"] = "Day,Purchase_Conversions,Lead_Conversions\n2026-03-05,1,0\n"
        files["s06"] = "Day,Conversions\n2026-03-07,4\n"
        files["s08"] = GADS + "2026-03-09,Purchase\n"
    elif fmt == "google_ads_click_conversions":
        ext, table = "csv", "server_events"
        for i in range(12):
            files[f"s{i:02d}"] = CLICK + f"g{i},Purchase,{day(i)} 10:00:00,1,EUR,O{i}\n"
        files["s02"] = CLICK + "g2,Purchase,2026-03-02 10:00:00 Mars/Base,1,EUR,O2\ng3,Purchase,2026-03-02 10:00:00+0200,1,EUR,O3\n"
        files["s04"] = ("Parameters:TimeZone=America/New_York\nGoogle Click ID,Conversion Name,Conversion Time\n"
                        "g4,Purchase,2026-03-04 10:00:00\n")
        files["s06"] = "Google Click ID,Conversion Name,Conversion Time,Email\ng6,Purchase,2026-03-06 10:00:00,x\n"
    elif fmt == "google_upload_log":
        ext, table = "jsonl", "server_events"
        for i in range(12):
            files[f"s{i:02d}"] = _upload(i) + "\n"
        files["s02"] = _upload(2) + "\n{broken\n" + _upload(20, kind="other") + "\n" + _upload(21, kind="adjust") + "\n"
        files["s04"] = "[" + _upload(4) + "]"  # one JSON array: loads alone
        files["s06"] = _upload(6) + "\n\n" + _upload(60) + "\n"
        files["s08"] = b'{"request": "\xff"}\n' + (_upload(8) + "\n").encode()
    elif fmt == "google_upload_summary":
        ext, table = "jsonl", "upload_summaries"
        for i in range(12):
            files[f"s{i:02d}"] = _summary(i) + "\n"
        files["s02"] = _summary(2) + "\n" + json.dumps({"results": [{"campaign": 1}]}) + "\n[1]\n"
        files["s04"] = json.dumps({"results": [json.loads(_summary(4)), json.loads(_summary(40))]}, indent=1)
        files["s06"] = _summary(6) + "\n\n" + _summary(60) + "\n"
    else:
        raise KeyError(fmt)
    files["s05" if fmt != "canonical_parquet" else "s11"] = "" if fmt != "canonical_parquet" else files["s11"]
    for name, body in files.items():
        p = d / f"{name}.{ext}"
        if isinstance(body, pa.Table):
            pq.write_table(body, p)
        elif isinstance(body, bytes):
            p.write_bytes(body)
        else:
            p.write_text(body, encoding="utf-8")
    return table, f"*.{ext}"


_FORMATS = ["canonical_csv", "canonical_parquet", "shopify_orders", "meta_ads_export", "google_ads_report",
            "google_ads_click_conversions", "google_upload_log", "google_upload_summary"]


def _load(d: Path, fmt: str, table: str, glob: str, *, multi: bool, monkeypatch) -> tuple:
    import capi_audit.workspace as wsmod

    monkeypatch.setattr(wsmod, "MULTI_FILE_MIN", 8 if multi else 10**9)
    src = {"table": table, "path": glob, "format": _fmt_name(fmt)}
    if fmt == "canonical_csv":
        src["platform"] = "meta"
    if fmt == "google_upload_log":
        src["options"] = {"actions": {"5": "Purchase"}}
    ws = Workspace(config=config_from_dict({"sources": [src]}, path=d / "audit.toml"))
    reports = ws.load()
    rows = ws.rows(f"SELECT * FROM {table} ORDER BY ALL")
    rejects = ws.rows("SELECT file, line, column_name, reason FROM rejects ORDER BY ALL")
    rep = [(Path(r.file).name, r.rows_read, r.rows_loaded, r.rows_rejected, r.skipped, r.coerced, r.redacted,
            r.ignored_columns, r.duplicate_rows, r.note) for r in reports]
    return rep, rows, rejects, ws


@pytest.mark.parametrize("fmt", _FORMATS)
def test_multi_file_scan_of_every_format_equals_file_by_file(tmp_path, monkeypatch, fmt):
    # Parquet, the vendor CSV exports and the Google upload logs were staged file by file (a glob
    # of 2,000 one-row files took 105-260 s); they now join one multi-file scan, and every file's
    # accounting (rows, rejects with file and line, skipped rows, notes, ignored columns) and
    # every loaded row must be what loading the files one by one gives
    table, glob = _files(fmt, tmp_path)
    one = _load(tmp_path, fmt, table, glob, multi=False, monkeypatch=monkeypatch)
    many = _load(tmp_path, fmt, table, glob, multi=True, monkeypatch=monkeypatch)
    for r in one[0]:
        assert r[1] == r[2] + r[3]
    assert many[0] == one[0]
    assert many[1] == one[1]
    assert many[2] == one[2]
    assert len(one[0]) == 12


@pytest.mark.parametrize("fmt", ["shopify_orders", "google_upload_log", "meta_ads_export"])
def test_auto_format_glob_equals_file_by_file(tmp_path, monkeypatch, fmt):
    # a glob under format = "auto" loaded file by file; the files detected as one format now join
    # that format's scan, each keeping its "format detected" note
    table, glob = _files(fmt, tmp_path)
    monkeypatch.setattr("tests.test_hostile_more._fmt_name", lambda f: "auto")
    one = _load(tmp_path, fmt, table, glob, multi=False, monkeypatch=monkeypatch)
    many = _load(tmp_path, fmt, table, glob, multi=True, monkeypatch=monkeypatch)
    assert many[0] == one[0] and many[1] == one[1] and many[2] == one[2]
    assert all(r[-1].startswith("format detected") or r[1] == 0 for r in many[0] if r[1] or r[-1])


def _fmt_name(fmt: str) -> str:
    return "canonical" if fmt.startswith("canonical") else fmt


def test_multi_file_scan_reads_files_together(tmp_path, monkeypatch):
    # guard that the vendor readers really scan together: a staging call per file is what cost
    # minutes; count the calls of the one-file path
    from capi_audit.io import FORMATS

    table, glob = _files("meta_ads_export", tmp_path)
    calls = []
    reader = FORMATS["meta_ads_export"]
    real = reader.stage
    monkeypatch.setattr(type(reader), "stage", lambda self, *a, **k: calls.append(a[2]) or real(*a, **k))
    _load(tmp_path, "meta_ads_export", table, glob, multi=True, monkeypatch=monkeypatch)
    # alone: only the file with a short row (the empty file is an empty source; the file with
    # another header is a scan of its own)
    assert sorted(Path(c).name for c in calls) == ["s06.csv"]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", _FORMATS)
def test_glob_over_2000_files_of_every_format_loads_in_linear_time(tmp_path, fmt):
    from tests.test_hostile import _peak_rss_mb, write_config

    # file by file these took 105-391 s for 2,000 one-row files (docs/loading.md, Many files)
    d = tmp_path / "daily"
    d.mkdir()
    table = {"shopify_orders": "orders", "meta_ads_export": "platform_report", "google_ads_report": "platform_report",
             "google_upload_summary": "upload_summaries"}.get(fmt, "server_events")
    glob = "*.parquet" if fmt == "canonical_parquet" else "*.jsonl" if fmt.startswith("google_upload") else "*.csv"
    one = {"canonical_csv": (SERVER + "meta,Purchase,e{i},2026-03-01T10:00:00Z,1\n", "csv"),
           "shopify_orders": (SHOP + "#{i},,2026-03-01 10:00:00 +0100,EUR,10.0,DE,,\n", "csv"),
           "meta_ads_export": (META + "2026-03-01,5.0,100.00,2026-03-01,2026-03-01\n", "csv"),
           "google_ads_report": (GADS + "2026-03-01,Purchase{i},2.30,2.00, --\n", "csv"),
           "google_ads_click_conversions": (CLICK + "g{i},Purchase,2026-03-01 10:00:00,1,EUR,O{i}\n", "csv")}
    for i in range(2000):
        if fmt == "canonical_parquet":
            pq.write_table(pa.table({"platform": ["meta"], "event_name": ["Purchase"],
                                     "event_time": pa.array([1772359200 + i], pa.int64())}), d / f"s{i:04d}.parquet")
        elif fmt == "google_upload_log":
            (d / f"s{i:04d}.jsonl").write_text(_upload(i) + "\n")
        elif fmt == "google_upload_summary":
            (d / f"s{i:04d}.jsonl").write_text(_summary(i) + "\n")
        else:
            body, ext = one[fmt]
            (d / f"s{i:04d}.{ext}").write_text(body.replace("{i}", str(i)))
    cfg = write_config(tmp_path, [{"table": table, "path": "daily/" + glob,
                                   "format": "canonical" if fmt.startswith("canonical") else fmt}])
    t = time.time()
    rc, peak, out = _peak_rss_mb(tmp_path, cfg)
    elapsed = time.time() - t
    print(f"{fmt}: 2000 files: {elapsed:.1f} s, peak {peak:.0f} MB")
    assert rc == 0, out
    assert peak < 1024
    assert elapsed < 60


# -- plain `load` output ------------------------------------------------------------------------
def test_plain_load_caps_the_ignored_column_listing(tmp_path, capsys):
    # a JSON file with 50,000 keys printed 50,000 lines of ignored columns
    from capi_audit.cli import main
    from tests.test_hostile import CANARY_EMAIL, assert_no_canary, write_config

    doc = {"order_id": "A1", "created_at": "2026-03-01T00:00:00Z", CANARY_EMAIL: 1}
    doc.update({f"k{i:05d}": i for i in range(50_000)})
    (tmp_path / "o.jsonl").write_text(json.dumps(doc) + "\n")
    d = tmp_path / "daily"
    d.mkdir()
    for i in range(10):
        (d / f"s{i}.csv").write_text(f"order_id,created_at,x{i},shared\nB{i},2026-03-01T00:00:00Z,1,2\n")
    cfg = write_config(tmp_path, [{"table": "orders", "path": "o.jsonl"}, {"table": "orders", "path": "daily/*.csv"}])
    assert main(["load", "--config", str(cfg)]) == 0
    out, err = capsys.readouterr()
    assert_no_canary(out + err)
    lines = out.splitlines()
    assert len(lines) < 100, len(lines)
    listed = [ln for ln in lines if ln.startswith("  o.jsonl: '")]
    assert len(listed) == 20
    # 50,001 distinct names (the email key is one of them, shown redacted), 20 listed
    assert "  o.jsonl: … and 49,981 more" in out
    # a glob is one source: its files' names together, the count of files said once
    glob_lines = [ln for ln in lines if ln.startswith("  *.csv (10 files): ")]
    assert len(glob_lines) == 11 and "'shared'" in out and "'x9'" in out
    notes = [ln for ln in lines if ln.startswith("note:")]
    assert len(notes) <= 3


# -- adversarial pass, second round -------------------------------------------------------------
def _cli(capsys, *argv):
    from capi_audit.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_utf16_canonical_csv_loads(tmp_path, capsys):
    # Excel's "Unicode text" CSV (UTF-16 with a BOM) was read as UTF-8: every row rejected
    from tests.test_hostile import load_json

    # ASCII text in UTF-16 is valid UTF-8 with NUL bytes: nothing told the reader it was wrong
    (tmp_path / "o.csv").write_bytes("order_id,created_at,value\nA1,2026-03-01T00:00:00Z,1\nA2,soon,2\n".encode("utf-16"))
    data = load_json(capsys, tmp_path, [{"table": "orders", "path": "o.csv"}])
    rep = data["files"][0]
    assert (rep["rows_read"], rep["rows_loaded"], rep["rows_rejected"]) == (2, 1, 1)
    assert [(r["line"], r["column_name"]) for r in data["rejects"]] == [(3, "created_at")]


@pytest.mark.parametrize("header", ["order_id,created_at,,", "order_id,created_at,Notes,Notes"])
def test_header_repeating_an_unused_name_loads(tmp_path, capsys, header):
    # two empty names after trailing commas, or two unused `Notes` columns, refused the whole file
    from tests.test_hostile import load_json

    (tmp_path / "o.csv").write_text(header + "\nA1,2026-03-01T00:00:00Z,x,y\n")
    data = load_json(capsys, tmp_path, [{"table": "orders", "path": "o.csv"}])
    assert data["files"][0]["rows_loaded"] == 1


def test_header_repeating_a_used_name_is_one_error(tmp_path, capsys):
    from tests.test_hostile import one_error, write_config

    (tmp_path / "o.csv").write_text("order_id,created_at,order_id\nA1,2026-03-01T00:00:00Z,B1\n")
    cfg = write_config(tmp_path, [{"table": "orders", "path": "o.csv"}])
    one_error(*_cli(capsys, "load", "--config", str(cfg))[::2], "o.csv", "'order_id'")


@pytest.mark.parametrize("zone", ["posixrules", "localtime"])
@pytest.mark.parametrize("where", ["audit", "report"])
def test_zone_python_knows_but_duckdb_does_not_names_the_key(tmp_path, capsys, zone, where):
    # Python's tz data accepts `posixrules` / `localtime`; DuckDB refused them mid-load with
    # "NotImplementedException: Unknown TimeZone" naming no key
    import zoneinfo

    from tests.test_hostile import one_error

    try:
        zoneinfo.ZoneInfo(zone)
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip(f"{zone} not in this system's tz data")
    (tmp_path / "o.csv").write_text("order_id,created_at\nA1,2026-03-01T00:00:00Z\n")
    head = f'[audit]\ntimezone = "{zone}"\n' if where == "audit" else f'[report_timezone]\ngoogle = "{zone}"\n'
    (tmp_path / "audit.toml").write_text(head + '[[sources]]\ntable = "orders"\npath = "o.csv"\n')
    key = "audit.timezone" if where == "audit" else "report_timezone.google"
    one_error(*_cli(capsys, "load", "--config", str(tmp_path / "audit.toml"))[::2], key, zone)


@pytest.mark.parametrize("column", ["order_id", "event_id", "request_id"])
def test_ids_holding_emails_or_phones_never_reach_the_db(tmp_path, capsys, column):
    # `columns = { order_id = "Email" }` (or a shop keying orders by email) stored every address
    # verbatim in orders / server_events; ids shaped like emails or phones become pseudonyms
    # that keep equal ids equal, so orders still link
    import duckdb

    from tests.test_hostile import CANARY_EMAIL, CANARY_PHONE, assert_db_clean, load_json

    (tmp_path / "o.csv").write_text(f"order_id,created_at\n{CANARY_EMAIL},2026-03-01T00:00:00Z\n"
                                    f"{CANARY_PHONE},2026-03-01T00:00:00Z\nA3,2026-03-01T00:00:00Z\n")
    cols = [column] if column == "order_id" else [column, "order_id"]
    rows = [",".join([v] * len(cols)) for v in (CANARY_EMAIL, CANARY_PHONE, "A3")]
    (tmp_path / "s.csv").write_text(f"platform,event_name,event_time,{','.join(cols)}\n"
                                    + "".join(f"meta,Purchase,2026-03-01T00:00:05Z,{r}\n" for r in rows))
    db = tmp_path / "w.duckdb"
    data = load_json(capsys, tmp_path, [{"table": "orders", "path": "o.csv"}, {"table": "server_events", "path": "s.csv"}],
                     db=db)
    assert_db_clean(db)
    by = {Path(f["file"]).name: f for f in data["files"]}
    assert by["o.csv"]["redacted"] == {"order_id": 2}
    assert by["s.csv"]["redacted"][column] == 2
    con = duckdb.connect(str(db), read_only=True)
    # every server event still links to its order
    linked = con.execute("SELECT count(*) FROM server_events s JOIN orders o USING (order_id)").fetchone()[0]
    ids = [r[0] for r in con.execute(f"SELECT {column} FROM server_events ORDER BY event_time, {column}").fetchall()]
    con.close()
    assert linked == 3
    assert sorted(i[:17] for i in ids) == ["<plaintext:email:", "<plaintext:phone:", "A3"]


def test_same_file_under_a_hard_link_in_two_sources_is_refused(tmp_path, capsys):
    # a symlink or `./a.csv` was caught, a hard link (another name for the same inode) was not:
    # every row counted twice
    import os

    from tests.test_hostile import one_error, write_config

    (tmp_path / "a.csv").write_text("order_id,created_at\nA1,2026-03-01T00:00:00Z\n")
    os.link(tmp_path / "a.csv", tmp_path / "b.csv")
    cfg = write_config(tmp_path, [{"table": "orders", "path": "a.csv"}, {"table": "orders", "path": "b.csv"}])
    one_error(*_cli(capsys, "load", "--config", str(cfg))[::2], "sources[1]", "sources[2]")
    (tmp_path / "g").mkdir()
    os.link(tmp_path / "a.csv", tmp_path / "g" / "c.csv")
    cfg = write_config(tmp_path, [{"table": "orders", "path": "a.csv"}, {"table": "orders", "path": "g/*.csv"}])
    one_error(*_cli(capsys, "load", "--config", str(cfg))[::2], "named twice")


@pytest.mark.parametrize("column", ["file_row_number", "_file"])
@pytest.mark.parametrize("n", [1, 9])
def test_parquet_with_a_column_named_like_the_readers_own_loads(tmp_path, capsys, column, n):
    # a Parquet column `file_row_number` clashed with the column DuckDB's reader adds:
    # BinderException, the file could not be loaded (fails on main). `_file` guards the new
    # multi-file scan, whose file-name column must not clash with the files' own columns.
    from tests.test_hostile import load_json

    for i in range(n):
        pq.write_table(pa.table({"platform": ["meta", "meta"], "event_name": ["Purchase", "Purchase"],
                                 "event_time": pa.array([1772359200 + i, 0], pa.int64()), column: [7, 8]}),
                       tmp_path / f"s{i}.parquet")
    data = load_json(capsys, tmp_path, [{"table": "server_events", "path": "s*.parquet"}])
    assert [(f["rows_loaded"], f["rows_rejected"]) for f in data["files"]] == [(1, 1)] * n
    assert {r["line"] for r in data["rejects"]} == {2}


def test_export_to_an_existing_file_is_one_error(tmp_path, capsys):
    # `capi-audit export --to <file>` ended in "FileExistsError: [Errno 17] File exists" (no option named)
    from tests.test_hostile import one_error, write_config

    (tmp_path / "o.csv").write_text("order_id,created_at\nA1,2026-03-01T00:00:00Z\n")
    (tmp_path / "x").write_text("a file")
    cfg = write_config(tmp_path, [{"table": "orders", "path": "o.csv"}])
    one_error(*_cli(capsys, "export", "--config", str(cfg), "--to", str(tmp_path / "x"))[::2], "--to", "existing file")


@pytest.mark.parametrize("when, ok", [
    ("2026-03-01T10:00:00+99:99", False),  # DuckDB shifted it by four days
    ("2026-03-01T10:00:00+24:00", False),
    ("2026-03-01T10:00:00+05:30:45", False),  # DuckDB dropped the offset: 5.5 hours off
    ("2026-03-01T10:00:00-23:59", False),
    ("2026-03-01T10:00:00+05:45", True),  # Nepal
    ("2026-03-01T10:00:00+14:00", True),  # Kiribati
    ("2026-03-01T10:00:00-12:00", True),
    ("2026-03-01T10:00:00.5+0530", True),
])
def test_impossible_utc_offsets_are_rejected_not_shifted(tmp_path, capsys, when, ok):
    from tests.test_hostile import load_json

    (tmp_path / "s.csv").write_text(f"platform,event_name,event_time\nmeta,Purchase,{when}\n")
    data = load_json(capsys, tmp_path, [{"table": "server_events", "path": "s.csv"}])
    assert data["files"][0]["rows_loaded"] == int(ok)
    if not ok:
        assert [(r["line"], r["column_name"], r["reason"]) for r in data["rejects"]] == [(2, "event_time", "not a time")]


@pytest.mark.parametrize("path, needle", [
    ("https://example.com/orders.csv", "is a URL"),  # was "https:/example.com/orders.csv: file not found"
    ("s3://bucket/orders.parquet", "is a URL"),
    ("gs://bucket/orders.csv", "is a URL"),
    ("~/orders.csv", "not expanded"),  # was "file not found", with the file right there in the home folder
])
def test_urls_and_home_paths_are_named_as_such(tmp_path, capsys, path, needle):
    from tests.test_hostile import one_error, write_config

    cfg = write_config(tmp_path, [{"table": "orders", "path": path}])
    one_error(*_cli(capsys, "load", "--config", str(cfg))[::2], "sources[1].path", needle)


@pytest.mark.parametrize("name, kind", [("orders.csv", "ZIP archive"), ("orders.jsonl", "ZIP archive"),
                                        ("orders.csv", "bzip2"), ("orders.jsonl", "xz"), ("orders.csv", "zstd")])
def test_archives_and_other_compressions_are_named(tmp_path, capsys, name, kind):
    # an .xlsx saved as .csv had its header refused as "invalid UTF-8"; a bzip2 JSON Lines file had
    # every line rejected as invalid UTF-8 and the load went on
    import bz2
    import io
    import lzma
    import zipfile

    text = b'order_id,created_at\nA1,2026-03-01T10:00:00Z\n'
    if kind == "ZIP archive":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("sheet.csv", text)
        data = buf.getvalue()
    elif kind == "bzip2":
        data = bz2.compress(text)
    elif kind == "xz":
        data = lzma.compress(text)
    else:
        data = b"\x28\xb5\x2f\xfd" + bytes(range(40))  # a zstd frame's magic number
    (tmp_path / name).write_bytes(data)
    from tests.test_hostile import one_error, write_config

    cfg = write_config(tmp_path, [{"table": "orders", "path": name}])
    one_error(*_cli(capsys, "load", "--config", str(cfg))[::2], name, kind)
