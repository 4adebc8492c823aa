"""Run the whole audit: load, compute every metric family, write summary.json (design §4)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from capi_audit import metrics
from capi_audit.config import AuditConfig, load_config
from capi_audit.errors import ConfigError
from capi_audit.workspace import Workspace

SECTIONS = ("load", "dedup", "double_counting", "recovery", "match_keys", "consent", "validation", "latency")


@dataclass
class AuditResult:
    """Everything one audit run produced: summary dict, tidy frames, a short text."""

    summary: dict[str, Any]
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    text: str = ""


def load_section(ws: Workspace) -> dict[str, Any]:
    """design §4 `load`: table -> rows_read / rows_loaded / rows_rejected (all tables listed)."""
    rows = dict(((t, (r, lo, j)) for t, r, lo, j in ws.rows(
        "SELECT table_name, sum(rows_read), sum(rows_loaded), sum(rows_rejected) FROM load_report GROUP BY 1")))
    out = {}
    for t in ("orders", "pixel_events", "server_events", "platform_report"):
        r, lo, j = rows.get(t, (0, 0, 0))
        out[t] = {"rows_read": int(r), "rows_loaded": int(lo), "rows_rejected": int(j)}
    return out


def compute(ws: Workspace, *, bootstrap_reps: int = 2000) -> AuditResult:
    """Compute every metric family on a loaded workspace."""
    frames: dict[str, pd.DataFrame] = {}
    summary: dict[str, Any] = {"load": load_section(ws)}
    families = (
        ("dedup", metrics.dedup_overlap),
        ("double_counting", metrics.double_counting),
        ("recovery", lambda w: metrics.recovery(w, bootstrap_reps=bootstrap_reps)),
        ("match_keys", metrics.match_keys),
        ("consent", metrics.consent),
        ("validation", metrics.payload_validity),
        ("latency", metrics.latency),
    )
    from capi_audit.progress import Progress

    progress = Progress("audit")
    for name, fn in families:
        with progress.step(name):
            frame, head = fn(ws)
        frames[name] = frame
        summary[name] = head.summary()
    if summary["dedup"].get("available", True) is not False:
        frames["dedup_daily"] = metrics.dedup_daily(ws)
    frames.update(chart_frames(ws, summary, frames))
    summary["conversion_event"] = ws.config.conversion_event
    summary["notes"] = notes(ws)
    summary = clean(summary)
    return AuditResult(summary=summary, frames=frames, text=describe(summary, ws.config))


def chart_frames(ws: Workspace, summary: dict[str, Any], frames: dict[str, Any]) -> dict[str, Any]:
    """Small extra frames the charts need (per-day key validity, latency bins, tiers)."""
    from capi_audit.metrics.consent import by_country
    from capi_audit.metrics.latency import latency_values
    from capi_audit.metrics.match_keys import match_keys_daily, tiers_by_event

    out: dict[str, Any] = {}
    if summary["match_keys"].get("available", True) is not False:
        out["match_keys_daily"] = match_keys_daily(ws)
        out["tiers"] = tiers_by_event(ws)
    if summary["latency"].get("available", True) is not False:
        out["latency_bins"] = {p: latency_values(ws, platform=p) for p in summary["latency"]}
    if summary["consent"].get("available", True) is not False:
        out["consent_by_country"] = by_country(frames["consent"])
    return out


def notes(ws: Workspace) -> list[str]:
    """Caveats that apply to this run's numbers."""
    out = ["same-channel copies of one key are assumed removed by the platform (not documented by Meta)"]
    n = ws.scalar("SELECT count(*) FROM server_events WHERE sent_at IS NULL")
    if n:
        out.append(f"{n} server events have no sent_at: their event_time stands in for the receipt time")
    if not ws.config.capi_enabled_at:
        out.append("no CAPI enable time configured: dedup and double counting cover every event")
    return out


def _load_duckdb(cfg: AuditConfig, db: str | None) -> Workspace:
    ws = Workspace(db, config=cfg)
    if db and any(ws.count(t) for t in ("orders", "pixel_events", "server_events", "platform_report")):
        ws.close()
        raise ConfigError(f"{db}: the database already holds loaded data; remove it or name a new file")
    ws.load()
    return ws


def open_workspace(cfg: AuditConfig, *, db: str | None = None, engine: str | None = None,
                   scratch: Path | None = None) -> Workspace:
    """A workspace holding the config's canonical tables on its engine (`engine` overrides
    `[engine] kind`). DuckDB loads the sources. Spark registers `[engine.tables]`; when none are
    named it loads the sources in DuckDB and exports them to Parquet under `scratch` first."""
    kind = engine or cfg.engine.kind
    if kind == "duckdb":
        return _load_duckdb(cfg, db)
    if kind != "spark":
        raise ConfigError(f"unknown engine {kind!r} (known: duckdb, spark)")
    from capi_audit.engine import SparkEngine

    tables, fmt = dict(cfg.engine.tables), cfg.engine.format
    if not tables:
        if scratch is None:
            raise ConfigError("a Spark audit from [[sources]] needs a scratch folder for the Parquet export")
        with _load_duckdb(cfg, db) as duck:
            tables = {t: str(p) for t, p in duck.export_parquet(scratch).items()}
        fmt = "parquet"
    spark = SparkEngine(timezone=cfg.timezone, master=cfg.engine.master, conf=cfg.engine.conf)
    return Workspace.on_engine(spark, tables, config=cfg, fmt=fmt)


def run_audit(config: str | Path | AuditConfig, out: str | Path, *, db: str | None = None,
              charts: bool = True, engine: str | None = None) -> AuditResult:
    """Load a config's sources (or attach its engine's tables), compute everything, write
    out/summary.json (and charts). The result folder is the same whatever the engine."""
    import tempfile

    cfg = config if isinstance(config, AuditConfig) else load_config(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="capi_audit_") as scratch, \
            open_workspace(cfg, db=db, engine=engine, scratch=Path(scratch)) as ws:
        result = compute(ws)
        write_summary(result.summary, out / "summary.json")
        if charts:
            from capi_audit.charts import write_charts
            write_charts(result, out / "charts")
    return result


def write_summary(summary: dict[str, Any], path: Path) -> None:
    """Write summary.json with sorted keys (stable for diffs and CI gates)."""
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def clean(obj: Any) -> Any:
    """JSON-safe values: numpy scalars to Python, NaN to null."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str):
        obj = obj.item()
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    return obj


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def describe(summary: dict[str, Any], cfg: AuditConfig) -> str:
    """A short human summary of the headline figures."""
    lines = []
    load = summary["load"]
    lines.append("Loaded: " + ", ".join(f"{t} {v['rows_loaded']} (rejected {v['rows_rejected']})" for t, v in load.items()))
    dd = summary["dedup"]
    if dd.get("available", True) is not False:
        for plat, evs in dd.items():
            for ev, m in evs.items():
                if ev != cfg.conversion_event:
                    continue
                gap = "no platform report" if m["report_gap"] is None else f"report gap {m['report_gap']:+.0f}"
                lines.append(f"{plat} {ev}: event coverage {_pct(m['event_coverage'])}, dedup rate "
                             f"{_pct(m['dedup_rate'])}, {m['both_outside_window']} pairs outside the window, "
                             f"{m['name_mismatch']} name mismatches, {gap}")
            others = [f"{ev} ({m['server_only']} server-only, {m['pixel_only']} pixel-only keys)"
                      for ev, m in evs.items() if ev != cfg.conversion_event]
            if others:
                lines.append(f"{plat} other event names: " + "; ".join(others))
    dc = summary["double_counting"]
    if dc.get("available", True) is not False:
        for plat, m in dc.items():
            lines.append(f"{plat}: {m['orders_double_counted']} of {m['orders_matched']} orders counted more than "
                         f"once (inflation {_pct(m['inflation_rate'])})")
    rec = summary["recovery"]
    if rec.get("available", True) is not False:
        for plat, evs in rec.items():
            for ev, m in evs.items():
                s = metrics.headline_sentence(m)
                if s:
                    lines.append(f"{plat} {ev}: {s}")
    else:
        lines.append(f"recovery: not available ({rec['reason']})")
    return "\n".join(lines)
