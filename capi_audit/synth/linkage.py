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
from capi_audit.synth.params import ScenarioParams

STREAM = 991  # this module's own random stream, so its draws never shift the generator's


def plant_platform(params: ScenarioParams, o: OrderDay, platform: str, pi: int, defect: np.ndarray,
                   reload: np.ndarray) -> dict[str, np.ndarray]:
    """Per-order linkage labels of one platform and day: `reload_no_eid` (a thank-you page reload,
    on an order without a dedup defect, that fires without eid: the pixel alone counts it twice)."""
    rng = np.random.default_rng([params.seed, o.day, STREAM, pi])
    n = len(defect)
    u = rng.random(n)
    return {"reload_no_eid": reload & (defect == D["none"]) & (u < params.reload_without_eid_share)}


def raw_email(c: int) -> str:
    """The email as the customer typed it in the shop: every fourth customer with capitals."""
    return f"C{c}@Example.com" if c % 4 == 0 else f"c{c}@example.com"


def raw_identity(o: OrderDay) -> tuple[np.ndarray, np.ndarray]:
    """The orders export's raw Email and Phone columns (synthetic customers; the audit hashes them
    locally into identities and never stores them)."""
    em = np.array([raw_email(int(c)) for c in o.cust], dtype=object)
    ph = np.array([f"+49 151 {int(c):07d}" for c in o.cust], dtype=object)
    return em, ph


def plant_key_mistakes(params: ScenarioParams, o: OrderDay, platform: str, pi: int, keys: dict,
                       labels: dict, pools: Any) -> dict[str, np.ndarray]:
    """Replace some correct em / ph hashes on server events by a wrong hash of the right customer:
    the email hashed as typed (customers whose typed email has capitals), the expected hash hashed
    again, the phone without its country code. Labels `em_unnormalized`, `em_hashed_twice`,
    `ph_no_country`; the values stay valid 64-hex hashes (match-key validity is unchanged)."""
    import hashlib

    sha = lambda t: hashlib.sha256(t.encode("utf-8")).hexdigest()  # noqa: E731
    rng = np.random.default_rng([params.seed, o.day, STREAM, 100 + pi])
    n = len(o.cust)
    u_em, u_ph = rng.random(n), rng.random(n)
    em_ok = (keys["em"] != "") & ~labels["em_invalid"]
    typed_caps = (o.cust % 4) == 0
    a, b = params.em_unnormalized_rate, params.em_hashed_twice_rate
    unnorm = em_ok & typed_caps & (u_em < a)
    twice = em_ok & ~unnorm & (u_em >= a) & (u_em < a + b)
    ph_ok = (keys["ph"] != "") & ~labels["ph_plain"]
    nocc = ph_ok & (u_ph < params.ph_no_country_rate)
    em = keys["em"].copy()
    for i in np.flatnonzero(unnorm):
        em[i] = sha(raw_email(int(o.cust[i])))
    for i in np.flatnonzero(twice):
        em[i] = sha(em[i])
    ph = keys["ph"].copy()
    for i in np.flatnonzero(nocc):
        national = pools.ph_digits[o.cust[i]][2:]
        ph[i] = sha(national if platform == "meta" else "+" + national)
    keys["em"], keys["ph"] = em, ph
    return {"em_unnormalized": unnorm, "em_hashed_twice": twice, "ph_no_country": nocc}


def _insufficient(keys: dict, i: int) -> bool:
    """Meta's insufficient customer-information rule on one order's keys (domain §1.7)."""
    from capi_audit.synth.truth import MATCH_KEYS, META_WEAK_SETS

    ks = frozenset(k for k in MATCH_KEYS if k != "gclid" and keys[k][i] != "")
    return any(ks <= weak for weak in META_WEAK_SETS)


def plant_requests(params: ScenarioParams, o: OrderDay, platform: str, pi: int, defect: np.ndarray,
                   sent: np.ndarray, keys: dict) -> dict[str, np.ndarray]:
    """Meta sends too old with no logged status (`old_unlogged`), and good sends of the same day
    batched into such a request, also without a logged status (`collateral`, `batch_of` = the
    position of the old order whose request they share, else -1)."""
    rng = np.random.default_rng([params.seed, o.day, STREAM, 200 + pi])
    n = len(defect)
    u1, u2 = rng.random(n), rng.random(n)
    meta = platform == "meta"
    old = sent & (defect == D["too_old"]) & ~o.is_test & meta
    old_unlogged = old & (u1 < params.too_old_unlogged_share)
    batched_old = np.flatnonzero(old_unlogged & (u2 < params.old_batch_share))
    cand = [i for i in np.flatnonzero(sent & (defect == D["none"]) & ~o.is_test & meta)
            if not _insufficient(keys, i)]
    batch_of = np.full(n, -1)
    for j, i in zip(batched_old, cand, strict=False):
        batch_of[i] = j
    return {"old_unlogged": old_unlogged, "collateral": batch_of >= 0, "batch_of": batch_of}


def server_requests(o: OrderDay, p: PlatformDay, status: np.ndarray, error: np.ndarray):
    """(status, error, request_id) of each order's first server row: one request per send; an
    unlogged send has no status; a collateral send rides in its old order's request."""
    f = p.row_flags
    unlogged = f["old_unlogged"] | f["collateral"]
    status = np.where(unlogged, "", status)
    error = np.where(unlogged, "", error)
    req = np.array([f"{p.platform}-{x}" for x in o.order_id], dtype=object)
    mates = np.flatnonzero(f["collateral"])
    req[mates] = req[f["batch_of"][mates]]
    return status, error, req


def order_status(params: ScenarioParams, o: OrderDay) -> np.ndarray:
    """Order status labels: paid, or refunded / pending at the planted rates (events are still
    counted by the platforms; only paid orders are real conversions)."""
    rng = np.random.default_rng([params.seed, o.day, STREAM])
    u = rng.random(len(o.t0))
    out = np.full(len(o.t0), "paid", dtype=object)
    lo = 0.0
    for status, rate in sorted(params.order_status_rates.items()):
        out[(u >= lo) & (u < lo + rate)] = status
        lo += rate
    return out

CAUSES = ("id_mismatch", "missing_event_id", "name_variant", "outside_window", "server_retry_new_id",
          "method_b_miss")


def method_b(p: PlatformDay, W: float) -> tuple[np.ndarray, np.ndarray]:
    """Per order: Method B pairs the order's server unit with its pixel unit; or it would have,
    but the server came first or after W (a miss). Meta only."""
    n = len(p.defect)
    if p.platform != "meta":
        return np.zeros(n, bool), np.zeros(n, bool)
    d = p.defect
    S = p.sent & (d != D["too_old"]) & ~p.row_flags["collateral"]
    shape = S & p.fired & np.isin(d, [D["id_mismatch"], D["server_missing_event_id"], D["pixel_missing_event_id"]])
    fbp_ok = p.keys["fbp"] != ""
    timing = (p.tp <= p.sent_at) & (p.sent_at - p.tp <= W)
    return shape & fbp_ok & timing, shape & fbp_ok & ~timing


def add_dedup(o: OrderDay, p: PlatformDay, t: Any, W: float) -> None:
    """Fold one day's units into t.dedup (per event_name), t.dc2 (per class) and t.linkage."""
    nt = ~o.is_test
    d = p.defect
    E = p.enable
    S = p.sent & (d != D["too_old"]) & ~p.row_flags["collateral"]
    pid = d != D["pixel_missing_event_id"]
    pu = p.fired & (p.tp >= E)                      # the pixel unit counts after enablement
    pk, pn = p.fired & pid, p.fired & ~pid           # pixel key unit / pixel unit without id
    k0s = S & np.isin(d, [D["none"], D["pixel_missing_event_id"], D["late"], D["retry_same_key"],
                          D["retry_new_id"]])
    within = np.abs(p.sent_at - p.tp) <= W
    idm, rnew = S & (d == D["id_mismatch"]), S & (d == D["retry_new_id"])
    name, smiss = S & (d == D["name_mismatch"]), S & (d == D["server_missing_event_id"])
    mb, miss = method_b(p, W)
    rn = p.row_flags["reload_no_eid"]                # reload without eid: its own pixel unit
    rn_post = rn & (p.tr >= E)
    ch = lambda a: int((np.asarray(a, dtype=int) * nt).sum())  # noqa: E731
    dd = t.dedup["Purchase"]
    dd["both"] += ch(pk & k0s & within)
    dd["both_outside_window"] += ch(pu & pk & k0s & ~within)
    dd["pixel_only"] += ch(pu & pk & ~k0s)
    dd["server_only"] += ch(k0s & ~pk) + ch(idm) + ch(rnew)
    dd["name_mismatch"] += ch(pu & pk & name)
    dd["missing_event_id_pixel"] += ch(pu & pn) + ch(rn_post)
    dd["missing_event_id_server"] += ch(smiss)
    dd["pixel_duplicates"] += ch(pu & pk & p.reload & ~rn)
    dd["server_duplicates"] += ch(S & (d == D["retry_same_key"]))
    dd["method_b"] += ch(mb)
    dd["paired_by_fbp"] += ch(mb)
    from capi_audit.synth.google import OTHER_ACTION, other_action_rows

    oa = other_action_rows(p).astype(bool)  # Google: the clean send uploaded again to a second action
    others = (("purchase", name), (OTHER_ACTION, oa)) if not (p.platform == "meta") else (("purchase", name),)
    for ev, sel in others:
        dl = t.dedup[ev]
        dl["server_only"] += ch(sel)
        for k in ("both", "both_outside_window", "pixel_only", "name_mismatch", "missing_event_id_pixel",
                  "missing_event_id_server", "pixel_duplicates", "server_duplicates", "method_b", "paired_by_fbp"):
            dl[k] += 0
    # counted by the platform: logged rejections and test orders' events, per event_name
    rej = p.sent & (d == D["too_old"])
    retry_rows = p.sent & np.isin(d, [D["retry_same_key"], D["retry_new_id"]])
    test = o.is_test
    cb = t.counted_by
    f = p.row_flags
    cb[("Purchase", "rejected")] += int((rej & nt & ~f["old_unlogged"]).sum())
    cb[("Purchase", "assumed_rejected")] += int((rej & nt & f["old_unlogged"]).sum())
    cb[("Purchase", "batch_collateral")] += int((f["collateral"] & nt).sum())
    px_rows = p.fired.astype(int) + p.reload.astype(int)
    sv_rows = p.sent.astype(int) + retry_rows.astype(int)
    cb[("Purchase", "test_order_events")] += int((px_rows * test).sum() + (sv_rows * test * (d != D["name_mismatch"])).sum())
    cb[("purchase", "test_order_events")] += int((sv_rows * test * (d == D["name_mismatch"])).sum())
    if p.platform != "meta":
        cb[(OTHER_ACTION, "test_order_events")] += int((oa & test).sum())
    # ---- double counting per conversion class (post units of linked orders) ----
    meta = p.platform == "meta"
    srv_units = (k0s & ~(pk & within)).astype(int) + idm + rnew + smiss + (name if meta else 0) - mb
    L = pu.astype(int) + rn_post + srv_units
    P = pu.astype(int) + rn_post
    causes = {
        "outside_window": pk & k0s & ~within,
        "name_variant": (pk & name) if meta else np.zeros(len(d), bool),
        "id_mismatch": idm & pk & ~mb & ~miss,
        "method_b_miss": miss,
        "server_retry_new_id": rnew,
        "missing_event_id": (((smiss & pk) | (pn & k0s)) & ~mb & ~miss).astype(int) + (rn_post & pu),
    }
    # the pixel alone already counted the reload twice: pre-existing
    _fold_dc(t.dc2["Purchase"], L, P, causes, nt, pre={"missing_event_id": rn_post & pu})
    if not meta:  # Google: a 'purchase' upload is another conversion action, its own class
        z = np.zeros(len(d), bool)
        _fold_dc(t.dc2["purchase"], name.astype(int), np.zeros(len(d), int),
                 dict.fromkeys(CAUSES, z), nt)
        # the order's pixel unit (class Purchase) and its upload (class purchase): two classes
        both_classes = ch(name & pu)
        t.dc2["Purchase"]["orders_also_under_other_names"] += both_classes
        t.dc2["purchase"]["orders_also_under_other_names"] += both_classes
        # the second action: one unit per order (P = 0); the order's clean send is in Purchase too
        _fold_dc(t.dc2[OTHER_ACTION], oa.astype(int), np.zeros(len(d), int), dict.fromkeys(CAUSES, z), nt)
        t.dc2["Purchase"]["orders_also_under_other_names"] += ch(oa)
        t.dc2[OTHER_ACTION]["orders_also_under_other_names"] += ch(oa)
    # ---- linkage: rows in a conversion class, per channel (test orders apart) ----
    lk = t.linkage
    lk[("pixel", "events")] += int((px_rows * nt).sum())
    lk[("server", "events")] += int(((sv_rows + oa) * nt).sum())
    t.orders_reached["pixel"].update(o.order_id[(px_rows > 0) & nt])
    t.orders_reached["server"].update(o.order_id[(sv_rows > 0) & nt])


def _fold_dc(c: Counter, L: np.ndarray, P: np.ndarray, causes: dict[str, np.ndarray], nt: np.ndarray,
             pre: dict[str, np.ndarray] | None = None) -> None:
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
    for k, arr in (pre or {}).items():
        c["pre_" + k] += int((np.asarray(arr, dtype=int) * nt).sum())


def replay_units(o: OrderDay, p: PlatformDay, W: float, day_t0: np.ndarray, day_tp: np.ndarray,
                 day_tr: np.ndarray):
    """(mask, days, event_name) triples: every unit the platform counts, on its day (all rows)."""
    from capi_audit.synth.google import OTHER_ACTION, other_action_rows

    d = p.defect
    S = p.sent & (d != D["too_old"]) & ~p.row_flags["collateral"]
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
        (other_action_rows(p).astype(bool), day_t0, OTHER_ACTION),  # Google: the second-action upload
        (p.row_flags["reload_no_eid"], day_tr, "Purchase"),  # the reload without eid: its own unit
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
    """The double-counting figures of one class from its counters."""
    matched = int(c["orders_matched"])
    out: dict[str, Any] = {k: int(c[k]) for k in ("orders_matched", "orders_double_counted", "counted_units",
                                                   "pre_existing", "server_caused")}
    out["inflation_rate"] = (out["counted_units"] - matched) / matched if matched else None
    out["extra_counts"] = {k: {"total": int(c[k]), "pre_existing": int(c["pre_" + k]),
                               "server_caused": int(c[k]) - int(c["pre_" + k])} for k in CAUSES}
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


HASH_CAUSES = ("uppercase_hex", "not_normalized", "phone_without_country_code", "hashed_twice",
               "another_orders_customer", "plaintext", "unexplained")


def add_hash_agreement(p: PlatformDay, mult: np.ndarray, t: Any) -> None:
    """Per server row (retries and rejected sends included, test orders out via mult): the verdict
    of hash agreement for em and ph, from the key labels."""
    from capi_audit.synth.generate import EMPTY_HASH

    L, f = p.key_labels, p.row_flags
    em = p.keys["em"]
    em_present = em != ""
    empty = em == EMPTY_HASH
    upper = L["em_invalid"] & ~L["em_plain"] & ~empty
    verdict_em = np.select(
        [L["em_plain"], upper, empty, f["em_unnormalized"], f["em_hashed_twice"]],
        ["plaintext", "uppercase_hex", "unexplained", "not_normalized", "hashed_twice"], "agree")
    ph_present = p.keys["ph"] != ""
    verdict_ph = np.select([L["ph_plain"], f["ph_no_country"]], ["plaintext", "phone_without_country_code"], "agree")
    for key, present, verdict in (("em", em_present, verdict_em), ("ph", ph_present, verdict_ph)):
        for v in np.unique(verdict[present]):
            t.hash[(key, str(v))] += int((mult * (present & (verdict == v))).sum())


def hash_agreement_result(t: Any) -> dict[str, Any]:
    """match_keys.<platform>.hash_agreement from the verdict counts."""
    out: dict[str, Any] = {}
    for key in ("em", "ph"):
        n = sum(v for (k, _), v in t.hash.items() if k == key)
        if not n:
            continue
        agree = t.hash[(key, "agree")]
        out[key] = {"n": n, "agree": agree, "share": agree / n,
                    "mismatch": {c: int(t.hash[(key, c)]) for c in HASH_CAUSES}}
    return out

