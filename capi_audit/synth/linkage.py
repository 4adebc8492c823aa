"""Truth for the v2 linkage, dedup and double-counting figures, from the planted labels.

The generator plants, per order and platform, one dedup defect (params.DEFECTS), whether the
pixel fired (and reloaded the thank-you page), and the keys sent. The platform's counting units
follow from those labels by the rules in `capi_audit/metrics/units.py`, written out here per
defect (never by calling the metric code):

- the pixel key unit (eid = order id) and the server key unit pair when both exist within W;
- Meta Method B: a server unit not paired by event_id (id_mismatch, server_missing_event_id, or
  a server key the eid-less pixel cannot pair: pixel_missing_event_id) pairs with the order's
  pixel unit when both carry the same non-empty fbp and the server was received after the pixel
  and within W; otherwise, with a shared fbp, the extra unit is a `method_b_miss`;
- every unit falls on the local day of its earliest event_time; the server event_time is the
  order time, the pixel's a few seconds later.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from capi_audit.synth.generate import D, OrderDay, PlatformDay

CAUSES = ("id_mismatch", "missing_event_id", "name_variant", "outside_window", "server_retry_new_id",
          "method_b_miss")


def method_b(p: PlatformDay, W: float) -> tuple[np.ndarray, np.ndarray]:
    """Per order: Method B pairs the order's server unit with its pixel unit; or it would have,
    but the server came first or after W (a miss). Meta only."""
    n = len(p.defect)
    if p.platform != "meta":
        return np.zeros(n, bool), np.zeros(n, bool)
    d = p.defect
    S = p.sent & (d != D["too_old"])
    shape = S & p.fired & np.isin(d, [D["id_mismatch"], D["server_missing_event_id"], D["pixel_missing_event_id"]])
    fbp_ok = p.keys["fbp"] != ""
    timing = (p.tp <= p.sent_at) & (p.sent_at - p.tp <= W)
    return shape & fbp_ok & timing, shape & fbp_ok & ~timing


def add_dedup(o: OrderDay, p: PlatformDay, t: Any, W: float) -> None:
    """Fold one day's units into t.dedup (per event_name), t.dc2 (per class) and t.linkage."""
    nt = ~o.is_test
    d = p.defect
    E = p.enable
    S = p.sent & (d != D["too_old"])
    pid = d != D["pixel_missing_event_id"]
    pu = p.fired & (p.tp >= E)                      # the pixel unit counts after enablement
    pk, pn = p.fired & pid, p.fired & ~pid           # pixel key unit / pixel unit without id
    k0s = S & np.isin(d, [D["none"], D["pixel_missing_event_id"], D["late"], D["retry_same_key"],
                          D["retry_new_id"]])
    within = np.abs(p.sent_at - p.tp) <= W
    idm, rnew = S & (d == D["id_mismatch"]), S & (d == D["retry_new_id"])
    name, smiss = S & (d == D["name_mismatch"]), S & (d == D["server_missing_event_id"])
    mb, miss = method_b(p, W)
    ch = lambda a: int((np.asarray(a, dtype=int) * nt).sum())  # noqa: E731
    dd = t.dedup["Purchase"]
    dd["both"] += ch(pk & k0s & within)
    dd["both_outside_window"] += ch(pu & pk & k0s & ~within)
    dd["pixel_only"] += ch(pu & pk & ~k0s)
    dd["server_only"] += ch(k0s & ~pk) + ch(idm) + ch(rnew)
    dd["name_mismatch"] += ch(pu & pk & name)
    dd["missing_event_id_pixel"] += ch(pu & pn)
    dd["missing_event_id_server"] += ch(smiss)
    dd["pixel_duplicates"] += ch(pu & pk & p.reload)
    dd["server_duplicates"] += ch(S & (d == D["retry_same_key"]))
    dd["method_b"] += ch(mb)
    dd["paired_by_fbp"] += ch(mb)
    dl = t.dedup["purchase"]
    dl["server_only"] += ch(name)
    for k in ("both", "both_outside_window", "pixel_only", "name_mismatch", "missing_event_id_pixel",
              "missing_event_id_server", "pixel_duplicates", "server_duplicates", "method_b", "paired_by_fbp"):
        dl[k] += 0
    # counted by the platform: logged rejections and test orders' events, per event_name
    rej = p.sent & (d == D["too_old"])
    retry_rows = p.sent & np.isin(d, [D["retry_same_key"], D["retry_new_id"]])
    test = o.is_test
    cb = t.counted_by
    cb[("Purchase", "rejected")] += int((rej & nt & ~(d == D["name_mismatch"])).sum())
    px_rows = p.fired.astype(int) + p.reload.astype(int)
    sv_rows = p.sent.astype(int) + retry_rows.astype(int)
    cb[("Purchase", "test_order_events")] += int((px_rows * test).sum() + (sv_rows * test * (d != D["name_mismatch"])).sum())
    cb[("purchase", "test_order_events")] += int((sv_rows * test * (d == D["name_mismatch"])).sum())
    # ---- double counting per conversion class (post units of linked orders) ----
    meta = p.platform == "meta"
    srv_units = (k0s & ~(pk & within)).astype(int) + idm + rnew + smiss + (name if meta else 0) - mb
    L = pu.astype(int) + srv_units
    P = pu.astype(int)
    causes = {
        "outside_window": pk & k0s & ~within,
        "name_variant": (pk & name) if meta else np.zeros(len(d), bool),
        "id_mismatch": idm & pk & ~mb & ~miss,
        "method_b_miss": miss,
        "server_retry_new_id": rnew,
        "missing_event_id": ((smiss & pk) | (pn & k0s)) & ~mb & ~miss,
    }
    _fold_dc(t.dc2["Purchase"], L, P, causes, nt)
    if not meta:  # Google: a 'purchase' upload is another conversion action, its own class
        z = np.zeros(len(d), bool)
        _fold_dc(t.dc2["purchase"], name.astype(int), np.zeros(len(d), int),
                 dict.fromkeys(CAUSES, z), nt)
        # the order's pixel unit (class Purchase) and its upload (class purchase): two classes
        both_classes = ch(name & pu)
        t.dc2["Purchase"]["orders_also_under_other_names"] += both_classes
        t.dc2["purchase"]["orders_also_under_other_names"] += both_classes
    # ---- linkage: rows in a conversion class, per channel (test orders apart) ----
    lk = t.linkage
    lk[("pixel", "events")] += int((px_rows * nt).sum())
    lk[("server", "events")] += int((sv_rows * nt).sum())
    t.orders_reached["pixel"].update(o.order_id[(px_rows > 0) & nt])
    t.orders_reached["server"].update(o.order_id[(sv_rows > 0) & nt])


def _fold_dc(c: Counter, L: np.ndarray, P: np.ndarray, causes: dict[str, np.ndarray], nt: np.ndarray) -> None:
    L = np.where(nt, L, 0)
    P = np.where(nt, P, 0)
    c["orders_matched"] += int((L >= 1).sum())
    c["orders_double_counted"] += int((L >= 2).sum())
    c["counted_units"] += int(L.sum())
    c["pre_existing"] += int(np.maximum(P - 1, 0).sum())
    c["server_caused"] += int(np.where(L >= 1, L - np.maximum(P, 1), 0).sum())
    total = 0
    for k in CAUSES:
        v = int((np.asarray(causes.get(k, 0), dtype=int) * nt).sum())
        c[k] += v
        total += v
    assert total == int(np.maximum(L - 1, 0).sum()), "every extra unit has one cause"


def replay_units(o: OrderDay, p: PlatformDay, W: float, day_t0: np.ndarray, day_tp: np.ndarray):
    """(mask, days, event_name) triples: every unit the platform counts, on its day (all rows)."""
    d = p.defect
    S = p.sent & (d != D["too_old"])
    pid = d != D["pixel_missing_event_id"]
    pk, pn = p.fired & pid, p.fired & ~pid
    k0s = S & np.isin(d, [D["none"], D["pixel_missing_event_id"], D["late"], D["retry_same_key"],
                          D["retry_new_id"]])
    within = np.abs(p.sent_at - p.tp) <= W
    idm, rnew = S & (d == D["id_mismatch"]), S & (d == D["retry_new_id"])
    name, smiss = S & (d == D["name_mismatch"]), S & (d == D["server_missing_event_id"])
    mb, _ = method_b(p, W)
    return [
        (pk & k0s & within, day_t0, "Purchase"),
        (pk & k0s & ~within, day_tp, "Purchase"),
        (pk & k0s & ~within, day_t0, "Purchase"),
        (pk & ~k0s & ~mb, day_tp, "Purchase"),
        (pk & ~k0s & mb, day_t0, "Purchase"),      # merged with its server unit: the earlier event_time
        (~pk & k0s & ~mb, day_t0, "Purchase"),
        ((idm & ~mb) | rnew, day_t0, "Purchase"),
        (pn & ~mb, day_tp, "Purchase"),
        (pn & mb, day_t0, "Purchase"),
        (smiss & ~mb, day_t0, "Purchase"),
        (name, day_t0, "purchase"),
    ]


def dedup_result(c: Counter) -> dict[str, Any]:
    """The dedup figures of one event_name from its counters."""
    keys = ("both", "both_outside_window", "pixel_only", "server_only", "name_mismatch",
            "missing_event_id_pixel", "missing_event_id_server", "pixel_duplicates", "server_duplicates",
            "method_b")
    m: dict[str, Any] = {k: int(c[k]) for k in keys}
    px = m["both"] + m["both_outside_window"] + m["pixel_only"] + m["missing_event_id_pixel"]
    sv = m["both"] + m["both_outside_window"] + m["server_only"] + m["missing_event_id_server"]
    m["pixel_units"], m["server_units"] = px, sv
    m["event_coverage"] = (m["both"] + m["both_outside_window"] + m["method_b"]) / px if px else None
    m["dedup_rate"] = (m["both"] + m["method_b"]) / sv if sv else None
    m["paired_by"] = {"event_id": m["both"], "fbp": int(c["paired_by_fbp"]), "external_id": 0}
    m["event_id_collisions"] = 0
    m["orders_merged_away"] = 0
    return m


def dc_result(c: Counter) -> dict[str, Any]:
    """The double-counting figures of one class from its counters (pre-existing is 0 per cause
    in the base scenario: the pixel alone counts each order at most once)."""
    matched = int(c["orders_matched"])
    out: dict[str, Any] = {k: int(c[k]) for k in ("orders_matched", "orders_double_counted", "counted_units",
                                                   "pre_existing", "server_caused")}
    out["inflation_rate"] = (out["counted_units"] - matched) / matched if matched else None
    out["extra_counts"] = {k: {"total": int(c[k]), "pre_existing": 0, "server_caused": int(c[k])} for k in CAUSES}
    out["orders_also_under_other_names"] = int(c["orders_also_under_other_names"])
    out["orders_merged_away"] = 0
    return out


def linkage_result(t: Any, order_key: str = "auto") -> dict[str, Any]:
    """The linkage figures of one platform: every generated row carries its order id."""
    out: dict[str, Any] = {}
    for chan in ("pixel", "server"):
        n = int(t.linkage[(chan, "events")])
        if not n:
            continue
        out[chan] = {"events": n, "linked": n, "linked_via_event_id": 0, "link_rate": 1.0,
                     "orders_reached": len(t.orders_reached[chan]), "orphans": 0}
    out["order_key"] = order_key
    out["reliable"] = True
    return out
