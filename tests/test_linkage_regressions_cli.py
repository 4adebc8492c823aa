"""Issue 11's failures, reproduced through the command line: small input files in the real formats
(Meta pixel hit URLs, Conversions API request bodies and logs, a canonical orders CSV), an
audit.toml, `capi-audit run`, and the figures of summary.json.

This module imports nothing but `capi_audit.cli`, so it runs unchanged against an older checkout
(put it on PYTHONPATH): every test named after a failure fails on v1 (commit be02d30^) and passes
now. Where v1's summary has no such figure, `fig` returns None and the test fails on the missing
figure; the docstring then names the figure v1 did print, which was wrong.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

T = 1772359200  # 2026-03-01T10:00:00Z
ORDERS = "order_id,created_at,consent_ads\n"


def hit(eid: str | None = None, *, order: str | None = None, ts: int = T, dataset: str = "111", fbp: str = "",
        ev: str = "Purchase") -> str:
    """A Meta pixel request URL as a browser sends it."""
    q = f"id={dataset}&ev={ev}&ts={ts * 1000}&cd[value]=10&cd[currency]=EUR"
    if eid:
        q += f"&eid={eid}"
    if order:
        q += f"&cd[order_id]={order}"
    if fbp:
        q += f"&fbp={fbp}"
    return "https://www.facebook.com/tr/?" + q


def capi(eid: str | None, *, order: str | None = None, t: int = T, fbp: str = "", name: str = "Purchase") -> dict:
    """One Conversions API event as the server sends it."""
    user = {"em": ["e" * 64], "client_user_agent": "Mozilla/5.0", "client_ip_address": "81.2.69.160"}
    if fbp:
        user["fbp"] = fbp
    ev = {"event_name": name, "event_time": t, "action_source": "website",
          "event_source_url": "https://shop.example/thanks", "user_data": user,
          "custom_data": {"value": 10, "currency": "EUR", **({"order_id": order} if order else {})}}
    if eid:
        ev["event_id"] = eid
    return ev


def orders_csv(*ids: str) -> str:
    return ORDERS + "".join(f"{o},2026-03-01T09:59:00Z,granted\n" for o in ids)


def run(tmp_path: Path, *, hits: list[str] = (), requests: list[dict] = (), orders: str = "") -> dict[str, Any]:
    """Write the inputs and audit.toml, run `capi-audit run`, return summary.json."""
    from capi_audit.cli import main

    toml = ['[audit]', 'timezone = "UTC"', 'conversion_event = "Purchase"']
    for name, table, fmt, text in (("hits.txt", "pixel_events", "meta_pixel_hits", "\n".join(hits)),
                                   ("capi.jsonl", "server_events", "meta_capi_payload",
                                    "\n".join(json.dumps(r) for r in requests)),
                                   ("orders.csv", "orders", "canonical", orders)):
        if text:
            (tmp_path / name).write_text(text + "\n", encoding="utf-8")
            toml += ["", "[[sources]]", f'table = "{table}"', f'path = "{name}"', f'format = "{fmt}"']
    (tmp_path / "audit.toml").write_text("\n".join(toml) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["run", "--config", str(tmp_path / "audit.toml"), "--out", str(out), "--no-charts"]) == 0
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def fig(summary: dict, *path: str) -> Any:
    """A figure of summary.json, None when this version does not publish it."""
    cur: Any = summary
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


def double_counting(summary: dict) -> dict:
    """The Meta double-counting figures of the conversion class (v1 published one set per platform,
    across every event name)."""
    dc = summary["double_counting"]["meta"]
    return dc.get("Purchase", dc)


def test_pixel_order_only_in_eid_is_browser_loss(tmp_path):
    """fbq('track','Purchase',{...},{eventID}) carries the order only as eid: v1 linked the pixel to
    no order and reported browser_loss_rate 1.0 (every order lost by the browser) while dedup said
    every hit was paired."""
    s = run(tmp_path, hits=[hit("ORD-1"), hit("ORD-2")],
            requests=[{"data": [capi("ORD-1", order="ORD-1"), capi("ORD-2", order="ORD-2")]}],
            orders=orders_csv("ORD-1", "ORD-2"))
    assert fig(s, "dedup", "meta", "Purchase", "both") == 2
    assert fig(s, "consent", "meta", "browser_loss_rate") == 0.0


def test_id_mismatch_with_unlinkable_pixel_is_not_zero_double_counting(tmp_path):
    """The classic failure (the pixel mints its own ids, no order id): v1 printed 0 orders double
    counted and an inflation rate of 0.0 with no caveat; the pixel links to no order, so the figure
    must say it is unreliable."""
    n = 10
    s = run(tmp_path, hits=[hit(f"rnd{i}") for i in range(n)],
            requests=[{"data": [capi(f"ORD-{i}", order=f"ORD-{i}") for i in range(n)]}],
            orders=orders_csv(*[f"ORD-{i}" for i in range(n)]))
    dc = double_counting(s)
    assert dc.get("reliable") is False, dc
    assert "link" in dc.get("reason", "")


def test_event_coverage_counts_pixel_hits_without_event_id(tmp_path):
    """Half the hits carry no eid and cannot deduplicate: v1 said event_coverage 1.0."""
    ids = [f"ORD-{i}" for i in range(10)]
    s = run(tmp_path, hits=[hit(o if i < 5 else None, order=o) for i, o in enumerate(ids)],
            requests=[{"data": [capi(o, order=o) for o in ids]}], orders=orders_csv(*ids))
    assert fig(s, "dedup", "meta", "Purchase", "event_coverage") == 0.5


def test_constant_event_id_merges_orders_not_duplicates(tmp_path):
    """eid 'undefined' on 10 orders: the platform counts 1 conversion. v1 called the 9 others
    duplicates and its double counting said 10 orders matched, 0 double counted."""
    ids = [f"ORD-{i}" for i in range(10)]
    s = run(tmp_path, hits=[hit("undefined", order=o, ts=T + i) for i, o in enumerate(ids)],
            requests=[{"data": [capi("undefined", order=o, t=T + i) for i, o in enumerate(ids)]}],
            orders=orders_csv(*ids))
    assert fig(s, "dedup", "meta", "Purchase", "expected_platform_count") == 1
    assert double_counting(s)["orders_matched"] == 1
    assert fig(s, "dedup", "meta", "Purchase", "event_id_collisions") == 1
    assert fig(s, "dedup", "meta", "Purchase", "orders_merged_away") == 9


def test_second_dataset_hit_is_not_a_duplicate(tmp_path):
    """The same purchase sent to two datasets is counted in each: v1 ignored the dataset id and
    reported a pixel duplicate and one expected conversion."""
    s = run(tmp_path, hits=[hit("ORD-1", order="ORD-1", dataset="111"), hit("ORD-1", order="ORD-1", dataset="222")],
            requests=[{"pixel_id": "111", "data": [capi("ORD-1", order="ORD-1")]}], orders=orders_csv("ORD-1"))
    m = s["dedup"]["meta"]["Purchase"]
    assert (m["pixel_duplicates"], m["expected_platform_count"]) == (0, 2)


FBP = "fb.1.1772000000000.123456789"


def test_method_b_fbp_pair_is_deduplicated(tmp_path):
    """A hit without eid and a server event without event_id, same fbp, the server 10 minutes later:
    Meta deduplicates them (browser first). v1 counted 2 and called it double counting."""
    s = run(tmp_path, hits=[hit(None, order="ORD-1", fbp=FBP)],
            requests=[{"sent_at": "2026-03-01T10:10:00Z", "data": [capi(None, order="ORD-1", t=T + 600, fbp=FBP)]}],
            orders=orders_csv("ORD-1"))
    assert fig(s, "dedup", "meta", "Purchase", "expected_platform_count") == 1
    assert double_counting(s)["orders_double_counted"] == 0


def test_method_b_server_first_is_not_paired(tmp_path):
    """Guard (not a v1 failure): Method B pairs browser-first only; a server event received before
    the hit stays a second count."""
    s = run(tmp_path, hits=[hit(None, order="ORD-1", fbp=FBP, ts=T + 600)],
            requests=[{"sent_at": "2026-03-01T10:00:30Z", "data": [capi(None, order="ORD-1", t=T, fbp=FBP)]}],
            orders=orders_csv("ORD-1"))
    assert fig(s, "dedup", "meta", "Purchase", "expected_platform_count") == 2


def test_old_server_event_without_status_is_not_counted(tmp_path):
    """Sent 8 days after the event, no response logged: Meta rejects it. v1 counted it as received
    (server_only 1, expected 1) and as a recovered order."""
    s = run(tmp_path, requests=[{"sent_at": "2026-03-09T10:00:00Z", "request": {"data": [capi("ORD-1", order="ORD-1")]}}],
            orders=orders_csv("ORD-1"))
    m = s["dedup"]["meta"]["Purchase"]
    assert (m["server_only"], m["expected_platform_count"]) == (0, 0)


def test_request_with_one_too_old_event_is_rejected_whole(tmp_path):
    """One invalid event rejects its whole request: the good event sent with it is not counted
    either. v1 counted both."""
    s = run(tmp_path, requests=[{"sent_at": "2026-03-09T10:00:00Z", "request": {"data": [
        capi("ORD-1", order="ORD-1"), capi("ORD-2", order="ORD-2", t=T + 8 * 86400 - 3600)]}}],
        orders=orders_csv("ORD-1", "ORD-2"))
    assert fig(s, "dedup", "meta", "Purchase", "expected_platform_count") == 0


def test_purchase_and_subscribe_are_not_double_counted(tmp_path):
    """Purchase and Subscribe on one order, each perfectly paired: v1 reported the order double
    counted (name_mismatch, inflation 1.0)."""
    s = run(tmp_path, hits=[hit("ORD-1", order="ORD-1"), hit("ORD-1", order="ORD-1", ev="Subscribe")],
            requests=[{"data": [capi("ORD-1", order="ORD-1"), capi("ORD-1", order="ORD-1", name="Subscribe")]}],
            orders=orders_csv("ORD-1"))
    dc = double_counting(s)
    assert (dc["orders_double_counted"], dc["inflation_rate"]) == (0, 0.0)


def test_reload_double_counting_is_not_charged_to_capi(tmp_path):
    """A thank-you page reload fires a second Purchase without eid: the pixel alone already counts
    the order twice. v1 had no such split: its double counting (and recovery's double-counted term)
    charged the reload to the server."""
    s = run(tmp_path, hits=[hit("ORD-1", order="ORD-1"), hit(None, order="ORD-1", ts=T + 30)],
            requests=[{"data": [capi("ORD-1", order="ORD-1")]}], orders=orders_csv("ORD-1"))
    dc = double_counting(s)
    assert dc["orders_double_counted"] == 1
    assert (dc.get("pre_existing"), dc.get("server_caused")) == (1, 0)
