"""Hostile inputs, third pass (issue 14): personal data in id columns and in file names, and a
fresh set of hostile cases through the CLI.

Each test is named after the failure it guards against. The id tests plant a canary email and
phone in every free-form id column of every reader that fills one and assert that neither reaches
the `--db` file, the rejects, the `load --json` output or summary.json, while the count of
replaced values is reported per column.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.test_hostile import (
    CANARY_EMAIL,
    CANARY_PHONE,
    assert_db_clean,
    assert_no_canary,
    cli,
    load_json,
    write_config,
)

T = "2026-03-01T10:00:00Z"
EPOCH = 1772359200
# the canary as a whole value, and glued into an otherwise well-formed click id
EMBEDDED = f"fb.1.1554763741205.{CANARY_EMAIL}"
EMBEDDED_PHONE = f"fb.1.1554763741205.{CANARY_PHONE}"


def _csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.write_text(",".join(header) + "\n" + "".join(",".join(str(v) for v in r) + "\n" for r in rows))


def _lines(path: Path, docs: list) -> None:
    path.write_text("".join((d if isinstance(d, str) else json.dumps(d)) + "\n" for d in docs))


# Each case writes its file(s) into a folder and returns (sources, {file name: {column: replaced}}).
def case_canonical_csv_pixel(d: Path):
    cols = ["fbp", "fbc", "gclid", "gbraid", "wbraid", "external_id", "client_ip_address"]
    rows = [["meta", "Purchase", T, *([CANARY_EMAIL] * len(cols)), f"Bot/1.0 (+mailto:{CANARY_EMAIL})"],
            ["meta", "Purchase", T, *([CANARY_PHONE] * len(cols)), "Mozilla/5.0"],
            ["meta", "Purchase", T, EMBEDDED, EMBEDDED_PHONE, "Cj0KCQ-x_y", "", "", "cust-1", "203.0.113.9", "Mozilla/5.0"]]
    _csv(d / "px.csv", ["platform", "event_name", "event_time", *cols, "client_user_agent"], rows)
    want = {c: 2 for c in cols} | {"fbp": 3, "fbc": 3, "client_user_agent": 1}
    return [{"table": "pixel_events", "path": "px.csv"}], {"px.csv": want}


def case_canonical_jsonl_server(d: Path):
    cols = ["fbp", "fbc", "gclid", "gbraid", "wbraid", "external_id", "client_ip_address", "request_id"]
    docs = [{"platform": "meta", "event_name": "Purchase", "event_time": T, **{c: v for c in cols}}
            for v in (CANARY_EMAIL, CANARY_PHONE, quote(CANARY_EMAIL, safe=""), "ok-1")]
    _lines(d / "sv.jsonl", docs)
    return [{"table": "server_events", "path": "sv.jsonl"}], {"sv.jsonl": {c: 3 for c in cols}}


def case_canonical_parquet_enhancements(d: Path):
    pq.write_table(pa.table({
        "platform": ["google"] * 3, "order_id": ["O1", "O2", "O3"], "adjusted_at": [T] * 3,
        "gclid": [CANARY_EMAIL, CANARY_PHONE, "Cj0KCQ"], "request_id": [CANARY_PHONE, "r2", "r3"],
        "ct": [CANARY_EMAIL, CANARY_PHONE, "berlin"]}), d / "enh.parquet")
    return ([{"table": "enhancements", "path": "enh.parquet"}],
            {"enh.parquet": {"gclid": 2, "request_id": 1, "ct": 2}})


def case_canonical_csv_summaries(d: Path):
    rows = [["google", "client", "total", CANARY_EMAIL, CANARY_PHONE, CANARY_EMAIL, 1],
            ["google", "client", "total", CANARY_PHONE, "123", CANARY_PHONE, 1],
            ["google", "client", "total", "GOOGLE_ADS_API", "456", "j3", 1]]
    _csv(d / "sum.csv", ["platform", "level", "dimension", "client", "destination_id", "job_id", "successful"], rows)
    return ([{"table": "upload_summaries", "path": "sum.csv"}],
            {"sum.csv": {"client": 2, "destination_id": 1, "job_id": 2}})


def case_meta_capi_payload(d: Path):
    def ev(i, v):
        return {"event_name": "Purchase", "event_time": EPOCH + i, "event_id": f"e{i}", "action_source": "website",
                "event_source_url": "https://shop.example/", "user_data": {
                    "em": "a" * 64, "fbp": v, "fbc": v, "external_id": v, "client_ip_address": v,
                    "client_user_agent": f"UA {v}"}}
    _lines(d / "capi.jsonl", [{"data": [ev(0, CANARY_EMAIL), ev(1, CANARY_PHONE)]},
                              {"data": [ev(2, "fb.1.1.2")]}])
    keys = ("fbp", "fbc", "external_id", "client_ip_address", "client_user_agent")
    return ([{"table": "server_events", "path": "capi.jsonl", "format": "meta_capi_payload"}],
            {"capi.jsonl": dict.fromkeys(keys, 2)})


def case_meta_pixel_hits(d: Path):
    def hit(i, v):
        q = quote(v, safe="")
        return (f"https://www.facebook.com/tr/?id=1&ev=Purchase&eid=e{i}&ts={(EPOCH + i) * 1000}"
                f"&fbp={q}&fbc={q}&ud[external_id]={q}")
    (d / "hits.log").write_text("\n".join([hit(0, CANARY_EMAIL), hit(1, CANARY_PHONE), hit(2, "fb.1.1.2")]) + "\n")
    return ([{"table": "pixel_events", "path": "hits.log", "format": "meta_pixel_hits"}],
            {"hits.log": {"fbp": 2, "fbc": 2, "external_id": 2}})


def case_ga4_export(d: Path):
    def row(i, v):
        return {"event_name": "purchase", "event_timestamp": str((EPOCH + i) * 1_000_000),
                "ecommerce": {"transaction_id": f"t{i}", "purchase_revenue": 1.0},
                "collected_traffic_source": {"gclid": v}}
    _lines(d / "ga4.jsonl", [row(0, CANARY_EMAIL), row(1, CANARY_PHONE), row(2, "Cj0KCQ")])
    return ([{"table": "pixel_events", "path": "ga4.jsonl", "format": "ga4_export"}], {"ga4.jsonl": {"gclid": 2}})


def case_google_tag_hits(d: Path):
    def hit(i, v):
        q = quote(v, safe="")
        return json.dumps({"timestamp": T, "url": f"https://www.googleadservices.com/pagead/conversion/123/?label=L"
                                                  f"&oid=o{i}&value=1&gclid={q}&gbraid={q}&wbraid={q}"})
    (d / "tag.jsonl").write_text("\n".join([hit(0, CANARY_EMAIL), hit(1, CANARY_PHONE), hit(2, "Cj0KCQ")]) + "\n")
    return ([{"table": "pixel_events", "path": "tag.jsonl", "format": "google_tag_hits"}],
            {"tag.jsonl": {"gclid": 2, "gbraid": 2, "wbraid": 2}})


def case_ga4_mp_payload(d: Path):
    def doc(i, v):
        return {"measurement_id": "G-1", "body": {
            "timestamp_micros": (EPOCH + i) * 1_000_000,
            "user_data": {"address": [{"city": v, "postal_code": v}]},
            "events": [{"name": "purchase", "params": {"transaction_id": f"t{i}"}}]}}
    _lines(d / "mp.jsonl", [doc(0, CANARY_EMAIL), doc(1, CANARY_PHONE), doc(2, "berlin")])
    return ([{"table": "server_events", "path": "mp.jsonl", "format": "ga4_mp_payload"}],
            {"mp.jsonl": {"ct": 2, "zp": 2}})


def case_google_upload_log(d: Path):
    def conv(i, v):
        return {"conversionAction": "customers/1/conversionActions/5", "conversionDateTime": "2026-03-01 10:00:00+00:00",
                "orderId": f"O{i}", "gclid": v, "gbraid": v, "wbraid": v, "conversionValue": 1, "currencyCode": "EUR"}
    docs = [{"timestamp": T, "request": {"conversions": [conv(0, CANARY_EMAIL), conv(1, CANARY_PHONE)]},
             "response": {"jobId": CANARY_EMAIL}},
            {"timestamp": T, "request": {"conversions": [conv(2, "Cj0KCQ")]}, "response": {"jobId": "42"}}]
    _lines(d / "up.jsonl", docs)
    return ([{"table": "server_events", "path": "up.jsonl", "format": "google_upload_log",
              "options": {"actions": {"5": "Purchase"}}}],
            {"up.jsonl": {"gclid": 2, "gbraid": 2, "wbraid": 2, "request_id": 2}})


def case_google_upload_summary(d: Path):
    def s(i, client):
        return {"offlineConversionUploadConversionActionSummary": {
            "conversionActionId": str(i), "conversionActionName": "Purchase", "client": client, "status": "EXCELLENT",
            "totalEventCount": 10, "successfulEventCount": 9, "pendingEventCount": 0}}
    _lines(d / "sums.jsonl", [s(1, CANARY_EMAIL), s(2, CANARY_PHONE), s(3, "GOOGLE_ADS_API")])
    return ([{"table": "upload_summaries", "path": "sums.jsonl", "format": "google_upload_summary"}],
            {"sums.jsonl": {"client": 2}})


def case_google_ads_click_csv(d: Path):
    (d / "clicks.csv").write_text(
        "Parameters:TimeZone=UTC\nGoogle Click ID,Conversion Name,Conversion Time,Conversion Value,Conversion Currency,Order ID\n"
        f"{CANARY_EMAIL},Purchase,2026-03-01 10:00:00,1,EUR,O1\n\"{CANARY_PHONE}\",Purchase,2026-03-01 10:00:00,1,EUR,O2\n"
        "Cj0KCQ,Purchase,2026-03-01 10:00:00,1,EUR,O3\n")
    return ([{"table": "server_events", "path": "clicks.csv", "format": "google_ads_click_conversions"}],
            {"clicks.csv": {"gclid": 2}})


ID_CASES = {name[5:]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}


@pytest.mark.parametrize("case", sorted(ID_CASES))
def test_click_and_other_ids_holding_emails_or_phones_never_reach_the_db(tmp_path, capsys, case):
    # fbc / fbp / gclid / gbraid / wbraid, external ids, client ids, IP and user agent were stored as
    # given: an email or phone there reached the --db file and every notebook query
    sources, want = ID_CASES[case](tmp_path)
    db = tmp_path / "w.duckdb"
    data = load_json(capsys, tmp_path, sources, db=db)
    assert_db_clean(db)
    by = {Path(f["file"]).name: f for f in data["files"]}
    for name, cols in want.items():
        assert by[name]["rows_rejected"] == 0, by[name]
        got = {c: by[name]["redacted"].get(c, 0) for c in cols}
        assert got == cols, (name, by[name]["redacted"])


def test_pseudonymized_click_ids_keep_equal_values_equal(tmp_path, capsys):
    # the same email pasted into fbp on the pixel and the server side still pairs (Method B)
    _csv(tmp_path / "px.csv", ["platform", "event_name", "event_time", "fbp", "external_id"],
         [["meta", "Purchase", T, CANARY_EMAIL, CANARY_PHONE]])
    _csv(tmp_path / "sv.csv", ["platform", "event_name", "event_time", "fbp", "external_id"],
         [["meta", "Purchase", T, CANARY_EMAIL, CANARY_PHONE], ["meta", "Purchase", T, "other@example.com", "x"]])
    db = tmp_path / "w.duckdb"
    load_json(capsys, tmp_path, [{"table": "pixel_events", "path": "px.csv"},
                                 {"table": "server_events", "path": "sv.csv"}], db=db)
    con = duckdb.connect(str(db), read_only=True)
    n = con.execute("SELECT count(*) FROM pixel_events p JOIN server_events s USING (fbp, external_id)").fetchone()[0]
    fbps = sorted(r[0] for r in con.execute("SELECT fbp FROM server_events").fetchall())
    con.close()
    assert n == 1
    assert fbps[0] != fbps[1] and all(f.startswith("<plaintext:email:") for f in fbps)


def test_ids_holding_emails_are_reported_in_plain_load_output(tmp_path, capsys):
    sources, _ = case_canonical_csv_pixel(tmp_path)
    cfg = write_config(tmp_path, sources)
    code, out, err = cli(capsys, "load", "--config", str(cfg))
    assert code == 0, err
    assert "plaintext values replaced by markers in:" in out and "fbc (3)" in out and "gclid (2)" in out
    assert_no_canary(out + err)


def test_run_on_ids_holding_emails_keeps_summary_clean(tmp_path, capsys):
    sources = []
    for case in ("canonical_csv_pixel", "canonical_jsonl_server", "google_upload_summary", "meta_capi_payload"):
        sources += ID_CASES[case](tmp_path)[0]
    _csv(tmp_path / "o.csv", ["order_id", "created_at", "value"], [["O1", T, 1]])
    sources.append({"table": "orders", "path": "o.csv"})
    cfg = write_config(tmp_path, sources)
    db, out = tmp_path / "w.duckdb", tmp_path / "out"
    code, stdout, err = cli(capsys, "run", "--config", str(cfg), "--out", str(out), "--db", str(db), "--no-charts")
    assert code == 0, err
    assert_no_canary(stdout + err)
    for f in out.rglob("*"):
        if f.is_file():
            assert_no_canary(f.read_text(errors="replace"))
    assert_db_clean(db)


# -- personal data in file names -----------------------------------------------------------------
NAMED = f"orders_{CANARY_EMAIL}.csv"


def _named_inputs(d: Path) -> list[dict]:
    """Orders in a file named after a customer, one bad row (a reject names the file), and a glob
    of daily server files named with a phone (the multi-file scan path)."""
    (d / NAMED).write_text("order_id,created_at,value\nO1,2026-03-01T10:00:00Z,1\nO2,not a time,1\n")
    daily = d / "daily"
    daily.mkdir()
    for i in range(10):
        rows = f"meta,Purchase,e{i},2026-03-0{1 + i % 9}T10:00:00Z,1\n" + ("meta,Purchase,x,never,1\n" if i == 3 else "")
        (daily / f"s{i}_{CANARY_PHONE}.csv").write_text("platform,event_name,event_id,event_time,value\n" + rows)
    return [{"table": "orders", "path": NAMED}, {"table": "server_events", "path": "daily/*.csv"}]


def test_file_names_holding_emails_or_phones_are_redacted_in_load_output(tmp_path, capsys, monkeypatch):
    # `orders_jane.doe@example.com.csv` was printed and stored as given: rejects' file column,
    # load_report, plain and JSON load output, progress lines
    import capi_audit.progress as progress
    import capi_audit.workspace as wsmod

    monkeypatch.setattr(wsmod, "MULTI_FILE_MIN", 8)
    monkeypatch.setattr(progress, "AFTER_SECONDS", -1.0)
    monkeypatch.setattr(progress, "AFTER_SECONDS_NOTEBOOK", -1.0)
    monkeypatch.setenv("CAPI_AUDIT_PROGRESS", "1")
    monkeypatch.delenv("CI", raising=False)
    sources = _named_inputs(tmp_path)
    db = tmp_path / "w.duckdb"
    data = load_json(capsys, tmp_path, sources, db=db)
    assert_db_clean(db)
    names = sorted(Path(f["file"]).name for f in data["files"])
    assert names[0].startswith("<redacted:email:") and names[0].endswith(">.csv")
    assert all(n.startswith("s") and "_<redacted:phone:" in n and n.endswith(">.csv") for n in names[1:])
    assert len(set(names)) == 11  # the tags keep the files apart
    rejected = {Path(r["file"]).name for r in data["rejects"]}
    assert len(rejected) == 2 and rejected <= set(names)
    cfg = tmp_path / "audit.toml"
    code, out, err = cli(capsys, "load", "--config", str(cfg))
    assert code == 0, err
    assert "<redacted:email:" in out and "<redacted:phone:" in out and "[load]" in err
    assert_no_canary(out + err)


def test_file_names_holding_emails_are_redacted_in_run_and_report(tmp_path, capsys):
    cfg = write_config(tmp_path, _named_inputs(tmp_path))
    db, out, rep = tmp_path / "w.duckdb", tmp_path / "out", tmp_path / "rep"
    code, stdout, err = cli(capsys, "run", "--config", str(cfg), "--out", str(out), "--db", str(db), "--no-charts")
    assert code == 0, err
    import pandas as pd

    result = (out / "summary.json").read_text() + (out / "result.json").read_text()
    assert "<redacted:email:" in result  # the config echo names the source file
    for frame in ("load", "load_rejects"):
        df = pd.read_parquet(out / "frames" / f"{frame}.parquet")
        assert_no_canary(df.to_csv())
        assert df["file"].str.contains("<redacted:").any()
    code, stdout2, err2 = cli(capsys, "report", "--result", str(out), "--out", str(rep), "--no-notebooks")
    assert code == 0, err2
    assert_no_canary(stdout + err + stdout2 + err2)
    for f in [*out.rglob("*"), *rep.rglob("*")]:
        if f.is_file():
            assert_no_canary(f.read_text(errors="replace"))
    assert_db_clean(db)


@pytest.mark.parametrize("what", ["missing", "bad_column", "corrupt_parquet", "glob_no_match"])
def test_file_names_holding_emails_are_redacted_in_error_lines(tmp_path, capsys, what):
    from tests.test_hostile import one_error

    name = f"export_{CANARY_EMAIL}"
    src = {"table": "orders", "path": f"{name}.csv"}
    if what == "bad_column":
        (tmp_path / f"{name}.csv").write_text("a,b\n1,2\n")
    elif what == "corrupt_parquet":
        (tmp_path / f"{name}.parquet").write_bytes(b"PAR1 not really")
        src = {"table": "orders", "path": f"{name}.parquet", "format": "auto"}
    elif what == "glob_no_match":
        src = {"table": "orders", "path": f"{name}*.csv"}
    cfg = write_config(tmp_path, [src])
    code, _, err = cli(capsys, "load", "--config", str(cfg))
    one_error(code, err, "<redacted:email:")
    if what != "glob_no_match":  # the extension is kept so the analyst finds the file
        assert re.search(r"<redacted:email:[0-9a-f]{6}>\.(csv|parquet)", err), err
