"""CAPI effect (§3.3), the four-term decomposition (§3.4) and the report bridge (§3.5) on hand-built
days with exact expected values, plus one regression test per failure named in issue 12."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from capi_audit import stats
from capi_audit.metrics import capi_effect, headline_sentence, recovery
from capi_audit.metrics.periods import Coverage, enable_days, periods
from capi_audit.metrics.recovery import terms

from .helpers import make_ws

UTC = dt.UTC
DAY0 = dt.datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
EMH = "a" * 64  # a well-formed SHA-256 hex (strong identifier tier)


def t(day: int, minute: int = 0) -> dt.datetime:
    return DAY0 + dt.timedelta(days=day, hours=12, minutes=minute)


def with_periods(ws, burn_in=0, settle=0):
    ws.config = dataclasses.replace(ws.config, burn_in_days=burn_in, settle_days=settle)
    return ws


def weeks_scenario(pre_days=14, post_days=14, report=None, attributed=1.0, drop_report=()):
    """Pre: 10 orders/day, the pixel fires for 7. Post: 12 orders/day, the pixel fires for 8, the
    server sends all 12 with the pixel's id, plus one retry with a new id on the first order."""
    orders, pixel, server, rep = [], [], [], []
    for d in range(pre_days + post_days):
        post = d >= pre_days
        n, fired = (12, 8) if post else (10, 7)
        for k in range(n):
            oid = f"o{d}-{k}"
            orders.append({"order_id": oid, "created_at": t(d)})
            if k < fired:
                pixel.append({"event_id": oid, "event_time": t(d, 1), "order_id": oid})
            if post:
                server.append({"event_id": oid, "event_time": t(d, 1), "sent_at": t(d, 2), "order_id": oid})
        if post:
            server.append({"event_id": f"retry{d}", "event_time": t(d, 1), "sent_at": t(d, 3), "order_id": f"o{d}-0"})
        r = report(d, post) if report else (9.0 if post else 5.0)
        if d not in drop_report:
            rep.append({"platform": "meta", "date": (DAY0 + dt.timedelta(days=d)).date(), "event_name": "Purchase",
                        "conversions": r * attributed})
    ws = make_ws(pixel=pixel, server=server, orders=orders, report=rep,
                 enabled={"meta": DAY0 + dt.timedelta(days=pre_days)})
    return with_periods(ws)


# -- periods (§3.0) ----------------------------------------------------------------------------------
def test_enable_days_at_and_after_midnight():
    assert enable_days(dt.datetime(2026, 3, 4, tzinfo=UTC), "UTC") == (dt.date(2026, 3, 4), dt.date(2026, 3, 4))
    assert enable_days(dt.datetime(2026, 3, 4, 6, tzinfo=UTC), "UTC") == (dt.date(2026, 3, 5), dt.date(2026, 3, 4))
    # 23:30 UTC is already the next day in Berlin
    assert enable_days(dt.datetime(2026, 3, 4, 23, 30, tzinfo=UTC), "Europe/Berlin") == (
        dt.date(2026, 3, 6), dt.date(2026, 3, 5))


def test_periods_whole_weeks_burn_in_settle_and_gaps():
    d = dt.date
    cov = {"logs": Coverage(d(2026, 1, 1), d(2026, 3, 31)),
           "report": Coverage(d(2026, 1, 5), d(2026, 3, 29),
                              frozenset(d(2026, 1, 5) + dt.timedelta(days=i) for i in range(84) if i != 40))}
    p = periods(dt.datetime(2026, 2, 10, 9, tzinfo=UTC), "UTC", cov, burn_in_days=2, settle_days=3)
    assert p.enable_day == d(2026, 2, 11) and p.enable_day_before == d(2026, 2, 10)
    assert p.pre_days[0] == d(2026, 1, 5) and p.pre_days[-1] == d(2026, 2, 9)      # 36 days
    assert p.post_days[0] == d(2026, 2, 13) and p.post_days[-1] == d(2026, 3, 26)  # 42 days
    assert p.weeks == 5 and len(p.pre_window) == len(p.post_window) == 35
    assert p.pre_window[-1] == d(2026, 2, 9) and p.post_window[0] == d(2026, 2, 13)
    assert p.burn_in_dropped == [d(2026, 2, 11), d(2026, 2, 12)]
    assert p.settle_dropped == [d(2026, 3, 27), d(2026, 3, 28), d(2026, 3, 29)]
    assert p.gaps == {"report": [d(2026, 2, 14)]}
    assert p.window_gaps == {"report": [d(2026, 2, 14)]}
    # every weekday appears n times on each side
    assert sorted({x.weekday() for x in p.pre_window}) == list(range(7))


# -- capi_effect (§3.3): exact tiny case -------------------------------------------------------------
def tiny_effect_ws():
    orders = [{"order_id": o, "created_at": t(0)} for o in ("a", "b", "c", "d")]
    orders += [{"order_id": "g", "created_at": t(0), "consent_ads": "granted", "country": "DE"},
               {"order_id": "u", "created_at": t(0), "country": "DE"},
               {"order_id": "r", "created_at": t(0), "consent_ads": "denied", "country": "US"},
               {"order_id": "v", "created_at": t(0), "consent_ads": "denied", "country": "DE"},
               {"order_id": "w", "created_at": t(0), "consent_ads": "denied", "country": "FR"}]
    pixel = [{"event_id": o, "event_time": t(0, 1), "order_id": o} for o in ("a", "c", "d")]
    server = [
        {"event_id": "a", "event_time": t(0, 1), "sent_at": t(0, 2), "order_id": "a"},      # deduplicated
        {"event_id": "b", "event_time": t(0, 1), "sent_at": t(0, 2), "order_id": "b"},      # recovered
        {"event_id": "c-own", "event_time": t(0, 1), "sent_at": t(0, 2), "order_id": "c"},  # id mismatch
        {"event_id": "zzz", "event_time": t(0, 1), "sent_at": t(0, 2)},                     # unlinked
        {"event_id": "g", "event_time": t(0, 1), "sent_at": t(0, 2), "order_id": "g", "em": EMH},
        {"event_id": "u", "event_time": t(0, 1), "sent_at": t(0, 2), "order_id": "u"},
        {"event_id": "r", "event_time": t(0, 1), "sent_at": t(0, 2), "order_id": "r", "data_processing_options": "LDU"},
        {"event_id": "v", "event_time": t(0, 1), "sent_at": t(0, 2), "order_id": "v", "data_processing_options": "LDU"},
        {"event_id": "w", "event_time": t(0, 1), "sent_at": t(0, 2), "order_id": "w"},
    ]
    for row in server:  # a customer key on every send, so none is assumed rejected for lack of keys
        row["external_id"] = "x" + row["event_id"]
    return with_periods(make_ws(pixel=pixel, server=server, orders=orders, enabled={"meta": DAY0}))


def test_capi_effect_exact_split():
    frame, head = capi_effect(tiny_effect_ws(), bootstrap_reps=50)
    v = head.values["meta"]["Purchase"]
    assert v["post_days"] == 1
    assert (v["log_units_per_day"], v["pixel_only_units_per_day"]) == (11.0, 3.0)
    assert v["capi_added"] == 8 and v["acr_like"] == pytest.approx(8 / 3)
    # b, g, u, r, v, w recovered; c double counted (id mismatch); zzz unlinked
    assert (v["recovered"], v["server_double_counted"], v["unlinked_added"]) == (6, 1, 1)
    assert v["server_double_counted_by_cause_per_day"]["id_mismatch"] == 1.0
    assert v["reliable"] is False and "post days" in v["reason"]
    f = frame[frame["platform"] == "meta"]
    assert (f["recovered"] + f["server_double_counted"] + f["unlinked_added"] == f["L"] - f["P"]).all()


def test_recovered_split_by_consent_and_tier():
    """Failure 5 of issue 12: 38 % of 'recovered browser losses' were sends for users who denied
    ads consent. Recovered is now split by the order's consent; LDU restricts US orders only."""
    v = capi_effect(tiny_effect_ws(), bootstrap_reps=50)[1].values["meta"]["Purchase"]
    by = v["recovered_by_consent_per_day"]
    # b and u have no consent recorded: unknown; g granted; r US + LDU restricted; v (DE + LDU), w violations
    assert by == {"granted": 1.0, "unknown": 2.0, "denied_restricted": 1.0, "denied_violation": 2.0}
    assert sum(by.values()) == v["recovered_per_day"]
    assert v["recovered_by_tier_per_day"]["strong"] == 1.0
    assert sum(v["recovered_by_tier_per_day"].values()) == v["recovered_per_day"]


def test_test_orders_are_out_of_the_effect():
    ws = tiny_effect_ws()
    ws.execute("UPDATE orders SET is_test = TRUE WHERE order_id = 'b'")
    v = capi_effect(ws, bootstrap_reps=50)[1].values["meta"]["Purchase"]
    assert v["capi_added"] == 7 and v["recovered"] == 5


# -- recovery (§3.4): exact hand-computed terms ------------------------------------------------------
def test_four_terms_exact():
    frame, head = recovery(weeks_scenario(), bootstrap_reps=200)
    v = head.values["meta"]["Purchase"]
    assert v["whole_weeks"] == 2 and v["pre_days"] == v["post_days"] == 14
    assert (v["R_pre_per_day"], v["P_pre_per_day"], v["O_pre_per_day"]) == (5.0, 7.0, 10.0)
    assert (v["R_post_per_day"], v["L_post_per_day"], v["P_post_per_day"], v["O_post_per_day"]) == (9.0, 13.0, 8.0, 12.0)
    assert v["rho_pre"] == pytest.approx(5 / 7) and v["rho_post"] == pytest.approx(9 / 13)
    assert v["capi_reported_per_day"] == pytest.approx(45 / 13)
    assert v["capi_reported_recovered_per_day"] == pytest.approx(36 / 13)
    assert v["capi_reported_double_counted_per_day"] == pytest.approx(9 / 13)
    assert v["net_new_per_day"] == pytest.approx(1.0)
    assert v["pixel_capture_change_per_day"] == pytest.approx(-2 / 7)
    assert v["attribution_change_per_day"] == pytest.approx((9 / 13 - 5 / 7) * 8)
    total = sum(v[k] for k in ("capi_reported_per_day", "net_new_per_day", "pixel_capture_change_per_day",
                               "attribution_change_per_day"))
    assert abs(total - v["reported_change_per_day"]) < 1e-9
    assert v["reliable"] is False and "4" in v["reason"]
    assert "unexplained_per_day" not in v
    assert set(frame["period"]) == {"pre", "post"}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_identity_holds_exactly_on_any_days(seed):
    rng = np.random.default_rng(seed)
    n = 7 * int(rng.integers(1, 6))
    pre = {k: rng.poisson(20, n).astype(float) for k in ("R", "L", "P", "O")}
    post = {k: rng.poisson(25, n).astype(float) for k in ("R", "L", "P", "O")}
    pre["L"] = pre["P"]
    post["recovered"] = rng.poisson(3, n).astype(float)
    post["unlinked_added"] = rng.poisson(1, n).astype(float)
    post["server_double_counted"] = post["L"] - post["P"] - post["recovered"] - post["unlinked_added"]
    for k in ("recovered", "server_double_counted", "unlinked_added"):
        pre[k] = np.zeros(n)
    pre["R"][3] = np.nan  # a gap is skipped, never a zero; the identity still holds
    v = {k: float(x[0]) for k, x in terms({k: a[None] for k, a in pre.items()},
                                          {k: a[None] for k, a in post.items()}).items()}
    parts = v["capi_reported_per_day"] + v["net_new_per_day"] + v["pixel_capture_change_per_day"] + \
        v["attribution_change_per_day"]
    assert abs(parts - v["reported_change_per_day"]) < 1e-9
    split = v["capi_reported_recovered_per_day"] + v["capi_reported_double_counted_per_day"] + \
        v["capi_reported_unlinked_per_day"]
    assert abs(split - v["capi_reported_per_day"]) < 1e-9


def test_every_term_has_an_interval():
    v = recovery(weeks_scenario(28, 28, report=lambda d, post: (9.0 if post else 5.0) + (d % 3)),
                 bootstrap_reps=200)[1].values["meta"]["Purchase"]
    for k in ("reported_change_per_day", "capi_reported_per_day", "net_new_per_day",
              "pixel_capture_change_per_day", "attribution_change_per_day", "rho_change"):
        lo, hi = v[f"{k}_ci"]
        assert lo is not None and lo <= v[k] <= hi, k
    assert v["whole_weeks"] == 4 and v.get("reliable", True) is True


def test_unavailable_without_inputs():
    assert recovery(make_ws())[1].summary()["available"] is False
    ws = make_ws(orders=[{"order_id": "a", "created_at": t(0)}],
                 report=[{"platform": "meta", "date": dt.date(2026, 3, 1), "event_name": "Purchase", "conversions": 1.0}])
    assert "enable time" in recovery(ws)[1].summary()["reason"]
    assert capi_effect(ws)[1].summary()["available"] is False


def test_too_few_days_is_unavailable_with_a_reason():
    v = recovery(weeks_scenario(5, 9), bootstrap_reps=50)[1].values["meta"]["Purchase"]
    assert v["available"] is False and "whole weeks" in v["reason"]


# -- regression tests: the five failures at the top of issue 12 ----------------------------------------
def test_attributed_report_is_not_added_to_log_counts():
    """Failure 1: with 40 % of orders attributed, log counts were added to an attributed report and
    an 'unexplained' rest appeared. Now the server's addition is translated by ρ and the identity
    is exact whatever the attributed share."""
    full = recovery(weeks_scenario(), bootstrap_reps=50)[1].values["meta"]["Purchase"]
    part = recovery(weeks_scenario(attributed=0.4), bootstrap_reps=50)[1].values["meta"]["Purchase"]
    assert "unexplained_per_day" not in part
    for k in ("reported_change_per_day", "capi_reported_per_day", "net_new_per_day",
              "pixel_capture_change_per_day", "attribution_change_per_day"):
        assert part[k] == pytest.approx(0.4 * full[k], abs=1e-12), k
    assert part["rho_post"] == pytest.approx(0.4 * 9 / 13)


def test_report_gaps_are_not_zero_filled():
    """Failure 2: days missing from the report counted as zero conversions and the last,
    still-settling days were used. Now gaps are skipped and listed, settle days are dropped."""
    ws = weeks_scenario(drop_report=(3, 20))
    v = recovery(ws, bootstrap_reps=50)[1].values["meta"]["Purchase"]
    assert v["R_pre_per_day"] == pytest.approx(5.0) and v["R_post_per_day"] == pytest.approx(9.0)
    assert v["report_coverage"]["gaps"] == ["2026-03-05", "2026-03-22"]
    assert v["reliable"] is False and "gaps" in v["reason"] and "not zero-filled" in v["reason"]
    ws = with_periods(weeks_scenario(14, 17), settle=3)
    v = recovery(ws, bootstrap_reps=50)[1].values["meta"]["Purchase"]
    assert v["report_coverage"]["settle_days_dropped"] == ["2026-03-30", "2026-03-31", "2026-04-01"]
    assert v["post_days"] == 14


@pytest.mark.parametrize("cv", [0.10, 0.20])
def test_net_new_p_value_holds_its_level_under_overdispersion(cv):
    """Failure 3: the sales p-value was a Poisson test (11–29 % false positives at 5 % once daily
    orders vary more than Poisson) printed next to a number in report units. Now the orders change
    is tested with a quasi-Poisson weekday GLM; with no change it rejects about 5 % of the time."""
    rng = np.random.default_rng(11)
    weekday = np.tile(np.arange(7), 8)
    factors = np.array([1.0, 0.95, 0.95, 1.0, 1.1, 1.25, 0.75])
    post = np.r_[np.zeros(28), np.ones(28)]
    rejections = 0
    reps = 300
    for _ in range(reps):
        lam = 60 * factors[weekday] * rng.gamma(1 / cv**2, cv**2, len(weekday))
        res = stats.orders_change(rng.poisson(lam), weekday, post)
        rejections += res["p_value"] < 0.05
    assert rejections / reps <= 0.09  # 5 % nominal; 300 draws give a standard error of 1.3 points
    sentence = headline_sentence({"capi_added_per_day": 1.0, "acr_like": 0.1, "recovered_per_day": 1.0,
                                  "server_double_counted_per_day": 0.0},
                                 {"capi_reported_per_day": 1.0, "reported_change_per_day": 2.0,
                                  "orders_change_per_day": 0.5, "orders_change_per_day_ci": [-1.0, 2.0]})
    assert "real new sales" not in sentence and "not attributable to CAPI" in sentence


def test_capture_drift_and_weekday_mix_are_not_called_capi():
    """Failure 4: the capture-rate CI held 0 in only 41 % of runs under slow drift with no CAPI
    effect, 52 % under an unbalanced weekday mix. Now what the server added is measured on the same
    days (L − P): drift in pixel capture is its own term, and a short unbalanced period gives no
    comparison at all."""
    orders, pixel, server, rep = [], [], [], []
    for d in range(56):
        fired = 8 - d // 14  # pixel capture drifts down 8 → 5 of 10 orders
        for k in range(10):
            oid = f"o{d}-{k}"
            orders.append({"order_id": oid, "created_at": t(d)})
            if k < fired:
                pixel.append({"event_id": oid, "event_time": t(d, 1), "order_id": oid})
                if d >= 28:  # the server only duplicates what the pixel saw: no CAPI effect
                    server.append({"event_id": oid, "event_time": t(d, 1), "sent_at": t(d, 2), "order_id": oid})
        rep.append({"platform": "meta", "date": (DAY0 + dt.timedelta(days=d)).date(), "event_name": "Purchase",
                    "conversions": float(fired)})
    ws = with_periods(make_ws(pixel=pixel, server=server, orders=orders, report=rep,
                              enabled={"meta": DAY0 + dt.timedelta(days=28)}))
    v = recovery(ws, bootstrap_reps=200)[1].values["meta"]["Purchase"]
    assert v["capi_reported_per_day"] == 0.0 and v["capi_reported_per_day_ci"] == [0.0, 0.0]
    assert v["pixel_capture_change_per_day"] == pytest.approx(v["reported_change_per_day"])
    e = capi_effect(ws, bootstrap_reps=200)[1].values["meta"]["Purchase"]
    assert e["capi_added_per_day"] == 0.0 and e["capi_added_per_day_ci"] == [0.0, 0.0]
    # 5 pre days and 9 post days: no whole week before, so no pre/post figure at all
    short = recovery(weeks_scenario(5, 9), bootstrap_reps=50)[1].values["meta"]["Purchase"]
    assert short["available"] is False


def test_pre_existing_double_counting_is_not_charged_to_capi():
    """Review F3: thank-you-page reloads without an id double count with or without the server;
    only what the server adds is CAPI's."""
    orders, pixel, server = [], [], []
    for d in range(20):
        for k in range(5):
            oid = f"o{d}-{k}"
            orders.append({"order_id": oid, "created_at": t(d)})
            pixel.append({"event_id": oid, "event_time": t(d, 1), "order_id": oid})
            if k == 0:  # a reload without eid: a second pixel unit for this order, every day
                pixel.append({"event_time": t(d, 5), "order_id": oid})
            if d >= 10:
                server.append({"event_id": oid, "event_time": t(d, 1), "sent_at": t(d, 2), "order_id": oid})
    ws = with_periods(make_ws(pixel=pixel, server=server, orders=orders, enabled={"meta": DAY0 + dt.timedelta(days=10)}))
    v = capi_effect(ws, bootstrap_reps=50)[1].values["meta"]["Purchase"]
    assert v["capi_added"] == 0 and v["server_double_counted"] == 0 and v["pixel_only_units_per_day"] == 6.0


def test_weak_linkage_makes_the_split_unreliable():
    ws = tiny_effect_ws()
    ws.execute("UPDATE pixel_events SET order_id = NULL, event_id = 'x' || event_id")
    v = capi_effect(ws, bootstrap_reps=50)[1].values["meta"]["Purchase"]
    assert v["reliable"] is False and "link to an order" in v["reason"]


# -- enable time and orders sanity (lead, session 3) ---------------------------------------------------
def _effect_only(pixel_days, server_days, enabled_day, orders=True):
    pixel, server, orders_ = [], [], []
    for d in pixel_days:
        for k in range(4):
            oid = f"o{d}-{k}"
            orders_.append({"order_id": oid, "created_at": t(d), "consent_ads": "granted"})
            if k < 3:
                pixel.append({"event_id": oid, "event_time": t(d, 1), "order_id": oid})
            if d in server_days:
                server.append({"event_id": oid, "event_time": t(d, 1), "sent_at": t(d, 2), "order_id": oid,
                               "external_id": "x" + oid})
    ws = make_ws(pixel=pixel, server=server, orders=orders_ if orders else (),
                 enabled={"meta": DAY0 + dt.timedelta(days=enabled_day)})
    return with_periods(ws)


def test_enable_time_long_before_the_first_server_event_is_unreliable():
    """The configured enable time is 20 days before the server log starts: the days between would
    count as post days without server events and dilute every per-day figure."""
    ws = _effect_only(range(0, 42), range(28, 42), enabled_day=8)
    v = capi_effect(ws, bootstrap_reps=50)[1].values["meta"]["Purchase"]
    assert v["reliable"] is False and "first server event" in v["reason"] and "[capi_enabled_at]" in v["reason"]
    assert "Not reliable: the first server event" in headline_sentence(v, None)
    ok = _effect_only(range(0, 42), range(28, 42), enabled_day=28)
    assert "first server event" not in (capi_effect(ok, bootstrap_reps=50)[1].values["meta"]["Purchase"]
                                        .get("reason") or "")


def test_headline_without_orders_says_order_ids_and_unknown_consent():
    ws = _effect_only(range(0, 28), range(14, 28), enabled_day=14, orders=False)
    v = capi_effect(ws, bootstrap_reps=50)[1].values["meta"]["Purchase"]
    s = headline_sentence(v, None)
    assert v["orders_loaded"] is False and v["recovered_per_day"] == 1.0
    assert "recovered order ids" in s and "No orders table is loaded" in s and "consent not known" in s
    with_orders = headline_sentence(capi_effect(_effect_only(range(0, 28), range(14, 28), enabled_day=14),
                                                bootstrap_reps=50)[1].values["meta"]["Purchase"], None)
    assert "1.0 recovered orders (0.0 of them from users who denied ads consent)" in with_orders


def test_findings_do_not_count_days_before_the_data():
    from capi_audit.findings import post_days
    from capi_audit.result import AuditResult, ConfigEcho

    res = AuditResult(summary={}, config=ConfigEcho(platforms=("meta",), first_day="2026-02-01",
                                                    last_day="2026-02-28", timezone="UTC",
                                                    enabled_at={"meta": "2025-07-20T23:00:00+00:00"}))
    assert post_days(res, "meta") == 28
