"""Exact cases, one per failure of issue #11 (measurement review F1, F3, F5-F10), on the v2 API
(counted units, linkage, dedup, double counting). They import v2-only modules, so they cannot run
against v1; the same failures driven through the command line, runnable against a v1 checkout and
failing there, are in test_linkage_regressions_cli.py."""

from __future__ import annotations

import json

import pytest

from capi_audit import Workspace
from capi_audit.config import config_from_dict
from capi_audit.metrics import dedup_overlap, double_counting
from capi_audit.metrics.linkage import linkage

from .helpers import at, make_ws

EM = "e" * 64
FBP = "fb.1.1700000000000.123456789"


def orders(*ids):
    return [{"order_id": o, "created_at": at(0)} for o in ids]


def load_files(tmp_path, files: dict[str, tuple[str, str, str]]) -> Workspace:
    """files: name -> (table, format, text)."""
    sources = []
    for name, (table, fmt, text) in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        sources.append({"table": table, "path": name, "format": fmt})
    ws = Workspace(config=config_from_dict({"sources": sources}, path=tmp_path / "audit.toml"))
    ws.load()
    return ws


def capi_body(events: list[dict], **extra) -> str:
    return json.dumps({"data": events, **extra})


def capi_event(eid, order, t=1772359200, **kw):
    return {"event_name": "Purchase", "event_time": t, "event_id": eid, "action_source": "website",
            "event_source_url": "https://shop.example/thanks",
            "user_data": {"em": [EM], "client_user_agent": "Mozilla/5.0"},
            "custom_data": {"order_id": order, "value": 10, "currency": "EUR"}, **kw}


ORDERS_CSV = "order_id,created_at\nORD-1,2026-03-01T10:00:00Z\nORD-2,2026-03-01T10:00:00Z\n"


def test_pixel_order_only_in_eid_links(tmp_path):
    # fbq('track', 'Purchase', {...}, {eventID}) carries the order only as eid
    hits = "\n".join(f"https://www.facebook.com/tr/?id=1&ev=Purchase&eid=ORD-{i}&ts=1772359200000" for i in (1, 2))
    body = capi_body([capi_event("ORD-1", "ORD-1"), capi_event("ORD-2", "ORD-2")])
    ws = load_files(tmp_path, {"hits.txt": ("pixel_events", "meta_pixel_hits", hits),
                               "capi.jsonl": ("server_events", "meta_capi_payload", body),
                               "orders.csv": ("orders", "canonical", ORDERS_CSV)})
    link = linkage(ws)[1].values["meta"]
    assert (link["pixel"]["linked"], link["pixel"]["linked_via_event_id"], link["pixel"]["link_rate"]) == (2, 2, 1.0)
    assert link["reliable"] is True
    v = double_counting(ws)[1].values["meta"]["Purchase"]
    # both orders counted once, by the pixel too: nothing "recovered", nothing double counted
    assert (v["orders_matched"], v["orders_double_counted"], v["server_caused"]) == (2, 0, 0)


def test_id_mismatch_with_unlinkable_pixel_is_unreliable():
    # the classic failure: the pixel mints its own ids and carries no order id
    ws = make_ws(pixel=[{"event_id": f"rnd{i}", "event_time": at(0)} for i in range(10)],
                 server=[{"event_id": f"o{i}", "order_id": f"o{i}", "event_time": at(0)} for i in range(10)],
                 orders=orders(*[f"o{i}" for i in range(10)]))
    v = double_counting(ws)[1].values["meta"]["Purchase"]
    assert v["reliable"] is False and "pixel events link to orders at 0%" in v["reason"]
    d = dedup_overlap(ws)[1].values["meta"]["Purchase"]
    assert (d["pixel_only"], d["server_only"], d["event_coverage"]) == (10, 10, 0.0)


def test_event_coverage_counts_hits_without_id():
    ws = make_ws(pixel=[{"event_id": f"o{i}" if i < 5 else None, "order_id": f"o{i}", "event_time": at(0)}
                        for i in range(10)],
                 server=[{"event_id": f"o{i}", "order_id": f"o{i}", "event_time": at(0)} for i in range(10)])
    m = dedup_overlap(ws)[1].values["meta"]["Purchase"]
    assert m["missing_event_id_pixel"] == 5
    assert m["event_coverage"] == 0.5 and m["dedup_rate"] == 0.5


def test_constant_event_id_is_collision_not_duplicate():
    ids = [f"o{i}" for i in range(10)]
    ws = make_ws(pixel=[{"event_id": "undefined", "order_id": o, "event_time": at(i)} for i, o in enumerate(ids)],
                 server=[{"event_id": "undefined", "order_id": o, "event_time": at(i)} for i, o in enumerate(ids)],
                 orders=orders(*ids))
    m = dedup_overlap(ws)[1].values["meta"]["Purchase"]
    assert (m["event_id_collisions"], m["orders_merged_away"]) == (1, 9)
    assert m["sentinel_event_ids"]["placeholder"] == 20
    v = double_counting(ws)[1].values["meta"]["Purchase"]
    # the platform counts one conversion for ten orders: nine merged away, none double counted
    assert (v["orders_matched"], v["counted_units"], v["orders_merged_away"]) == (1, 1, 9)


def test_second_dataset_not_dropped():
    ws = make_ws(pixel=[{"event_id": "ORD-1", "destination": "111", "event_time": at(0)},
                        {"event_id": "ORD-1", "destination": "222", "event_time": at(0)}],
                 server=[{"event_id": "ORD-1", "destination": "111", "event_time": at(0)}])
    m = dedup_overlap(ws)[1].values["meta"]["Purchase"]
    assert (m["pixel_duplicates"], m["both"], m["pixel_only"], m["expected_platform_count"]) == (0, 1, 1, 2)
    assert set(m["destinations"]) == {"111", "222"}


def test_method_b_pairs_fbp():
    ws = make_ws(pixel=[{"order_id": "o1", "fbp": FBP, "event_time": at(0)}],
                 server=[{"order_id": "o1", "fbp": FBP, "event_time": at(0), "sent_at": at(1 / 6)}],
                 orders=orders("o1"))
    m = dedup_overlap(ws)[1].values["meta"]["Purchase"]
    assert (m["method_b"], m["paired_by"]["fbp"], m["expected_platform_count"], m["dedup_rate"]) == (1, 1, 1, 1.0)
    v = double_counting(ws)[1].values["meta"]["Purchase"]
    assert (v["counted_units"], v["orders_double_counted"]) == (1, 0)


def test_method_b_server_first_near_miss_not_paired():
    ws = make_ws(pixel=[{"order_id": "o1", "fbp": FBP, "event_time": at(1)}],
                 server=[{"order_id": "o1", "fbp": FBP, "event_time": at(0), "sent_at": at(0.5)}],
                 orders=orders("o1"))
    assert dedup_overlap(ws)[1].values["meta"]["Purchase"]["method_b"] == 0
    v = double_counting(ws)[1].values["meta"]["Purchase"]
    assert v["counted_units"] == 2 and v["extra_counts"]["method_b_miss"]["total"] == 1


def test_old_server_event_without_status_assumed_rejected():
    ws = make_ws(server=[{"event_id": "o1", "order_id": "o1", "event_time": at(0), "sent_at": at(24 * 8), "em": EM}],
                 orders=orders("o1"))
    m = dedup_overlap(ws)[1].values["meta"]["Purchase"]
    assert (m["server_only"], m["expected_platform_count"]) == (0, 0)
    assert m["counted_by_platform"]["assumed_rejected"] == 1
    assert m["counted_by_platform"]["assumed_too_old"] == 1


def test_batch_with_one_old_event_is_collateral():
    ws = make_ws(server=[{"event_id": "o1", "order_id": "o1", "event_time": at(0), "sent_at": at(24 * 8),
                          "em": EM, "request_id": "r"},
                         {"event_id": "o2", "order_id": "o2", "event_time": at(190), "sent_at": at(192),
                          "em": EM, "request_id": "r"}],
                 orders=orders("o1", "o2"))
    cb = dedup_overlap(ws)[1].values["meta"]["Purchase"]["counted_by_platform"]
    assert (cb["assumed_rejected"], cb["batch_collateral"]) == (1, 1)


def test_purchase_and_subscribe_not_double_counted():
    rows = [{"event_id": "o1", "order_id": "o1", "event_time": at(0), "event_name": n} for n in ("Purchase", "Subscribe")]
    ws = make_ws(pixel=rows, server=rows, orders=orders("o1"))
    v = double_counting(ws)[1].values["meta"]
    assert set(v) == {"Purchase"}
    p = v["Purchase"]
    assert (p["orders_matched"], p["orders_double_counted"], p["inflation_rate"]) == (1, 0, 0.0)
    assert p["orders_also_under_other_names"] == 1


def test_case_variant_is_name_variant_within_class():
    ws = make_ws(pixel=[{"event_id": "o1", "order_id": "o1", "event_time": at(0.1)}],
                 server=[{"event_id": "o1", "order_id": "o1", "event_time": at(0), "event_name": "purchase"}],
                 orders=orders("o1"))
    p = double_counting(ws)[1].values["meta"]["Purchase"]
    assert p["extra_counts"]["name_variant"] == {"total": 1, "pre_existing": 0, "server_caused": 1}


def test_reload_doubles_are_pre_existing():
    # a thank-you page reload fires a second Purchase without eid; the server pairs the first hit
    ws = make_ws(pixel=[{"event_id": "o1", "order_id": "o1", "event_time": at(0)},
                        {"event_id": None, "order_id": "o1", "event_time": at(0.1)}],
                 server=[{"event_id": "o1", "order_id": "o1", "event_time": at(0)}],
                 orders=orders("o1"))
    p = double_counting(ws)[1].values["meta"]["Purchase"]
    assert (p["orders_double_counted"], p["pre_existing"], p["server_caused"]) == (1, 1, 0)
    assert p["extra_counts"]["missing_event_id"] == {"total": 1, "pre_existing": 1, "server_caused": 0}


facebook = pytest.importorskip("facebook_business")


def test_sdk_get_params_loads_and_links(tmp_path):
    from facebook_business.adobjects.serverside.action_source import ActionSource
    from facebook_business.adobjects.serverside.custom_data import CustomData
    from facebook_business.adobjects.serverside.event import Event
    from facebook_business.adobjects.serverside.event_request import EventRequest
    from facebook_business.adobjects.serverside.user_data import UserData

    events = [Event(event_name="Purchase", event_time=1772359200 + i, event_id=f"ORD-{i}",
                    user_data=UserData(emails=[f"p{i}@example.com"], client_user_agent="Mozilla/5.0"),
                    # the first carries the order in custom_data.order_id, the second only as event_id
                    custom_data=CustomData(value=10.0, currency="eur", order_id="ORD-1" if i == 1 else None),
                    action_source=ActionSource.WEBSITE,
                    event_source_url="https://shop.example/thanks") for i in (1, 2)]
    params = EventRequest(pixel_id="123", events=events).get_params()
    assert all(isinstance(d, str) for d in params["data"])   # the SDK serializes each event
    ws = load_files(tmp_path, {"capi.json": ("server_events", "meta_capi_payload", json.dumps(params)),
                               "orders.csv": ("orders", "canonical", ORDERS_CSV)})
    assert ws.scalar("SELECT count(*) FROM rejects") == 0
    assert ws.scalar("SELECT count(DISTINCT request_id) FROM server_events") == 1
    link = linkage(ws)[1].values["meta"]["server"]
    assert (link["events"], link["linked"], link["linked_via_event_id"]) == (2, 2, 1)
    assert ws.rows("SELECT event_id, order_id FROM server_events ORDER BY event_id") == [("ORD-1", "ORD-1"),
                                                                                        ("ORD-2", None)]
