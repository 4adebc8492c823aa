"""Dedup overlap and double counting on tiny hand-built inputs with exact expected values."""

from __future__ import annotations

import datetime as dt

from capi_audit.metrics import dedup_daily, dedup_overlap, double_counting
from capi_audit.metrics.double_counting import per_order_units

from .helpers import at, make_ws


def px(eid, h, name="Purchase", order=None, platform="meta"):
    return {"event_id": eid, "event_time": at(h), "event_name": name, "order_id": order or eid, "platform": platform}


def sv(eid, h, sent_h=None, name="Purchase", order=None, status=None, platform="meta"):
    return {"event_id": eid, "event_time": at(h), "sent_at": at(h if sent_h is None else sent_h),
            "event_name": name, "order_id": order or eid, "status": status, "platform": platform}


def test_empty_tables_are_unavailable():
    frame, head = dedup_overlap(make_ws())
    assert head.summary() == {"available": False, "reason": "no pixel or server events loaded"}


def test_overlap_counts_exact():
    ws = make_ws(
        pixel=[px("a", 0), px("b", 0), px("c", 0), px("d", 0), px("d", 0.1), px(None, 0, order="e"),
               px("f", 0)],
        server=[sv("a", 0, 0.5), sv("b", 0, 49), sv("g", 0), sv("g", 0, 0.2), sv("f", 0, name="purchase"),
                sv(None, 0, order="h"), sv("r", 0, status="rejected")],
    )
    frame, head = dedup_overlap(ws)
    m = head.values["meta"]["Purchase"]
    assert (m["both"], m["both_outside_window"], m["pixel_only"], m["server_only"]) == (1, 1, 3, 1)
    assert m["name_mismatch"] == 1            # f: Purchase in the pixel, purchase on the server
    assert m["pixel_duplicates"] == 1         # d reloaded
    assert m["server_duplicates"] == 1        # g retried with the same id
    assert (m["missing_event_id_pixel"], m["missing_event_id_server"]) == (1, 1)
    # v2: every pixel unit in the coverage denominator (a, b, c, d, e, f), every server unit in the
    # dedup-rate denominator (a, b, g, h); b (outside the window) shares a key: covered, not deduplicated
    assert m["event_coverage"] == 2 / 6 and m["dedup_rate"] == 1 / 4
    # expected count: a once, b twice (outside 48 h), c, d, f(pixel), g once each, two rows without id
    assert m["expected_platform_count"] == 1 + 2 + 1 + 1 + 1 + 1 + 2
    assert m["report_gap"] is None            # no platform report loaded
    low = head.values["meta"]["purchase"]
    assert (low["server_only"], low["both"], low["expected_platform_count"]) == (1, 0, 1)
    assert low["event_coverage"] is None


def test_window_boundary_exactly_48h_is_inside():
    ws = make_ws(pixel=[px("a", 0), px("b", 0)], server=[sv("a", 0, 48), sv("b", 0, 48 + 1 / 3600)])
    m = dedup_overlap(ws)[1].values["meta"]["Purchase"]
    assert (m["both"], m["both_outside_window"]) == (1, 1)


def test_window_uses_receipt_times_and_earliest_copies():
    # server event_time is early but it was sent 50 h after the pixel: outside;
    # a retry does not reset the window (earliest receipt counts)
    ws = make_ws(pixel=[px("a", 0), px("b", 0)],
                 server=[sv("a", -10, 50), sv("b", 0, 1), sv("b", 0, 60)])
    m = dedup_overlap(ws)[1].values["meta"]["Purchase"]
    assert (m["both"], m["both_outside_window"], m["server_duplicates"]) == (1, 1, 1)


def test_missing_sent_at_falls_back_to_event_time():
    ws = make_ws(pixel=[px("a", 0)], server=[{"event_id": "a", "event_time": at(47), "order_id": "a"}])
    assert dedup_overlap(ws)[1].values["meta"]["Purchase"]["both"] == 1


def test_google_window_is_unbounded_unless_configured():
    rows = dict(pixel=[px("a", 0, platform="google")], server=[sv("a", 0, 24 * 60, platform="google")])
    assert dedup_overlap(make_ws(**rows))[1].values["google"]["Purchase"]["both"] == 1
    ws = make_ws(**rows, windows={"google": 24 * 30})
    assert dedup_overlap(ws)[1].values["google"]["Purchase"]["both_outside_window"] == 1


def test_enablement_cutoff_and_test_orders():
    ws = make_ws(
        pixel=[px("old", -30), px("a", 1), px("t", 1)],
        server=[sv("a", 1), sv("t", 1)],
        orders=[{"order_id": "t", "created_at": at(1), "is_test": True}],
        enabled={"meta": at(0)},
    )
    m = dedup_overlap(ws)[1].values["meta"]["Purchase"]
    assert (m["both"], m["pixel_only"], m["server_only"]) == (1, 0, 0)


def test_daily_series_and_report_gap_in_time_zone():
    # 23:30 UTC on Mar 10 is already Mar 11 in Berlin
    late = dt.datetime(2026, 3, 10, 23, 30, tzinfo=dt.UTC)
    ws = make_ws(
        tz="Europe/Berlin",
        pixel=[{"event_id": "a", "event_time": late, "order_id": "a"}],
        server=[{"event_id": "a", "event_time": late, "sent_at": late, "order_id": "a"},
                {"event_id": "b", "event_time": at(-2), "sent_at": at(-2), "order_id": "b"}],
        report=[{"platform": "meta", "date": dt.date(2026, 3, 10), "event_name": "Purchase", "conversions": 1.0},
                {"platform": "meta", "date": dt.date(2026, 3, 11), "event_name": "Purchase", "conversions": 3.0}],
    )
    daily = dedup_daily(ws)
    got = {(str(r.day)[:10], r.expected, r.reported) for r in daily.itertuples()}
    assert got == {("2026-03-10", 1, 1.0), ("2026-03-11", 1, 3.0)}
    m = dedup_overlap(ws)[1].values["meta"]["Purchase"]
    assert m["expected_platform_count"] == 2 and m["report_gap"] == 2.0


def test_double_counting_causes_exact():
    ws = make_ws(
        pixel=[px("o1", 0), px("o2", 0), px("o3", 0), px(None, 0, order="o4"), px("o5", 0), px("o6", 0),
               px("o7", 0)],
        server=[
            sv("o1", 0, 1),                              # o1: paired, counted once
            sv("x2", 0, order="o2"),                     # o2: server minted its own id
            sv(None, 0, order="o3"),                     # o3: server without id
            sv("o4", 0),                                 # o4: pixel without id
            sv("o5", 0, name="purchase"),                # o5: name mismatch
            sv("o6", 0, 60),                             # o6: outside the window
            sv("o7", 0, 1), sv("n7", 0, 2, order="o7"),  # o7: retry with a new id
            sv("s8", 0, order="o8"), sv("s8b", 0, order="o8"),  # o8: server only, then a retry with a new id
            sv("o9", 0), sv("o9", 0, 0.5),               # o9: same-key retry: once
        ],
    )
    frame, head = double_counting(ws)
    v = head.values["meta"]["Purchase"]
    assert v["orders_matched"] == 9
    assert v["orders_double_counted"] == 7
    assert v["counted_units"] == 16
    x = {c: m["total"] for c, m in v["extra_counts"].items()}
    assert x == {"id_mismatch": 1, "missing_event_id": 2, "name_variant": 1, "outside_window": 1,
                 "server_retry_new_id": 2, "method_b_miss": 0, "other_destination": 0}
    assert all(m["pre_existing"] == 0 for m in v["extra_counts"].values())
    assert (v["pre_existing"], v["server_caused"]) == (0, 7)
    assert v["inflation_rate"] == 7 / 9
    orders = per_order_units(ws).set_index("order_id")
    assert orders.loc["o1", "l_units"] == 1 and orders.loc["o9", "l_units"] == 1
    assert orders.loc["o8", "all_server_retry_new_id"] == 1 and orders.loc["o2", "all_id_mismatch"] == 1


def test_double_counting_needs_order_ids():
    ws = make_ws(pixel=[{"event_id": "a", "event_time": at(0)}])
    assert double_counting(ws)[1].summary()["available"] is False


def test_double_counting_rejected_rows_are_out():
    ws = make_ws(pixel=[px("o1", 0)], server=[sv("x", 0, order="o1", status="rejected")])
    v = double_counting(ws)[1].values["meta"]["Purchase"]
    assert (v["counted_units"], v["orders_double_counted"]) == (1, 0)


def test_name_mismatch_join_equals_the_exists_it_replaced():
    """`name_mismatch` reads "the server sent this id under another name" from per-id name counts
    (a join; the correlated EXISTS it replaced was planned per unit on Spark). On random unit
    tables both give the same flag for every unit: NULL names, missing destinations, Meta's
    per-dataset rule and other platforms' any-destination rule included."""
    import random
    import re

    import duckdb

    from capi_audit.metrics.dedup import _overlap_sql

    sql = _overlap_sql("r")
    svk = re.search(r"svk AS \((.*?)\n\),", sql, re.S).group(1)
    svp = re.search(r"svp AS \((.*?)\n\),", sql, re.S).group(1)
    nm = re.search(r"CASE WHEN ua\.has_key AND ua\.px = 1 AND ua\.sv = 0 AND coalesce\(kk\.key_sv, 0\) = 0\s*"
                   r"(AND ua\.event_name IS NOT NULL.*?)\s*THEN 1", sql, re.S).group(1)
    con = duckdb.connect()
    for trial in range(200):
        rnd = random.Random(trial)
        rows = [(rnd.choice(["meta", "google", "ga4"]), rnd.choice(["d1", "d2", None]), rnd.choice(["e1", "e2", "e3"]),
                 rnd.random() < 0.8, rnd.choice([0, 1]), rnd.choice(["Purchase", "purchase", "Lead", None]))
                for _ in range(rnd.randint(1, 25))]
        con.execute("CREATE OR REPLACE TABLE ua(i INT, platform VARCHAR, kdest VARCHAR, event_id VARCHAR, "
                    "has_key BOOLEAN, sv INT, event_name VARCHAR)")
        con.executemany("INSERT INTO ua VALUES (?, ?, ?, ?, ?, ?, ?)", [(i, *r) for i, r in enumerate(rows)])
        reference = con.execute("""
            WITH svnames AS (SELECT DISTINCT platform, kdest, event_name, event_id FROM ua WHERE has_key AND sv = 1)
            SELECT i, CASE WHEN ua.has_key AND EXISTS (
                SELECT 1 FROM svnames s WHERE s.platform = ua.platform AND s.event_id = ua.event_id
                  AND s.event_name <> ua.event_name AND (ua.platform <> 'meta' OR s.kdest = ua.kdest))
                THEN 1 ELSE 0 END FROM ua ORDER BY i""").fetchall()
        joined = con.execute(f"""
            WITH svk AS ({svk}), svp AS ({svp})
            SELECT i, CASE WHEN ua.has_key {nm} THEN 1 ELSE 0 END FROM ua
            LEFT JOIN svk ON ua.has_key AND svk.platform = ua.platform AND svk.kdest = ua.kdest AND svk.event_id = ua.event_id
            LEFT JOIN svp ON ua.has_key AND svp.platform = ua.platform AND svp.event_id = ua.event_id
            ORDER BY i""").fetchall()
        assert joined == reference, (trial, rows)
