"""Generate a scenario day by day (vectorized, seeded per day) with the labels behind every row.

Each day's random numbers come from `default_rng([seed, day, stream])`, so a scenario is the same
whatever the chunking, and days can be generated and written one at a time (bounded memory).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from capi_audit.synth import realism
from capi_audit.synth.params import DEFECTS, ScenarioParams

D = {name: i for i, name in enumerate(DEFECTS)}
META_WINDOW_S = 48 * 3600
SERVER_IP = "34.120.55.7"
LIBRARY_UA = "python-requests/2.31.0"
EMPTY_HASH = hashlib.sha256(b"").hexdigest()
GLOBAL_FIRST_OCTETS = np.array([81, 88, 92, 95, 109, 145, 178, 185, 188, 212, 217])


def sha(text: str) -> str:
    """Lowercase hex SHA-256 of UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def day_bounds(params: ScenarioParams) -> np.ndarray:
    """Epoch seconds of local midnight for each scenario day and the day after the last."""
    tz = ZoneInfo(params.timezone)
    start = dt.date.fromisoformat(params.start)
    out = []
    for i in range(params.days + 1):
        d = start + dt.timedelta(days=i)
        out.append(int(dt.datetime(d.year, d.month, d.day, tzinfo=tz).timestamp()))
    return np.array(out, dtype=np.int64)


@dataclass
class Pools:
    """Precomputed customer values and hashes shared by all days."""

    em_plain: np.ndarray
    em_hash: np.ndarray
    ph_digits: np.ndarray
    ph_hash_meta: np.ndarray
    ph_hash_google: np.ndarray
    ext_hash: np.ndarray
    fn_hash: np.ndarray
    ln_hash: np.ndarray
    ct_hash: np.ndarray
    zp_hash: np.ndarray
    st_hash: np.ndarray
    ge_hash: np.ndarray
    db_hash: np.ndarray
    country_hash: dict[str, str]


def build_pools(params: ScenarioParams) -> Pools:
    """Customer pool: emails, E.164 phones, ids and their hashes (Meta and Google rules)."""
    n = params.customer_pool
    em_plain = np.array([f"c{i}@example.com" for i in range(n)], dtype=object)
    digits = np.array([f"49151{i:07d}" for i in range(n)], dtype=object)
    return Pools(
        em_plain=em_plain,
        em_hash=np.array([sha(e) for e in em_plain], dtype=object),
        ph_digits=digits,
        # Meta: digits only, with country code, no '+':
        # https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters
        ph_hash_meta=np.array([sha(p) for p in digits], dtype=object),
        # Google: E.164 with '+': https://developers.google.com/data-manager/api/devguides/concepts/formatting
        ph_hash_google=np.array([sha("+" + p) for p in digits], dtype=object),
        ext_hash=np.array([sha(f"cust-{i}") for i in range(n)], dtype=object),
        fn_hash=np.array([sha(f"first{i}") for i in range(400)], dtype=object),
        ln_hash=np.array([sha(f"last{i}") for i in range(400)], dtype=object),
        ct_hash=np.array([sha(f"city{i}") for i in range(60)], dtype=object),
        zp_hash=np.array([sha(f"{10000 + 37 * i}") for i in range(120)], dtype=object),
        st_hash=np.array([sha(f"s{i}") for i in range(16)], dtype=object),
        ge_hash=np.array([sha("f"), sha("m")], dtype=object),
        db_hash=np.array([sha(f"19{50 + i % 50}0{1 + i % 9}1{i % 10}") for i in range(900)], dtype=object),
        country_hash={c: sha(c.lower()) for c in params.countries},
    )


@dataclass
class OrderDay:
    """One day's orders and their labels."""

    day: int
    order_id: np.ndarray
    t0: np.ndarray
    country: np.ndarray
    unknown: np.ndarray
    denied: np.ndarray
    browser: np.ndarray
    is_test: np.ndarray
    value: np.ndarray
    cust: np.ndarray


@dataclass
class PlatformDay:
    """One platform's labels for one day's orders (arrays aligned with OrderDay)."""

    platform: str
    enable: int
    fired: np.ndarray
    tp: np.ndarray
    defect: np.ndarray
    reload: np.ndarray
    tr: np.ndarray
    sent: np.ndarray
    ldu: np.ndarray
    sent_at: np.ndarray
    retry_delay: np.ndarray
    rnd1: np.ndarray
    rnd2: np.ndarray
    keys: dict[str, np.ndarray]        # per-order key value (server row 1 and its retry), "" = absent
    key_labels: dict[str, np.ndarray]  # per-order defect labels for keys
    row_flags: dict[str, np.ndarray]   # per-order payload flags
    google: Any = None                 # synth.google.GoogleDay on the google platform


def gen_orders(params: ScenarioParams, day: int, bounds: np.ndarray, first_number: int) -> OrderDay:
    """Orders of one local day (Poisson count, weekday pattern, growth after enablement)."""
    rng = np.random.default_rng([params.seed, day, 0])
    start = dt.date.fromisoformat(params.start) + dt.timedelta(days=day)
    lam = params.orders_per_day * params.weekday_factors[start.weekday()]
    if day >= params.enable_day.get("meta", params.days):
        lam *= 1.0 + params.sales_growth_after_enable
    lam *= realism.order_rate_noise(params, day)
    n = int(rng.poisson(lam))
    length = int(bounds[day + 1] - bounds[day])
    t0 = bounds[day] + np.sort(rng.integers(0, length, n))
    names = list(params.countries)
    shares = np.array([params.countries[c][0] for c in names])
    denial = np.array([params.countries[c][1] for c in names])
    cidx = rng.choice(len(names), n, p=shares / shares.sum())
    unknown = rng.random(n) < params.consent_unknown_rate
    denied = ~unknown & (rng.random(n) < denial[cidx])
    bnames = list(params.browsers)
    bshares = np.array([params.browsers[b][0] for b in bnames])
    bidx = rng.choice(len(bnames), n, p=bshares / bshares.sum())
    is_test = rng.random(n) < params.test_order_rate + realism.qa_test_share(params, day)
    value = np.round(rng.lognormal(np.log(55.0), 0.6, n), 2)
    cust = rng.integers(0, params.customer_pool, n)
    ids = np.array([f"ORD-{first_number + i:08d}" for i in range(n)], dtype=object)
    return OrderDay(day, ids, t0, np.array(names, dtype=object)[cidx], unknown, denied, bidx,
                    is_test, value, cust)


def _hex_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.array([f"{v:016x}" for v in rng.integers(0, 2**63 - 1, n, dtype=np.int64)], dtype=object)


def gen_platform(params: ScenarioParams, o: OrderDay, platform: str, pi: int, bounds: np.ndarray,
                 pools: Pools) -> PlatformDay:
    """Pixel and server behaviour of one platform for one day's orders."""
    rng = np.random.default_rng([params.seed, o.day, pi + 1])
    n = len(o.t0)
    enable = int(bounds[params.enable_day[platform]]) if platform in params.enable_day else 2**62
    loss = np.array([params.browsers[b][1] for b in params.browsers])[o.browser]
    loss = loss + realism.capture_drift(params, o.day)
    lost = rng.random(n) < loss
    viol_px = rng.random(n) < params.pixel_despite_denied
    fired = ~lost & (~o.denied | viol_px)
    tp = o.t0 + rng.integers(2, 31, n)
    rates = dict(params.defect_rates)
    if platform != "meta":
        rates["too_old"] = 0.0  # Meta's 7-day rule; Google has no send-age rejection
    probs = np.array([0.0] + [rates.get(d, 0.0) for d in DEFECTS[1:]])
    probs[0] = 1.0 - probs.sum()
    defect = rng.choice(len(DEFECTS), n, p=probs)
    reload = (rng.random(n) < params.pixel_reload_rate) & fired & (defect != D["pixel_missing_event_id"])
    tr = tp + rng.integers(5, 601, n)
    post = o.t0 >= enable
    gap = rng.random(n) < params.server_gap_rate
    viol_srv = rng.random(n) < params.server_despite_denied
    ldu = o.denied & (rng.random(n) < params.ldu_share_of_denied_sends)
    sent = post & ((~o.denied & ~gap) | (o.denied & viol_srv))
    lat = np.clip(np.round(rng.lognormal(np.log(params.latency_median_s), params.latency_sigma, n)),
                  1, params.latency_cap_s).astype(np.int64)
    sent_at = o.t0 + lat
    late_extra = rng.integers(3600, 86401, n)
    sent_at = np.where(defect == D["late"], tp + META_WINDOW_S + late_extra, sent_at)
    old = rng.integers(7 * 86400 + 3600, 9 * 86400 + 1, n)
    sent_at = np.where(defect == D["too_old"], o.t0 + old, sent_at)
    retry_delay = rng.integers(1, 3601, n)
    rnd1, rnd2 = _hex_ids(rng, n), _hex_ids(rng, n)
    keys, labels = _gen_keys(params, rng, o, platform, pools)
    flags = {
        "action_source_missing": rng.random(n) < params.missing_action_source_rate,
        "url_missing": rng.random(n) < params.missing_source_url_rate,
        "value_missing": rng.random(n) < params.missing_value_rate,
    }
    u = rng.random(n)
    flags["currency_missing"] = u < params.missing_currency_rate
    flags["currency_invalid"] = (u >= params.missing_currency_rate) & (
        u < params.missing_currency_rate + params.invalid_currency_rate)
    flags["pixel_gclid"] = rng.random(n) < 0.5
    from capi_audit.synth import linkage

    flags.update(linkage.plant_platform(params, o, platform, pi, defect, reload))
    flags.update(linkage.plant_key_mistakes(params, o, platform, pi, keys, labels, pools))
    flags.update(linkage.plant_requests(params, o, platform, pi, defect, sent, keys))
    from capi_audit.synth import ids

    flags.update(ids.plant(params, o, platform, pi, enable, defect, fired, sent, reload, keys, flags))
    ids.set_owner(flags, tp)
    out = PlatformDay(platform, enable, fired, tp, defect, reload, tr, sent, ldu, sent_at,
                      retry_delay, rnd1, rnd2, keys, labels, flags)
    if platform == "google":
        from capi_audit.synth import google

        out.google = google.plant(params.seed, o, out)
    return out


def _gen_keys(params: ScenarioParams, rng: np.random.Generator, o: OrderDay, platform: str,
              pools: Pools) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    n = len(o.t0)
    pres = params.key_presence.get(platform, {})
    # Draw every presence and defect variate for every key in a fixed order, used or not,
    # so that adding a key to one platform does not shift the other draws.
    names = ("em", "ph", "fn", "ln", "ct", "st", "zp", "country", "ge", "db", "external_id",
             "client_ip_address", "client_user_agent", "fbp", "fbc", "gclid")
    present = {k: rng.random(n) < pres.get(k, 0.0) for k in names}
    u = {k: rng.random(n) for k in ("em", "ph", "ip", "ua", "fbp", "fbc")}
    pick = {k: rng.integers(0, 1 << 30, n) for k in ("fn", "ln", "ct", "st", "zp", "ge", "db", "ip", "ua")}
    fbp_age_ms = rng.integers(0, 30 * 86400 * 1000, n)
    fbp_rand = rng.integers(10**8, 2**31 - 1, n)
    click_age_s = rng.integers(60, 7 * 86400, n)
    stale_age_s = rng.integers(91 * 86400, 150 * 86400, n)
    clid = _hex_ids(rng, n)
    gclid_raw = _hex_ids(rng, n)
    c = o.cust
    empty = np.full(n, "", dtype=object)
    keys: dict[str, np.ndarray] = {}
    labels: dict[str, np.ndarray] = {}

    a, b, cc = params.em_plaintext_rate, params.em_empty_hash_rate, params.em_uppercase_rate
    em_plain = present["em"] & (u["em"] < a)
    em_empty = present["em"] & (u["em"] >= a) & (u["em"] < a + b)
    em_upper = present["em"] & (u["em"] >= a + b) & (u["em"] < a + b + cc)
    em = np.where(present["em"], pools.em_hash[c], empty)
    em = np.where(em_plain, pools.em_plain[c], em)
    em = np.where(em_empty, EMPTY_HASH, em)
    em = np.where(em_upper, np.array([s.upper() for s in pools.em_hash[c]], dtype=object), em)
    keys["em"] = em
    labels["em_plain"], labels["em_invalid"] = em_plain, em_plain | em_empty | em_upper

    ph_plain = present["ph"] & (u["ph"] < params.ph_plaintext_rate)
    ph_hash = pools.ph_hash_meta if platform == "meta" else pools.ph_hash_google
    ph = np.where(present["ph"], ph_hash[c], empty)
    plain_ph = np.array(["+" + d[:2] + " " + d[2:5] + " " + d[5:] for d in pools.ph_digits[c]], dtype=object)
    keys["ph"] = np.where(ph_plain, plain_ph, ph)
    labels["ph_plain"] = ph_plain

    for k, pool in (("fn", pools.fn_hash), ("ln", pools.ln_hash), ("ct", pools.ct_hash),
                    ("st", pools.st_hash), ("zp", pools.zp_hash), ("ge", pools.ge_hash),
                    ("db", pools.db_hash)):
        keys[k] = np.where(present[k], pool[pick[k] % len(pool)], empty)
    keys["country"] = np.where(present["country"], np.array([pools.country_hash[x] for x in o.country], dtype=object), empty)
    keys["external_id"] = np.where(present["external_id"], pools.ext_hash[c], empty)

    ip_server = present["client_ip_address"] & (u["ip"] < params.server_ip_rate)
    ip_private = present["client_ip_address"] & (u["ip"] >= params.server_ip_rate) & (
        u["ip"] < params.server_ip_rate + params.private_ip_rate)
    p = pick["ip"]
    v4 = [f"{GLOBAL_FIRST_OCTETS[x % len(GLOBAL_FIRST_OCTETS)]}.{(x >> 4) % 256}.{(x >> 12) % 256}.{1 + (x >> 20) % 254}" for x in p]
    v6 = [f"2a02:810d:{(x >> 3) % 65536:x}:{(x >> 9) % 65536:x}::{1 + x % 4000:x}" for x in p]
    ip = np.array([s6 if x % 5 == 0 else s4 for x, s4, s6 in zip(p, v4, v6, strict=True)], dtype=object)
    ip = np.where(present["client_ip_address"], ip, empty)
    ip = np.where(ip_server, SERVER_IP, ip)
    priv = np.array([f"10.0.{(x >> 2) % 256}.{1 + (x >> 10) % 254}" for x in p], dtype=object)
    keys["client_ip_address"] = np.where(ip_private, priv, ip)
    labels["ip_server"], labels["ip_private"] = ip_server, ip_private

    ua_lib = present["client_user_agent"] & (u["ua"] < params.library_ua_rate)
    q = pick["ua"]
    ua_list = []
    for x, br in zip(q, o.browser, strict=True):
        major, build, patch = 118 + x % 14, 1000 + (x >> 4) % 6000, (x >> 17) % 200
        if br == 1:
            ua_list.append(f"Mozilla/5.0 (iPhone; CPU iPhone OS 17_{x % 7} like Mac OS X) AppleWebKit/605.1.15 "
                           f"(KHTML, like Gecko) Version/17.{x % 5} Mobile/15E{148 + x % 50} Safari/604.1")
        elif br == 2:
            ua_list.append(f"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{major}.0) Gecko/20100101 Firefox/{major}.{x % 3}")
        else:
            ua_list.append(f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                           f"Chrome/{major}.0.{build}.{patch} Safari/537.36")
    ua = np.where(present["client_user_agent"], np.array(ua_list, dtype=object), empty)
    keys["client_user_agent"] = np.where(ua_lib, LIBRARY_UA, ua)
    labels["ua_lib"] = ua_lib

    fbp_bad = present["fbp"] & (u["fbp"] < params.fbp_malformed_rate)
    fbp_ms = o.t0 * 1000 - fbp_age_ms
    fbp = np.array([f"fb.1.{m}.{r}" for m, r in zip(fbp_ms, fbp_rand, strict=True)], dtype=object)
    fbp = np.where(present["fbp"], fbp, empty)
    keys["fbp"] = np.where(fbp_bad, np.array([f"fb.1.{r}" for r in fbp_rand], dtype=object), fbp)
    labels["fbp_bad"] = fbp_bad

    fbc_sec = present["fbc"] & (u["fbc"] < params.fbc_seconds_rate)
    fbc_stale = present["fbc"] & (u["fbc"] >= params.fbc_seconds_rate) & (
        u["fbc"] < params.fbc_seconds_rate + params.fbc_stale_rate)
    click_s = np.where(fbc_stale, o.t0 - stale_age_s, o.t0 - click_age_s)
    stamp = np.where(fbc_sec, click_s, click_s * 1000)
    fbc = np.array([f"fb.1.{s}.IwAR{x}" for s, x in zip(stamp, clid, strict=True)], dtype=object)
    keys["fbc"] = np.where(present["fbc"], fbc, empty)
    labels["fbc_sec"], labels["fbc_stale"] = fbc_sec, fbc_stale

    keys["gclid"] = np.where(present["gclid"], np.array([f"Cj0KCQ{g}" for g in gclid_raw], dtype=object), empty)
    # Some payloads carry only location keys and the user agent (Meta: insufficient customer
    # information, domain/meta.md §1.7): every other key is dropped with its defect labels.
    weak = (rng.random(n) < params.weak_keys_rate) & (platform == "meta")
    for k in ("em", "ph", "fn", "ln", "db", "external_id", "client_ip_address", "fbc", "fbp", "gclid"):
        keys[k] = np.where(weak, empty, keys[k])
    for lab in labels:
        if not lab.startswith("ua"):
            labels[lab] = labels[lab] & ~weak
    return keys, labels


def day_frames(params: ScenarioParams, o: OrderDay, pds: list[PlatformDay]) -> dict[str, pd.DataFrame]:
    """The canonical rows written for one day: orders, pixel_events, server_events."""
    tz = ZoneInfo(params.timezone)
    created = pd.to_datetime(o.t0, unit="s", utc=True).tz_convert(tz).strftime("%Y-%m-%dT%H:%M:%S%z")
    consent = np.where(o.unknown, "", np.where(o.denied, "denied", "granted"))
    orders = pd.DataFrame({
        "order_id": o.order_id, "created_at": created, "value": o.value, "currency": "EUR",
        "consent_ads": consent, "country": o.country,
        "is_test": np.where(o.is_test, "true", "false"),
    })
    from capi_audit.synth import linkage

    orders["status"] = linkage.order_status(params, o)
    orders["Email"], orders["Phone"] = linkage.raw_identity(o)
    pixel_parts, server_parts, extra = [], [], {}
    for pd_ in pds:
        pixel_parts.append(_pixel_rows(o, pd_, consent))
        server_parts.append(_server_rows(o, pd_, consent))
        if pd_.google is not None:
            from capi_audit.synth import google

            server_parts[-1] = google.rewrite_server(server_parts[-1], o, pd_, pd_.google)
            extra["enhancements"] = google.enhancement_rows(o, pd_.google)
            pixel_parts.append(google.ga4_pixel_rows(o, pd_, pd_.google, consent))
            server_parts.append(google.ga4_server_rows(o, pd_, pd_.google, consent))
    pixel = pd.concat(pixel_parts, ignore_index=True)
    pixel = _blank(pixel[[c for c in PIXEL_COLUMNS if c in pixel.columns]])
    server = _blank(pd.concat(server_parts, ignore_index=True)[list(SERVER_COLUMNS)])
    return {"orders": orders, "pixel_events": pixel, "server_events": server, **extra}


def _blank(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns a part did not have become empty strings (numbers keep their NaN)."""
    text = [c for c in frame.columns if c not in ("value", "event_time")]
    return frame.assign(**{c: frame[c].fillna("") for c in text})


def _pixel_rows(o: OrderDay, p: PlatformDay, consent: np.ndarray) -> pd.DataFrame:
    from capi_audit.synth import ids

    eid = np.where(p.defect == D["pixel_missing_event_id"], "", o.order_id)
    eid, px_order = ids.pixel_ids(o, p.row_flags, eid, o.order_id)
    gclid = np.where(p.row_flags["pixel_gclid"] & (p.platform == "google"), p.keys["gclid"], "")
    base = pd.DataFrame({
        "platform": p.platform, "destination": ids.dataset(p.platform), "event_name": "Purchase", "event_id": eid,
        "event_time": p.tp * 1000, "order_id": px_order, "value": o.value, "currency": "EUR",
        "fbp": p.keys["fbp"] if p.platform == "meta" else "",
        "fbc": p.keys["fbc"] if p.platform == "meta" else "",
        "gclid": gclid, "consent_ads": consent,
        "page_url": ["https://shop.example/checkout/thank-you?order=" + x for x in o.order_id],
    })
    first = base[p.fired]
    again = base[p.reload].assign(event_time=p.tr[p.reload] * 1000)
    # a reload that fires without eid (synth/linkage.py)
    again["event_id"] = np.where(p.row_flags["reload_no_eid"][p.reload], "", again["event_id"])
    out = pd.concat([first, again, ids.subscribe_rows(base, p.row_flags), ids.second_dataset_rows(base, p.row_flags)])
    return out.sort_values(["event_time", "order_id"], kind="stable")


PIXEL_COLUMNS = ("platform", "destination", "event_name", "event_id", "event_time", "order_id", "value", "currency",
                 "fbp", "fbc", "gclid", "consent_ads", "page_url")
SERVER_COLUMNS = ("platform", "destination", "event_name", "event_id", "event_time", "order_id", "value", "currency",
                  "sent_at", "action_source", "event_source_url", "em", "ph", "fn", "ln", "ge", "db",
                  "ct", "st", "zp", "country", "external_id", "client_ip_address",
                  "client_user_agent", "fbc", "fbp", "gclid", "consent_ads", "consent_ad_user_data",
                  "data_processing_options", "status", "error", "request_id", "source_api")


def _iso(ts: np.ndarray) -> list[str]:
    return list(pd.to_datetime(ts, unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ"))


def _server_rows(o: OrderDay, p: PlatformDay, consent: np.ndarray) -> pd.DataFrame:
    f = p.row_flags
    d = p.defect
    event_id = np.where(d == D["id_mismatch"], p.rnd1, o.order_id)
    event_id = np.where(d == D["server_missing_event_id"], "", event_id)
    name = np.where(d == D["name_mismatch"], "purchase", "Purchase")
    meta = p.platform == "meta"
    currency = np.where(f["currency_missing"], "", np.where(f["currency_invalid"], "EURO", "EUR"))
    too_old = d == D["too_old"]
    cols = {
        "platform": p.platform, "event_name": name, "event_id": event_id, "event_time": o.t0,
        "order_id": o.order_id, "value": np.where(f["value_missing"], np.nan, o.value),
        "currency": currency, "sent_at": p.sent_at,
        "action_source": np.where(f["action_source_missing"] | (not meta), "", "website"),
        "event_source_url": np.where(f["url_missing"] | (not meta), "",
                                     np.array(["https://shop.example/checkout/thank-you?order=" + x for x in o.order_id], dtype=object)),
    }
    for k in ("em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id",
              "client_ip_address", "client_user_agent", "fbc", "fbp", "gclid"):
        cols[k] = p.keys[k]
    if meta:
        # Meta's CAPI has no consent field; restriction is Limited Data Use
        cols["consent_ads"] = consent
        cols["data_processing_options"] = np.where(p.ldu, "LDU", "")
    else:
        # Google uploads carry ad_user_data: a restricted send is marked DENIED, a violating one
        # leaves it unspecified
        cols["consent_ads"] = np.where(o.denied, np.where(p.ldu, "denied", ""), consent)
        cols["data_processing_options"] = ""
    cols["consent_ad_user_data"] = ""
    from capi_audit.synth import ids

    cols["destination"] = ids.dataset(p.platform)
    cols["source_api"] = ""
    cols["status"] = np.where(too_old, "rejected", "accepted")
    cols["error"] = np.where(too_old, "event_time is more than 7 days old", "")
    from capi_audit.synth import linkage

    cols["status"], cols["error"], cols["request_id"] = linkage.server_requests(o, p, cols["status"], cols["error"])
    cols["event_id"] = ids.server_ids(o, p.row_flags, cols["event_id"])
    base = pd.DataFrame(cols)
    first = base[p.sent]
    retry = p.sent & np.isin(d, [D["retry_same_key"], D["retry_new_id"]])
    again = base[retry].copy()
    again["sent_at"] = (p.sent_at + p.retry_delay)[retry]
    again["event_id"] = np.where(d[retry] == D["retry_new_id"], p.rnd2[retry], again["event_id"])
    again["request_id"] = again["request_id"] + "-retry"
    out = pd.concat([first, again, ids.subscribe_rows(base, p.row_flags)]).sort_values(
        ["sent_at", "order_id", "event_id"], kind="stable")
    out["sent_at"] = _iso(out["sent_at"].to_numpy())
    return out[list(SERVER_COLUMNS)]
