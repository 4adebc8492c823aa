"""meta_capi_payload: Meta SDK payloads, wrapped logs, real samples, malformed variants."""

from __future__ import annotations

import json
import shutil

import pytest

from capi_audit import Workspace
from capi_audit.config import config_from_dict
from capi_audit.hashing import hash_value

facebook = pytest.importorskip("facebook_business")
from facebook_business.adobjects.serverside.action_source import ActionSource  # noqa: E402
from facebook_business.adobjects.serverside.custom_data import CustomData  # noqa: E402
from facebook_business.adobjects.serverside.event import Event  # noqa: E402
from facebook_business.adobjects.serverside.event_request import EventRequest  # noqa: E402
from facebook_business.adobjects.serverside.gender import Gender  # noqa: E402
from facebook_business.adobjects.serverside.user_data import UserData  # noqa: E402


def sdk_event(i: int) -> Event:
    ud = UserData(emails=[f"Person{i}@Example.com", "second@example.com"], phones=["+1 650 555 1212"],
                  first_name="Joe", last_name="Smith", city="Menlo Park", state="CA", zip_code="94025",
                  country_code="us", gender=Gender.MALE, date_of_birth="19900101", external_ids=[f"u-{i}"],
                  client_ip_address="81.2.69.160", client_user_agent="Mozilla/5.0 (X11; Linux) Firefox/120.0",
                  fbc="fb.1.1554763741205.IwAR1abc", fbp="fb.1.1596403881668.1116446470")
    return Event(event_name="Purchase", event_time=1772359200 + i, user_data=ud,
                 custom_data=CustomData(value=12.5, currency="eur", order_id=f"o{i}"),
                 event_source_url="https://shop.example/thanks", event_id=f"o{i}",
                 action_source=ActionSource.WEBSITE, data_processing_options=["LDU"],
                 data_processing_options_country=1, data_processing_options_state=1000)


def load(tmp_path, name, text):
    (tmp_path / name).write_text(text, encoding="utf-8")
    cfg = config_from_dict({"sources": [{"table": "server_events", "path": name, "format": "meta_capi_payload"}]},
                           path=tmp_path / "audit.toml")
    ws = Workspace(config=cfg)
    reports = ws.load()
    return ws, reports[0]


def test_sdk_request_body_loads_with_every_key_recognised(tmp_path):
    req = EventRequest(pixel_id="123", events=[sdk_event(1), sdk_event(2)], test_event_code="TEST1")
    params = req.get_params()
    body = {"data": [e.normalize() for e in req.events], "test_event_code": params["test_event_code"]}
    ws, rep = load(tmp_path, "body.json", json.dumps(body))
    assert (rep.rows_read, rep.rows_loaded, rep.rows_rejected) == (2, 2, 0)
    assert rep.ignored_columns == [] and rep.coerced == {} and rep.redacted == {}
    assert "2 events sent with a test_event_code" in rep.note
    row = ws.rows("SELECT event_id, order_id, value, currency, ph, data_processing_options, client_ip_address "
                  "FROM server_events ORDER BY event_id")[0]
    assert row[:4] == ("o1", "o1", 12.5, "eur")
    # the SDK's phone hash is Meta's documented vector for the same number
    assert json.loads(row[4]) == [hash_value("meta", "ph", "+1 650 555 1212")]
    assert row[5] == "LDU" and row[6] == "81.2.69.160"
    em = json.loads(ws.scalar("SELECT em FROM server_events WHERE event_id = 'o1'"))
    # the SDK de-duplicates list values through a set, so their order is not kept
    assert sorted(em) == sorted([hash_value("meta", "em", "Person1@Example.com"), hash_value("meta", "em", "second@example.com")])


def test_wrapped_log_records_with_responses(tmp_path):
    ok = {"sent_at": "2026-03-01T10:00:05Z", "pixel_id": "123",
          "request": {"data": [sdk_event(1).normalize(), sdk_event(2).normalize()]},
          "response": {"events_received": 2, "messages": [], "fbtrace_id": "A"}}
    bad = {"timestamp": 1772359300, "body": json.dumps({"data": [sdk_event(3).normalize()]}),
           "response": {"error": {"message": "Invalid parameter", "code": 100, "error_subcode": 2804050}}}
    lines = [json.dumps(ok), "{not json", json.dumps({"request": {"nodata": 1}}), json.dumps(bad), ""]
    ws, rep = load(tmp_path, "log.jsonl", "\n".join(lines))
    assert (rep.rows_read, rep.rows_loaded, rep.rows_rejected) == (5, 3, 2)
    assert ws.rows("SELECT line, reason FROM rejects ORDER BY line") == [(2, "broken JSON"), (3, "no data array of events")]
    got = ws.rows("SELECT event_id, status, error, epoch(sent_at) FROM server_events ORDER BY event_id")
    assert got[0][:2] == ("o1", "accepted") and got[0][3] == 1772359205
    assert got[2][1] == "rejected" and got[2][2] == "Invalid parameter (code 100/2804050)" and got[2][3] == 1772359300


def test_unknown_keys_are_listed(tmp_path):
    ev = sdk_event(1).normalize()
    ev["surprise"] = 1
    ev["user_data"]["nickname"] = "x"
    ws, rep = load(tmp_path, "b.json", json.dumps({"data": [ev]}))
    assert rep.ignored_columns == ["surprise", "user_data.nickname"]


def test_missing_event_name_and_bad_time_are_rejected(tmp_path):
    evs = [{"event_time": 1772359200, "action_source": "website"},
           {"event_name": "Purchase", "event_time": "soon"},
           {"event_name": "Purchase", "event_time": 1772359200}]
    ws, rep = load(tmp_path, "b.jsonl", json.dumps({"data": evs}))
    assert (rep.rows_read, rep.rows_loaded, rep.rows_rejected) == (3, 1, 2)
    assert [r[0] for r in ws.rows("SELECT column_name FROM rejects ORDER BY column_name")] == ["event_name", "event_time"]


def test_shared_samples(tmp_path, samples):
    for f in (samples / "meta_capi").iterdir():
        shutil.copy(f, tmp_path / f.name)
    srcs = [{"table": "server_events", "path": f.name, "format": "meta_capi_payload"}
            for f in sorted((samples / "meta_capi").iterdir())]
    # the sGTM test body's event_time is 123456789 (1973): outside the default plausibility window
    ws = Workspace(config=config_from_dict({"sources": srcs}, path=tmp_path / "audit.toml"))
    assert [(r.rows_loaded, r.rows_rejected) for r in ws.load()] == [(2, 0), (0, 1), (1, 0)]
    ws = Workspace(config=config_from_dict({"audit": {"plausible_from": "1970-01-01"}, "sources": srcs},
                                           path=tmp_path / "audit.toml"))
    reports = ws.load()
    assert [(r.rows_loaded, r.rows_rejected) for r in reports] == [(2, 0), (1, 0), (1, 0)]
    # the sGTM body sends raw test PII: counted, replaced, never stored
    sgtm = next(r for r in reports if "sgtm" in r.file)
    assert sgtm.redacted["em"] == 1 and "test@example.com" not in repr(ws.rows("SELECT * FROM server_events"))
    # the PHP SDK's form body: lowercase name, event_time in milliseconds
    assert ws.rows("SELECT event_name, epoch_ms(event_time) FROM server_events WHERE event_id = 'event_id'") == [
        ("purchase", 1658743659123)]
