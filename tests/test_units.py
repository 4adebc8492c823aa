"""counted_units: one row per unit the platform counts, exact tiny cases per platform rule."""

from __future__ import annotations

import dataclasses

from capi_audit.config import GoogleAction
from capi_audit.metrics.units import counted_units

from .helpers import at, make_ws

EM = "a" * 64
FBP1 = "fb.1.1700000000000.111"
FBP2 = "fb.1.1700000000000.222"


def units(ws, with_server=True):
    t = counted_units(ws, with_server=with_server)
    return ws.df(f"SELECT * FROM {t} ORDER BY platform, first_event_time, unit_id")


def orders(*ids, **kw):
    return [dict(order_id=o, created_at=at(i), **kw) for i, o in enumerate(ids)]


def with_cfg(ws, **changes):
    ws.config = dataclasses.replace(ws.config, **changes)
    return ws


def test_pixel_order_only_in_eid_links():
    ws = make_ws(pixel=[dict(event_id="ORD-1", event_time=at(0))],
                 server=[dict(event_id="ORD-1", order_id="ORD-1", event_time=at(0), em=EM)],
                 orders=orders("ORD-1"))
    u = units(ws)
    assert len(u) == 1 and u.order_id[0] == "ORD-1" and u.paired_by[0] == "event_id"
    p = units(ws, with_server=False)
    assert len(p) == 1 and p.order_id[0] == "ORD-1" and not p.has_server[0]


def test_order_key_order_id_does_not_use_event_id():
    ws = with_cfg(make_ws(pixel=[dict(event_id="ORD-1", event_time=at(0))], orders=orders("ORD-1")),
                  order_key="order_id")
    assert units(ws).order_id.isna().all()


def test_method_b_pairs_fbp_browser_first_only():
    ws = make_ws(
        pixel=[dict(event_time=at(0), fbp=FBP1), dict(event_time=at(5), fbp=FBP2)],
        server=[dict(event_time=at(0), sent_at=at(0.2), fbp=FBP1, em=EM),     # browser first: pairs
                dict(event_time=at(4), sent_at=at(4.5), fbp=FBP2, em=EM)])    # server first: no pair
    u = units(ws)
    assert len(u) == 3
    assert list(u.paired_by.fillna("-")) == ["fbp", "-", "-"]
    assert u.has_pixel[0] and u.has_server[0]


def test_method_b_external_id_and_window():
    ws = make_ws(pixel=[dict(event_time=at(0), external_id="x1"), dict(event_time=at(0), external_id="x2")],
                 server=[dict(event_time=at(1), external_id="x1", em=EM),
                         dict(event_time=at(49), external_id="x2", em=EM)])  # outside 48 h
    u = units(ws)
    assert len(u) == 3 and (u.paired_by == "external_id").sum() == 1


def test_method_b_never_within_a_channel():
    ws = make_ws(pixel=[dict(event_time=at(0), fbp=FBP1), dict(event_time=at(1), fbp=FBP1)])
    assert len(units(ws)) == 2


def test_constant_event_id_is_one_unit_for_earliest_order():
    ws = make_ws(pixel=[dict(event_id="undefined", order_id=f"O{i}", event_time=at(i)) for i in range(3)],
                 orders=orders("O0", "O1", "O2"))
    u = units(ws)
    assert len(u) == 1 and u.order_id[0] == "O0" and u.n_orders[0] == 3


def test_second_dataset_not_dropped():
    ws = make_ws(pixel=[dict(event_id="ORD-1", destination="111", event_time=at(0)),
                        dict(event_id="ORD-1", destination="222", event_time=at(0))],
                 server=[dict(event_id="ORD-1", destination="111", event_time=at(0), em=EM)])
    u = units(ws)
    assert len(u) == 2 and sorted(u.destination) == ["111", "222"]


def test_old_server_event_without_status_assumed_rejected():
    ws = make_ws(server=[dict(event_id="A", event_time=at(0), sent_at=at(24 * 8), em=EM),
                         dict(event_id="B", event_time=at(0), sent_at=at(24 * 8), em=EM, status="accepted"),
                         dict(event_id="C", event_time=at(0), sent_at=at(24 * 8), em=EM, action_source="physical_store")])
    assert sorted(units(ws).event_id) == ["B", "C"]
    assert ws.scalar("SELECT count(*) FROM u_src WHERE excluded = 'assumed_rejected'") == 1


def test_batch_collateral_and_rejected_and_test_orders():
    ws = make_ws(server=[dict(event_id="A", event_time=at(0), sent_at=at(24 * 8), em=EM, request_id="r1"),
                         dict(event_id="B", event_time=at(190), sent_at=at(192), em=EM, request_id="r1"),
                         dict(event_id="C", event_time=at(190), sent_at=at(192), em=EM, request_id="r2"),
                         dict(event_id="D", event_time=at(190), em=EM, status="rejected"),
                         dict(event_id="E", order_id="T", event_time=at(190), em=EM),
                         dict(event_id="F", event_time=at(190), em=EM, test_event_code="TEST1")],
                 orders=[dict(order_id="T", created_at=at(190), is_test=True)])
    assert sorted(units(ws).event_id) == ["C", "F"]
    ex = dict(ws.rows("SELECT event_id, excluded FROM u_src"))
    assert ex == {"A": "assumed_rejected", "B": "batch_collateral", "C": None, "D": "rejected",
                  "E": "test_order", "F": None}


def test_insufficient_customer_keys_assumed_rejected():
    ws = make_ws(server=[dict(event_id="A", event_time=at(0), ge=EM, ct=EM),
                         dict(event_id="B", event_time=at(0), em=EM)])
    assert list(units(ws).event_id) == ["B"]


def test_same_channel_copies_one_unit_outside_window_two():
    ws = make_ws(pixel=[dict(event_id="A", event_time=at(0)), dict(event_id="A", event_time=at(1))],
                 server=[dict(event_id="A", event_time=at(0), sent_at=at(50), em=EM)])
    u = units(ws)
    assert len(u) == 2 and u.paired_by.isna().all()
    assert sorted(u.n_pixel_rows) == [0, 2]


def test_google_key_is_action_and_transaction_id_no_window():
    ws = make_ws(pixel=[dict(platform="google", event_name="Purchase", event_id="T1", event_time=at(0)),
                        dict(platform="ga4", event_name="purchase", event_id="T1", event_time=at(0)),
                        dict(platform="ga4", event_name="add_to_cart", event_id="T1", event_time=at(0))],
                 server=[dict(platform="google", event_name="Purchase", event_id="T1", event_time=at(500)),
                         dict(platform="google", event_name="Purchase (upload)", event_id="T1", event_time=at(1)),
                         dict(platform="ga4", event_name="purchase", event_id="T1", event_time=at(1)),
                         dict(platform="ga4", event_name="add_to_cart", event_id="T1", event_time=at(1))])
    u = units(ws)
    g = u[u.platform == "google"]
    assert len(g) == 2 and sorted(g.conv_class) == ["Purchase", "Purchase (upload)"]
    a = u[u.platform == "ga4"]
    assert len(a) == 3 and list(a[a.event_name == "purchase"].paired_by) == ["event_id"]
    assert list(a.conv_class.fillna("-")) == ["Purchase", "-", "-"]


def test_google_catalogue_primary_actions_are_classes():
    ws = with_cfg(make_ws(pixel=[dict(platform="google", event_name="Purchase", event_id="T1", event_time=at(0)),
                                 dict(platform="google", event_name="Lead", event_id="T1", event_time=at(0))]),
                  google_actions=(GoogleAction("Purchase"), GoogleAction("Lead", primary=False)))
    u = units(ws).sort_values("event_name")
    assert list(u.conv_class.fillna("-")) == ["-", "Purchase"]


def test_conv_class_case_variants_and_aliases():
    ws = with_cfg(make_ws(pixel=[dict(event_name=n, event_time=at(i)) for i, n in
                                 enumerate(["Purchase", "purchase", "Order Completed", "Subscribe"])]),
                  event_aliases={"Purchase": ("Order Completed",)})
    assert list(units(ws).conv_class.fillna("-")) == ["Purchase", "Purchase", "Purchase", "-"]


def test_post_and_day_from_enable_time():
    ws = make_ws(pixel=[dict(event_id="A", event_time=at(-1)), dict(event_id="B", event_time=at(1))],
                 enabled={"meta": at(0)})
    assert list(units(ws).post) == [False, True]


def test_google_counting_one_counts_one_conversion_per_click():
    # Two purchases (different transaction ids) after one ad click: an action counting "one"
    # counts one conversion for the click; "every" counts both. A conversion without click id and a
    # second click count on their own; another action is never merged with this one.
    px = [dict(platform="google", event_name="Purchase", event_id="T1", gclid="CLICK1", event_time=at(0)),
          dict(platform="google", event_name="Purchase", event_id="T2", gclid="CLICK1", event_time=at(2)),
          dict(platform="google", event_name="Purchase", event_id="T3", event_time=at(3)),
          dict(platform="google", event_name="Purchase", event_id="T4", gclid="CLICK2", event_time=at(4)),
          dict(platform="google", event_name="Lead", event_id="T5", gclid="CLICK1", event_time=at(5))]
    sv = [dict(platform="google", event_name="Purchase", event_id="T2", gbraid="CLICK1", event_time=at(1))]
    one = with_cfg(make_ws(pixel=px, server=sv),
                   google_actions=(GoogleAction("Purchase", counting="one"), GoogleAction("Lead", counting="one")))
    u = units(one)
    assert sorted(u.event_id) == ["T1", "T3", "T4", "T5"]
    t1 = u[u.event_id == "T1"].iloc[0]
    assert t1.has_server and t1.n_pixel_rows == 2 and t1.n_server_rows == 1  # T2's rows joined T1's unit
    every = with_cfg(make_ws(pixel=px, server=sv),
                     google_actions=(GoogleAction("Purchase", counting="every"), GoogleAction("Lead")))
    assert sorted(units(every).event_id) == ["T1", "T2", "T3", "T4", "T5"]
    # the pixel-alone count applies the same rule
    assert sorted(units(one, with_server=False).event_id) == ["T1", "T3", "T4", "T5"]
