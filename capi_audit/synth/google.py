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
  ping (the generator already fires such hits; the truth counts them as pings, not violations).
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


@dataclass(frozen=True)
class GoogleParams:
    """Rates of the Google behaviours (per order)."""

    address_presence: tuple[tuple[str, float], ...] = (("ct", 0.30), ("st", 0.20), ("zp", 0.40), ("country", 0.50))
    address_hashed_rate: float = 0.03     # address fields sent hashed (Google cannot match them)
    ecfw_rate: float = 0.70               # tag conversions after enablement that get an enhancement
    ecfw_late_rate: float = 0.05          # ... of which arrive after 24 h
    ecfw_orphan_rate: float = 0.03        # orders without a tag conversion that still get one


@dataclass
class GoogleDay:
    """Per-order Google labels for one day (arrays aligned with OrderDay)."""

    addr: dict[str, np.ndarray]           # clear value sent per address key ("" = absent)
    addr_hashed: np.ndarray               # the present address fields are sent hashed
    enhanced: np.ndarray                  # an enhancement is sent for the order
    enh_time: np.ndarray                  # its adjustment time (epoch s)
    orphan: np.ndarray                    # the enhanced order has no tag conversion


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
    return GoogleDay(addr, hashed, enhanced, enh_time, enhanced & ~tag_conv)


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
    return f


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

    def add(self, o: OrderDay, p: PlatformDay, g: GoogleDay) -> None:
        """Fold one day's labels in (the google platform only)."""
        nt = ~o.is_test
        pid = p.defect != D["pixel_missing_event_id"]
        tag_conv = p.fired & pid
        c = self.c
        c["tag_conversions"] += int((tag_conv & nt).sum())
        # tag hits without a transaction id (every order: a hit without id names no order)
        c["tag_without_id"] += int((p.fired & ~pid).sum())
        delay = g.enh_time - p.tp
        c["enhanced_24h"] += int((g.enhanced & tag_conv & (delay <= ENHANCE_WINDOW_S)).sum())
        c["enhanced_late"] += int((g.enhanced & tag_conv & (delay > ENHANCE_WINDOW_S)).sum())
        c["orphans"] += int(g.orphan.sum())
        c["enhancement_rows"] += int(g.enhanced.sum())
        # server rows (first send and retries), test orders out
        mult = (p.sent & nt).astype(int) * (1 + np.isin(p.defect, [D["retry_same_key"], D["retry_new_id"]]))
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
        }}

    def match_keys(self) -> dict:
        """Address-key figures of summary section `match_keys` (google)."""
        rows = self.c["server_rows"]
        return {k: {"present": self.c[f"{k}_present"] / rows, "valid": self.c[f"{k}_valid"] / rows,
                    "plaintext_pii": 0.0} for k in ADDRESS_KEYS} if rows else {}
