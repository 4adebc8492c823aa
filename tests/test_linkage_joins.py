"""Families that join events to orders use the units' linkage and causes (issue 11): an order
reached only through its event_id has its recovered tier, and a unit's double-counting cause is the
same in `double_counting` and `capi_effect`."""

from __future__ import annotations

import dataclasses
import datetime as dt

from capi_audit.metrics import capi_effect, double_counting
from capi_audit.metrics.double_counting import CAUSES

from .helpers import make_ws

DAY0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
EMH = "a" * 64
FBP = "fb.1.1700000000000.123456789"


def t(minute: int = 0, day: int = 0) -> dt.datetime:
    return DAY0 + dt.timedelta(days=day, hours=12, minutes=minute)


def effect(ws):
    ws.config = dataclasses.replace(ws.config, burn_in_days=0, settle_days=0)
    return capi_effect(ws, bootstrap_reps=20)[1].values["meta"]["Purchase"]


def test_recovered_tier_of_an_order_linked_through_event_id():
    # the server sends the order only as event_id (no custom_data.order_id), with a hashed email:
    # the order is recovered and its tier is 'strong', not 'unknown'
    ws = make_ws(pixel=[{"event_id": "p", "order_id": "p", "event_time": t(1)}],
                 server=[{"event_id": "o1", "event_time": t(1), "sent_at": t(2), "em": EMH},
                         {"event_id": "o2", "event_time": t(1), "sent_at": t(2), "order_id": "o2", "em": EMH}],
                 orders=[{"order_id": o, "created_at": t(0)} for o in ("o1", "o2", "p")], enabled={"meta": DAY0})
    v = effect(ws)
    assert v["recovered"] == 2
    assert v["recovered_by_tier_per_day"] == {"strong": 2.0, "click": 0.0, "browser": 0.0, "none": 0.0,
                                              "unknown": 0.0}


def test_recovered_tier_respects_order_key_order_id():
    ws = make_ws(pixel=[{"event_id": "p", "order_id": "p", "event_time": t(1)}],
                 server=[{"event_id": "o1", "event_time": t(1), "sent_at": t(2), "em": EMH}],
                 orders=[{"order_id": o, "created_at": t(0)} for o in ("o1", "p")], enabled={"meta": DAY0})
    ws.config = dataclasses.replace(ws.config, order_key="order_id")
    v = effect(ws)
    assert v["recovered"] == 0 and v["unlinked_added"] == 1


def test_same_unit_same_cause_in_double_counting_and_capi_effect():
    # one order per cause the server adds to a pixel-counted order
    orders, pixel, server = [], [], []

    def order(oid):
        orders.append({"order_id": oid, "created_at": t(0)})

    order("mb")     # server first, same fbp: Method B cannot pair (method_b_miss)
    pixel.append({"order_id": "mb", "fbp": FBP, "event_time": t(30)})
    server.append({"order_id": "mb", "fbp": FBP, "event_time": t(1), "sent_at": t(2), "em": EMH})
    order("idm")    # the server's own id
    pixel.append({"order_id": "idm", "event_id": "idm", "event_time": t(1)})
    server.append({"order_id": "idm", "event_id": "srv-1", "event_time": t(1), "sent_at": t(2), "em": EMH})
    order("nv")     # 'purchase' next to 'Purchase'
    pixel.append({"order_id": "nv", "event_id": "nv", "event_time": t(1)})
    server.append({"order_id": "nv", "event_id": "nv", "event_name": "purchase", "event_time": t(1),
                   "sent_at": t(2), "em": EMH})
    order("ow")     # the same key, sent after the 48 h window
    pixel.append({"order_id": "ow", "event_id": "ow", "event_time": t(1)})
    server.append({"order_id": "ow", "event_id": "ow", "event_time": t(1), "sent_at": t(1, day=3), "em": EMH})
    order("rt")     # a retry that mints a new id
    pixel.append({"order_id": "rt", "event_id": "rt", "event_time": t(1)})
    server += [{"order_id": "rt", "event_id": "rt", "event_time": t(1), "sent_at": t(2), "em": EMH},
               {"order_id": "rt", "event_id": "rt-2", "event_time": t(1), "sent_at": t(3), "em": EMH}]
    order("me")     # the pixel fired without an id
    pixel.append({"order_id": "me", "event_time": t(1)})
    server.append({"order_id": "me", "event_id": "me", "event_time": t(1), "sent_at": t(2), "em": EMH})
    ws = make_ws(pixel=pixel, server=server, orders=orders, enabled={"meta": DAY0})
    dc = double_counting(ws)[1].values["meta"]["Purchase"]["extra_counts"]
    v = effect(ws)
    by = v["server_double_counted_by_cause_per_day"]
    expected = {"method_b_miss": 1, "id_mismatch": 1, "name_variant": 1, "outside_window": 1,
                "server_retry_new_id": 1, "missing_event_id": 1, "other_destination": 0}
    assert {c: dc[c]["total"] for c in CAUSES} == expected
    assert {c: by[c] for c in CAUSES} == expected and by["other"] == 0
    assert v["server_double_counted"] == 6


def test_second_dataset_is_pre_existing_other_destination():
    # a legacy pixel sends the purchase to a second dataset too: each dataset counts it
    pixel = [{"order_id": "o1", "event_id": "o1", "destination": d, "event_time": t(1)} for d in ("111", "222")]
    server = [{"order_id": "o1", "event_id": "o1", "destination": "111", "event_time": t(1), "sent_at": t(2),
               "em": EMH}]
    ws = make_ws(pixel=pixel, server=server, orders=[{"order_id": "o1", "created_at": t(0)}])
    v = double_counting(ws)[1].values["meta"]["Purchase"]
    assert (v["counted_units"], v["pre_existing"], v["server_caused"]) == (2, 1, 0)
    assert v["extra_counts"]["other_destination"] == {"total": 1, "pre_existing": 1, "server_caused": 0}
