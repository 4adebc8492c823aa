"""Helpers to build tiny workspaces row by row and to compare summaries with truth."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from capi_audit import Workspace
from capi_audit.config import DEFAULT_WINDOW_HOURS, AuditConfig

T0 = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def at(hours: float = 0.0, *, base: dt.datetime = T0) -> dt.datetime:
    """A UTC time `hours` after a fixed base."""
    return base + dt.timedelta(hours=hours)


def make_ws(*, pixel=(), server=(), orders=(), report=(), tz="UTC", enabled=None,
            windows=None, conversion_event="Purchase") -> Workspace:
    """A workspace whose canonical tables hold exactly the given rows (dicts)."""
    w = dict(DEFAULT_WINDOW_HOURS)
    w.update(windows or {})
    cfg = AuditConfig(timezone=tz, capi_enabled_at=enabled or {}, dedup_window_hours=w,
                      conversion_event=conversion_event)
    ws = Workspace(config=cfg)
    for table, rows in (("pixel_events", pixel), ("server_events", server), ("orders", orders),
                        ("platform_report", report)):
        for row in rows:
            row = dict(row)
            if table in ("pixel_events", "server_events"):
                row.setdefault("platform", "meta")
                row.setdefault("event_name", "Purchase")
            cols = list(row)
            ws.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('$' + c for c in cols)})", row)
    return ws


def assert_matches(actual: Any, expected: Any, path: str = "") -> None:
    """Every figure in expected equals actual: ints exactly, floats within 1e-9."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected a dict, got {actual!r}"
        for k, v in expected.items():
            assert k in actual, f"{path}.{k} missing"
            assert_matches(actual[k], v, f"{path}.{k}")
    elif isinstance(expected, float) or isinstance(actual, float):
        if expected is None or actual is None:
            assert actual == expected, f"{path}: {actual} != {expected}"
        else:
            assert math.isclose(actual, expected, rel_tol=0, abs_tol=1e-9), f"{path}: {actual} != {expected}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
