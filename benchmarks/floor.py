"""The engine's floor: a minimal hand-written DuckDB script for the headline figures.

Reads the canonical Parquet files with DuckDB's bare reader into tables and computes, per
platform: dedup overlap after enablement (both / outside / pixel only / server only), double
counting (orders matched, counted events) and the recovery split's inputs (orders and reported
conversions per day before and after, recovered orders). No validation, no accounting, no
parsing beyond what the typed Parquet columns give.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import duckdb


def run_floor(config: Path, db: str | None = None, memory_limit: str | None = None) -> dict:
    """Compute the headline figures with plain SQL; return them."""
    cfg = tomllib.loads(config.read_text())
    con = duckdb.connect(db or ":memory:")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET TimeZone = '{cfg['audit']['timezone']}'")
    for src in cfg["sources"]:
        con.execute(f"CREATE OR REPLACE TABLE {src['table']} AS SELECT * FROM read_parquet('{config.parent / src['path']}')")
    enabled = cfg["capi_enabled_at"]
    con.execute("CREATE TABLE en (platform VARCHAR, e TIMESTAMPTZ, w BIGINT)")
    for p, t in enabled.items():
        con.execute("INSERT INTO en VALUES (?, ?, ?)", [p, t, 48 * 3600 * 1000 if p == "meta" else None])
    con.execute("""
        CREATE TABLE ev AS
        SELECT 'p' AS ch, platform, event_name, event_id, order_id, make_timestamp(event_time * 1000) AS t, make_timestamp(event_time * 1000) AS r
        FROM pixel_events
        UNION ALL
        SELECT 's', platform, event_name, event_id, order_id, make_timestamp(event_time * 1000000), CAST(sent_at AS TIMESTAMP)
        FROM server_events WHERE status <> 'rejected'
    """)
    con.execute("""
        CREATE TABLE k AS
        SELECT ev.platform, event_name, event_id, order_id,
               min(r) FILTER (WHERE ch = 'p') AS pf, min(r) FILTER (WHERE ch = 's') AS sf, any_value(w) AS w
        FROM ev JOIN en ON en.platform = ev.platform
        WHERE t >= CAST(en.e AS TIMESTAMP) AND event_id IS NOT NULL
          AND order_id NOT IN (SELECT order_id FROM orders WHERE is_test = 'true')
        GROUP BY ALL
    """)
    dedup = con.execute("""
        SELECT platform, event_name,
            count(*) FILTER (WHERE pf IS NOT NULL AND sf IS NOT NULL AND (w IS NULL OR abs(epoch_ms(sf) - epoch_ms(pf)) <= w)) AS both,
            count(*) FILTER (WHERE pf IS NOT NULL AND sf IS NOT NULL AND w IS NOT NULL AND abs(epoch_ms(sf) - epoch_ms(pf)) > w) AS outside,
            count(*) FILTER (WHERE sf IS NULL) AS pixel_only, count(*) FILTER (WHERE pf IS NULL) AS server_only
        FROM k GROUP BY ALL ORDER BY ALL
    """).fetchall()
    dc = con.execute("""
        SELECT platform, count(*) AS orders_matched, sum(n) AS counted
        FROM (SELECT platform, order_id,
                     sum(CASE WHEN pf IS NOT NULL AND sf IS NOT NULL AND w IS NOT NULL AND abs(epoch_ms(sf) - epoch_ms(pf)) > w THEN 2 ELSE 1 END) AS n
              FROM k GROUP BY ALL)
        GROUP BY ALL ORDER BY ALL
    """).fetchall()
    rec = con.execute("""
        WITH o AS (SELECT order_id, CAST(created_at AS TIMESTAMPTZ) AS c FROM orders WHERE is_test <> 'true'),
        od AS (SELECT CAST(c AS DATE) AS d, count(*) AS n FROM o GROUP BY ALL)
        SELECT en.platform,
            avg(n) FILTER (WHERE d < CAST(en.e AS DATE)) AS o_pre, avg(n) FILTER (WHERE d >= CAST(en.e AS DATE)) AS o_post,
            (SELECT avg(conversions) FROM platform_report r WHERE r.platform = en.platform AND CAST(r.date AS DATE) < CAST(en.e AS DATE)) AS r_pre,
            (SELECT avg(conversions) FROM platform_report r WHERE r.platform = en.platform AND CAST(r.date AS DATE) >= CAST(en.e AS DATE)) AS r_post,
            (SELECT count(*) FROM o WHERE c >= en.e
                AND order_id IN (SELECT order_id FROM ev WHERE ch = 's' AND ev.platform = en.platform)
                AND order_id NOT IN (SELECT order_id FROM ev WHERE ch = 'p' AND ev.platform = en.platform)) AS recovered
        FROM en, od GROUP BY ALL ORDER BY ALL
    """).fetchall()
    con.close()
    return {"dedup": dedup, "double_counting": dc, "recovery": rec}
