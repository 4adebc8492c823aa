"""Ground truth from the planted labels, accumulated day by day.

Nothing here reads the written files or calls the metric code: every figure follows from the
labels the generator drew (which defect, was the pixel lost, was the send rejected, ...) by the
platform rules written out per defect, plus exact counting of generated values where the rule is
about values (shared values).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from capi_audit.synth import linkage as linkage_truth
from capi_audit.synth.effect_truth import EffectTruth
from capi_audit.synth.generate import D, OrderDay, PlatformDay
from capi_audit.synth.params import ScenarioParams

SHARED_THRESHOLDS = {"em": 0.02, "ph": 0.02, "external_id": 0.02, "fn": 0.05, "ln": 0.05,
                     "client_ip_address": 0.02, "client_user_agent": 0.20, "fbp": 0.02,
                     "fbc": 0.02, "gclid": 0.02}
SHARED_MIN_ROWS = 10
MATCH_KEYS = ("em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id",
              "client_ip_address", "client_user_agent", "fbc", "fbp", "gclid")
# Meta's rejected customer-information combinations (an event whose keys are a subset of one):
# https://developers.facebook.com/docs/marketing-api/conversions-api/best-practices (domain/meta.md §1.7)
META_WEAK_SETS = (
    frozenset({"ct", "country", "st", "zp", "ge", "client_user_agent"}),
    frozenset({"db", "client_user_agent"}),
    frozenset({"fn", "ge"}),
    frozenset({"ln", "ge"}),
)
META_AGE_LIMIT_S = 7 * 86400
CLICK_MAX_AGE_S = 90 * 86400
# rules that are Meta's alone (Google Ads uploads have no send-age limit and no fbc/fbp/action_source)
META_ONLY_RULES = frozenset({"event_too_old", "missing_action_source", "website_missing_user_agent",
                             "website_missing_source_url", "malformed_fbc", "malformed_fbp", "click_id_too_old"})
RULES = ("event_too_old", "event_in_future", "missing_action_source", "website_missing_user_agent",
         "website_missing_source_url", "purchase_missing_value", "purchase_missing_currency",
         "invalid_currency", "insufficient_customer_keys", "unhashed_key", "malformed_fbc",
         "malformed_fbp", "click_id_too_old")


def _day_of(t: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    return np.searchsorted(bounds, t, side="right") - 1


def add_consent_counts(c, o, has_px, sent, post) -> None:
    """Fold one day's consent labels into counter c (test orders left out): known / denied /
    granted orders, those the pixel missed, and granted post-enable orders the server missed."""
    nt = ~o.is_test
    known, granted, denied = ~o.unknown & nt, ~o.unknown & ~o.denied & nt, o.denied & nt
    c["known"] += int(known.sum())
    c["denied"] += int(denied.sum())
    c["granted"] += int(granted.sum())
    c["consent_unknown"] += int((o.unknown & nt).sum())
    c["denied_no_pixel"] += int((denied & ~has_px).sum())
    c["granted_no_pixel"] += int((granted & ~has_px).sum())
    c["granted_post"] += int((granted & post).sum())
    c["granted_post_no_server"] += int((granted & post & ~sent).sum())


@dataclass
class PlatformTruth:
    """Running sums for one platform."""

    dedup: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    dc: Counter = field(default_factory=Counter)
    dc_conv_extra: int = 0
    rec: Counter = field(default_factory=Counter)
    consent: Counter = field(default_factory=Counter)
    keys: Counter = field(default_factory=Counter)
    tiers: Counter = field(default_factory=Counter)
    rules: Counter = field(default_factory=Counter)
    values: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    rows: int = 0
    latency: list = field(default_factory=list)
    report: dict[tuple[int, str], float] = field(default_factory=lambda: defaultdict(float))
    expected: dict[tuple[int, str], float] = field(default_factory=lambda: defaultdict(float))
    orders_per_day: Counter = field(default_factory=Counter)
    recovered_post_days: int = 0
    # v2 linkage / dedup / double counting (synth/linkage.py)
    dc2: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    counted_by: Counter = field(default_factory=Counter)
    linkage: Counter = field(default_factory=Counter)
    orders_reached: dict[str, set] = field(default_factory=lambda: defaultdict(set))
    hash: Counter = field(default_factory=Counter)


class Truth:
    """Accumulates every figure a scenario determines; `result()` gives the truth.json body."""

    def __init__(self, params: ScenarioParams, bounds: np.ndarray, *, full: bool = True) -> None:
        self.full = full  # False: only the platform-count replay (for the report), bounded memory
        self.params = params
        self.bounds = bounds
        self.p: dict[str, PlatformTruth] = {pl: PlatformTruth() for pl in params.platforms}
        self.rows_written: Counter = Counter()
        from capi_audit.synth.google import GoogleTruth

        self.google = GoogleTruth()
        # §3.3–§3.5 truth (synth/effect_truth.py); the written report per platform (synth/reports.py)
        self.effect = EffectTruth(params, bounds) if full else None
        self.report_written: dict[str, np.ndarray] = {}

    def add_day(self, o: OrderDay, pds: list[PlatformDay]) -> None:
        """Fold one day's labels into the sums."""
        for p in pds:
            self._platform_day(o, p, self.p[p.platform])
        if self.effect is not None:
            self.effect.add_day(o, pds)

    def report_counts(self, platform: str) -> np.ndarray:
        """The platform's count per day behind its report (test orders included)."""
        if self.effect is not None:
            return self.effect.count_all[platform]
        t = self.p[platform]
        return np.array([t.report.get((d, "Purchase"), 0.0) for d in range(self.params.days)])

    def _platform_day(self, o: OrderDay, p: PlatformDay, t: PlatformTruth) -> None:
        nt = ~o.is_test
        d = p.defect
        W = META_WINDOW if p.platform == "meta" else np.inf
        E = p.enable
        # ---- rows at or after enablement (dedup, double counting) ----
        r1 = p.fired & (p.tp >= E)
        r2 = p.reload & (p.tr >= E)
        prow = r1.astype(int) + r2.astype(int)
        pid = d != D["pixel_missing_event_id"]
        pfirst = np.where(r1, p.tp, p.tr)
        # v1 (recovery, still v1) leaves out only logged rejections: a too-old send with no logged
        # status counts there, keyed by its order id
        S = p.sent & ((d != D["too_old"]) | p.row_flags["old_unlogged"])
        k0s = S & np.isin(d, [D["none"], D["pixel_missing_event_id"], D["late"],
                              D["retry_same_key"], D["retry_new_id"], D["too_old"]])
        rn = p.row_flags["reload_no_eid"]  # a reload without eid is its own key-less row
        k0p = (r1 | (r2 & ~rn)) & pid
        within = np.abs(p.sent_at - pfirst) <= W
        idm, rnew, name = S & (d == D["id_mismatch"]), S & (d == D["retry_new_id"]), S & (d == D["name_mismatch"])
        smiss = S & (d == D["server_missing_event_id"])
        linkage_truth.add_dedup(o, p, t, W)
        # v1 double counting per order (any event name), post rows, test orders out: recovery
        # still reads it through `double_counting.extra_counts` (conversion event only)
        k0 = k0p | k0s
        keys = k0.astype(int) + (idm | rnew).astype(int) + name.astype(int)
        m = prow * (~pid) + smiss.astype(int) + (r2 & rn).astype(int)
        outside = k0p & k0s & ~within
        counted = keys + outside.astype(int) + m
        counted = np.where(nt, counted, 0)
        t.dc["counted_events"] += int(counted.sum())
        t.dc["orders_matched"] += int((counted >= 1).sum())
        t.dc["orders_double_counted"] += int((counted >= 2).sum())
        causes = {
            "outside_window": outside,
            "id_mismatch": k0p & idm,
            "missing_event_id": np.where(keys >= 1, m, np.maximum(m - 1, 0)),
            "name_mismatch": k0p & name,
            "server_retry_new_id": rnew,
        }
        total_extra = 0
        for cause, arr in causes.items():
            v = int((np.asarray(arr, dtype=int) * nt).sum())
            t.dc[cause] += v
            total_extra += v
        assert total_extra == int(np.maximum(counted - 1, 0).sum()), "cause attribution must add up"
        # conversion event only ('Purchase'): extra counts beyond one per order, for recovery
        keys_c = k0.astype(int) + (idm | rnew).astype(int)
        counted_c = np.where(nt, keys_c + outside.astype(int) + m, 0)
        t.dc_conv_extra += int(np.maximum(counted_c - 1, 0).sum())
        # ---- recovery: orders created at/after enablement, by channels carrying the order ----
        post_order = nt & (o.t0 >= E)
        has_px = p.fired
        t.rec["orders_post_pixel_and_server"] += int((post_order & has_px & S).sum())
        t.rec["orders_post_server_only"] += int((post_order & ~has_px & S).sum())
        t.rec["orders_post_pixel_only"] += int((post_order & has_px & ~S).sum())
        t.rec["orders_post_unreported"] += int((post_order & ~has_px & ~S).sum())
        t.orders_per_day[o.day] += int(nt.sum())
        # ---- replay of the platform's count per day (all rows; report includes test orders) ----
        self._replay(o, p, t, S, k0s, idm, rnew, name, smiss, pid, W)
        # ---- consent (all days) ----
        denied = o.denied & nt
        sent_any = p.sent  # any server send, accepted or not, counts as sent
        c = t.consent
        add_consent_counts(c, o, has_px, sent_any, o.t0 >= E)
        self._consent_rules(o, p, c, denied, has_px, sent_any)
        # ---- server rows: match keys, validation, latency (all sent rows, test orders out) ----
        if self.full:  # these sums grow with the data (value counts, latencies)
            self._server_rows(o, p, t, nt)
            if p.google is not None:
                self.google.add(o, p, p.google)
                self.google.add_ga4(o, p, p.google)

    @staticmethod
    def _consent_rules(o, p, c, denied, has_px, sent_any) -> None:
        """Violations under design §3.6: Meta LDU restricts US orders only; Google sends are
        restricted when marked ad_user_data denied (planted with the same label); a Google tag hit
        for a denied order violates only with a click id (else it is a cookieless ping)."""
        if p.platform == "meta":
            restricted = p.ldu & (o.country == "US")
            identifying = has_px
        else:
            restricted = p.ldu
            on_hit = p.row_flags["pixel_gclid"] & (p.keys["gclid"] != "")
            identifying = has_px & on_hit
            rows = p.fired.astype(int) + p.reload.astype(int)
            c["cookieless_pings"] += int((rows * (o.denied & ~on_hit)).sum())
        c["pixel_fired_without_consent"] += int((denied & identifying).sum())
        c["server_sent_without_consent"] += int((denied & sent_any & ~restricted).sum())
        c["server_sent_restricted"] += int((denied & sent_any & restricted).sum())
        c["ldu_outside_us"] += int((denied & sent_any & p.ldu & (o.country != "US")).sum()) if p.platform == "meta" else 0

    def _replay(self, o, p, t, S, k0s, idm, rnew, name, smiss, pid, W) -> None:
        b = self.bounds
        day_t0, day_tp, day_tr = _day_of(o.t0, b), _day_of(p.tp, b), _day_of(p.tr, b)
        units = linkage_truth.replay_units(o, p, W, day_t0, day_tp, day_tr)
        for mask, days, ev in units:
            for dd_, test in zip(days[mask], o.is_test[mask], strict=True):
                if 0 <= dd_ < self.params.days:
                    t.report[(int(dd_), ev)] += 1
                    if not test:
                        t.expected[(int(dd_), ev)] += 1

    def _server_rows(self, o: OrderDay, p: PlatformDay, t: PlatformTruth, nt: np.ndarray) -> None:
        d = p.defect
        from capi_audit.synth.google import other_action_rows

        oa = other_action_rows(p) * nt  # second-action uploads: copies of the clean first send
        mult = (p.sent & nt).astype(int) * (1 + np.isin(d, [D["retry_same_key"], D["retry_new_id"]])) + oa
        sub = p.row_flags["subscribe"] & nt  # synth/ids.py: a Subscribe copy of the first server row
        mult = mult + sub.astype(int)
        if not mult.any():
            return
        t.rows += int(mult.sum())
        linkage_truth.add_hash_agreement(p, mult, t)
        L = p.key_labels
        present = {k: p.keys[k] != "" for k in MATCH_KEYS}
        plain = {k: np.zeros(len(d), bool) for k in MATCH_KEYS}
        plain["em"], plain["ph"] = L["em_plain"], L["ph_plain"]
        valid = dict(present)
        valid["em"] = present["em"] & ~L["em_invalid"]
        valid["ph"] = present["ph"] & ~L["ph_plain"]
        valid["client_ip_address"] = present["client_ip_address"] & ~L["ip_private"]
        valid["client_user_agent"] = present["client_user_agent"] & ~L["ua_lib"]
        valid["fbp"] = present["fbp"] & ~L["fbp_bad"]
        valid["fbc"] = present["fbc"] & ~L["fbc_sec"]
        for k in MATCH_KEYS:
            t.keys[(k, "present")] += int((present[k] * mult).sum())
            t.keys[(k, "valid")] += int((valid[k] * mult).sum())
            t.keys[(k, "plaintext_pii")] += int((plain[k] * mult).sum())
            if k in SHARED_THRESHOLDS:
                vals = p.keys[k]
                ok = present[k] & ~plain[k]
                for v, n in zip(vals[ok], mult[ok], strict=True):
                    if n:
                        t.values[k][v] += int(n)
        strong = valid["em"] | valid["ph"]
        click = ~strong & (valid["fbc"] | valid["gclid"])
        browser = ~strong & ~click & valid["fbp"] & valid["client_ip_address"] & valid["client_user_agent"]
        none = ~strong & ~click & ~browser
        for name_, arr in (("strong", strong), ("click", click), ("browser", browser), ("none", none)):
            t.tiers[name_] += int((arr * mult).sum())
        f = p.row_flags
        meta = p.platform == "meta"
        rules = dict.fromkeys(RULES, np.zeros(len(d), bool))
        if meta:
            rules["event_too_old"] = d == D["too_old"]
            rules["missing_action_source"] = f["action_source_missing"]
            rules["website_missing_user_agent"] = ~f["action_source_missing"] & ~present["client_user_agent"]
            rules["website_missing_source_url"] = ~f["action_source_missing"] & f["url_missing"]
            keysets = [frozenset(k for k in MATCH_KEYS if k != "gclid" and present[k][i]) for i in range(len(d))]
            rules["insufficient_customer_keys"] = np.array(
                [any(ks <= weak for weak in META_WEAK_SETS) for ks in keysets], dtype=bool)
            rules["malformed_fbc"] = L["fbc_sec"]
            rules["malformed_fbp"] = L["fbp_bad"]
            rules["click_id_too_old"] = L["fbc_stale"]
        else:
            rules["insufficient_customer_keys"] = ~present["gclid"] & ~present["em"] & ~present["ph"]
        rules["purchase_missing_value"] = f["value_missing"]
        rules["purchase_missing_currency"] = f["currency_missing"]
        rules["invalid_currency"] = f["currency_invalid"]
        rules["unhashed_key"] = L["em_plain"] | L["ph_plain"]
        for r, arr in rules.items():
            # purchase rules apply to the conversion class: the second-action copies (Offline purchase)
            # are not in it without a [[google_actions]] catalogue
            m = mult - oa if r.startswith("purchase_") else mult
            t.rules[r] += int((arr * m).sum())
        lat1 = p.sent_at - o.t0
        sel1 = p.sent & nt
        retry = sel1 & np.isin(d, [D["retry_same_key"], D["retry_new_id"]])
        t.latency.append(lat1[sel1])
        t.latency.append((lat1 + p.retry_delay)[retry])
        t.latency.append(lat1[oa > 0])
        t.latency.append(lat1[sub])

    # ------------------------------------------------------------------------------------
    def result(self) -> dict[str, Any]:
        """The truth.json body (design §4 sections the scenario determines)."""
        out: dict[str, Any] = {"load": {k: {"rows_read": v, "rows_loaded": v, "rows_rejected": 0}
                                        for k, v in sorted(self.rows_written.items())},
                               "linkage": {}, "dedup": {}, "double_counting": {}, "recovery": {}, "match_keys": {},
                               "consent": {}, "validation": {}, "latency": {},
                               "google": {"available": False, "reason": "no Google Ads events loaded"}}
        for pl, t in self.p.items():
            out["linkage"][pl] = linkage_truth.linkage_result(t)
            out["dedup"][pl] = self._dedup(pl, t)
            out["double_counting"][pl] = {cls: linkage_truth.dc_result(c) for cls, c in sorted(t.dc2.items())
                                          if c["orders_matched"]}
            if self.effect is not None:
                out.setdefault("capi_effect", {})[pl] = self.effect.capi_effect(pl)
                if pl == "google" and self.google.c["server_rows"]:
                    out["capi_effect"]["ga4"] = self.effect.capi_effect("ga4")
                out["recovery"][pl] = self.effect.recovery(pl, self.report_written[pl])
            out["consent"][pl] = self._consent(t)
            out["match_keys"][pl] = self._match_keys(t)
            out["validation"][pl] = {r: t.rules.get(r, 0) for r in RULES
                                     if pl == "meta" or r not in META_ONLY_RULES}
            out["latency"][pl] = self._latency(pl, t)
            if pl == "google" and self.google.c["server_rows"]:
                out["match_keys"][pl].update(self.google.match_keys())
                out["consent"][pl]["cookieless_pings"] = t.consent["cookieless_pings"]
                out["validation"][pl]["address_field_hashed"] = self.google.c["address_field_hashed"]
                out["validation"][pl]["consent_missing_ad_user_data"] = self.google.c["consent_missing_ad_user_data"]
                out["google"] = self.google.section(out["match_keys"][pl]["identifier_tiers"])
                for sec, vals in self.google.ga4_sections().items():
                    if vals:
                        out[sec]["ga4"] = vals
        return out

    params_conversion = "Purchase"

    def _dedup(self, pl: str, t: PlatformTruth) -> dict[str, Any]:
        res = {}
        ed = self.params.enable_day[pl]
        for ev, c in sorted(t.dedup.items()):
            exp = sum(v for (day, e), v in t.expected.items() if e == ev and day >= ed)
            written = self.report_written.get(pl)
            rep = float(np.nansum(written[ed:])) if written is not None else 0.0
            res[ev] = linkage_truth.dedup_result(c)
            res[ev]["expected_platform_count"] = int(exp)
            # the written report carries the conversion event only
            res[ev]["report_gap"] = float(rep - exp) if ev == self.params_conversion else None
            res[ev]["report_to_log_ratio"] = rep / exp if ev == self.params_conversion and exp else None
            res[ev]["counted_by_platform"] = {
                "rejected": int(t.counted_by[(ev, "rejected")]),
                "assumed_rejected": int(t.counted_by[(ev, "assumed_rejected")]),
                "batch_collateral": int(t.counted_by[(ev, "batch_collateral")]),
                "test_order_events": int(t.counted_by[(ev, "test_order_events")]),
                "test_event_code_counted": 0}
        return res

    def _consent(self, t: PlatformTruth) -> dict[str, Any]:
        c = t.consent
        div = lambda a, b: a / b if b else None  # noqa: E731
        return {
            "consent_unknown": c["consent_unknown"],
            "denied_rate": div(c["denied"], c["known"]),
            "consent_drop_rate": div(c["denied_no_pixel"], c["known"]),
            "browser_loss_rate": div(c["granted_no_pixel"], c["granted"]),
            "server_gap_rate": div(c["granted_post_no_server"], c["granted_post"]),
            "pixel_fired_without_consent": c["pixel_fired_without_consent"],
            "server_sent_without_consent": c["server_sent_without_consent"],
            "server_sent_restricted": c["server_sent_restricted"],
            "ldu_outside_us": c["ldu_outside_us"],
            "denied_rate_n": c["known"], "consent_drop_rate_n": c["known"], "browser_loss_rate_n": c["granted"],
            "server_gap_rate_n": c["granted_post"],
            "by_consent_type": {"ad_storage": {"denied_rate": div(c["denied"], c["known"]), "denied_rate_n": c["known"]},
                                "ad_user_data": {"denied_rate": None, "denied_rate_n": 0}},
        }

    def _match_keys(self, t: PlatformTruth) -> dict[str, Any]:
        n = t.rows
        res: dict[str, Any] = {}
        for k in MATCH_KEYS:
            res[k] = {m: (t.keys[(k, m)] / n if n else None) for m in ("present", "valid", "plaintext_pii")}
            if k in SHARED_THRESHOLDS:
                limit = max(SHARED_MIN_ROWS, SHARED_THRESHOLDS[k] * n)
                shared = sum(c for c in t.values[k].values() if c >= limit)
                res[k]["shared_value"] = shared / n if n else None
        res["identifier_tiers"] = {k: (t.tiers[k] / n if n else None) for k in ("strong", "click", "browser", "none")}
        res["hash_agreement"] = linkage_truth.hash_agreement_result(t)
        return res

    def _latency(self, pl: str, t: PlatformTruth) -> dict[str, Any]:
        lat = np.concatenate(t.latency) if t.latency else np.array([])
        if not len(lat):
            return {"median_s": None, "p95_s": None, "share_over_1h": None, "share_over_24h": None,
                    "share_over_age_limit": None}
        limit = META_AGE_LIMIT_S if pl == "meta" else None
        return {
            "median_s": float(np.percentile(lat, 50)),
            "p95_s": float(np.percentile(lat, 95)),
            "share_over_1h": float((lat > 3600).mean()),
            "share_over_24h": float((lat > 86400).mean()),
            "share_over_age_limit": float((lat > limit).mean()) if limit else None,
        }


META_WINDOW = 48 * 3600
