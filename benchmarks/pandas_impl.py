"""A straightforward pandas implementation of the headline figures, as an analyst would write it.

Used two ways: tests compare it with the DuckDB metrics on synthetic data (an independent
re-implementation), and benchmarks time it against `capi-audit run`.
Reads the canonical files named by an audit.toml (CSV or Parquet).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd


def _times(s: pd.Series) -> pd.Series:
    """Epoch s / ms / µs by magnitude, or ISO text with offsets, to UTC timestamps."""
    num = pd.to_numeric(s, errors="coerce")
    if num.notna().all():
        a = num.abs()
        unit = np.where(a < 1e11, 1_000_000, np.where(a < 1e14, 1_000, 1))
        return pd.to_datetime((num * unit).round().astype("int64"), unit="us", utc=True)
    return pd.to_datetime(s, utc=True, format="ISO8601")


def load(config: str | Path) -> dict:
    """Read the tables of a canonical scenario into pandas."""
    config = Path(config)
    cfg = tomllib.loads(config.read_text())
    frames = {}
    for src in cfg["sources"]:
        path = config.parent / src["path"]
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str, keep_default_na=False)
        df = df.replace({"": None})
        frames[src["table"]] = df
    for t in ("pixel_events", "server_events"):
        frames[t]["event_time"] = _times(frames[t]["event_time"])
    frames["server_events"]["sent_at"] = _times(frames["server_events"]["sent_at"])
    frames["orders"]["created_at"] = _times(frames["orders"]["created_at"])
    frames["orders"]["is_test"] = frames["orders"]["is_test"].astype(str).str.lower().isin(["true", "1"])
    frames["platform_report"]["conversions"] = frames["platform_report"]["conversions"].astype(float)
    enabled = {k: pd.Timestamp(v) for k, v in cfg.get("capi_enabled_at", {}).items()}
    return {"frames": frames, "enabled": enabled, "tz": cfg["audit"].get("timezone", "UTC"),
            "conv": cfg["audit"].get("conversion_event", "Purchase")}


def _events(data: dict, *, counted: bool = False) -> pd.DataFrame:
    f = data["frames"]
    test = set(f["orders"].loc[f["orders"]["is_test"], "order_id"])
    px = f["pixel_events"].assign(channel="pixel")
    px["receipt"] = px["event_time"]
    sv = f["server_events"]
    if counted:  # v2: also out when no status was logged and Meta must have rejected the request
        unlogged = sv["status"].isna()
        old = unlogged & (sv["platform"] == "meta") & ((sv["sent_at"] - sv["event_time"]) > pd.Timedelta(days=7))
        bad = old | (sv["status"].fillna("").str.lower() == "rejected")
        if "request_id" in sv:
            bad_req = set(zip(sv.loc[bad & (sv["platform"] == "meta"), "platform"],
                              sv.loc[bad & (sv["platform"] == "meta"), "request_id"], strict=True))
            in_bad = pd.Series([(a, b) in bad_req for a, b in zip(sv["platform"], sv["request_id"], strict=True)],
                               index=sv.index)
            old = old | (unlogged & in_bad)
        sv = sv[~old]
    sv = sv[sv["status"].fillna("").str.lower() != "rejected"].assign(channel="server")
    if counted:  # GA4 drops Measurement Protocol events backdated over 72 h (counted units' rule)
        late = (sv["platform"] == "ga4") & ((sv["sent_at"] - sv["event_time"]) > pd.Timedelta(hours=72))
        sv = sv[~late]
    sv["receipt"] = sv["sent_at"].fillna(sv["event_time"])
    ev = pd.concat([px, sv], ignore_index=True)[["channel", "platform", "event_name", "event_id",
                                                "event_time", "receipt", "order_id"]]
    ev = ev[~ev["order_id"].isin(test)]
    enabled = pd.to_datetime(ev["platform"].map(data["enabled"]), utc=True)
    ev["post"] = enabled.isna() | (ev["event_time"] >= enabled)
    return ev


WINDOW = {"meta": pd.Timedelta(hours=48), "google": None, "ga4": None}


def dedup(data: dict) -> pd.DataFrame:
    """both / both_outside_window / pixel_only / server_only per platform and event_name (v2:
    server events the platform rejected or must have rejected left out: Meta too old, GA4 backdated)."""
    ev = _events(data, counted=True)
    ev = ev[ev["event_id"].notna()]
    # a key is in scope when its earliest event is at or after enablement (a reload just after the
    # enable time belongs to its pre-enablement hit's key, which is out of scope)
    first = ev.groupby(["platform", "event_name", "event_id"])["event_time"].transform("min")
    enabled = pd.to_datetime(ev["platform"].map(data["enabled"]), utc=True)
    ev = ev[enabled.isna() | (first >= enabled)]
    g = ev.groupby(["platform", "event_name", "event_id", "channel"])["receipt"].min().unstack("channel")
    g = g.reindex(columns=["pixel", "server"])
    has_p, has_s = g["pixel"].notna(), g["server"].notna()
    win = pd.Series(g.index.get_level_values("platform").map(WINDOW), index=g.index)
    gap = (g["server"] - g["pixel"]).abs()
    inside = has_p & has_s & (win.isna() | (gap <= win.fillna(pd.Timedelta(0))))
    out = pd.DataFrame({
        "both": inside, "both_outside_window": has_p & has_s & ~inside,
        "pixel_only": has_p & ~has_s, "server_only": has_s & ~has_p,
    }).groupby(level=["platform", "event_name"]).sum()
    return out.reset_index()


def double_counting(data: dict, event_name: str | None = None) -> pd.DataFrame:
    """orders_matched / orders_double_counted / counted_events per platform."""
    ev = _events(data)
    ev = ev[ev["post"] & ev["order_id"].notna()]
    if event_name is not None:
        ev = ev[ev["event_name"] == event_name]
    with_id = ev[ev["event_id"].notna()]
    k = with_id.groupby(["platform", "order_id", "event_name", "event_id", "channel"])["receipt"].min().unstack("channel")
    k = k.reindex(columns=["pixel", "server"])
    win = pd.Series(k.index.get_level_values("platform").map(WINDOW), index=k.index)
    both = k["pixel"].notna() & k["server"].notna()
    outside = both & win.notna() & ((k["server"] - k["pixel"]).abs() > win.fillna(pd.Timedelta(0)))
    units = (1 + outside.astype(int)).groupby(level=["platform", "order_id"]).sum()
    no_id = ev[ev["event_id"].isna()].groupby(["platform", "order_id"]).size()
    counted = units.add(no_id, fill_value=0)
    return pd.DataFrame({
        "orders_matched": (counted >= 1).groupby(level="platform").sum(),
        "orders_double_counted": (counted >= 2).groupby(level="platform").sum(),
        "counted_events": counted.groupby(level="platform").sum(),
    }).reset_index()


def consent(data: dict) -> pd.DataFrame:
    """denied_rate, consent_drop_rate, browser_loss_rate per platform."""
    f = data["frames"]
    o = f["orders"][~f["orders"]["is_test"]].drop_duplicates("order_id")
    rows = []
    for plat in sorted(set(f["pixel_events"]["platform"]) | set(f["server_events"]["platform"])):
        px = set(f["pixel_events"].loc[f["pixel_events"]["platform"] == plat, "order_id"])
        c = o["consent_ads"]
        has_px = o["order_id"].isin(px)
        known, denied, granted = c.notna(), c == "denied", c == "granted"
        rows.append({"platform": plat, "denied_rate": denied.sum() / known.sum(),
                     "consent_drop_rate": (denied & ~has_px).sum() / known.sum(),
                     "browser_loss_rate": (granted & ~has_px).sum() / granted.sum()})
    return pd.DataFrame(rows)


def recovery(data: dict) -> pd.DataFrame:
    """reported_change / net_new / recovered / double_counted per day, per platform (enable
    times at local midnight)."""
    f, tz, conv = data["frames"], data["tz"], data["conv"]
    o = f["orders"][~f["orders"]["is_test"]].drop_duplicates("order_id").copy()
    o["day"] = o["created_at"].dt.tz_convert(tz).dt.date
    ev = _events(data)
    rows = []
    for plat, enabled in sorted(data["enabled"].items()):
        e_day = enabled.tz_convert(tz).date()
        rep = f["platform_report"]
        rep = rep[(rep["platform"] == plat) & (rep["event_name"] == conv)].copy()
        rep["day"] = pd.to_datetime(rep["date"]).dt.date
        days = pd.DataFrame({"day": sorted(set(o["day"]) | set(rep["day"]))})
        days["orders"] = days["day"].map(o.groupby("day").size()).fillna(0)
        days["reported"] = days["day"].map(rep.groupby("day")["conversions"].sum()).fillna(0)
        pre, post = days[days["day"] < e_day], days[days["day"] >= e_day]
        c_pre = pre["reported"].mean() / pre["orders"].mean()
        c_post = post["reported"].mean() / post["orders"].mean()
        post_orders = o[o["created_at"] >= enabled]
        e = ev[ev["platform"] == plat]
        has_px = post_orders["order_id"].isin(e.loc[e["channel"] == "pixel", "order_id"])
        has_sv = post_orders["order_id"].isin(e.loc[e["channel"] == "server", "order_id"])
        dc = double_counting(data, conv)
        dc = dc[dc["platform"] == plat]
        extra = float((dc["counted_events"] - dc["orders_matched"]).sum())
        rows.append({
            "platform": plat,
            "reported_change_per_day": post["reported"].mean() - pre["reported"].mean(),
            "net_new_per_day": c_pre * (post["orders"].mean() - pre["orders"].mean()),
            "recovered_per_day": (~has_px & has_sv).sum() / len(post),
            "double_counted_per_day": extra / len(post),
            "measurement_change_per_day": (c_post - c_pre) * post["orders"].mean(),
        })
    return pd.DataFrame(rows)
