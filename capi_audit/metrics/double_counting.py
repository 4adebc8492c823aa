"""Double counting (design v2 §3.2): per linked order and conversion class, how many units the
platform counts under its own rules (`metrics/units.py`), and why it counts more than one.

For an order o and class c: L_o units counted from all logs, P_o from the pixel alone (same
rules, server rows removed). `orders_matched` = orders with L_o >= 1, `orders_double_counted` =
L_o >= 2, `inflation_rate` = sum(L_o - 1) / orders_matched. Every extra unit (all but the
order's earliest) gets one cause, checked in this order:
- `outside_window`: another unit of the order has the same key (a pair split by the window);
- `other_destination`: another unit has the same event_id and name in another destination (a
  second Meta dataset: each dataset counts the purchase, §3.0);
- `name_variant`: another unit has the same event_id under another name of the class;
- `method_b_miss` (Meta): a server-only and a pixel-only unit of one name share fbp or external_id
  but Method B could not pair them (server first, or outside the window);
- `server_retry_new_id`: a server unit with an id other than an earlier server unit's;
- `missing_event_id`: the unit or another unit of the order has no dedup key;
- `id_mismatch`: otherwise (browser and server sent different ids).
Each cause is split into `pre_existing` (the same causes computed on the pixel alone: the pixel
already counted the order more than once, e.g. thank-you page reloads without eid) and
`server_caused` (all minus pre-existing); per order pre-existing = max(P_o - 1, 0) and
server-caused = L_o - max(P_o, 1). A key whose rows link to several orders counts once, for the
order of its earliest row (`orders_merged_away` counts the others). Orders that also have units
under event names outside the class are counted apart (`orders_also_under_other_names`): a
legitimate second event (Subscribe) is not double counting.

The v1 functions below (`extra_counts`, `per_order`) are kept for `recovery` until §3.3 replaces
it; they count across event names on v1's rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from capi_audit.metrics.common import (
    FamilyResult,
    Headline,
    num,
    params,
    prepare,
    ratio,
    tidy,
    within_window,
)
from capi_audit.metrics.linkage import weak_link
from capi_audit.metrics.units import counted_units

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace

CAUSES = ("id_mismatch", "missing_event_id", "name_variant", "outside_window", "server_retry_new_id",
          "method_b_miss", "other_destination")
V1_CAUSES = ("id_mismatch", "missing_event_id", "name_mismatch", "outside_window", "server_retry_new_id")

# Rows after enablement that carry an order_id; `$only` restricts to one event_name (NULL = all).
# Per (platform, order, event_name, event_id) after enablement: channel counts and whether the
# pair is outside the window; and rows without event_id per (platform, order, event_name).
# Materialized once, then read by every variant (all events, or one event_name).
_ORDER_KEYS_SQL = f"""
CREATE OR REPLACE TEMP TABLE order_keys AS
WITH k AS (
    SELECT platform, order_id, event_name, event_id,
        sum(CASE WHEN channel = 'pixel' THEN 1 ELSE 0 END) AS px,
        sum(CASE WHEN channel = 'server' THEN 1 ELSE 0 END) AS sv,
        min(CASE WHEN channel = 'pixel' THEN receipt_time END) AS pf,
        min(CASE WHEN channel = 'server' THEN receipt_time END) AS sf
    FROM ev WHERE post AND order_id IS NOT NULL AND event_id IS NOT NULL
    GROUP BY platform, order_id, event_name, event_id
)
SELECT k.platform, k.order_id, k.event_name, k.event_id, k.px, k.sv,
    CASE WHEN px > 0 AND sv > 0 AND NOT {within_window('pf', 'sf')} THEN 1 ELSE 0 END AS outside
FROM k LEFT JOIN audit_params w ON w.platform = k.platform
"""
_ORDER_NOID_SQL = """
CREATE OR REPLACE TEMP TABLE order_noid AS
SELECT platform, order_id, event_name, count(*) AS no_id
FROM ev WHERE post AND order_id IS NOT NULL AND event_id IS NULL
GROUP BY platform, order_id, event_name
"""

# `$only` restricts to one event_name (NULL = all names).
_PER_ORDER_SQL = """
WITH kk AS (SELECT * FROM order_keys WHERE $only IS NULL OR event_name = $only),
ids AS (
    SELECT platform, order_id, event_id, count(*) AS n_names, sum(outside) AS outside,
        max(CASE WHEN px > 0 THEN 1 ELSE 0 END) AS in_px, max(CASE WHEN sv > 0 THEN 1 ELSE 0 END) AS in_sv
    FROM kk GROUP BY platform, order_id, event_id
),
po AS (
    SELECT platform, order_id, sum(n_names) AS n_keys, count(*) AS n_ids, sum(outside) AS outside,
        sum(in_px * in_sv) AS common_ids, sum(in_sv * (1 - in_px)) AS server_only_ids,
        sum(in_px * (1 - in_sv)) AS pixel_only_ids
    FROM ids GROUP BY platform, order_id
),
noid AS (
    SELECT platform, order_id, sum(no_id) AS no_id FROM order_noid
    WHERE $only IS NULL OR event_name = $only GROUP BY platform, order_id
),
o AS (
    SELECT coalesce(po.platform, noid.platform) AS platform, coalesce(po.order_id, noid.order_id) AS order_id,
        coalesce(n_keys, 0) AS n_keys, coalesce(n_ids, 0) AS n_ids, coalesce(outside, 0) AS outside,
        coalesce(common_ids, 0) AS common_ids, coalesce(server_only_ids, 0) AS server_only_ids,
        coalesce(pixel_only_ids, 0) AS pixel_only_ids, coalesce(no_id, 0) AS no_id
    FROM po FULL OUTER JOIN noid ON noid.platform = po.platform AND noid.order_id = po.order_id
),
c AS (
    SELECT o.*, n_keys + outside + no_id AS counted,
        CASE WHEN n_ids = 0 THEN 0
             WHEN common_ids > 0 THEN server_only_ids
             ELSE greatest(server_only_ids - 1, 0) END AS server_retry_new_id
    FROM o
)
SELECT platform, order_id, counted,
    outside AS outside_window,
    n_keys - n_ids AS name_mismatch,
    CASE WHEN n_keys > 0 THEN no_id ELSE greatest(no_id - 1, 0) END AS missing_event_id,
    server_retry_new_id,
    greatest(n_ids - 1, 0) - server_retry_new_id AS id_mismatch
FROM c
"""

_SUMMARY_SQL = f"""
SELECT platform,
    sum(CASE WHEN counted >= 1 THEN 1 ELSE 0 END) AS orders_matched,
    sum(CASE WHEN counted >= 2 THEN 1 ELSE 0 END) AS orders_double_counted,
    sum(counted) AS counted_events,
    {", ".join(f"sum({c}) AS {c}" for c in V1_CAUSES)}
FROM ({_PER_ORDER_SQL}) GROUP BY platform ORDER BY platform
"""


def prepare_orders(ws: Workspace) -> None:
    """Materialize order_keys and order_noid once per prepared workspace."""
    prepare(ws)
    if getattr(ws, "_orders_for", None) == ws._prepared:
        return
    ws.execute(_ORDER_KEYS_SQL)
    ws.execute(_ORDER_NOID_SQL)
    ws._orders_for = ws._prepared


def per_order(ws: Workspace, *, event_name: str | None = None) -> pd.DataFrame:
    """One row per (platform, order): counted events and extra counts by cause. Use for drill-down
    on small data; the summary below aggregates in SQL."""
    prepare_orders(ws)
    return tidy(ws.df(_PER_ORDER_SQL, {**params(ws), "only": event_name}), ["platform", "order_id"])


def extra_counts(ws: Workspace, *, event_name: str | None = None) -> pd.DataFrame:
    """Per platform: orders matched, double counted, counted events and extra counts by cause
    (computed once per prepared workspace and event_name)."""
    prepare_orders(ws)
    cache = getattr(ws, "_extra_counts", None)
    if cache is None or cache[0] != ws._prepared:
        cache = (ws._prepared, {})
        ws._extra_counts = cache
    if event_name not in cache[1]:
        cache[1][event_name] = ws.df(_SUMMARY_SQL, {**params(ws), "only": event_name})
    return cache[1][event_name].copy()



def _units_sql(units: str) -> str:
    """Post units of linked orders in a conversion class, ranked within (platform, class, order)."""
    return f"""
    SELECT platform, conv_class, order_id, unit_id, event_name, event_id, dedup_destination,
        has_pixel, has_server, fbp, external_id, first_receipt_time,
        row_number() OVER (PARTITION BY platform, conv_class, order_id
                           ORDER BY first_event_time, first_receipt_time, unit_id) AS rk
    FROM {units} WHERE post AND conv_class IS NOT NULL AND order_id IS NOT NULL
    """


def unit_causes_sql(units: str, tag: str = "") -> str:
    """SQL: every post unit of a linked order in a conversion class with its rank in the order
    (`rk`, 1 = the order's earliest unit) and its cause — the one definition of a unit's cause,
    read by double counting (extra units, rk > 1) and by the CAPI effect (server units added to an
    order the pixel already counted). Columns: platform, conv_class, order_id, unit_id, rk, cause.
    `tag` keeps the CTE names unique when the statement is nested (Spark hoists nested WITHs into
    one, where names must be unique)."""
    x, c, pr = f"x_{units}{tag}", f"c_{units}{tag}", f"pr_{units}{tag}"
    # Each cause is "another unit o of the order satisfies ...": the units of one order are paired
    # once (a self-join on the order, few units each) and every condition folded into a flag by
    # max(...); equal to one correlated EXISTS per cause (on Spark, six existence joins that each
    # shuffled the units again on other keys).
    flags = {
        "f_window": "o.event_id = u.event_id AND o.event_name = u.event_name"
                    " AND o.dedup_destination = u.dedup_destination",
        "f_dest": "o.event_id = u.event_id AND o.event_name = u.event_name"
                  " AND o.dedup_destination <> u.dedup_destination",
        "f_name": "o.event_id = u.event_id AND o.event_name <> u.event_name",
        "f_mb": """o.event_name = u.event_name
             AND ((u.has_server AND NOT u.has_pixel AND o.has_pixel AND NOT o.has_server)
                  OR (u.has_pixel AND NOT u.has_server AND o.has_server AND NOT o.has_pixel))
             AND ((o.fbp IS NOT NULL AND o.fbp = u.fbp) OR (o.external_id IS NOT NULL AND o.external_id = u.external_id))""",
        "f_retry": "o.has_server AND o.event_id IS NOT NULL AND o.event_id <> u.event_id"
                   " AND o.first_receipt_time <= u.first_receipt_time",
        "f_noid": "o.event_id IS NULL",
    }
    cols = ",\n        ".join(f"max(CASE WHEN {cond} THEN 1 ELSE 0 END) AS {f}" for f, cond in flags.items())
    cause = """CASE
        WHEN u.event_id IS NOT NULL AND p.f_window = 1 THEN 'outside_window'
        WHEN u.event_id IS NOT NULL AND p.f_dest = 1 THEN 'other_destination'
        WHEN u.event_id IS NOT NULL AND p.f_name = 1 THEN 'name_variant'
        WHEN u.platform = 'meta' AND p.f_mb = 1 THEN 'method_b_miss'
        WHEN u.has_server AND NOT u.has_pixel AND u.event_id IS NOT NULL AND p.f_retry = 1 THEN 'server_retry_new_id'
        WHEN u.event_id IS NULL OR p.f_noid = 1 THEN 'missing_event_id'
        ELSE 'id_mismatch' END"""
    return f"""
    WITH {x} AS ({_units_sql(units)}),
    {pr} AS (
        SELECT u.unit_id, {cols}
        FROM {x} u JOIN {x} o ON o.platform = u.platform AND o.conv_class = u.conv_class
            AND o.order_id = u.order_id AND o.unit_id <> u.unit_id
        GROUP BY u.unit_id
    ),
    {c} AS (SELECT u.*, {cause} AS cause FROM {x} u LEFT JOIN {pr} p ON p.unit_id = u.unit_id)
    SELECT platform, conv_class, order_id, unit_id, rk, cause FROM {c}
    """


def unit_causes(ws: Workspace, units: str) -> str:
    """Name of the materialized `unit_causes_sql(units)` (`uc_<units>`), built once per build of
    `units` (rebuilding the units drops it) and read by double counting and the CAPI effect. On
    Spark its six correlated EXISTS (each an existence join over the ranked units) ran in the
    per-order statement and again in each platform's CAPI-effect classification."""
    name = f"uc_{units}"
    if name.lower() not in ws.engine.derived:
        ws.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {unit_causes_sql(units)}")
    return name


def _causes_sql(causes: str) -> str:
    """Per (platform, class, order): units counted and extra units by cause (`causes`: a
    relation with unit_causes_sql's columns)."""
    sums = ", ".join(f"sum(CASE WHEN rk > 1 AND cause = '{c}' THEN 1 ELSE 0 END) AS {c}" for c in CAUSES)
    return f"""
    SELECT platform, conv_class, order_id, count(*) AS n_units, {sums}
    FROM {causes} uc GROUP BY platform, conv_class, order_id
    """


def _per_order_sql() -> str:
    """Reads uc_units_all and uc_units_pixel (`unit_causes`)."""
    a = _causes_sql("uc_units_all")
    p = _causes_sql("uc_units_pixel")
    pre = ", ".join(f"coalesce(p.{c}, 0) AS pre_{c}" for c in CAUSES)
    allc = ", ".join(f"a.{c} AS all_{c}" for c in CAUSES)
    return f"""
    WITH a AS ({a}), p AS ({p})
    SELECT a.platform, a.conv_class, a.order_id, a.n_units AS l_units, coalesce(p.n_units, 0) AS p_units,
        {allc}, {pre}
    FROM a LEFT JOIN p ON p.platform = a.platform AND p.conv_class = a.conv_class AND p.order_id = a.order_id
    """


def _summary_sql() -> str:
    sums = ", ".join(f"sum(all_{c}) AS {c}, sum(pre_{c}) AS pre_{c}" for c in CAUSES)
    return f"""
    WITH po AS ({_per_order_sql()}),
    names AS (  -- orders whose units also fall under event names outside the class
        SELECT DISTINCT u.platform, u.conv_class, u.order_id FROM units_all u
        WHERE u.post AND u.conv_class IS NOT NULL AND u.order_id IS NOT NULL AND EXISTS (
            SELECT 1 FROM units_all v WHERE v.post AND v.platform = u.platform AND v.order_id = u.order_id
              AND (v.conv_class IS NULL OR v.conv_class <> u.conv_class))
    ),
    rowo AS (
        SELECT DISTINCT r.platform, r.conv_class, r.linked_order FROM u_rows_all r
        JOIN u_params w ON w.platform = r.platform
        WHERE r.conv_class IS NOT NULL AND r.linked_order IS NOT NULL
          AND (w.enabled_at IS NULL OR r.event_time >= w.enabled_at)
    ),
    merged AS (
        SELECT platform, conv_class, count(*) AS orders_merged_away FROM rowo r
        -- merged away: the order has no unit of its own in the class (a post row of a unit that began
        -- before enablement, e.g. a reload just after midnight, is not a merge)
        WHERE NOT EXISTS (SELECT 1 FROM units_all u WHERE u.platform = r.platform
                          AND u.conv_class = r.conv_class AND u.order_id = r.linked_order)
        GROUP BY platform, conv_class
    ),
    s AS (
        SELECT platform, conv_class,
            sum(CASE WHEN l_units >= 1 THEN 1 ELSE 0 END) AS orders_matched,
            sum(CASE WHEN l_units >= 2 THEN 1 ELSE 0 END) AS orders_double_counted,
            sum(l_units) AS counted_units,
            sum(CASE WHEN p_units > 1 THEN p_units - 1 ELSE 0 END) AS pre_existing,
            sum(l_units - CASE WHEN p_units > 1 THEN p_units ELSE 1 END) AS server_caused,
            sum(CASE WHEN p_units = 0 THEN 1 ELSE 0 END) AS orders_without_pixel_unit,
            {sums}
        FROM po GROUP BY platform, conv_class
    ),
    nm AS (SELECT platform, conv_class, count(*) AS orders_also_under_other_names FROM names GROUP BY platform, conv_class)
    SELECT s.*, coalesce(nm.orders_also_under_other_names, 0) AS orders_also_under_other_names,
        coalesce(merged.orders_merged_away, 0) AS orders_merged_away
    FROM s LEFT JOIN nm ON nm.platform = s.platform AND nm.conv_class = s.conv_class
    LEFT JOIN merged ON merged.platform = s.platform AND merged.conv_class = s.conv_class
    """


_NAMES_SQL = """
WITH n AS (
    SELECT DISTINCT platform, order_id, coalesce(conv_class, event_name) AS name
    FROM units_all WHERE post AND order_id IS NOT NULL
),
k AS (SELECT platform, order_id, count(*) AS names FROM n GROUP BY platform, order_id)
SELECT n.platform, n.name, count(*) AS orders
FROM n JOIN k ON k.platform = n.platform AND k.order_id = n.order_id
WHERE k.names > 1 GROUP BY n.platform, n.name
"""


def per_order_units(ws: Workspace) -> pd.DataFrame:
    """One row per (platform, class, linked order): L and P units and extra units by cause (all
    logs, and pixel alone). For drill-down on small data."""
    unit_causes(ws, counted_units(ws))
    unit_causes(ws, counted_units(ws, with_server=False))
    return tidy(ws.df(_per_order_sql(), {"tz": ws.config.timezone}), ["platform", "conv_class", "order_id"])


def double_counting(ws: Workspace) -> tuple[pd.DataFrame, Headline]:
    """Double counting per platform and conversion class, every extra unit attributed to a cause
    and split into pre-existing and server-caused."""
    counted_units(ws)
    counted_units(ws, with_server=False)
    if not ws.scalar("SELECT count(*) FROM units_all WHERE order_id IS NOT NULL AND conv_class IS NOT NULL"):
        return pd.DataFrame(), Headline("double_counting", available=False,
                                        reason="no event in a conversion class links to an order "
                                               "(order_id, or an event_id equal to a known order_id)")
    unit_causes(ws, "units_all")
    unit_causes(ws, "units_pixel")
    # sorted: the headline's platform order must not depend on the engine's row order
    frame = tidy(ws.df(_summary_sql(), {"tz": ws.config.timezone}), ["platform", "conv_class"])
    weak = weak_link(ws)
    values: dict = {}
    rows = []
    for r in frame.to_dict("records"):
        matched = int(r["orders_matched"])
        v: dict = {k: int(r[k]) for k in ("orders_matched", "orders_double_counted", "counted_units",
                                          "pre_existing", "server_caused", "orders_also_under_other_names",
                                          "orders_merged_away")}
        v["inflation_rate"] = num(ratio(v["counted_units"] - matched, matched))
        v["extra_counts"] = {c: {"total": int(r[c]), "pre_existing": int(r[f"pre_{c}"]),
                                 "server_caused": int(r[c]) - int(r[f"pre_{c}"])} for c in CAUSES}
        if r["platform"] in weak:
            v["reliable"] = False
            v["reason"] = weak[r["platform"]]
        values.setdefault(r["platform"], {})[r["conv_class"]] = v
        for c in CAUSES:
            rows.append({"platform": r["platform"], "conv_class": r["conv_class"], "cause": c,
                         "extra_counts": int(r[c]), "pre_existing": int(r[f"pre_{c}"]),
                         "server_caused": int(r[c]) - int(r[f"pre_{c}"])})
    long = pd.DataFrame(rows, columns=["platform", "conv_class", "cause", "extra_counts", "pre_existing",
                                       "server_caused"])
    return tidy(long, ["platform", "conv_class", "cause"]), Headline("double_counting", values)


def event_names_per_order(ws: Workspace) -> pd.DataFrame:
    """Orders under several event names (classes count as one name): per platform and name, how
    many such orders carry it. A separate diagnostic, not double counting."""
    counted_units(ws)
    return tidy(ws.df(_NAMES_SQL, {"tz": ws.config.timezone}), ["platform", "name"])


def compute(ws: Workspace) -> FamilyResult:
    """Family `double_counting`: per platform and class headline; extra counts by cause."""
    frame, head = double_counting(ws)
    frames = {"double_counting": frame}
    if head.available:
        frames["double_counting_event_names"] = event_names_per_order(ws)
    return FamilyResult(head, frames)
