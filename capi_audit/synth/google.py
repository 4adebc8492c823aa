"""Google realism planted into a scenario, with the labels its truth is computed from.

What this module plants on the `google` platform (Google Ads conversion actions):
- uploads state `ad_user_data` (not ad storage): a restricted send for a denied order is marked
  DENIED, a violating one leaves it unspecified, other orders carry their consent;
- city, region, postal code and country in clear on uploads (Google wants them unhashed), with a
  small share sent hashed by mistake (`address_field_hashed`);
- enhanced conversions for web: an enhancement per tag conversion (by order id) for a share of
  the orders after enablement, most within the hour, some after 24 h (late), and a few for orders
  the tag never counted (no tag conversion to enhance);
- Advanced Consent Mode: a Google tag hit for a denied order without a click id is a cookieless
  ping (the generator already fires such hits; the truth counts them as pings, not violations);
- tag and upload to the SAME action (`Purchase`: deduplicated on transaction_id) and to a
  DIFFERENT one: a share of the clean sends is uploaded again to `Offline purchase`
  (`other_action`), which Google does not deduplicate with the tag; with no `[[google_actions]]`
  every action counts as primary, so such an order (like one the case-variant `purchase` send
  also counts) is counted by two primary actions (`primary_action_overlap`), and the added unit
  is a double count of an already counted order, never a recovery, unless the tag missed it.
On `ga4` (its own platform, same browser as the Google tag): a GA4 `purchase` hit whenever the
Google tag fires, some with an empty transaction id, reloads that repeat the hit, and Measurement
Protocol purchases from the server (consent ad_user_data as on uploads, country in clear, a few
backdated over 72 h, which GA4 drops).
On Meta it plants nothing new; the truth rule for LDU is that it restricts US orders only.

Every figure of the truth comes from these labels (`GoogleDay`) and the generator's, never from
the metric code.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from capi_audit.synth.generate import D, OrderDay, PlatformDay

ADDRESS_KEYS = ("ct", "st", "zp", "country")
CITIES = {"DE": ("berlin", "hamburg", "munich"), "FR": ("paris", "lyon"), "US": ("newyork", "austin", "denver"),
          "GB": ("london", "leeds")}
REGIONS = {"DE": ("be", "hh", "by"), "FR": ("idf", "ara"), "US": ("ny", "tx", "co"), "GB": ("eng", "eng")}
ENHANCE_WINDOW_S = 24 * 3600
OTHER_ACTION = "Offline purchase"  # a second upload action (UPLOAD_CLICKS), not deduplicated with the tag
GA4_ID = "G-SYNTH0001"
MP_BACKDATE_S = 72 * 3600


@dataclass(frozen=True)
class GoogleParams:
    """Rates of the Google behaviours (per order)."""

    address_presence: tuple[tuple[str, float], ...] = (("ct", 0.30), ("st", 0.20), ("zp", 0.40), ("country", 0.50))
    address_hashed_rate: float = 0.03     # address fields sent hashed (Google cannot match them)
    ecfw_rate: float = 0.70               # tag conversions after enablement that get an enhancement
    ecfw_late_rate: float = 0.05          # ... of which arrive after 24 h
    ecfw_orphan_rate: float = 0.03        # orders without a tag conversion that still get one
    ga4_empty_tid_rate: float = 0.04      # GA4 purchase hits with an empty transaction id
    ga4_reload_rate: float = 0.08         # GA4 purchase hits repeated by a reload of the thank-you page
    mp_rate: float = 0.60                 # server sends that also go to GA4 by Measurement Protocol
    mp_backdated_rate: float = 0.03       # ... of which are sent more than 72 h after the purchase
    other_action_rate: float = 0.08       # clean server sends uploaded again to a second action (OTHER_ACTION)


@dataclass
class GoogleDay:
    """Per-order Google labels for one day (arrays aligned with OrderDay)."""

    addr: dict[str, np.ndarray]           # clear value sent per address key ("" = absent)
    addr_hashed: np.ndarray               # the present address fields are sent hashed
    enhanced: np.ndarray                  # an enhancement is sent for the order
    enh_time: np.ndarray                  # its adjustment time (epoch s)
    orphan: np.ndarray                    # the enhanced order has no tag conversion
    ga4_empty: np.ndarray = None          # GA4 hit without transaction id
    ga4_reload: np.ndarray = None         # GA4 hit repeated
    ga4_tr: np.ndarray = None             # time of the repeat (epoch s)
    mp_sent: np.ndarray = None            # Measurement Protocol purchase sent
    mp_sent_at: np.ndarray = None         # its send time (epoch s)
    other_action: np.ndarray = None       # the (clean, defect-free) server send is also uploaded to OTHER_ACTION


def _sha(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def plant(seed: int, o: OrderDay, p: PlatformDay, gp: GoogleParams = GoogleParams()) -> GoogleDay:
    """Draw the Google labels for one day's orders (own random stream)."""
    rng = np.random.default_rng([seed, o.day, 97])
    n = len(o.t0)
    pick = rng.integers(0, 1 << 30, n)
    addr: dict[str, np.ndarray] = {}
    for k, rate in gp.address_presence:
        present = rng.random(n) < rate
        if k == "country":
            vals = np.array(list(o.country), dtype=object)
        elif k == "ct":
            vals = np.array([CITIES[c][x % len(CITIES[c])] for c, x in zip(o.country, pick, strict=True)], dtype=object)
        elif k == "st":
            vals = np.array([REGIONS[c][x % len(REGIONS[c])] for c, x in zip(o.country, pick, strict=True)], dtype=object)
        else:
            vals = np.array([f"{10000 + (x % 89999):05d}" for x in pick], dtype=object)
        addr[k] = np.where(present, vals, "")
    hashed = rng.random(n) < gp.address_hashed_rate
    u = rng.random(n)
    late = rng.random(n) < gp.ecfw_late_rate
    delay = np.where(late, rng.integers(25 * 3600, 40 * 3600, n), rng.integers(60, 3600, n))
    tag_conv = p.fired & (p.defect != D["pixel_missing_event_id"])
    post = o.t0 >= p.enable
    nt = ~o.is_test
    enhanced = post & nt & np.where(tag_conv, u < gp.ecfw_rate, u < gp.ecfw_orphan_rate)
    enh_time = np.where(tag_conv, p.tp, o.t0) + delay
    ga4_empty = rng.random(n) < gp.ga4_empty_tid_rate
    ga4_reload = p.fired & (rng.random(n) < gp.ga4_reload_rate)
    ga4_tr = p.tp + 1 + rng.integers(30, 900, n)
    mp_sent = p.sent & (rng.random(n) < gp.mp_rate)
    backdated = rng.random(n) < gp.mp_backdated_rate
    mp_sent_at = np.where(backdated, o.t0 + rng.integers(MP_BACKDATE_S + 3600, MP_BACKDATE_S + 30 * 3600, n), p.sent_at + 2)
    other = p.sent & (p.defect == D["none"]) & (rng.random(n) < gp.other_action_rate)
    return GoogleDay(addr, hashed, enhanced, enh_time, enhanced & ~tag_conv, ga4_empty, ga4_reload, ga4_tr,
                     mp_sent, mp_sent_at, other)


def other_action_rows(p: PlatformDay) -> np.ndarray:
    """Per order: how many extra server rows the second-action upload adds (0 or 1)."""
    g = p.google
    return np.zeros(len(p.sent), int) if g is None or g.other_action is None else g.other_action.astype(int)


def rewrite_server(frame: pd.DataFrame, o: OrderDay, p: PlatformDay, g: GoogleDay) -> pd.DataFrame:
    """Google server rows: ad_user_data instead of ad storage, address fields in clear (or hashed)."""
    if not len(frame):
        return frame
    idx = pd.Index(o.order_id).get_indexer(frame["order_id"])
    f = frame.copy()
    f["consent_ad_user_data"] = f["consent_ads"]
    f["consent_ads"] = ""
    for k in ADDRESS_KEYS:
        clear = g.addr[k][idx]
        f[k] = np.where(g.addr_hashed[idx] & (clear != ""), np.array([_sha(v) for v in clear], dtype=object), clear)
    # the same sale uploaded again to a second conversion action (a CRM import next to the tag):
    # Google deduplicates only within one action, so both count (every action primary: no catalogue)
    again = f[g.other_action[idx]].assign(event_name=OTHER_ACTION)
    return pd.concat([f, again]).sort_values(["sent_at", "order_id", "event_name"], kind="stable")


def ga4_pixel_rows(o: OrderDay, p: PlatformDay, g: GoogleDay, consent: np.ndarray) -> pd.DataFrame:
    """GA4 `purchase` hits (the export carries the order in a custom `order_id` parameter)."""
    base = pd.DataFrame({
        "platform": "ga4", "destination": GA4_ID, "event_name": "purchase",
        "event_id": np.where(g.ga4_empty, "", o.order_id), "event_time": (p.tp + 1) * 1000,
        "order_id": o.order_id, "value": o.value, "currency": "EUR", "consent_ads": consent,
        "page_url": ["https://shop.example/checkout/thank-you?order=" + x for x in o.order_id],
    })
    again = base[g.ga4_reload].assign(event_time=g.ga4_tr[g.ga4_reload] * 1000)
    return pd.concat([base[p.fired], again]).sort_values(["event_time", "order_id"], kind="stable")


def ga4_server_rows(o: OrderDay, p: PlatformDay, g: GoogleDay, consent: np.ndarray) -> pd.DataFrame:
    """Measurement Protocol purchases: consent ad_user_data as on uploads, country in clear."""
    m = g.mp_sent
    aud = np.where(o.denied, np.where(p.ldu, "denied", ""), consent)
    return pd.DataFrame({
        "platform": "ga4", "destination": GA4_ID, "event_name": "purchase", "event_id": o.order_id[m],
        "event_time": o.t0[m], "order_id": o.order_id[m], "value": o.value[m], "currency": "EUR",
        "sent_at": list(pd.to_datetime(g.mp_sent_at[m], unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ")),
        "country": o.country[m], "consent_ad_user_data": aud[m], "source_api": "measurement_protocol",
    })


def enhancement_rows(o: OrderDay, g: GoogleDay) -> pd.DataFrame:
    """Canonical `enhancements` rows: one per enhanced order."""
    m = g.enhanced
    times = pd.to_datetime(g.enh_time[m], unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ")
    return pd.DataFrame({"platform": "google", "order_id": o.order_id[m], "adjusted_at": list(times)},
                        columns=["platform", "order_id", "adjusted_at"])


@dataclass
class GoogleTruth:
    """Running sums of the Google figures."""

    c: Counter = field(default_factory=Counter)
    ages: list = field(default_factory=list)
    ga4: Counter = field(default_factory=Counter)
    ga4_lat: list = field(default_factory=list)
    ga4_dd: Counter = field(default_factory=Counter)       # GA4 dedup counters
    ga4_dc: Counter = field(default_factory=Counter)       # GA4 double counting (class Purchase)
    ga4_lk: Counter = field(default_factory=Counter)       # GA4 rows per channel
    ga4_reached: dict = field(default_factory=lambda: {"pixel": set(), "server": set()})

    def add(self, o: OrderDay, p: PlatformDay, g: GoogleDay) -> None:
        """Fold one day's labels in (the google platform only)."""
        nt = ~o.is_test
        pid = p.defect != D["pixel_missing_event_id"]
        tag_conv = p.fired & pid
        c = self.c
        c["tag_conversions"] += int((tag_conv & nt).sum())
        # tag hits without a transaction id (every order: a hit without id names no order): the first
        # hit of an order whose tag drops the id, and every thank-you reload that fires without it
        # (synth/linkage.py `reload_no_eid`; such reloads only happen on orders whose first hit has it)
        no_eid_reload = p.row_flags.get("reload_no_eid", np.zeros(len(pid), bool))
        c["tag_without_id"] += int((p.fired & ~pid).sum()) + int((p.reload & no_eid_reload).sum())
        delay = g.enh_time - p.tp
        c["enhanced_24h"] += int((g.enhanced & tag_conv & (delay <= ENHANCE_WINDOW_S)).sum())
        c["enhanced_late"] += int((g.enhanced & tag_conv & (delay > ENHANCE_WINDOW_S)).sum())
        c["orphans"] += int(g.orphan.sum())
        c["enhancement_rows"] += int(g.enhanced.sum())
        # server rows (first send and retries), test orders out
        mult = (p.sent & nt).astype(int) * (1 + np.isin(p.defect, [D["retry_same_key"], D["retry_new_id"]]))
        mult = mult + other_action_rows(p) * nt
        # conversion classes (every action primary, no catalogue) each order is counted in: Purchase
        # (tag hit or a send under Purchase), purchase (the case-variant send), OTHER_ACTION
        name = p.sent & (p.defect == D["name_mismatch"])
        k = (p.fired | (p.sent & ~name)).astype(int) + name + g.other_action
        c["overlap_orders"] += int(((k > 1) & nt).sum())
        c["overlap_extra"] += int((np.maximum(k - 1, 0) * nt).sum())
        c["orders_with_units"] += int(((k >= 1) & nt).sum())
        gclid = p.keys["gclid"] != ""
        c["server_rows"] += int(mult.sum())
        c["with_gclid"] += int((mult * gclid).sum())
        seen = gclid & p.fired & p.row_flags["pixel_gclid"]
        c["click_age_known"] += int((mult * seen).sum())
        age = (o.t0 - p.tp) / 86400.0  # the server event_time is the order time; the click is first seen at the hit
        self.ages.append(np.repeat(age[seen], mult[seen]))
        consent = np.where(o.unknown, "", np.where(o.denied, "denied", "granted"))
        aud = np.where(o.denied, np.where(p.ldu, "denied", ""), consent)
        c["consent_missing_ad_user_data"] += int((mult * (aud == "")).sum())
        present = {k: g.addr[k] != "" for k in ADDRESS_KEYS}
        for k in ADDRESS_KEYS:
            c[f"{k}_present"] += int((mult * present[k]).sum())
            c[f"{k}_valid"] += int((mult * (present[k] & ~g.addr_hashed)).sum())
        any_addr = np.logical_or.reduce([present[k] for k in ADDRESS_KEYS])
        c["address_field_hashed"] += int((mult * (any_addr & g.addr_hashed)).sum())

    def add_ga4(self, o: OrderDay, p: PlatformDay, g: GoogleDay) -> None:
        """GA4 labels: consent (its pings and sends), keys, validation and latency of MP rows."""
        nt = ~o.is_test
        c = self.ga4
        denied = o.denied & nt
        has_px = p.fired
        from capi_audit.synth.truth import add_consent_counts  # truth imports this module

        # GA4 is enabled with Google (synth/write.py)
        add_consent_counts(c, o, has_px, g.mp_sent, o.t0 >= p.enable)
        # GA4 hits carry no click id: a hit for a denied order (own ad storage denied) is a ping
        c["cookieless_pings"] += int(((p.fired.astype(int) + g.ga4_reload.astype(int)) * o.denied).sum())
        c["server_sent_without_consent"] += int((denied & g.mp_sent & ~p.ldu).sum())
        c["server_sent_restricted"] += int((denied & g.mp_sent & p.ldu).sum())
        self._ga4_units(o, p, g)
        sel = g.mp_sent & nt
        c["rows"] += int(sel.sum())
        c["backdated"] += int((sel & (g.mp_sent_at - o.t0 > MP_BACKDATE_S)).sum())
        self.ga4_lat.append((g.mp_sent_at - o.t0)[sel])

    def _ga4_units(self, o: OrderDay, p: PlatformDay, g: GoogleDay) -> None:
        """GA4 units under GA4's rule (key = measurement id + transaction_id, `purchase`, no window;
        units from GA4's enable time, which is Google's): a hit with a transaction id and its reload are
        one unit; a hit with an empty id (loaded as missing) and its reload are two units without a
        key; a Measurement Protocol purchase joins the hit's unit, else is a unit of its own, unless
        backdated over 72 h (GA4 drops it: assumed rejected)."""
        nt, test = ~o.is_test, o.is_test
        ch = lambda a: int((np.asarray(a, dtype=int) * nt).sum())  # noqa: E731
        E = p.enable  # GA4 is enabled with Google: units whose earliest event is before are out of scope
        hit_post, reload_post = p.fired & (p.tp + 1 >= E), g.ga4_reload & (g.ga4_tr >= E)
        key_px = hit_post & ~g.ga4_empty
        nokey_px = (hit_post.astype(int) + reload_post.astype(int)) * g.ga4_empty
        mp_ok = g.mp_sent & ~(g.mp_sent_at - o.t0 > MP_BACKDATE_S)
        d = self.ga4_dd
        d["both"] += ch(key_px & mp_ok)
        d["pixel_only"] += ch(key_px & ~mp_ok)
        d["server_only"] += ch(mp_ok & ~key_px)
        d["missing_event_id_pixel"] += ch(nokey_px)
        d["pixel_duplicates"] += ch(key_px & g.ga4_reload)
        d["assumed_rejected"] += ch(g.mp_sent & ~mp_ok)
        d["test_order_events"] += int(((p.fired.astype(int) + g.ga4_reload + g.mp_sent) * test).sum())
        # per linked order, class Purchase ('purchase' is its case variant): L from all logs, P from
        # the hits alone; every extra unit is a unit without transaction id
        P = key_px.astype(int) + nokey_px
        L = P + (mp_ok & ~key_px)
        from capi_audit.synth.linkage import CAUSES as DC_CAUSES
        from capi_audit.synth.linkage import _fold_dc

        causes = dict.fromkeys(DC_CAUSES, np.zeros(len(P), int))
        causes["missing_event_id"] = np.maximum(L - 1, 0)
        _fold_dc(self.ga4_dc, L, P, causes, nt, pre={"missing_event_id": np.maximum(P - 1, 0)})
        lk = self.ga4_lk
        lk["pixel_events"] += ch(p.fired.astype(int) + g.ga4_reload)
        lk["server_events"] += ch(g.mp_sent)
        self.ga4_reached["pixel"].update(o.order_id[p.fired & nt])
        self.ga4_reached["server"].update(o.order_id[g.mp_sent & nt])

    def _ga4_dedup_sections(self) -> dict:
        from capi_audit.synth.linkage import dc_result, dedup_result

        d = self.ga4_dd
        if not d["both"] + d["pixel_only"] + d["server_only"] + d["missing_event_id_pixel"]:
            return {}
        dd = dedup_result(d)
        dd["expected_platform_count"] = dd["pixel_units"] + d["server_only"]
        dd["report_gap"] = dd["report_to_log_ratio"] = None
        dd["counted_by_platform"] = {"rejected": 0, "assumed_rejected": d["assumed_rejected"], "batch_collateral": 0,
                                     "test_order_events": d["test_order_events"], "test_event_code_counted": 0}
        link = {chan: {"events": self.ga4_lk[f"{chan}_events"], "linked": self.ga4_lk[f"{chan}_events"],
                       "linked_via_event_id": 0, "link_rate": 1.0, "orders_reached": len(self.ga4_reached[chan]),
                       "orphans": 0} for chan in ("pixel", "server") if self.ga4_lk[f"{chan}_events"]}
        return {"dedup": {"purchase": dd}, "double_counting": {"Purchase": dc_result(self.ga4_dc)},
                "linkage": {**link, "order_key": "auto", "reliable": True}}

    def ga4_sections(self) -> dict:
        """The ga4 parts of consent, match_keys, validation and latency."""
        c = self.ga4
        div = lambda a, b: a / b if b else None  # noqa: E731
        rows = c["rows"]
        lat = np.concatenate(self.ga4_lat) if self.ga4_lat else np.array([])
        consent = {
            "consent_unknown": c["consent_unknown"],
            "denied_rate": div(c["denied"], c["known"]), "denied_rate_n": c["known"],
            "consent_drop_rate": div(c["denied_no_pixel"], c["known"]), "consent_drop_rate_n": c["known"],
            "browser_loss_rate": div(c["granted_no_pixel"], c["granted"]), "browser_loss_rate_n": c["granted"],
            "server_gap_rate": div(c["granted_post_no_server"], c["granted_post"]), "server_gap_rate_n": c["granted_post"],
            "pixel_fired_without_consent": 0, "cookieless_pings": c["cookieless_pings"],
            "server_sent_without_consent": c["server_sent_without_consent"],
            "server_sent_restricted": c["server_sent_restricted"], "ldu_outside_us": 0,
        }
        keys = {"country": {"present": 1.0, "valid": 1.0, "plaintext_pii": 0.0},
                "em": {"present": 0.0, "valid": 0.0, "plaintext_pii": 0.0},
                "identifier_tiers": {"strong": 0.0, "click": 0.0, "browser": 0.0, "none": 1.0}} if rows else {}
        validation = {"mp_backdated_over_72h": c["backdated"], "purchase_missing_value": 0, "invalid_currency": 0,
                      "unhashed_key": 0, "address_field_hashed": 0, "event_in_future": 0}
        latency = {"median_s": float(np.percentile(lat, 50)), "p95_s": float(np.percentile(lat, 95)),
                   "share_over_1h": float((lat > 3600).mean()), "share_over_24h": float((lat > 86400).mean()),
                   "share_over_age_limit": float((lat > MP_BACKDATE_S).mean())} if len(lat) else {}
        return {"consent": consent, "match_keys": keys, "validation": validation, "latency": latency,
                **self._ga4_dedup_sections()}

    def section(self, tiers: dict[str, float | None]) -> dict:
        """The truth of summary section `google`."""
        c = self.c
        n = c["tag_conversions"]
        ages = np.concatenate(self.ages) if self.ages else np.array([])
        rows = c["server_rows"]
        return {"google": {
            "enhanced_conversions": {
                "coverage": c["enhanced_24h"] / n if n else None, "n": n, "enhanced_24h": c["enhanced_24h"],
                "enhanced_late": c["enhanced_late"], "tag_conversions_without_order_id": c["tag_without_id"],
                "enhancements_without_tag_conversion": c["orphans"]},
            "click_ids": {
                "n": rows, "gclid_coverage": c["with_gclid"] / rows if rows else None,
                "any_coverage": c["with_gclid"] / rows if rows else None,
                "gbraid_coverage": 0.0 if rows else None, "click_age_known": c["click_age_known"],
                "over_click_window": 0,
                "median_click_age_days": float(np.percentile(ages, 50)) if len(ages) else None},
            "upload_errors": {"rejected": 0, "rejected_rate": 0.0 if rows else None, "rejected_rate_n": rows,
                              "by_reason": {}},
            "identifier_tiers": {**{k: tiers.get(k) for k in ("strong", "click", "none")}, "n": rows},
            "primary_action_overlap": {"orders": c["overlap_orders"], "extra_counts": c["overlap_extra"],
                                       "rate": c["overlap_orders"] / c["orders_with_units"] if c["orders_with_units"] else None,
                                       "rate_n": c["orders_with_units"]},
        }}

    def match_keys(self) -> dict:
        """Address-key figures of summary section `match_keys` (google)."""
        rows = self.c["server_rows"]
        return {k: {"present": self.c[f"{k}_present"] / rows, "valid": self.c[f"{k}_valid"] / rows,
                    "plaintext_pii": 0.0} for k in ADDRESS_KEYS} if rows else {}
