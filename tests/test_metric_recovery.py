"""Recovered vs net-new on a hand-built week with exact expected values."""

from __future__ import annotations

import datetime as dt

import pytest
from scipy import stats

from capi_audit.metrics import headline_sentence, recovery

from .helpers import make_ws

UTC = dt.UTC


def noon(day: int) -> dt.datetime:
    return dt.datetime(2026, 3, 1 + day, 12, tzinfo=UTC)


def build(enable: dt.datetime, extra_orders=()):
    orders, pixel, server = [], [], []
    n = {0: 2, 1: 2, 2: 2, 3: 3, 4: 3, 5: 3}
    k = 0
    post_plan = ["ps", "ps", "ps", "s", "s", "p", "-", "-", "-"]
    for day, count in n.items():
        for _ in range(count):
            k += 1
            oid = f"o{k}"
            orders.append({"order_id": oid, "created_at": noon(day)})
            plan = post_plan[k - 7] if day >= 3 else "p"
            if "p" in plan:
                pixel.append({"event_id": oid, "event_time": noon(day), "order_id": oid})
            if "s" in plan:
                server.append({"event_id": oid, "event_time": noon(day), "sent_at": noon(day), "order_id": oid})
    # o7 (post, pixel and server) also gets a server retry with a new id: one double count
    server.append({"event_id": "zz", "event_time": noon(3), "sent_at": noon(3), "order_id": "o7"})
    reported = [1, 1, 1, 3, 2, 3]
    report = [{"platform": "meta", "date": dt.date(2026, 3, 1 + d), "event_name": "Purchase",
               "conversions": float(r)} for d, r in enumerate(reported)]
    return make_ws(pixel=pixel, server=server, orders=orders + list(extra_orders), report=report,
                   enabled={"meta": enable})


def test_decomposition_exact():
    ws = build(dt.datetime(2026, 3, 4, tzinfo=UTC))
    frame, head = recovery(ws, bootstrap_reps=200)
    v = head.values["meta"]["Purchase"]
    assert (v["orders_post_pixel_and_server"], v["orders_post_server_only"],
            v["orders_post_pixel_only"], v["orders_post_unreported"]) == (3, 2, 1, 3)
    assert (v["pre_days"], v["post_days"]) == (3, 3)
    assert v["capture_rate_pre"] == pytest.approx(0.5) and v["capture_rate_post"] == pytest.approx(8 / 9)
    assert v["reported_change_per_day"] == pytest.approx(5 / 3)
    assert v["net_new_per_day"] == pytest.approx(0.5)
    assert v["measurement_change_per_day"] == pytest.approx(7 / 6)
    assert v["recovered_per_day"] == pytest.approx(2 / 3)
    assert v["double_counted_per_day"] == pytest.approx(1 / 3)
    assert v["unexplained_per_day"] == pytest.approx(1 / 6)
    assert v["sales_change_p_value"] == pytest.approx(stats.binomtest(9, 15, 0.5).pvalue)
    lo, hi = v["capture_rate_change_ci"]
    assert lo <= hi
    s = headline_sentence(v)
    assert s.startswith("Of +1.7 reported conversions/day, 0.7 are recovered browser losses, 0.3 are double counts")


def test_partial_enable_day_is_in_neither_period():
    ws = build(dt.datetime(2026, 3, 4, 6, tzinfo=UTC))
    frame, head = recovery(ws, bootstrap_reps=50)
    v = head.values["meta"]["Purchase"]
    assert (v["pre_days"], v["post_days"]) == (3, 2)
    assert set(frame.loc[frame["period"] == "partial", "day"].astype(str).str[:10]) == {"2026-03-04"}


def test_test_orders_are_left_out():
    extra = [{"order_id": "t1", "created_at": noon(4), "is_test": True}]
    v = recovery(build(dt.datetime(2026, 3, 4, tzinfo=UTC), extra), bootstrap_reps=50)[1].values["meta"]["Purchase"]
    assert v["orders_per_day_post"] == pytest.approx(3.0)
    assert v["orders_post_unreported"] == 3


def test_unavailable_without_inputs():
    assert recovery(make_ws())[1].summary() == {"available": False, "reason": "no orders loaded"}
    ws = make_ws(orders=[{"order_id": "a", "created_at": noon(0)}],
                 report=[{"platform": "meta", "date": dt.date(2026, 3, 1), "event_name": "Purchase", "conversions": 1.0}])
    assert "enable time" in recovery(ws)[1].summary()["reason"]
