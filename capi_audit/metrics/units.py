"""Counted units: one row per conversion unit the platform counts under its own rules (design v2 §3.0).

Every order-level figure (double counting, the CAPI effect, recovery, Google overlap) is built on
`counted_units(ws)`, so the platform rules live in this one module:

- Meta: key (destination = dataset, event_name, event_id); a browser and a server copy of one key
  are one unit when their first receipt times are within W (48 h) — a pixel hit is received at
  its event_time, a server event at its sent_at, else its event_time.
  https://developers.facebook.com/docs/marketing-api/conversions-api/deduplicate-pixel-and-server-events
  Method B: a server unit not paired by event_id pairs with an earlier pixel unit of the same
  dataset and event_name sharing fbp and/or external_id within W (browser first only, never within
  one channel); each pixel unit absorbs at most one server unit (our reading, documented).
- Google Ads: key (conversion action = destination, else event_name; transaction_id), no window.
  An action `[[google_actions]]` declares with `counting = "one"` counts at most one conversion per
  ad click: its units carrying the same gclid / gbraid / wbraid are one unit (the earliest);
  https://support.google.com/google-ads/answer/3438531 . Without a catalogue every action counts
  every conversion (no rule is assumed).
- The destination is part of a key only when both channels of the platform log it (a CAPI log
  often lacks the dataset id the pixel hit carries); otherwise keys ignore it, and say so.
  https://support.google.com/google-ads/answer/6386790
- GA4: key (destination = stream, transaction_id) for `purchase` only, no window.
  https://support.google.com/analytics/answer/12313109
- Same-channel copies of one key are one unit (Meta does not document server-server dedup; we
  assume it, and say so in notes). An event without id is its own unit.
- Server rows the platform does not count are out: `status = 'rejected'`; status not logged and a
  hard rejection rule broken (`assumed_rejected`: event older than the platform's age limit — Meta
  7 days, `physical_store` 62 days, GA4 Measurement Protocol 72 h — or Meta's insufficient
  customer-information combinations); with `request_id`, every other unlogged event of a Meta
  request holding such an event (`batch_collateral`: one invalid event rejects the whole request,
  https://developers.facebook.com/docs/marketing-api/conversions-api/using-the-api).
  Events sent with a `test_event_code` are COUNTED: Meta says they are not dropped
  (https://developers.facebook.com/docs/marketing-api/conversions-api/using-the-api#testEvents);
  they are reported apart. Rows linked to a test order are out of every count.
- Order linkage (`[audit] order_key`): `order_id` when it is a known order, else `event_id` when it
  equals a known order_id (`auto`); only one of them with `order_id` / `event_id`. With no orders
  loaded, the order reference is taken as is.
- Conversion class: the conversion event, its case variants and `[audit] event_aliases` (Meta,
  GA4); for Google each primary action of `[[google_actions]]` (every action without a catalogue).

`with_server=False` drops every server row first and runs the same statements.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from capi_audit import validity
from capi_audit.metrics.common import local_date, seconds_between

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace

# Age limits (seconds) by platform and action_source ('*' = any other).
# Meta: https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/server-event
# (event_time at most 7 days old; physical_store uploads within 62 days of the conversion).
# GA4 Measurement Protocol: timestamp_micros may be backdated by at most 72 hours
# https://developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events
AGE_LIMITS_S: dict[tuple[str, str], int] = {
    ("meta", "*"): 7 * 86400,
    ("meta", "physical_store"): 62 * 86400,
    ("ga4", "*"): 72 * 3600,
}
EXCLUSIONS = ("test_order", "rejected", "assumed_rejected", "batch_collateral")
UNIT_COLUMNS = ("platform", "destination", "event_name", "conv_class", "unit_id", "day", "first_event_time",
                "post", "order_id", "has_pixel", "has_server", "paired_by", "value", "currency")


def age_limit_sql(platform: str = "platform", action_source: str = "action_source") -> str:
    """SQL: the age limit in seconds for a server row (NULL = none known)."""
    parts = []
    for (plat, src), secs in AGE_LIMITS_S.items():
        if src != "*":
            parts.append(f"WHEN {platform} = '{plat}' AND lower({action_source}) = '{src}' THEN {secs}")
    for (plat, src), secs in AGE_LIMITS_S.items():
        if src == "*":
            parts.append(f"WHEN {platform} = '{plat}' THEN {secs}")
    return "(CASE " + " ".join(parts) + " END)"


def _insufficient_sql() -> str:
    """SQL: a Meta server row whose customer keys are only (a subset of) one rejected combination
    (https://developers.facebook.com/docs/marketing-api/conversions-api/best-practices, domain §1.7)."""
    from capi_audit.metrics.validation import META_KEYS, META_WEAK_SETS

    conds = []
    for weak in META_WEAK_SETS:
        others = [k for k in META_KEYS if k not in weak]
        conds.append("(" + " AND ".join(f"NOT {validity.present(k)}" for k in others) + ")")
    return "(" + " OR ".join(conds) + ")"


def _any_key_sql() -> str:
    from capi_audit.metrics.validation import META_KEYS

    return "(" + " OR ".join(validity.present(k) for k in META_KEYS) + ")"


def _token(ws: Workspace) -> tuple:
    return (id(ws.config), ws.count("pixel_events"), ws.count("server_events"), ws.count("orders"))


def _params(ws: Workspace) -> None:
    """`u_params` (platform, enabled_at, window_ms) and `u_classes` (match, class) from the config."""
    cfg = ws.config
    plats = {r[0] for r in ws.rows("SELECT platform FROM pixel_events UNION SELECT platform FROM server_events")
             if r[0] is not None}
    rows = []
    for plat in sorted(plats | set(cfg.capi_enabled_at) | {"meta", "google", "ga4"}):
        hours = cfg.window_hours(plat)
        rows.append((plat, cfg.capi_enabled_at.get(plat), None if hours is None else float(hours) * 3600 * 1000))
    ws.from_rows("u_params", [("platform", "VARCHAR"), ("enabled_at", "TIMESTAMPTZ"), ("window_ms", "DOUBLE")], rows)
    # kind 'name': lower(event_name) matches (Meta, GA4); kind 'action': Google conversion action.
    classes: dict[str, set[str]] = {cfg.conversion_event: {cfg.conversion_event}}
    for cls, names in cfg.event_aliases.items():
        classes.setdefault(cls, {cls}).update(names)
    crow = [("name", n.lower(), cls) for cls, names in sorted(classes.items()) for n in sorted(names)]
    crow += [("action", a.name, a.name) for a in cfg.google_actions if a.primary]
    ws.from_rows("u_classes", [("kind", "VARCHAR"), ("name", "VARCHAR"), ("class", "VARCHAR")], crow)
    # Google actions counting "one" conversion per ad click (`[[google_actions]] counting`)
    ones = [(a.name,) for a in cfg.google_actions if a.counting == "one"]
    ws.from_rows("u_one_actions", [("name", "VARCHAR")], ones)


def linked_order_sql(order_id: str, event_id: str, ko: str, ke: str) -> str:
    """SQL: the order a row links to under `[audit] order_key` (parameters `$order_key`,
    `$no_orders`), given the row's order_id / event_id expressions and two LEFT JOINs of the known
    order ids (`ko` on the order_id, `ke` on the event_id). The one linkage rule: every family that
    joins events to orders uses it."""
    return f"""CASE WHEN $order_key <> 'event_id' AND {order_id} IS NOT NULL
                      AND ({ko}.order_id IS NOT NULL OR $no_orders) THEN {order_id}
                 WHEN $order_key <> 'order_id' AND {event_id} IS NOT NULL
                      AND ({ke}.order_id IS NOT NULL OR ($no_orders AND $order_key = 'event_id')) THEN {event_id}
            END"""


def link_params(ws: Workspace) -> dict:
    """The parameters `linked_order_sql` reads."""
    return {"order_key": ws.config.order_key, "no_orders": not ws.count("orders")}


def _src_sql(ws: Workspace) -> str:
    age = age_limit_sql()
    meta_keys_logged = bool(ws.scalar(f"SELECT count(*) FROM server_events WHERE platform = 'meta' AND {_any_key_sql()}"))
    insufficient = f"(platform = 'meta' AND {_insufficient_sql()})" if meta_keys_logged else "FALSE"
    google_catalogue = "TRUE" if ws.config.google_actions else "FALSE"
    return f"""
    CREATE OR REPLACE TEMP TABLE u_src AS
    WITH known AS (SELECT DISTINCT order_id FROM orders WHERE order_id IS NOT NULL),
    tests AS (SELECT DISTINCT order_id FROM orders WHERE is_test AND order_id IS NOT NULL),
    sv AS (
        SELECT platform, destination, event_name, event_id, event_time, sent_at,
            coalesce(sent_at, event_time) AS receipt_time, order_id, value, currency, fbp, fbc,
            external_id, em, client_ip_address, request_id, action_source, test_event_code, status,
            coalesce(gclid, gbraid, wbraid) AS click_id,
            CASE WHEN status IS NOT NULL AND lower(status) = 'rejected' THEN 1 ELSE 0 END AS is_rejected,
            CASE WHEN status IS NULL AND sent_at IS NOT NULL AND {age} IS NOT NULL
                      AND {seconds_between('event_time', 'sent_at')} > {age} THEN 1 ELSE 0 END AS too_old,
            CASE WHEN status IS NULL AND {insufficient} THEN 1 ELSE 0 END AS insufficient_keys
        FROM server_events
    ),
    svb AS (
        SELECT sv.*,
            CASE WHEN platform = 'meta' AND request_id IS NOT NULL THEN
                max(CASE WHEN is_rejected + too_old + insufficient_keys > 0 THEN 1 ELSE 0 END)
                    OVER (PARTITION BY platform, request_id) ELSE 0 END AS bad_batch
        FROM sv
    ),
    raw AS (
        SELECT 'pixel' AS channel, platform, destination, event_name, event_id, event_time,
            event_time AS receipt_time, CAST(NULL AS TIMESTAMPTZ) AS sent_at, order_id, value, currency,
            fbp, fbc, external_id, em, client_ip_address, CAST(NULL AS VARCHAR) AS request_id,
            CAST(NULL AS VARCHAR) AS action_source, CAST(NULL AS VARCHAR) AS test_event_code,
            CAST(NULL AS VARCHAR) AS status, coalesce(gclid, gbraid, wbraid) AS click_id, 0 AS is_rejected,
            0 AS too_old, 0 AS insufficient_keys, 0 AS bad_batch
        FROM pixel_events
        UNION ALL
        SELECT 'server', platform, destination, event_name, event_id, event_time, receipt_time, sent_at,
            order_id, value, currency, fbp, fbc, external_id, em, client_ip_address, request_id,
            action_source, test_event_code, status, click_id, is_rejected, too_old, insufficient_keys, bad_batch
        FROM svb
    ),
    numbered AS (
        SELECT raw.*, row_number() OVER (
            PARTITION BY channel ORDER BY event_time, platform, event_name, coalesce(event_id, ''),
                coalesce(order_id, ''), coalesce(destination, ''), receipt_time, coalesce(fbp, ''),
                coalesce(external_id, ''), coalesce(request_id, '')) AS rn
        FROM raw
    ),
    linked AS (
        SELECT n.*,
            {linked_order_sql('n.order_id', 'n.event_id', 'ko', 'ke')} AS linked_order,
            CASE WHEN $order_key <> 'event_id' AND n.order_id IS NOT NULL
                      AND (ko.order_id IS NOT NULL OR $no_orders) THEN 'order_id'
                 WHEN $order_key <> 'order_id' AND n.event_id IS NOT NULL
                      AND (ke.order_id IS NOT NULL OR ($no_orders AND $order_key = 'event_id')) THEN 'event_id'
            END AS link_via,
            CASE WHEN $order_key <> 'event_id' THEN n.order_id ELSE n.event_id END AS order_ref
        FROM numbered n
        LEFT JOIN known ko ON ko.order_id = n.order_id
        LEFT JOIN known ke ON ke.order_id = n.event_id
    ),
    dk AS (  -- the destination is in the key only when both channels of the platform log it
        -- (read from the two tables' platform and destination columns: from `numbered`, Spark,
        -- which inlines a CTE at each use, would compute the row_number window twice)
        SELECT platform, max(px) * max(sv) AS use_dest FROM (
            SELECT platform, CASE WHEN destination IS NOT NULL THEN 1 ELSE 0 END AS px, 0 AS sv FROM pixel_events
            UNION ALL
            SELECT platform, 0, CASE WHEN destination IS NOT NULL THEN 1 ELSE 0 END FROM server_events
        ) d GROUP BY platform
    ),
    cls AS (
        SELECT l.*,
            CASE WHEN l.platform = 'google' THEN
                     CASE WHEN dk.use_dest = 1 THEN coalesce(l.destination, l.event_name) ELSE l.event_name END
                 WHEN dk.use_dest = 1 THEN coalesce(l.destination, '') ELSE '' END AS kdest,
            CASE WHEN l.platform = 'meta' THEN l.event_name
                 WHEN l.platform = 'ga4' THEN l.event_name ELSE '' END AS kname,
            (l.event_id IS NOT NULL AND (l.platform <> 'meta' OR l.event_id <> '')
                 AND (l.platform <> 'ga4' OR l.event_name = 'purchase')) AS has_key
        FROM linked l LEFT JOIN dk ON dk.platform = l.platform
    )
    SELECT c.*,
        CASE WHEN c.platform = 'google' THEN
                 CASE WHEN {google_catalogue} THEN ga.class ELSE c.kdest END
             ELSE cn.class END AS conv_class,
        (t.order_id IS NOT NULL) AS is_test,
        CASE WHEN t.order_id IS NOT NULL THEN 'test_order'
             WHEN c.channel = 'server' AND c.is_rejected = 1 THEN 'rejected'
             WHEN c.channel = 'server' AND c.too_old + c.insufficient_keys > 0 THEN 'assumed_rejected'
             WHEN c.channel = 'server' AND c.status IS NULL AND c.bad_batch = 1 THEN 'batch_collateral'
        END AS excluded
    FROM cls c
    LEFT JOIN tests t ON t.order_id = c.linked_order
    LEFT JOIN (SELECT name, min(class) AS class FROM u_classes WHERE kind = 'name' GROUP BY name) cn
        ON c.platform <> 'google' AND cn.name = lower(c.event_name)
    LEFT JOIN (SELECT name, min(class) AS class FROM u_classes WHERE kind = 'action' GROUP BY name) ga
        ON c.platform = 'google' AND ga.name = c.kdest
    """


def _window(a: str, b: str) -> str:
    from capi_audit.metrics.common import within_window

    return within_window(a, b)


def _build_sql(sfx: str, with_server: bool) -> list[str]:
    """Statements that build u_rows_<sfx>, u_mb_<sfx> and units_<sfx> from u_src."""
    keep = "TRUE" if with_server else "channel = 'pixel'"
    rows = f"u_rows_{sfx}"
    return [
        # Rows the platform counts, with their Method A unit.
        f"""
        CREATE OR REPLACE TEMP TABLE u_base_{sfx} AS
        WITH r AS (SELECT * FROM u_src WHERE excluded IS NULL AND {keep}),
        k AS (
            SELECT platform, kdest, kname, event_id,
                min(CASE WHEN channel = 'pixel' THEN receipt_time END) AS px_first,
                min(CASE WHEN channel = 'server' THEN receipt_time END) AS sv_first
            FROM r WHERE has_key GROUP BY platform, kdest, kname, event_id
        ),
        kp AS (
            SELECT k.*, (px_first IS NOT NULL AND sv_first IS NOT NULL
                         AND {_window('px_first', 'sv_first')}) AS paired
            FROM k LEFT JOIN u_params w ON w.platform = k.platform
        )
        SELECT r.*,
            CASE WHEN NOT r.has_key THEN r.channel || '|' || CAST(r.rn AS VARCHAR)
                 ELSE r.platform || '|' || r.kdest || '|' || r.kname || '|' || r.event_id || '|'
                      || CASE WHEN kp.paired THEN 'both' ELSE r.channel END END AS unit_a,
            coalesce(kp.paired, FALSE) AS paired_a
        FROM r LEFT JOIN kp ON r.has_key AND kp.platform = r.platform AND kp.kdest = r.kdest
            AND kp.kname = r.kname AND kp.event_id = r.event_id
        """,
        # Method B (Meta): server-only units pair with an earlier pixel-only unit of the same dataset
        # and event_name sharing fbp or external_id within W; nearest pixel unit first, and each
        # pixel unit takes the earliest server unit that chose it.
        f"""
        CREATE OR REPLACE TEMP TABLE u_mb_{sfx} AS
        WITH ua AS (
            SELECT platform, kdest, event_name, unit_a,
                max(CASE WHEN channel = 'pixel' THEN 1 ELSE 0 END) AS has_px,
                max(CASE WHEN channel = 'server' THEN 1 ELSE 0 END) AS has_sv,
                min(receipt_time) AS first_receipt, max(fbp) AS fbp, max(external_id) AS external_id
            FROM u_base_{sfx} WHERE platform = 'meta' GROUP BY platform, kdest, event_name, unit_a
        ),
        s AS (SELECT * FROM ua WHERE has_sv = 1 AND has_px = 0),
        p AS (SELECT * FROM ua WHERE has_px = 1 AND has_sv = 0),
        -- candidate pairs sharing fbp, plus those sharing external_id but not fbp: two equi-joins
        -- (one join on `fbp = fbp OR external_id = external_id` has only the dataset and event
        -- name as keys: every server unit against every pixel unit of the name, quadratic on Spark)
        pairs AS (
            SELECT s.unit_a AS server_unit, p.unit_a AS pixel_unit, s.first_receipt AS s_first,
                p.first_receipt AS p_first, s.platform, 'fbp' AS paired_by
            FROM s JOIN p ON p.platform = s.platform AND p.kdest = s.kdest AND p.event_name = s.event_name
                AND p.fbp = s.fbp AND p.first_receipt <= s.first_receipt
            UNION ALL
            SELECT s.unit_a, p.unit_a, s.first_receipt, p.first_receipt, s.platform, 'external_id'
            FROM s JOIN p ON p.platform = s.platform AND p.kdest = s.kdest AND p.event_name = s.event_name
                AND p.external_id = s.external_id AND p.first_receipt <= s.first_receipt
            WHERE s.fbp IS NULL OR p.fbp IS NULL OR s.fbp <> p.fbp
        ),
        cand AS (
            SELECT c.server_unit, c.pixel_unit, c.s_first, c.paired_by,
                row_number() OVER (PARTITION BY c.server_unit ORDER BY c.p_first DESC, c.pixel_unit) AS pick
            FROM pairs c LEFT JOIN u_params w ON w.platform = c.platform
            WHERE {_window('c.p_first', 'c.s_first')}
        ),
        chosen AS (
            SELECT server_unit, pixel_unit, paired_by,
                row_number() OVER (PARTITION BY pixel_unit ORDER BY s_first, server_unit) AS take
            FROM cand WHERE pick = 1
        )
        SELECT server_unit, pixel_unit, paired_by FROM chosen WHERE take = 1
        """,
        # Google actions counting "one" per click: units of one such action carrying the same ad
        # click id (gclid, gbraid or wbraid) are one conversion, the earliest unit's. "Count only one
        # conversion per click": https://support.google.com/google-ads/answer/3438531 and
        # https://developers.google.com/google-ads/api/reference/rpc/latest/ConversionActionCountingTypeEnum.ConversionActionCountingType
        # A unit without a click id stays its own unit (nothing ties it to a click).
        f"""
        CREATE OR REPLACE TEMP TABLE u_one_{sfx} AS
        WITH uc AS (
            SELECT b.kdest, b.unit_a, min(b.click_id) AS click_id, min(b.event_time) AS first_et
            FROM u_base_{sfx} b
            WHERE b.platform = 'google' AND b.click_id IS NOT NULL AND b.click_id <> ''
              AND EXISTS (SELECT 1 FROM u_one_actions a WHERE a.name = b.kdest)
            GROUP BY b.kdest, b.unit_a
        ),
        ranked AS (
            SELECT kdest, unit_a, click_id,
                row_number() OVER (PARTITION BY kdest, click_id ORDER BY first_et, unit_a) AS k
            FROM uc
        )
        SELECT r.unit_a, f.unit_a AS click_unit
        FROM ranked r JOIN ranked f ON f.kdest = r.kdest AND f.click_id = r.click_id AND f.k = 1
        WHERE r.k > 1
        """,
        f"""
        CREATE OR REPLACE TEMP TABLE {rows} AS
        SELECT b.*, coalesce(m.pixel_unit, g.click_unit, b.unit_a) AS unit_id, m.paired_by AS mb_paired_by,
            row_number() OVER (PARTITION BY coalesce(m.pixel_unit, g.click_unit, b.unit_a)
                               ORDER BY b.event_time, b.receipt_time, b.channel, b.rn) AS pos
        FROM u_base_{sfx} b
        LEFT JOIN u_mb_{sfx} m ON m.server_unit = b.unit_a
        LEFT JOIN u_one_{sfx} g ON g.unit_a = b.unit_a
        """,
        f"""
        CREATE OR REPLACE TEMP TABLE units_{sfx} AS
        WITH agg AS (
            SELECT unit_id, min(event_time) AS first_event_time, min(receipt_time) AS first_receipt_time,
                max(CASE WHEN channel = 'pixel' THEN 1 ELSE 0 END) AS has_px,
                max(CASE WHEN channel = 'server' THEN 1 ELSE 0 END) AS has_sv,
                CAST(sum(CASE WHEN channel = 'pixel' THEN 1 ELSE 0 END) AS BIGINT) AS n_pixel_rows,
                CAST(sum(CASE WHEN channel = 'server' THEN 1 ELSE 0 END) AS BIGINT) AS n_server_rows,
                max(mb_paired_by) AS mb_paired_by, max(CASE WHEN paired_a THEN 1 ELSE 0 END) AS paired_a,
                CAST(count(DISTINCT linked_order) AS BIGINT) AS n_orders,
                max(fbp) AS fbp, max(external_id) AS external_id
            FROM {rows} GROUP BY unit_id
        ),
        ord AS (
            SELECT unit_id, linked_order AS order_id, link_via FROM (
                SELECT unit_id, linked_order, link_via, row_number() OVER (
                    PARTITION BY unit_id ORDER BY event_time, receipt_time, channel, rn) AS k
                FROM {rows} WHERE linked_order IS NOT NULL) x WHERE k = 1
        )
        SELECT f.platform, f.destination, f.event_name, f.conv_class, a.unit_id,
            {local_date('a.first_event_time')} AS day, a.first_event_time,
            (w.enabled_at IS NULL OR a.first_event_time >= w.enabled_at) AS post,
            o.order_id, a.has_px = 1 AS has_pixel, a.has_sv = 1 AS has_server,
            CASE WHEN a.mb_paired_by IS NOT NULL THEN a.mb_paired_by
                 WHEN a.paired_a = 1 THEN 'event_id' END AS paired_by,
            f.value, f.currency,
            CASE WHEN f.has_key THEN f.event_id END AS event_id, f.kdest AS dedup_destination,
            a.first_receipt_time, a.n_pixel_rows, a.n_server_rows, a.n_orders, o.link_via,
            a.fbp, a.external_id
        FROM agg a
        JOIN {rows} f ON f.unit_id = a.unit_id AND f.pos = 1
        LEFT JOIN ord o ON o.unit_id = a.unit_id
        LEFT JOIN u_params w ON w.platform = f.platform
        """,
    ]


def prepare_src(ws: Workspace) -> None:
    """Materialize `u_params`, `u_classes` and `u_src` (every pixel and server row with its link,
    class and exclusion reason) once per workspace and config."""
    token = _token(ws)
    if getattr(ws, "_units_src", None) == token:
        return
    _params(ws)
    ws.execute(_src_sql(ws), link_params(ws))
    ws._units_src = token
    ws._units_built = set()


def counted_units(ws: Workspace, *, with_server: bool = True) -> str:
    """Name of the relation with one row per unit the platform counts (see module docstring).

    Columns: platform, destination, event_name, conv_class, unit_id, day, first_event_time, post,
    order_id, has_pixel, has_server, paired_by, value, currency (stable), plus event_id (the key's
    id, NULL for an event without id), dedup_destination, first_receipt_time, n_pixel_rows,
    n_server_rows, n_orders (distinct linked orders among the unit's rows), link_via, fbp and
    external_id (any value among the unit's rows).
    The row-level relation `unit_rows(ws, with_server=...)` maps every counted row to its unit.
    """
    prepare_src(ws)
    sfx = "all" if with_server else "pixel"
    if sfx not in ws._units_built:
        for stmt in _build_sql(sfx, with_server):
            ws.execute(stmt, {"tz": ws.config.timezone})
        ws._units_built.add(sfx)
    return f"units_{sfx}"


def unit_rows(ws: Workspace, *, with_server: bool = True) -> str:
    """Name of the row-level relation behind `counted_units`: every counted row with its unit_id."""
    counted_units(ws, with_server=with_server)
    return f"u_rows_{'all' if with_server else 'pixel'}"
