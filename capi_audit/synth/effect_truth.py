"""Truth of the CAPI effect (design §3.3), the decomposition (§3.4) and the report bridge (§3.5),
from the planted labels only.

Per order and platform the labels say which rows exist (pixel fired? reload? which defect? sent?
rejected?) and when. The platform rules are written out per case (counted_units in the product
applies them in SQL; nothing here calls it):
- Meta: a pixel unit (key = order id, or no id) and the server key unit are one unit when their
  first receipts are within 48 h; an id-mismatch, a retry with a new id and a send without id are
  units of their own; 'purchase' is a case variant of the class but a different key. Method B: a
  server-only unit pairs with the order's pixel-only unit when both carry the same fbp, the pixel
  was received first and within 48 h. A unit falls on the day of its earliest event_time; the
  value and currency are those of its earliest row (the server row when it has one).
- Google (no catalogue): each event name is its own conversion action; no window, no Method B. An
  upload under another action ('purchase') of an order the tag counted under 'Purchase' is a double
  count (`primary_action_overlap`: without a catalogue every action is taken as primary), never a
  recovery, and that class is `reliable: false` (no catalogue says whether it is primary).
Test orders' units are out of L and P but in the platform's count behind the report.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from capi_audit.synth.generate import D, OrderDay, PlatformDay
from capi_audit.synth.google import OTHER_ACTION, other_action_rows
from capi_audit.synth.params import ScenarioParams

META_WINDOW_S = 48 * 3600
KEY_SENDS = (D["none"], D["pixel_missing_event_id"], D["late"], D["retry_same_key"], D["retry_new_id"])
CONSENT_STATES = ("granted", "unknown", "denied_restricted", "denied_violation")
TIERS = ("strong", "click", "browser", "none", "unknown")
CAUSES = ("id_mismatch", "missing_event_id", "name_variant", "outside_window", "server_retry_new_id",
          "primary_action_overlap", "other")


def _tiers(p: PlatformDay) -> np.ndarray:
    """Best identifier tier of an order's server rows (all rows of an order share its keys), from
    the key labels: strong (valid em or ph), click (fbc or gclid), browser (fbp + IP + UA), none."""
    k, lab = p.keys, p.key_labels
    present = {x: k[x] != "" for x in ("em", "ph", "fbc", "gclid", "fbp", "client_ip_address", "client_user_agent")}
    em = present["em"] & ~lab["em_invalid"]
    ph = present["ph"] & ~lab["ph_plain"]
    fbc = present["fbc"] & ~lab["fbc_sec"]
    fbp = present["fbp"] & ~lab["fbp_bad"]
    ip = present["client_ip_address"] & ~lab["ip_private"]
    ua = present["client_user_agent"] & ~lab["ua_lib"]
    strong = em | ph
    click = ~strong & (fbc | present["gclid"])
    browser = ~strong & ~click & fbp & ip & ua
    return np.where(strong, "strong", np.where(click, "click", np.where(browser, "browser", "none")))


class EffectTruth:
    """Accumulates, per platform, class and scenario day: L, P, the split, causes, consent and
    tier of recovered units, value twins; orders per day; the platform's count for the report."""

    def __init__(self, params: ScenarioParams, bounds: np.ndarray) -> None:
        self.params, self.bounds = params, bounds
        self.acc: dict[tuple, float] = defaultdict(float)
        self.orders = np.zeros(params.days)
        self.count_all = {pl: np.zeros(params.days) for pl in (*params.platforms, "ga4")}

    def _day(self, ts: int) -> int:
        return int(np.searchsorted(self.bounds, ts, side="right") - 1)

    def add_day(self, o: OrderDay, pds: list[PlatformDay]) -> None:
        """Fold one day's labels in."""
        from capi_audit.synth.linkage import order_status

        paid = order_status(self.params, o) == "paid"  # only paid orders are real conversions
        self.orders[o.day] += int((~o.is_test & paid).sum())
        for p in pds:
            self._platform(o, p)
            if p.google is not None:
                self._ga4(o, p)

    def _ga4(self, o: OrderDay, p: PlatformDay) -> None:
        """GA4 units per order (synth/google.py labels; GA4 is enabled with Google): a hit with a
        transaction id (its reload joins it) and the order's Measurement Protocol purchase are one
        unit; hits with an empty id are units of their own; a send backdated over 72 h is dropped.
        Every GA4 server row carries the country only: tier none."""
        from types import SimpleNamespace

        from capi_audit.synth.google import MP_BACKDATE_S

        g = p.google
        shim = SimpleNamespace(platform="ga4", ldu=p.ldu)
        mp_ok = g.mp_sent & ~(g.mp_sent_at - o.t0 > MP_BACKDATE_S)
        for i in range(len(o.t0)):
            if o.is_test[i]:
                continue
            t0, tp, val = int(o.t0[i]), int(p.tp[i]) + 1, float(o.value[i])
            fired, empty, ok = bool(p.fired[i]), bool(g.ga4_empty[i]), bool(mp_ok[i])
            P: list[dict[str, Any]] = []
            L: list[dict[str, Any]] = []
            base = {"name": "Purchase", "value": val, "currency": "EUR"}
            if fired:
                P.append({**base, "eid": None if empty else "order", "ts": tp})
                if empty and bool(g.ga4_reload[i]):
                    P.append({**base, "eid": None, "ts": int(g.ga4_tr[i])})
            for u in P:
                merged = ok and u["eid"] == "order"
                L.append({**u, "has_px": True, "has_sv": merged, "ts": t0 if merged else u["ts"]})
            if ok and not any(u["has_sv"] for u in L):
                L.append({**base, "eid": "order", "has_px": False, "has_sv": True, "ts": t0})
            self._fold(o, shim, i, L, P, False, "none", val, "EUR")

    def _platform(self, o: OrderDay, p: PlatformDay) -> None:
        meta = p.platform == "meta"
        W = META_WINDOW_S if meta else np.inf
        tiers = _tiers(p)
        f = p.row_flags
        n = len(o.t0)
        # synth/linkage.py: reloads without eid (a pixel unit of their own) and good sends batched
        # with an unlogged too-old send (rejected with their request: batch_collateral)
        no_eid_reload = f.get("reload_no_eid", np.zeros(n, bool))
        collateral = f.get("collateral", np.zeros(n, bool))
        oa = other_action_rows(p).astype(bool)
        for i in range(n):
            d, t0, tp = int(p.defect[i]), int(o.t0[i]), int(p.tp[i])
            fired, pid = bool(p.fired[i]), d != D["pixel_missing_event_id"]
            S = bool(p.sent[i]) and d != D["too_old"] and not bool(collateral[i])
            sent_at = int(p.sent_at[i])
            # server row value/currency as written (value missing -> 0 in sums; '' -> NULL -> unknown)
            sv_val = 0.0 if f["value_missing"][i] else float(o.value[i])
            sv_cur = "unknown" if f["currency_missing"][i] else ("EURO" if f["currency_invalid"][i] else "EUR")
            px_val, px_cur = float(o.value[i]), "EUR"
            # units: dicts with name, eid ('order' | 'own' | None), has_px, has_sv, ts (earliest
            # event_time), receipt (first receipt), value, currency
            P = [{"name": "Purchase", "eid": "order" if pid else None, "ts": tp}] if fired else []
            L: list[dict[str, Any]] = []
            if bool(p.reload[i]) and bool(no_eid_reload[i]):
                tr = int(p.tr[i])
                P.append({"name": "Purchase", "eid": None, "ts": tr})
                L.append({"name": "Purchase", "eid": None, "has_px": True, "has_sv": False, "ts": tr,
                          "receipt": tr, "value": px_val, "currency": px_cur})
            ks = S and d in KEY_SENDS
            within = abs(sent_at - tp) <= W
            sv = {"has_px": False, "has_sv": True, "ts": t0, "value": sv_val, "currency": sv_cur}
            if fired and pid and ks and within:
                L.append({"name": "Purchase", "eid": "order", "has_px": True, "has_sv": True, "ts": t0,
                          "value": sv_val, "currency": sv_cur})
            else:
                if fired:
                    L.append({"name": "Purchase", "eid": "order" if pid else None, "has_px": True,
                              "has_sv": False, "ts": tp, "receipt": tp, "value": px_val, "currency": px_cur})
                if ks:
                    L.append({**sv, "name": "Purchase", "eid": "order", "receipt": sent_at})
            if S and d == D["id_mismatch"]:
                L.append({**sv, "name": "Purchase", "eid": "own", "receipt": sent_at})
            if S and d == D["retry_new_id"]:
                L.append({**sv, "name": "Purchase", "eid": "new", "receipt": sent_at + int(p.retry_delay[i])})
            if S and d == D["server_missing_event_id"]:
                L.append({**sv, "name": "Purchase", "eid": None, "receipt": sent_at})
            if S and d == D["name_mismatch"]:
                L.append({**sv, "name": "purchase", "eid": "order", "receipt": sent_at})
            if oa[i]:  # Google: the clean send uploaded again to a second action
                L.append({**sv, "name": OTHER_ACTION, "eid": "order", "receipt": sent_at})
            if meta and p.keys["fbp"][i] != "":
                L = self._method_b(L, W)
            if o.is_test[i]:
                for u in L:
                    if u["name"] == "Purchase" or meta:
                        dd = self._day(u["ts"])
                        if 0 <= dd < self.params.days:
                            self.count_all[p.platform][dd] += 1
                continue
            self._fold(o, p, i, L, P, meta, tiers[i], px_val, px_cur)

    @staticmethod
    def _method_b(L: list[dict[str, Any]], W: float) -> list[dict[str, Any]]:
        """Meta Method B within an order: each server-only unit picks the nearest earlier pixel-only
        unit of its name within W; each pixel unit keeps the earliest server unit that picked it."""
        pix = [u for u in L if u["has_px"] and not u["has_sv"]]
        srv = sorted((u for u in L if u["has_sv"] and not u["has_px"]), key=lambda u: u["receipt"])
        chosen: dict[int, dict[str, Any]] = {}
        for s in srv:
            cands = [u for u in pix if u["name"] == s["name"] and u["receipt"] <= s["receipt"] <= u["receipt"] + W]
            if not cands:
                continue
            pu = max(cands, key=lambda u: u["receipt"])
            chosen.setdefault(id(pu), s)  # srv is in receipt order: the first to pick it is the earliest
        if not chosen:
            return L
        taken = {id(s) for s in chosen.values()}
        out = []
        for u in L:
            if id(u) in taken:
                continue
            if id(u) in chosen:
                s = chosen[id(u)]
                merged = {**u, "has_sv": True, "ts": min(u["ts"], s["ts"])}
                if s["ts"] < u["ts"]:  # the earliest row is the server's
                    merged.update(value=s["value"], currency=s["currency"])
                out.append(merged)
            else:
                out.append(u)
        return out

    def _fold(self, o: OrderDay, p: PlatformDay, i: int, L: list, P: list, meta: bool, tier: str,
              px_val: float, px_cur: str) -> None:
        pl = p.platform
        cls = (lambda name: "Purchase") if meta else (lambda name: name)
        consent = "unknown" if o.unknown[i] else ("denied" if o.denied[i] else "granted")
        restricted = bool(p.ldu[i]) and (o.country[i] == "US" if meta else True)
        state = ("denied_restricted" if restricted else "denied_violation") if consent == "denied" else consent
        for c in sorted({cls(u["name"]) for u in L} | {cls(u["name"]) for u in P}):
            Lc = [u for u in L if cls(u["name"]) == c]
            Pc = [u for u in P if cls(u["name"]) == c]
            # Google: an upload to another action ('purchase') of an order the tag counted under
            # 'Purchase' is not a recovery: two primary actions count the order twice
            other = not Pc and bool(P) and not meta
            kind = "recovered" if not Pc and not other else "double"
            paired = any(u["has_px"] and u["has_sv"] for u in Lc)
            for u in Lc:
                dd = self._day(u["ts"])
                if c == "Purchase" or meta:
                    if 0 <= dd < self.params.days:
                        self.count_all[pl][dd] += 1
                a = self.acc
                a[(pl, c, dd, "L")] += 1
                a[(pl, c, dd, kind)] += 1
                a[(pl, c, dd, "value", u["currency"], kind)] += u["value"]
                if kind == "recovered":
                    a[(pl, c, dd, ("consent", state))] += 1
                    a[(pl, c, dd, ("tier", tier))] += 1
                elif u["has_sv"] and not u["has_px"]:
                    cause = "primary_action_overlap" if other else self._cause(u, Pc, paired)
                    a[(pl, c, dd, ("cause", cause))] += 1
            for u in Pc:
                dd = self._day(u["ts"])
                self.acc[(pl, c, dd, "P")] += 1
                self.acc[(pl, c, dd, kind)] -= 1
                self.acc[(pl, c, dd, "value", px_cur, kind)] -= px_val

    @staticmethod
    def _cause(u: dict[str, Any], Pc: list, paired: bool) -> str:
        if u["eid"] is None:
            return "missing_event_id"
        if u["name"] not in {x["name"] for x in Pc}:
            return "name_variant"
        if u["eid"] == "order" and any(x["eid"] == "order" for x in Pc):
            return "outside_window"
        if any(x["eid"] is None for x in Pc):
            return "missing_event_id"
        return "server_retry_new_id" if paired else "id_mismatch"

    # ------------------------------------------------------------------------------------------
    def classes(self, pl: str) -> list[str]:
        """Conversion classes with units for a platform."""
        return sorted({k[1] for k in self.acc if k[0] == pl})

    def series(self, pl: str, c: str, what: str, days: list[int]) -> np.ndarray:
        """Per-day values of one accumulated figure."""
        return np.array([self.acc.get((pl, c, d, what), 0.0) for d in days])

    def periods(self, pl: str, report: np.ndarray | None) -> dict[str, Any]:
        """Day indices of the §3.0 periods: every source covers day 0 to the last day (the report
        may miss gap days inside); the enable time is a local midnight, so E = E⁻."""
        prm = self.params
        e = prm.enable_day["google" if pl == "ga4" else pl]  # GA4 is enabled with Google
        last = prm.days - 1
        pre = list(range(0, e))
        post = list(range(e + prm.burn_in_days, last - prm.settle_days + 1))
        n = min(len(pre) // 7, len(post) // 7)
        return {"pre": pre, "post": post, "weeks": n, "pre_window": pre[len(pre) - 7 * n:] if n else [],
                "post_window": post[:7 * n],
                "settle": [d for d in range(last - prm.settle_days + 1, last + 1) if d >= e + prm.burn_in_days]}

    def capi_effect(self, pl: str) -> dict[str, Any]:
        """§3.3 truth per class."""
        per = self.periods(pl, None)
        days = per["post"]
        n = len(days)
        out = {}
        for c in self.classes(pl):
            if n == 0:
                out[c] = {"post_days": 0, "available": False}
                continue
            s = {k: self.series(pl, c, k, days) for k in ("L", "P", "recovered", "double")}
            added = s["L"] - s["P"]
            v: dict[str, Any] = {
                "post_days": n,
                "log_units_per_day": s["L"].mean(), "pixel_only_units_per_day": s["P"].mean(),
                "capi_added": int(added.sum()), "capi_added_per_day": added.mean(),
                "acr_like": added.sum() / s["P"].sum() if s["P"].sum() else None,
                "recovered": int(s["recovered"].sum()), "recovered_per_day": s["recovered"].mean(),
                "server_double_counted": int(s["double"].sum()), "server_double_counted_per_day": s["double"].mean(),
                "unlinked_added": 0, "unlinked_added_per_day": 0.0,
            }
            causes = {k: self.series(pl, c, ("cause", k), days).sum() / n for k in CAUSES[:-1]}
            causes["other"] = v["server_double_counted_per_day"] - sum(causes.values())
            v["server_double_counted_by_cause_per_day"] = causes
            v["recovered_by_consent_per_day"] = {k: self.series(pl, c, ("consent", k), days).sum() / n
                                                 for k in CONSENT_STATES}
            v["recovered_by_tier_per_day"] = {k: self.series(pl, c, ("tier", k), days).sum() / n for k in TIERS}
            post = set(days)  # currencies of units on post days (the metric sums those days only)
            curs = sorted({k[4] for k in self.acc if k[0] == pl and k[1] == c and k[3] == "value" and k[2] in post})
            vals = {}
            for cur in curs:
                def vs(kind: str, cur: str = cur, c: str = c) -> float:
                    return float(sum(self.acc.get((pl, c, d, "value", cur, kind), 0.0) for d in days)) / n
                rec, dbl = vs("recovered"), vs("double")
                vals[cur] = {"capi_added_value_per_day": rec + dbl, "recovered_value_per_day": rec,
                             "server_double_counted_value_per_day": dbl, "unlinked_added_value_per_day": 0.0}
            v["value_per_currency"] = vals
            if pl == "google" and c != "Purchase":  # no [[google_actions]] written: primary unknown
                v["reliable"] = False
            out[c] = v
        return out

    def recovery(self, pl: str, report: np.ndarray) -> dict[str, Any]:
        """§3.4 point values and §3.5 bridge per class with report rows (the report carries
        'Purchase' only), from the written conversion-dated report and the label series."""
        per = self.periods(pl, report)
        out: dict[str, Any] = {}
        for c in self.classes(pl):
            if c != "Purchase":
                out[c] = {"available": False}
                continue
            n = per["weeks"]
            if n < 1:
                out[c] = {"available": False}
                continue
            pre, post = per["pre_window"], per["post_window"]
            r0, r1 = np.nanmean(report[pre]), np.nanmean(report[post])
            p0 = self.series(pl, c, "P", pre).mean()
            l1, p1 = self.series(pl, c, "L", post).mean(), self.series(pl, c, "P", post).mean()
            o0, o1 = self.orders[pre].mean(), self.orders[post].mean()
            rec, dbl = self.series(pl, c, "recovered", post).mean(), self.series(pl, c, "double", post).mean()
            rho0, rho1, pi0, pi1 = r0 / p0, r1 / l1, p0 / o0, p1 / o1
            gaps = [d for d in self.params.report_gap_days if d in set(per["pre"]) | set(per["post"])]
            out[c] = {
                "whole_weeks": n, "pre_days": 7 * n, "post_days": 7 * n,
                "R_pre_per_day": r0, "R_post_per_day": r1, "L_pre_per_day": p0, "L_post_per_day": l1,
                "P_pre_per_day": p0, "P_post_per_day": p1, "O_pre_per_day": o0, "O_post_per_day": o1,
                "reported_change_per_day": r1 - r0,
                "capi_reported_per_day": rho1 * (l1 - p1),
                "capi_reported_recovered_per_day": rho1 * rec,
                "capi_reported_double_counted_per_day": rho1 * dbl,
                "capi_reported_unlinked_per_day": 0.0,
                "net_new_per_day": rho0 * pi0 * (o1 - o0),
                "pixel_capture_change_per_day": rho0 * (pi1 - pi0) * o1,
                "attribution_change_per_day": (rho1 - rho0) * p1,
                "rho_pre": rho0, "rho_post": rho1, "rho_change": rho1 - rho0, "pi_pre": pi0, "pi_post": pi1,
                "report_coverage": {"gaps": [self._iso(d) for d in sorted(gaps)],
                                    "settle_days_dropped": [self._iso(d) for d in per["settle"]]},
            }
        return out

    def _iso(self, d: int) -> str:
        import datetime as dt

        return (dt.date.fromisoformat(self.params.start) + dt.timedelta(days=d)).isoformat()
