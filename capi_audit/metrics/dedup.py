"""Dedup overlap (design v2 §3.1): which browser and server events the platform pairs, and where
it leaks — computed on the platform's own counting units (`metrics/units.py`).

Meta pairs a browser and a server event by (dataset, event_name, event_id) when the second is
received within 48 h of the first, and by fbp / external_id (Method B, browser first only):
https://developers.facebook.com/docs/marketing-api/conversions-api/deduplicate-pixel-and-server-events
Meta's `event_coverage` (goal 75 %) is the share of pixel events covered by server events sharing
dedup keys: https://developers.facebook.com/docs/marketing-api/conversions-api/dataset-quality-api
Google Ads dedups (conversion action, transaction_id) with no documented window:
https://support.google.com/google-ads/answer/6386790 ; GA4 purchases by transaction_id:
https://support.google.com/analytics/answer/12313109

Per platform, destination and event_name, over units whose first event_time is at or after the
platform's enable time (every unit when none is configured):
- `both` (keys paired by event_id), `both_outside_window` (a key in both channels, not paired),
  `pixel_only`, `server_only` (keys in one channel), `missing_event_id_pixel/_server` (events
  without a dedup key), `name_mismatch` (a pixel-only key whose id the server sent only under
  another name), `pixel_duplicates` / `server_duplicates` (same-channel copies of a key),
  `method_b` (server units Meta pairs by fbp / external_id), `paired_by` counts;
- `event_coverage` = (both + both_outside_window + method_b) / all pixel units
  (both + both_outside_window + pixel_only + missing_event_id_pixel);
- `dedup_rate` = (both + method_b) / all server units
  (both + both_outside_window + server_only + missing_event_id_server);
- `key_coverage` per channel: share of counted events carrying event_id, fbp, external_id;
- collisions: `event_id_collisions` (keys whose rows link to more than one order),
  `orders_merged_away` (orders with counted rows that no unit counts), `sentinel_event_ids`
  (rows whose id is `undefined`, `null`, empty, an un-rendered template, or one id carried by an
  implausible share of events);
- `consistency` on pairs: share of pairs with the same fbp, fbc, external_id, em hash and IP
  where both sides carry the field;
- `counted_by_platform`: server rows out of counts (rejected, assumed_rejected, batch_collateral),
  events of test orders, and events sent with a test_event_code (counted by Meta);
- `expected_platform_count` (units on the days the report covers) and `report_to_log_ratio`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from capi_audit.metrics.common import FamilyResult, Headline, local_date, num, ratio, tidy
from capi_audit.metrics.units import counted_units, unit_rows

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace

COUNTS = ("both", "both_outside_window", "pixel_only", "server_only", "name_mismatch",
          "missing_event_id_pixel", "missing_event_id_server", "pixel_duplicates", "server_duplicates",
          "method_b", "paired_by_fbp", "paired_by_external_id")
KEY_FIELDS = ("event_id", "fbp", "external_id")
CONSISTENCY_FIELDS = ("fbp", "fbc", "external_id", "em", "client_ip_address")
SENTINEL_IDS = ("undefined", "null", "none", "nan", "[object object]", "0", "(not set)", "false", "true")
# One event_id on more than this share of a platform's events of one name (and on at least
# SHARED_ID_MIN_ROWS rows) is an implausible shared id: a constant, a session id, a cached value.
SHARED_ID_SHARE = 0.01
SHARED_ID_MIN_ROWS = 5


def _unit_agg_sql(rows: str) -> str:
    """One row per event-id unit of `rows`: its channels, row counts, first time and pairing.
    Materialized (`dd_ua`): the overlap statement reads it four times, and Spark would compute a
    CTE again at each read."""
    return f"""
    SELECT platform, kdest, kname, event_id, has_key, unit_a,
        min(event_name) AS event_name, max(destination) AS destination,
        max(CASE WHEN channel = 'pixel' THEN 1 ELSE 0 END) AS px,
        max(CASE WHEN channel = 'server' THEN 1 ELSE 0 END) AS sv,
        sum(CASE WHEN channel = 'pixel' THEN 1 ELSE 0 END) AS n_px,
        sum(CASE WHEN channel = 'server' THEN 1 ELSE 0 END) AS n_sv,
        min(event_time) AS first_et, max(CASE WHEN paired_a THEN 1 ELSE 0 END) AS paired
    FROM {rows} GROUP BY platform, kdest, kname, event_id, has_key, unit_a
    """


def _overlap_sql(ua: str) -> str:
    """The overlap counts from the unit aggregate `ua` (_unit_agg_sql)."""
    return f"""
WITH ua AS (SELECT * FROM {ua}),
kk AS (
    SELECT platform, kdest, kname, event_id, max(px) AS key_px, max(sv) AS key_sv
    FROM ua WHERE has_key GROUP BY platform, kdest, kname, event_id
),
-- the names the server sent each id under (Meta: per dataset; other platforms: any destination),
-- as a count and one of them: "the server sent this id under another name" is then a join
-- (more than one name, or one that differs), not a correlated EXISTS per unit
svk AS (
    SELECT platform, kdest, event_id, count(DISTINCT event_name) AS n_names, min(event_name) AS a_name
    FROM ua WHERE has_key AND sv = 1 AND platform = 'meta' GROUP BY platform, kdest, event_id
),
svp AS (
    SELECT platform, event_id, count(DISTINCT event_name) AS n_names, min(event_name) AS a_name
    FROM ua WHERE has_key AND sv = 1 AND platform <> 'meta' GROUP BY platform, event_id
),
c AS (
    SELECT ua.*, kk.key_px, kk.key_sv, mb.paired_by AS mb_by,
        CASE WHEN ua.has_key AND ua.px = 1 AND ua.sv = 0 AND coalesce(kk.key_sv, 0) = 0
                  AND ua.event_name IS NOT NULL
                  AND (coalesce(svk.n_names, svp.n_names) > 1 OR coalesce(svk.a_name, svp.a_name) <> ua.event_name)
            THEN 1 ELSE 0 END AS nm
    FROM ua
    LEFT JOIN kk ON ua.has_key AND kk.platform = ua.platform AND kk.kdest = ua.kdest
        AND kk.kname = ua.kname AND kk.event_id = ua.event_id
    LEFT JOIN svk ON ua.has_key AND svk.platform = ua.platform AND svk.kdest = ua.kdest AND svk.event_id = ua.event_id
    LEFT JOIN svp ON ua.has_key AND svp.platform = ua.platform AND svp.event_id = ua.event_id
    LEFT JOIN u_mb_all mb ON mb.pixel_unit = ua.unit_a
    LEFT JOIN u_params w ON w.platform = ua.platform
    WHERE w.enabled_at IS NULL OR ua.first_et >= w.enabled_at
)
SELECT platform, destination, event_name,
    sum(paired) AS "both",
    sum(CASE WHEN has_key AND px = 1 AND sv = 0 AND key_sv = 1 THEN 1 ELSE 0 END) AS both_outside_window,
    sum(CASE WHEN has_key AND px = 1 AND sv = 0 AND key_sv = 0 THEN 1 ELSE 0 END) AS pixel_only,
    sum(CASE WHEN has_key AND sv = 1 AND px = 0 AND key_px = 0 THEN 1 ELSE 0 END) AS server_only,
    sum(nm) AS name_mismatch,
    sum(CASE WHEN NOT has_key AND px = 1 THEN 1 ELSE 0 END) AS missing_event_id_pixel,
    sum(CASE WHEN NOT has_key AND sv = 1 THEN 1 ELSE 0 END) AS missing_event_id_server,
    sum(CASE WHEN has_key AND n_px > 0 THEN n_px - 1 ELSE 0 END) AS pixel_duplicates,
    sum(CASE WHEN has_key AND n_sv > 0 THEN n_sv - 1 ELSE 0 END) AS server_duplicates,
    sum(CASE WHEN mb_by IS NOT NULL THEN 1 ELSE 0 END) AS method_b,
    sum(CASE WHEN mb_by = 'fbp' THEN 1 ELSE 0 END) AS paired_by_fbp,
    sum(CASE WHEN mb_by = 'external_id' THEN 1 ELSE 0 END) AS paired_by_external_id
FROM c GROUP BY platform, destination, event_name
"""


def _key_coverage_sql(rows: str) -> str:
    shares = ", ".join(
        f"sum(CASE WHEN {f} IS NOT NULL AND {f} <> '' THEN 1 ELSE 0 END) AS with_{f}" for f in KEY_FIELDS)
    return f"""
    SELECT r.platform, r.event_name, r.channel, count(*) AS events, {shares}
    FROM {rows} r LEFT JOIN u_params w ON w.platform = r.platform
    WHERE w.enabled_at IS NULL OR r.event_time >= w.enabled_at
    GROUP BY r.platform, r.event_name, r.channel
    """


def _consistency_sql(rows: str, units: str) -> str:
    sel = []
    for f in CONSISTENCY_FIELDS:
        p, s = f"max(CASE WHEN r.channel = 'pixel' THEN r.{f} END)", f"max(CASE WHEN r.channel = 'server' THEN r.{f} END)"
        sel.append(f"{p} AS p_{f}, {s} AS s_{f}")
    agg = []
    for f in CONSISTENCY_FIELDS:
        both = f"p_{f} IS NOT NULL AND p_{f} <> '' AND s_{f} IS NOT NULL AND s_{f} <> ''"
        agg.append(f"sum(CASE WHEN {both} THEN 1 ELSE 0 END) AS {f}_compared, "
                   f"sum(CASE WHEN {both} AND p_{f} = s_{f} THEN 1 ELSE 0 END) AS {f}_equal")
    return f"""
    WITH pairs AS (
        SELECT u.platform, u.event_name, {", ".join(sel)}
        FROM {units} u JOIN {rows} r ON r.unit_id = u.unit_id
        WHERE u.paired_by IS NOT NULL AND u.post
        GROUP BY u.platform, u.event_name, u.unit_id
    )
    SELECT platform, event_name, count(*) AS pairs, {", ".join(agg)} FROM pairs GROUP BY platform, event_name
    """


def _sentinel_sql() -> str:
    ids = ", ".join(f"'{s}'" for s in SENTINEL_IDS)
    return f"""
    WITH r AS (
        SELECT platform, event_name, event_id, linked_order FROM u_src
        WHERE excluded IS NULL OR excluded <> 'test_order'
    ),
    n AS (SELECT platform, event_name, count(*) AS events FROM r GROUP BY platform, event_name),
    ids AS (
        SELECT platform, event_name, event_id, count(*) AS rows_with_id
        FROM r WHERE event_id IS NOT NULL GROUP BY platform, event_name, event_id
    ),
    flagged AS (
        SELECT ids.platform, ids.event_name, ids.event_id, ids.rows_with_id,
            CASE WHEN trim(ids.event_id) = '' THEN 'empty'
                 WHEN lower(trim(ids.event_id)) IN ({ids}) THEN 'placeholder'
                 WHEN ids.event_id LIKE '%{{{{%' OR ids.event_id LIKE '%}}}}%' OR ids.event_id LIKE '%${{%'
                      OR ids.event_id LIKE '%[[%' THEN 'template'
                 WHEN ids.rows_with_id >= {SHARED_ID_MIN_ROWS}
                      AND ids.rows_with_id > n.events * CAST({SHARED_ID_SHARE} AS DOUBLE) THEN 'shared'
            END AS kind
        FROM ids JOIN n ON n.platform = ids.platform AND n.event_name = ids.event_name
    )
    SELECT platform, event_name, kind, count(*) AS ids, sum(rows_with_id) AS events
    FROM flagged WHERE kind IS NOT NULL GROUP BY platform, event_name, kind
    """


_COLLISIONS_SQL = """
WITH r AS (SELECT * FROM u_src WHERE excluded IS NULL),
k AS (
    SELECT platform, event_name, kdest, kname, event_id, count(DISTINCT linked_order) AS n_orders
    FROM r WHERE has_key AND linked_order IS NOT NULL GROUP BY platform, event_name, kdest, kname, event_id
),
rowo AS (SELECT DISTINCT platform, event_name, linked_order FROM r WHERE linked_order IS NOT NULL),
uo AS (SELECT DISTINCT platform, event_name, order_id FROM {units} WHERE order_id IS NOT NULL),
merged AS (
    SELECT ro.platform, ro.event_name, count(*) AS orders_merged_away FROM rowo ro
    WHERE NOT EXISTS (SELECT 1 FROM uo WHERE uo.platform = ro.platform AND uo.order_id = ro.linked_order)
    GROUP BY ro.platform, ro.event_name
),
col AS (
    SELECT platform, event_name, sum(CASE WHEN n_orders > 1 THEN 1 ELSE 0 END) AS event_id_collisions
    FROM k GROUP BY platform, event_name
)
SELECT coalesce(col.platform, merged.platform) AS platform, coalesce(col.event_name, merged.event_name) AS event_name,
    coalesce(col.event_id_collisions, 0) AS event_id_collisions,
    coalesce(merged.orders_merged_away, 0) AS orders_merged_away
FROM col FULL OUTER JOIN merged ON merged.platform = col.platform AND merged.event_name = col.event_name
"""

_EXCLUDED_SQL = """
SELECT platform, event_name,
    sum(CASE WHEN channel = 'server' AND excluded = 'rejected' THEN 1 ELSE 0 END) AS rejected,
    sum(CASE WHEN channel = 'server' AND excluded = 'assumed_rejected' THEN 1 ELSE 0 END) AS assumed_rejected,
    sum(CASE WHEN channel = 'server' AND excluded = 'assumed_rejected' AND too_old = 1 THEN 1 ELSE 0 END) AS assumed_too_old,
    sum(CASE WHEN channel = 'server' AND excluded = 'assumed_rejected' AND insufficient_keys = 1 THEN 1 ELSE 0 END)
        AS assumed_insufficient_keys,
    sum(CASE WHEN channel = 'server' AND excluded = 'batch_collateral' THEN 1 ELSE 0 END) AS batch_collateral,
    sum(CASE WHEN excluded = 'test_order' THEN 1 ELSE 0 END) AS test_order_events,
    sum(CASE WHEN channel = 'server' AND excluded IS NULL AND test_event_code IS NOT NULL
             AND test_event_code <> '' THEN 1 ELSE 0 END) AS test_event_code_counted
FROM u_src GROUP BY platform, event_name
"""

# Per platform, event_name and local day, all units: what the platform should count, the
# overlap (`both` = every paired unit, `method_b` the Method B share of them), and the report.
_DAILY_SQL = """
WITH u AS (
    SELECT u.*, CASE WHEN u.event_id IS NOT NULL AND u.paired_by IS NULL AND EXISTS (
        SELECT 1 FROM {units} v WHERE v.platform = u.platform AND v.dedup_destination = u.dedup_destination
          AND v.event_name = u.event_name AND v.event_id = u.event_id AND v.unit_id <> u.unit_id)
        THEN 1 ELSE 0 END AS split
    FROM {units} u
),
exp AS (
    SELECT platform, event_name, day, count(*) AS expected,
        sum(CASE WHEN paired_by IS NOT NULL THEN 1 ELSE 0 END) AS "both",
        sum(CASE WHEN paired_by IN ('fbp', 'external_id') THEN 1 ELSE 0 END) AS method_b,
        sum(CASE WHEN has_pixel AND NOT has_server AND event_id IS NOT NULL AND split = 0 THEN 1 ELSE 0 END) AS pixel_only,
        sum(CASE WHEN has_server AND NOT has_pixel AND event_id IS NOT NULL AND split = 0 THEN 1 ELSE 0 END) AS server_only,
        sum(split) AS outside_window_counts,
        sum(CASE WHEN event_id IS NULL AND paired_by IS NULL THEN 1 ELSE 0 END) AS missing_event_id
    FROM u GROUP BY platform, event_name, day
),
rep AS (
    SELECT platform, event_name, date AS day, sum(conversions) AS reported
    FROM platform_report WHERE coalesce(lower(source), 'total') = 'total'
    GROUP BY platform, event_name, date
)
SELECT coalesce(e.platform, r.platform) AS platform, coalesce(e.event_name, r.event_name) AS event_name,
       coalesce(e.day, r.day) AS day,
       coalesce(e.expected, 0) AS expected, coalesce(e."both", 0) AS "both",
       coalesce(e.method_b, 0) AS method_b,
       coalesce(e.pixel_only, 0) AS pixel_only, coalesce(e.server_only, 0) AS server_only,
       coalesce(e.outside_window_counts, 0) AS outside_window_counts,
       coalesce(e.missing_event_id, 0) AS missing_event_id, r.reported
FROM exp e FULL OUTER JOIN rep r
  ON r.platform = e.platform AND r.event_name = e.event_name AND r.day = e.day
ORDER BY 1, 2, 3
"""


def _rates(m: dict[str, Any]) -> None:
    px_units = m["both"] + m["both_outside_window"] + m["pixel_only"] + m["missing_event_id_pixel"]
    sv_units = m["both"] + m["both_outside_window"] + m["server_only"] + m["missing_event_id_server"]
    m["pixel_units"], m["server_units"] = px_units, sv_units
    m["event_coverage"] = ratio(m["both"] + m["both_outside_window"] + m["method_b"], px_units)
    m["dedup_rate"] = ratio(m["both"] + m["method_b"], sv_units)
    m["paired_by"] = {"event_id": m["both"], "fbp": m.pop("paired_by_fbp"),
                      "external_id": m.pop("paired_by_external_id")}


def dedup_overlap(ws: Workspace) -> tuple[pd.DataFrame, Headline]:
    """Overlap after enablement per platform, destination and event_name, with coverage, dedup
    rate, key coverage, collisions, consistency on pairs and counted-by-platform exclusions."""
    if not ws.count("pixel_events") and not ws.count("server_events"):
        return pd.DataFrame(), Headline("dedup", available=False, reason="no pixel or server events loaded")
    units = counted_units(ws)
    rows = unit_rows(ws)
    p = {"tz": ws.config.timezone}
    ws.materialize("dd_ua", _unit_agg_sql(rows), p, depends=[rows])
    frame = ws.df(_overlap_sql("dd_ua"), p)
    ws.drop("dd_ua")
    excl = ws.df(_EXCLUDED_SQL, p)
    # event names whose every row is out of the counts still get a (zero) row
    missing = excl[["platform", "event_name"]].merge(frame[["platform", "event_name"]].drop_duplicates(),
                                                     how="left", indicator=True)
    missing = missing[missing["_merge"] == "left_only"].drop(columns="_merge")
    if len(missing):
        frame = pd.concat([frame, missing.assign(destination=None)], ignore_index=True)
    for c in COUNTS:
        frame[c] = frame[c].fillna(0).astype(int)
    frame = tidy(frame, ["platform", "event_name", "destination"])
    daily = dedup_daily(ws)
    enable = dict(ws.rows("SELECT platform, enabled_at FROM u_params"))
    cover = ws.df(_key_coverage_sql(rows), p)
    cons = ws.df(_consistency_sql(rows, units), p)
    sent = ws.df(_sentinel_sql(), p)
    coll = ws.df(_COLLISIONS_SQL.format(units=units), p)
    values: dict = {}
    records = []
    for (plat, ev), g in frame.groupby(["platform", "event_name"], sort=True):
        m: dict[str, Any] = {c: int(g[c].sum()) for c in COUNTS}
        _rates(m)
        dests = [d for d in g["destination"] if d is not None and not pd.isna(d)]
        if len(g) > 1 or dests:
            per = {}
            for r in g.to_dict("records"):
                dm = {c: int(r[c]) for c in COUNTS}
                _rates(dm)
                per["(none)" if r["destination"] is None or pd.isna(r["destination"]) else str(r["destination"])] = dm
            m["destinations"] = per
        exp, gap, rho = _expected_and_report(ws, daily, plat, ev, enable.get(plat))
        m.update(expected_platform_count=exp, report_gap=gap, report_to_log_ratio=rho)
        m["key_coverage"] = _key_cov(cover, plat, ev)
        m["consistency"] = _consistency(cons, plat, ev)
        m["sentinel_event_ids"] = _sentinels(sent, plat, ev)
        c = coll[(coll.platform == plat) & (coll.event_name == ev)]
        m["event_id_collisions"] = int(c["event_id_collisions"].sum())
        m["orders_merged_away"] = int(c["orders_merged_away"].sum())
        x = excl[(excl.platform == plat) & (excl.event_name == ev)]
        m["counted_by_platform"] = {k: int(x[k].sum()) for k in excl.columns if k not in ("platform", "event_name")}
        values.setdefault(plat, {})[ev] = m
        records.append({"platform": plat, "event_name": ev, **{k: v for k, v in m.items() if not isinstance(v, dict)}})
    out = frame.copy()
    flat = pd.DataFrame(records)
    if len(flat):
        keep = [c for c in flat.columns if c not in COUNTS and c not in ("platform", "event_name")]
        out = out.merge(flat[["platform", "event_name", *keep]], on=["platform", "event_name"], how="left")
    return tidy(out, ["platform", "event_name", "destination"]), Headline("dedup", values)


def _key_cov(cover: pd.DataFrame, plat: str, ev: str) -> dict:
    out = {}
    for ch in ("pixel", "server"):
        r = cover[(cover.platform == plat) & (cover.event_name == ev) & (cover.channel == ch)]
        n = int(r["events"].sum())
        out[ch] = {"n": n, **{f: ratio(int(r[f"with_{f}"].sum()), n) for f in KEY_FIELDS}}
    return out


def _consistency(cons: pd.DataFrame, plat: str, ev: str) -> dict:
    r = cons[(cons.platform == plat) & (cons.event_name == ev)]
    out: dict[str, Any] = {"pairs": int(r["pairs"].sum()) if len(r) else 0}
    for f in CONSISTENCY_FIELDS:
        n = int(r[f"{f}_compared"].sum()) if len(r) else 0
        out[f] = {"n": n, "same": ratio(int(r[f"{f}_equal"].sum()), n) if n else None}
    return out


def _sentinels(sent: pd.DataFrame, plat: str, ev: str) -> dict:
    r = sent[(sent.platform == plat) & (sent.event_name == ev)]
    kinds = {k: int(r[r.kind == k]["events"].sum()) for k in ("empty", "placeholder", "template", "shared")}
    return {"events": int(sum(kinds.values())), "ids": int(r["ids"].sum()) if len(r) else 0, **kinds}


def dedup_daily(ws: Workspace) -> pd.DataFrame:
    """Per platform, event_name and local day (every day): units the platform should count, the
    overlap, and the report (computed once per workspace build)."""
    units = counted_units(ws)
    token = (getattr(ws, "_units_src", None), units)
    cached = getattr(ws, "_dedup_daily", None)
    if cached is None or cached[0] != token:
        frame = ws.df(_DAILY_SQL.format(units=units), {"tz": ws.config.timezone})
        cached = (token, tidy(frame, ["platform", "event_name", "day"]))
        ws._dedup_daily = cached
    return cached[1].copy()


def _expected_and_report(ws: Workspace, daily: pd.DataFrame, plat: str, ev: str,
                         enabled_at) -> tuple[int, float | None, float | None]:
    """Units from the enable day on, within the days the report covers for the event (all such
    days without a report); the report gap and report-to-log ratio over those days (None without
    a report)."""
    d = daily[(daily["platform"] == plat) & (daily["event_name"] == ev)]
    if enabled_at is not None:
        first_day = ws.scalar(f"SELECT {local_date('$e')}", {"e": enabled_at, "tz": ws.config.timezone})
        d = d[pd.to_datetime(d["day"]).dt.date >= first_day]
    rep_days = ws.rows(
        "SELECT min(date), max(date) FROM platform_report WHERE platform = $p AND event_name = $ev "
        "AND coalesce(lower(source), 'total') = 'total'",
        {"p": plat, "ev": ev},
    )[0]
    if rep_days[0] is None:
        return int(d["expected"].sum()), None, None
    days = pd.to_datetime(d["day"]).dt.date
    d = d[(days >= rep_days[0]) & (days <= rep_days[1])]
    exp = float(d["expected"].sum())
    rep = float(d["reported"].fillna(0).sum())
    return int(exp), rep - exp, num(ratio(rep, exp))


def compute(ws: Workspace) -> FamilyResult:
    """Family `dedup`: the overlap headline, the per-event frame and the daily series."""
    frame, head = dedup_overlap(ws)
    frames = {"dedup": frame}
    if head.available:
        frames["dedup_daily"] = dedup_daily(ws)
    return FamilyResult(head, frames)
