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


@pytest.mark.slow
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


# -- a fresh adversarial pass: parametrized cases through the CLI --------------------------------
# Each case writes its inputs into a folder and returns (sources, expected): expected is
# (rows read, loaded, rejected) summed over the files of a load, or ("error", needle) for a
# refusal that must be one `capi-audit: error:` line naming the problem. The common check: no
# traceback, rows read = loaded + rejected per file, no canary in the output or the --db file.
ORD = "order_id,created_at,value,currency\n"
SV = "platform,event_name,event_id,event_time,value\n"


def _o(i, **kw) -> str:
    return json.dumps({"order_id": f"A{i}", "created_at": T, **kw})


def _capi(i: int, **kw) -> dict:
    return {"event_name": "Purchase", "event_time": EPOCH + i, "event_id": f"e{i}", "action_source": "website",
            "event_source_url": "https://shop.example/", "user_data": {"em": "a" * 64}, **kw}


def _pixel(eid: str) -> str:
    return f"https://www.facebook.com/tr/?id=1&ev=Purchase&ts={EPOCH * 1000}&eid={eid}"


def adv_nul_byte_in_csv_field(d):
    (d / "o.csv").write_bytes((ORD + f"A1,{T},1,EUR\nA\x002,{T},1,EUR\nA3,{T},1,EUR\n").encode())
    return [{"table": "orders", "path": "o.csv"}], (3, 3, 0)


def adv_nul_bytes_in_json_lines(d):
    (d / "o.jsonl").write_bytes(f"{_o(1)}\n".encode() + b'{"order_id": "A\x002"}\n\x00\x00\n' + f"{_o(3)}\n".encode())
    return [{"table": "orders", "path": "o.jsonl"}], (4, 2, 2)


def adv_escaped_nul_in_json_string(d):
    (d / "o.jsonl").write_text('{"order_id": "A\\u00001", "created_at": "' + T + '"}\n' + _o(2) + "\n")
    return [{"table": "orders", "path": "o.jsonl"}], (2, 2, 0)


def adv_bom_on_every_json_line(d):
    # files joined with `cat` carry a byte-order mark into later lines: was "broken JSON"
    (d / "o.jsonl").write_text("".join(f"\ufeff{_o(i)}\n" for i in range(3)))
    return [{"table": "orders", "path": "o.jsonl"}], (3, 3, 0)


def adv_bom_on_a_later_payload_line(d):
    (d / "p.jsonl").write_text("".join("\ufeff" + json.dumps({"data": [_capi(i)]}) + "\n" for i in range(2)))
    return [{"table": "server_events", "path": "p.jsonl", "format": "meta_capi_payload"}], (2, 2, 0)


def adv_duplicate_json_keys(d):
    (d / "o.jsonl").write_text(f'{{"order_id": "A1", "order_id": "{CANARY_EMAIL}", "created_at": "{T}"}}\n')
    return [{"table": "orders", "path": "o.jsonl"}], (1, 1, 0)


def adv_numbers_as_strings(d):
    vals = ["12.50", "12,50", "€12", "1e3", " 7 ", "0x10", "-0", "Infinity"]
    (d / "o.jsonl").write_text("".join(_o(i, value=v) + "\n" for i, v in enumerate(vals)))
    return [{"table": "orders", "path": "o.jsonl"}], (8, 7, 1)


def adv_huge_integers_in_value(d):
    (d / "o.jsonl").write_text(_o(1) [:-1] + ', "value": 123456789012345678901234567890123456789}\n'
                               + _o(2)[:-1] + ', "value": 1' + "0" * 400 + "}\n" + _o(3, value=5) + "\n")
    return [{"table": "orders", "path": "o.jsonl"}], (3, 1, 2)


def adv_negative_nan_and_huge_money_in_csv(d):
    (d / "o.csv").write_text(ORD + f"A1,{T},1{'0' * 400},EUR\nA2,{T},-5,EUR\nA3,{T},NaN,EUR\nA4,{T},-inf,EUR\n")
    return [{"table": "orders", "path": "o.csv"}], (4, 1, 3)


def adv_json_nan_literals(d):
    (d / "o.jsonl").write_text(_o(1)[:-1] + ', "value": NaN}\n' + _o(2)[:-1] + ', "value": -Infinity}\n' + _o(3) + "\n")
    return [{"table": "orders", "path": "o.jsonl"}], (3, 1, 2)


def adv_odd_timestamps(d):
    ts = ["2026-03-01T23:59:60Z", "2026-03-01T10:00:00.123456789Z", "2026-03-01 10:00:00", "2026-03-01",
          "2026-W09-7", "2026-03-01T10:00:00+0530", "1772359200.5", "-1", "2026-02-30T10:00:00Z",
          "2026-03-01T10:00:00+00:00:00", "2026-03-01T10:00Z", "  2026-03-01T10:00:00Z  "]
    (d / "s.csv").write_text(SV + "".join(f"meta,Purchase,e{i},{t},1\n" for i, t in enumerate(ts)))
    # rejected: the ISO week date, epoch -1 (outside the window), 30 February, an offset with
    # seconds; the leap second loads as the next second
    return [{"table": "server_events", "path": "s.csv"}], (12, 8, 4)


def adv_times_as_odd_json_values(d):
    vals = [EPOCH, EPOCH + 0.5, EPOCH * 1000, EPOCH * 1_000_000, EPOCH * 10**9, -5, 1e300, True, None, [1], {"a": 1}]
    (d / "s.jsonl").write_text("".join(json.dumps({"platform": "meta", "event_name": "Purchase", "event_time": v}) + "\n"
                                       for v in vals))
    return [{"table": "server_events", "path": "s.jsonl"}], (11, 4, 7)


def adv_json_scalars_and_arrays_per_line(d):
    (d / "o.jsonl").write_text(f'[1]\n"str"\n123\nnull\ntrue\n{_o(1)}\n[]\n{{}}\n')
    return [{"table": "orders", "path": "o.jsonl"}], (8, 1, 7)


def adv_latin1_and_overlong_utf8_rows(d):
    (d / "o.csv").write_bytes(ORD.encode() + f"A1,{T},1,EUR\n".encode() + f"Aé2,{T},1,EUR\n".encode("latin-1")
                              + f"A\xc0\xaf3,{T},1,EUR\n".encode("latin-1") + f"A4,{T},1,EUR\n".encode())
    return [{"table": "orders", "path": "o.csv"}], (4, 2, 2)


def adv_trailing_delimiter_on_every_line(d):
    (d / "o.csv").write_text(f"order_id,created_at,value,\nA1,{T},1,\nA2,{T},1,\n")
    return [{"table": "orders", "path": "o.csv"}], (2, 2, 0)


def adv_header_only_without_newline(d):
    (d / "o.csv").write_text("order_id,created_at")
    return [{"table": "orders", "path": "o.csv"}], (0, 0, 0)


def adv_gzip_without_suffix_and_multi_member(d):
    import gzip

    (d / "o.csv").write_bytes(gzip.compress((ORD + f"A1,{T},1,EUR\n").encode()) + gzip.compress(f"A2,{T},1,EUR\n".encode()))
    (d / "o.jsonl.gz").write_bytes(gzip.compress(f"{_o(3)}\n".encode()) + gzip.compress(f"{_o(4)}\n".encode()))
    return [{"table": "orders", "path": "o.csv"}, {"table": "orders", "path": "o.jsonl.gz"}], (4, 4, 0)


def adv_capi_data_not_a_list(d):
    ev = _capi(0)
    docs = [{"data": ev}, {"data": json.dumps([ev])}, {"data": "garbage"}, {"data": [1, "x", None, ev]},
            {"data": [_capi(1, event_time="2026-03-01T10:00:00Z")]}]
    (d / "p.jsonl").write_text("".join(json.dumps(x) + "\n" for x in docs))
    return [{"table": "server_events", "path": "p.jsonl", "format": "meta_capi_payload"}], (8, 3, 5)


def adv_capi_form_body_with_a_bad_escape(d):
    # `data=<url-encoded JSON>` whose escape decodes to invalid UTF-8 refused the whole file
    (d / "p.log").write_text("data=%C3%28\n" + json.dumps({"data": [_capi(1)]}) + "\n")
    return [{"table": "server_events", "path": "p.log", "format": "meta_capi_payload"}], (2, 1, 1)


def adv_pixel_escape_decoding_to_invalid_utf8(d):
    # one `%C3%28` refused the whole capture: "decoded value is invalid UTF8"
    (d / "h.log").write_text("\n".join([_pixel("%ZZ"), _pixel("%C3%28"), _pixel("%"), _pixel("%FF%FE") + "&cd[value]=%E2%82",
                                        _pixel("ok")]) + "\n")
    return [{"table": "pixel_events", "path": "h.log", "format": "meta_pixel_hits"}], (5, 5, 0)


def adv_pixel_access_log_and_har_with_bad_escapes(d):
    log = '1.2.3.4 - - [01/Mar/2026:10:00:00 +0000] "GET /tr/?id=1&ev=Purchase&eid={}&ts=1772359200000 HTTP/1.1" 200 0 "-" "UA"\n'
    (d / "a.log").write_text(log.format("%C3%28") + log.format("ok"))
    har = {"log": {"entries": [{"startedDateTime": T, "request": {"method": "GET", "url": _pixel(e), "headers": []}}
                               for e in ("%C3%28", "ok")]}}
    (d / "x.har").write_text(json.dumps(har))
    return [{"table": "pixel_events", "path": "a.log", "format": "meta_pixel_hits"},
            {"table": "pixel_events", "path": "x.har", "format": "meta_pixel_hits"}], (4, 4, 0)


def adv_google_tag_bad_escapes_and_huge_values(d):
    ads = "https://www.googleadservices.com/pagead/conversion/123/?label=L&oid={}&value={}"
    ga4 = "https://www.google-analytics.com/g/collect?v=2&tid=G-1&en=purchase&ep.transaction_id={}&epn.value=1"
    urls = [ads.format("%C3%28", 1), ads.format("o2", "1e400"), ads.format("o3", "NaN"), ads.format("o4", "1"),
            ga4.format("%C3%28"), ga4.format("t2")]
    (d / "t.jsonl").write_text("".join(json.dumps({"timestamp": T, "url": u}) + "\n" for u in urls))
    return [{"table": "pixel_events", "path": "t.jsonl", "format": "google_tag_hits"}], (6, 4, 2)


def adv_deeply_nested_pixel_capture(d):
    (d / "h.jsonl").write_text(json.dumps({"url": _pixel("a")}) + "\n" + '{"url": ' + "[" * 5000 + "]" * 5000 + "}\n")
    return [{"table": "pixel_events", "path": "h.jsonl", "format": "meta_pixel_hits"}], (1, 1, 0)


def adv_ga4_export_odd_shapes(d):
    rows = [{"event_name": "purchase", "event_timestamp": "abc", "ecommerce": {"transaction_id": "t1"}},
            {"event_name": "purchase", "event_timestamp": EPOCH * 10**6, "ecommerce": "nope", "event_params": "x"},
            {"event_name": "purchase", "event_timestamp": str(EPOCH * 10**6),
             "event_params": [{"key": "value", "value": {"double_value": "NaN"}}]},
            {"event_name": None, "event_timestamp": str(EPOCH * 10**6)}]
    (d / "g.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [{"table": "pixel_events", "path": "g.jsonl", "format": "ga4_export"}], (4, 1, 3)


def adv_upload_log_odd_shapes(d):
    conv = {"conversionAction": "customers/1/conversionActions/5", "conversionDateTime": "2026-03-01 10:00:00+99:00"}
    docs = [{"request": {"conversions": "x"}}, {"request": {"conversions": [None, 1, "s"]}}, {"request": None},
            {"request": {"conversions": [conv]}}]
    (d / "u.jsonl").write_text("".join(json.dumps(x) + "\n" for x in docs))
    return [{"table": "server_events", "path": "u.jsonl", "format": "google_upload_log",
             "options": {"actions": {"5": "Purchase"}}}], (6, 0, 6)


def adv_upload_summary_odd_shapes(d):
    docs = [{"offlineConversionUploadConversionActionSummary": {
                "conversionActionId": 1, "client": ["x"], "status": {"a": 1}, "totalEventCount": "NaN",
                "successfulEventCount": 1e400, "dailySummaries": "x"}},
            {"offlineConversionUploadClientSummary": {"client": "GOOGLE_ADS_API", "alerts": [
                {"error": {"conversionUploadError": CANARY_EMAIL}, "errorPercentage": "x"}]}}]
    (d / "u.jsonl").write_text(json.dumps(docs[0]).replace("1e+400", "1e400") + "\n" + json.dumps(docs[1]) + "\n")
    return [{"table": "upload_summaries", "path": "u.jsonl", "format": "google_upload_summary"}], (3, 2, 1)


def adv_ga4_mp_odd_shapes(d):
    docs = [{"body": {"events": "x"}}, {"body": {"events": [{"name": None}]}}, {"body": "not json"},
            {"measurement_id": "G-1", "body": {"timestamp_micros": "abc", "events": [
                {"name": "purchase", "params": {"value": "NaN", "transaction_id": CANARY_EMAIL}}]}},
            {"measurement_id": "G-1", "timestamp": T, "body": {"user_data": {"sha256_email_address": [CANARY_EMAIL, "a" * 64]},
                                                               "events": [{"name": "purchase", "params": {"transaction_id": "t"}}]}}]
    (d / "m.jsonl").write_text("".join(json.dumps(x) + "\n" for x in docs))
    return [{"table": "server_events", "path": "m.jsonl", "format": "ga4_mp_payload"}], (5, 1, 4)


def adv_shopify_odd_values(d):
    (d / "s.csv").write_text("Name,Email,Created at,Currency,Total,Billing Country,Tags,Note Attributes\n"
                             f"#1,{CANARY_EMAIL},2026-03-01 10:00:00 +0100,EUR,1e400,DE,,\n"
                             "#2,x,2026-03-01 10:00:00 +0100,EUR,-5,DE,,consent_ads: maybe\n"
                             f"#3,{CANARY_PHONE},2026-03-01 10:00:00 +9900,EUR,1,DE,,\n")
    return [{"table": "orders", "path": "s.csv", "format": "shopify_orders"}], (3, 1, 2)


def adv_meta_ads_export_odd_values(d):
    (d / "m.csv").write_text("\ufeffDay,Website purchases,Amount spent (EUR),Reporting starts,Reporting ends\n"
                             "2026-03-01,NaN,1,2026-03-01,2026-03-01\n2026-03-02,1e400,1,2026-03-02,2026-03-02\n"
                             "0001-01-01,1,1,0001-01-01,0001-01-01\n")
    return [{"table": "platform_report", "path": "m.csv", "format": "meta_ads_export"}], (3, 0, 3)


def adv_parquet_null_typed_and_struct_columns(d):
    pq.write_table(pa.table({"order_id": ["A1", "A2"], "created_at": pa.array([None, None], pa.null()),
                             "value": pa.array([{"a": 1}, {"a": 2}])}), d / "o.parquet")
    return [{"table": "orders", "path": "o.parquet"}], (2, 0, 2)


def adv_parquet_nanoseconds_odd_zone_and_decimal(d):
    pq.write_table(pa.table({"order_id": ["A1", "A2"],
                             "created_at": pa.array([EPOCH * 10**9, 2**62], pa.timestamp("ns", tz="+05:45")),
                             "value": pa.array([1, 2], pa.decimal128(38, 10))}), d / "o.parquet")
    return [{"table": "orders", "path": "o.parquet"}], (2, 1, 1)


def adv_parquet_dictionary_and_large_strings(d):
    pq.write_table(pa.table({"order_id": pa.array(["A1", "A2"], pa.large_string()).dictionary_encode(),
                             "created_at": pa.array([T, "x"], pa.large_string()),
                             "value": pa.array([1, 2], pa.uint64())}), d / "o.parquet")
    return [{"table": "orders", "path": "o.parquet"}], (2, 1, 1)


def adv_zero_byte_parquet(d):
    (d / "o.parquet").write_bytes(b"")
    return [{"table": "orders", "path": "o.parquet"}], (0, 0, 0)


def adv_unicode_path(d):
    (d / "bestellungen_ä€ü ñ.csv").write_text(ORD + f"A1,{T},1,EUR\n")
    return [{"table": "orders", "path": "bestellungen_ä€ü ñ.csv"}], (1, 1, 0)


def adv_glob_matching_a_folder(d):
    # `daily/*.csv` matching a folder `daily/old.csv/` stopped the load ("not a regular file")
    (d / "daily" / "old.csv").mkdir(parents=True)
    (d / "daily" / "o.csv").write_text(ORD + f"A1,{T},1,EUR\n")
    return [{"table": "orders", "path": "daily/*.csv"}], (1, 1, 0)


def adv_glob_matching_only_folders(d):
    (d / "daily" / "old.csv").mkdir(parents=True)
    return [{"table": "orders", "path": "daily/*.csv"}], ("error", "no file matches")


def adv_symlink_loop(d):
    # was "RuntimeError: Symlink loop from …"
    import os

    os.symlink(d / "b.csv", d / "a.csv")
    os.symlink(d / "a.csv", d / "b.csv")
    return [{"table": "orders", "path": "a.csv"}], ("error", "symbolic link")


def adv_device_file(d):
    return [{"table": "orders", "path": "/dev/zero"}], ("error", "not a regular file")


def adv_empty_path(d):
    # was "<the config's folder>: not a regular file"
    return [{"table": "orders", "path": " "}], ("error", "sources[1].path is empty")


def adv_semicolon_separated_csv(d):
    (d / "o.csv").write_text("order_id;created_at;value\nA1;2026-03-01T10:00:00Z;1,5\n")
    return [{"table": "orders", "path": "o.csv"}], ("error", "'order_id'")


def adv_binary_file_as_json_lines(d):
    (d / "o.jsonl").write_bytes(bytes(range(256)) * 10)
    return [{"table": "orders", "path": "o.jsonl"}], (21, 0, 21)


def adv_json_document_instead_of_lines(d):
    (d / "o.json").write_text(f'[{_o(1)}, 5, null, [1], {{"order_id": {{"x": 1}}, "created_at": "{T}"}}]')
    return [{"table": "orders", "path": "o.json"}], (5, 2, 3)


def adv_pixel_hit_whose_event_name_is_an_email(d):
    # one such hit refused the whole capture ("check the `columns` mapping", which it had none of)
    base = f"https://www.facebook.com/tr/?id=1&ts={EPOCH * 1000}&eid=a&ev="
    (d / "h.log").write_text("\n".join([base + "Purchase", base + quote(CANARY_EMAIL), base + "PageView"]) + "\n")
    return [{"table": "pixel_events", "path": "h.log", "format": "meta_pixel_hits"}], (3, 2, 1)


def adv_payload_currency_that_is_a_phone(d):
    docs = [{"data": [_capi(1, custom_data={"currency": CANARY_PHONE, "value": 1})]},
            {"data": [_capi(2, custom_data={"currency": "EUR", "value": 1})]}]
    (d / "p.jsonl").write_text("".join(json.dumps(x) + "\n" for x in docs))
    return [{"table": "server_events", "path": "p.jsonl", "format": "meta_capi_payload"}], (2, 1, 1)


def adv_ga4_export_event_name_that_is_an_email(d):
    rows = [{"event_name": CANARY_EMAIL, "event_timestamp": str(EPOCH * 10**6)},
            {"event_name": "purchase", "event_timestamp": str(EPOCH * 10**6)}]
    (d / "g.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [{"table": "pixel_events", "path": "g.jsonl", "format": "ga4_export"}], (2, 1, 1)


def adv_pixel_times_in_seconds_negative_huge(d):
    base = "https://www.facebook.com/tr/?id=1&ev=Purchase&eid="
    ts = [EPOCH, -1, "1e20", "abc", EPOCH * 1000]
    (d / "h.log").write_text("".join(f"{base}e{i}&ts={t}\n" for i, t in enumerate(ts)))
    return [{"table": "pixel_events", "path": "h.log", "format": "meta_pixel_hits"}], (5, 2, 3)


def adv_one_source_column_mapped_twice(d):
    (d / "s.csv").write_text(f"platform,event_name,id,event_time\nmeta,Purchase,X1,{T}\n")
    return [{"table": "server_events", "path": "s.csv", "columns": {"event_id": "id", "order_id": "id"}}], (1, 1, 0)


ADV_CASES = {name[4:]: fn for name, fn in sorted(globals().items()) if name.startswith("adv_")}


@pytest.mark.parametrize("case", sorted(ADV_CASES))
def test_adversarial_input_is_loaded_rejected_or_refused_cleanly(tmp_path, capsys, case):
    from tests.test_hostile import one_error

    sources, expected = ADV_CASES[case](tmp_path)
    cfg = write_config(tmp_path, sources)
    db = tmp_path / "w.duckdb"
    code, out, err = cli(capsys, "load", "--config", str(cfg), "--json", "--db", str(db))
    assert "Traceback" not in err
    assert_no_canary(out + err)
    if expected[0] == "error":
        one_error(code, err, expected[1])
        return
    assert code == 0, err
    data = json.loads(out)
    for f in data["files"]:
        assert f["rows_read"] == f["rows_loaded"] + f["rows_rejected"], f
    got = tuple(sum(f[k] for f in data["files"]) for k in ("rows_read", "rows_loaded", "rows_rejected"))
    assert got == expected, (got, data["rejects"][:10])
    assert len(data["rejects"]) == got[2] or got[2] > 1000
    assert_db_clean(db)


def _good_inputs(d: Path) -> Path:
    (d / "o.csv").write_text(ORD + f"A1,{T},1,EUR\n")
    (d / "s.csv").write_text(SV + "meta,Purchase,e1,2026-03-01T10:00:05Z,1\n")
    return write_config(d, [{"table": "orders", "path": "o.csv"}, {"table": "server_events", "path": "s.csv"}])


def test_config_with_a_byte_order_mark_loads(tmp_path, capsys):
    # Windows editors save audit.toml with a BOM: "not valid TOML: Invalid statement (line 1)"
    cfg = _good_inputs(tmp_path)
    cfg.write_text("\ufeff" + cfg.read_text(encoding="utf-8"), encoding="utf-8")
    code, _, err = cli(capsys, "load", "--config", str(cfg))
    assert code == 0, err
    gates = tmp_path / "gates.toml"
    gates.write_text('\ufeff[[gate]]\nname = "x"\npath = "load.orders.rows_loaded"\nop = ">="\nvalue = 1\n', encoding="utf-8")
    from capi_audit.gates import load_gates

    assert load_gates(gates)


@pytest.mark.parametrize("cmd", ["load", "run", "report"])
@pytest.mark.parametrize("old", ["missing_columns", "other_types"])
def test_db_written_by_another_schema_version_is_one_error(tmp_path, capsys, cmd, old):
    # a --db whose tables an older version wrote: the positional insert failed mid-load with
    # "TransactionException: Current transaction is aborted", naming neither table nor column
    from tests.test_hostile import one_error

    cfg = _good_inputs(tmp_path)
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    if old == "missing_columns":
        con.execute("CREATE TABLE server_events (platform VARCHAR, event_name VARCHAR, event_time TIMESTAMPTZ)")
    else:
        con.execute("CREATE TABLE rejects (table_name VARCHAR, file VARCHAR, line VARCHAR, column_name VARCHAR, reason VARCHAR)")
    con.close()
    argv = {"load": ["load"], "run": ["run", "--out", str(tmp_path / "out"), "--no-charts"],
            "report": ["report", "--out", str(tmp_path / "rep"), "--no-notebooks"]}[cmd]
    code, _, err = cli(capsys, *argv, "--config", str(cfg), "--db", str(db))
    one_error(code, err, "another version", "server_events" if old == "missing_columns" else "rejects")


def test_load_into_a_db_that_holds_a_load_is_refused(tmp_path, capsys):
    # `load --db w.duckdb` twice appended every row again: every count read from it doubled
    from tests.test_hostile import one_error

    cfg = _good_inputs(tmp_path)
    db = tmp_path / "w.duckdb"
    assert cli(capsys, "load", "--config", str(cfg), "--db", str(db))[0] == 0
    one_error(*cli(capsys, "load", "--config", str(cfg), "--db", str(db))[::2], "already holds loaded data")
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM orders").fetchone()[0] == 1
    con.close()
