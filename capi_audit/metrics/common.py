"""Shared preparation for every metric family: parameters, filtered events, per-key pairing.

`prepare(ws)` materializes, once per workspace and config:
- `audit_params(platform, enabled_at, window_ms)`: the CAPI enable time and dedup window;
- `test_orders(order_id)`: orders flagged `is_test` (their rows are left out everywhere);
- `ev`: pixel rows and accepted server rows of non-test orders, with the receipt time (a pixel
  hit's event_time, a server event's sent_at, else its event_time) and a `post` flag
  (event_time at or after the platform's enable time; every row when none is configured);
- `keys`: one row per (platform, event_name, event_id), pixel and server counts and first
  receipt times over all rows and over post rows, and whether the pair is inside the window.
The SQL is kept close to standard SQL (CASE inside aggregates, no FILTER) for other engines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace


@dataclass
class Headline:
    """The small result object of a metric family: summary values per platform, or why not."""

    section: str
    values: dict[str, Any] = field(default_factory=dict)
    available: bool = True
    reason: str | None = None

    def summary(self) -> dict[str, Any]:
        """The section as it appears in summary.json."""
        if not self.available:
            return {"available": False, "reason": self.reason}
        return self.values


@dataclass
class FamilyResult:
    """What one metric family's `compute(ws)` returns: its summary.json section (`headline`) and
    every small tidy frame it owns, named `<family>` or `<family>_<view>`."""

    headline: Headline
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)

    @classmethod
    def unavailable(cls, section: str, reason: str) -> FamilyResult:
        """A family whose inputs are missing: no frames, the reason says what would provide them."""
        return cls(Headline(section, available=False, reason=reason))


# The SQL helpers below write the project's portable functions (capi_audit/sql/dialect.py
# expands them per engine); metric SQL calls no engine-specific function directly.
def local_date(expr: str) -> str:
    """SQL for the calendar day of a TIMESTAMPTZ in the audit's time zone ($tz)."""
    return f"local_date({expr}, $tz)"


def local_midnight(date_expr: str) -> str:
    """SQL for the TIMESTAMPTZ at which a local day starts."""
    return f"local_midnight({date_expr}, $tz)"


def ms_between(a: str, b: str) -> str:
    """SQL: milliseconds from TIMESTAMPTZ a to b (each truncated to its millisecond)."""
    return f"ms_between({a}, {b})"


def not_test_order(col: str) -> str:
    """SQL predicate: the row's order (may be NULL) is not a test order. An anti-join (Spark plans
    `NOT IN (subquery)` as a nested loop); the inner column is renamed so an unqualified `col`
    can only mean the outer row's."""
    return f"NOT EXISTS (SELECT 1 FROM (SELECT order_id AS test_order_id FROM test_orders) t_o WHERE t_o.test_order_id = {col})"


def not_test_row(ws: Workspace, order_col: str, event_col: str) -> str:
    """SQL predicate: the row does not belong to a test order under `[audit] order_key` — the
    linkage rule of `units.linked_order_sql`: the order id when it names a known order, else
    (`auto`, `event_id`) the event id when that names one. A row that carries a test order only
    as its event id (pixels that send the order number as eventID) is a test row too; a test filter
    on the order id alone counted it. Anti-joins on `test_orders` and `known_orders` (prepare)."""
    def has(table: str, col: str) -> str:
        return (f"EXISTS (SELECT 1 FROM (SELECT order_id AS {table}_id FROM {table}) {table}_t "
                f"WHERE {table}_t.{table}_id = {col})")

    key = ws.config.order_key
    if key == "order_id":
        return f"NOT {has('test_orders', order_col)}"
    if key == "event_id":
        return f"NOT {has('test_orders', event_col)}"
    return (f"NOT ({has('test_orders', order_col)} OR ({has('test_orders', event_col)} "
            f"AND NOT {has('known_orders', order_col)}))")


def double(x: float | int) -> str:
    """A numeric literal typed DOUBLE on every engine (`1.0` is a DECIMAL in Spark)."""
    return f"CAST({x!r} AS DOUBLE)"


def within_window(a: str, b: str) -> str:
    """SQL: receipt times a and b within the platform's window (window_ms NULL = unbounded)."""
    return f"(w.window_ms IS NULL OR abs(ms_between({a}, {b})) <= w.window_ms)"


def seconds_between(a: str, b: str) -> str:
    """SQL: whole seconds from TIMESTAMPTZ a to b (negative when b is earlier)."""
    return f"seconds_between({a}, {b})"


def median(expr: str) -> str:
    """SQL aggregate: the (interpolated) median of expr."""
    return f"percentile({expr}, CAST(0.5 AS DOUBLE))"


def params(ws: Workspace) -> dict[str, Any]:
    """Named parameters every metric query may use."""
    return {"tz": ws.config.timezone, "conv": ws.config.conversion_event}


def platforms(ws: Workspace) -> list[str]:
    """Platforms present in any event or report table, sorted."""
    rows = ws.rows(
        "SELECT platform FROM pixel_events UNION SELECT platform FROM server_events "
        "UNION SELECT platform FROM platform_report ORDER BY 1"
    )
    return [r[0] for r in rows if r[0] is not None]


def prepare(ws: Workspace) -> None:
    """Materialize audit_params, test_orders, ev and keys (idempotent per config)."""
    token = (id(ws.config), ws.config.order_key, ws.count("pixel_events"), ws.count("server_events"), ws.count("orders"))
    if getattr(ws, "_prepared", None) == token:
        return
    rows = []
    for plat in sorted(set(platforms(ws)) | set(ws.config.capi_enabled_at)):
        hours = ws.config.window_hours(plat)
        rows.append((plat, ws.config.capi_enabled_at.get(plat), None if hours is None else float(hours) * 3600 * 1000))
    ws.from_rows("audit_params", [("platform", "VARCHAR"), ("enabled_at", "TIMESTAMPTZ"), ("window_ms", "DOUBLE")], rows)
    ws.execute("CREATE OR REPLACE TEMP TABLE test_orders AS SELECT DISTINCT order_id FROM orders WHERE is_test")
    ws.execute("CREATE OR REPLACE TEMP TABLE known_orders AS "
               "SELECT DISTINCT order_id FROM orders WHERE order_id IS NOT NULL")
    # Rejected server events never reached the platform's counts (design §3): out of ev.
    ws.execute(f"""
        CREATE OR REPLACE TEMP TABLE ev AS
        WITH rows AS (
            SELECT 'pixel' AS channel, platform, event_name, event_id, event_time,
                   event_time AS receipt_time, order_id
            FROM pixel_events
            UNION ALL
            SELECT 'server', platform, event_name, event_id, event_time,
                   coalesce(sent_at, event_time), order_id
            FROM server_events
            WHERE status IS NULL OR lower(status) <> 'rejected'
        )
        SELECT r.*, (p.enabled_at IS NULL OR r.event_time >= p.enabled_at) AS post
        FROM rows r
        LEFT JOIN audit_params p ON p.platform = r.platform
        WHERE {not_test_row(ws, 'r.order_id', 'r.event_id')}
    """)
    ws.execute(f"""
        CREATE OR REPLACE TEMP TABLE keys AS
        WITH k AS (
            SELECT platform, event_name, event_id,
                sum(CASE WHEN channel = 'pixel' THEN 1 ELSE 0 END) AS px_rows,
                sum(CASE WHEN channel = 'server' THEN 1 ELSE 0 END) AS sv_rows,
                min(CASE WHEN channel = 'pixel' THEN receipt_time END) AS px_first,
                min(CASE WHEN channel = 'server' THEN receipt_time END) AS sv_first,
                min(CASE WHEN channel = 'pixel' THEN event_time END) AS px_first_et,
                min(CASE WHEN channel = 'server' THEN event_time END) AS sv_first_et,
                min(event_time) AS first_et,
                sum(CASE WHEN channel = 'pixel' AND post THEN 1 ELSE 0 END) AS px_rows_post,
                sum(CASE WHEN channel = 'server' AND post THEN 1 ELSE 0 END) AS sv_rows_post,
                min(CASE WHEN channel = 'pixel' AND post THEN receipt_time END) AS px_first_post,
                min(CASE WHEN channel = 'server' AND post THEN receipt_time END) AS sv_first_post
            FROM ev WHERE event_id IS NOT NULL
            GROUP BY platform, event_name, event_id
        )
        SELECT k.*,
            (px_rows > 0 AND sv_rows > 0 AND {within_window('px_first', 'sv_first')}) AS paired,
            (px_rows_post > 0 AND sv_rows_post > 0 AND {within_window('px_first_post', 'sv_first_post')}) AS paired_post
        FROM k LEFT JOIN audit_params w ON w.platform = k.platform
    """)
    ws._prepared = token


def tidy(df: pd.DataFrame, sort: list[str]) -> pd.DataFrame:
    """Sorted, index reset: deterministic frames."""
    return df.sort_values(sort, kind="stable").reset_index(drop=True) if len(df) else df.reset_index(drop=True)


def num(x: Any) -> float | None:
    """A float, or None for missing / NaN (frames turn None into NaN)."""
    return None if x is None or pd.isna(x) else float(x)


def ratio(num: float | int | None, den: float | int | None) -> float | None:
    """num / den, or None when the denominator is zero or missing."""
    if num is None or not den:
        return None
    return float(num) / float(den)
