"""Run the whole audit: load, compute every metric family, write summary.json (design §4)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd

from capi_audit import metrics
from capi_audit.config import AuditConfig, load_config
from capi_audit.errors import ConfigError
from capi_audit.parsing import redact_path
from capi_audit.result import AuditResult, ConfigEcho, json_safe
from capi_audit.workspace import Workspace

SECTIONS = ("load", *(f.name for f in metrics.FAMILIES if f.name != "load"))
__all__ = ["AuditResult", "SECTIONS", "compute", "describe", "run_audit"]


def load_section(ws: Workspace) -> dict[str, Any]:
    """design §4 `load`: table -> rows_read / rows_loaded / rows_rejected (all tables listed)."""
    return metrics.family("load").run(ws).headline.summary()


def compute(ws: Workspace, *, bootstrap_reps: int = 2000) -> AuditResult:
    """Compute every registered metric family on a loaded workspace (once each)."""
    from capi_audit.progress import Progress

    frames: dict[str, pd.DataFrame] = {}
    summary: dict[str, Any] = {}
    progress = Progress("audit")
    for fam in metrics.FAMILIES:
        with progress.step(fam.name):
            out = fam.run(ws, bootstrap_reps=bootstrap_reps)
        summary[fam.name] = out.headline.summary()
        for name, frame in out.frames.items():
            if name != fam.name and not name.startswith(fam.name + "_"):
                raise ValueError(f"family {fam.name} returned frame {name!r}: frames are named "
                                 f"{fam.name} or {fam.name}_<view>")
            frames[name] = _normalized(frame)
    summary["conversion_event"] = ws.config.conversion_event
    summary["notes"] = notes(ws)
    return AuditResult(summary=json_safe(summary), frames=frames, config=config_echo(ws))


def _normalized(frame: pd.DataFrame) -> pd.DataFrame:
    """Index reset; an object column of numbers and missing values becomes float (as Parquet
    reads it back), so a written result reads back equal."""
    frame = frame.reset_index(drop=True)
    for col in frame.columns:
        if frame[col].dtype != object or not len(frame):
            continue
        present = frame[col].dropna()
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    return frame


def config_echo(ws: Workspace) -> ConfigEcho:
    """The settings and data span the figures depend on."""
    from capi_audit.metrics.common import local_date, platforms
    from capi_audit.metrics.units import AGE_LIMITS_S

    cfg = ws.config
    plats = tuple(sorted(set(platforms(ws)) | set(cfg.capi_enabled_at)))
    span = ws.rows(f"""
        SELECT min(d), max(d) FROM (
            SELECT {local_date('event_time')} AS d FROM pixel_events
            UNION ALL SELECT {local_date('event_time')} FROM server_events
            UNION ALL SELECT {local_date('created_at')} FROM orders
            UNION ALL SELECT date FROM platform_report)""", {"tz": cfg.timezone})[0]
    skip = {"timezone", "conversion_event", "capi_enabled_at", "dedup_window_hours", "sources", "path"}
    settings = {f.name: json_safe(_plain(getattr(cfg, f.name))) for f in dataclasses.fields(cfg) if f.name not in skip}
    return ConfigEcho(
        timezone=cfg.timezone,
        conversion_event=cfg.conversion_event,
        platforms=plats,
        enabled_at={p: t.astimezone(dt.UTC).isoformat() for p, t in sorted(cfg.capi_enabled_at.items())},
        windows={p: cfg.window_hours(p) for p in plats},
        # the platform-wide send-age limit (per action_source exceptions stay in metrics.units)
        age_limit_s={p: float(v) for (p, src), v in sorted(AGE_LIMITS_S.items()) if src == "*" and p in plats},
        first_day=None if span[0] is None else str(span[0]),
        last_day=None if span[1] is None else str(span[1]),
        sources=tuple({"table": s.table, "format": s.format, "file": redact_path(Path(s.path).name)} for s in cfg.sources),
        settings=settings,
    )


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def notes(ws: Workspace) -> list[str]:
    """Caveats that apply to this run's numbers."""
    out = ["same-channel copies of one key are assumed removed by the platform (not documented by Meta)",
           "server events with no logged status that break a hard rejection rule (too old, Meta's insufficient "
           "customer information) are assumed rejected, with every other event of their Meta request"]
    n = ws.scalar("SELECT count(*) FROM server_events WHERE sent_at IS NULL")
    if n:
        out.append(f"{n} server events have no sent_at: their event_time stands in for the receipt time")
    from capi_audit.metrics.units import prepare_src

    prepare_src(ws)
    for plat, px, sv in ws.rows(
            "SELECT platform, sum(CASE WHEN channel = 'pixel' AND destination IS NOT NULL THEN 1 ELSE 0 END), "
            "sum(CASE WHEN channel = 'server' AND destination IS NOT NULL THEN 1 ELSE 0 END) "
            "FROM u_src GROUP BY 1 ORDER BY 1"):
        if (px == 0) != (sv == 0):
            out.append(f"{plat}: only the {'pixel' if px else 'server'} events name their destination (dataset / "
                       "conversion action): dedup keys ignore it")
    if not ws.config.capi_enabled_at:
        out.append("no CAPI enable time configured: dedup and double counting cover every event")
    from capi_audit.metrics.google import google_notes

    out += google_notes(ws)
    return out


def refuse_loaded(ws: Workspace, db: str | None) -> None:
    """A `--db` that already holds a load is refused: loading again appended every row a second
    time (`load --db` twice doubled every count a notebook read from it)."""
    if db and ws.holds_load():
        ws.close()
        raise ConfigError(f"{db}: the database already holds loaded data; remove it or name a new file")


def _load_duckdb(cfg: AuditConfig, db: str | None) -> Workspace:
    ws = Workspace(db, config=cfg)
    refuse_loaded(ws, db)
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
    """Load a config's sources (or attach its engine's tables), compute everything once, write the
    result folder (and charts). The result folder is the same whatever the engine. It is written
    whole or not at all: on an error or an interruption `out` is left as it was."""
    from capi_audit.outputs import atomic_folder

    with atomic_folder(out, "result.json") as tmp:
        return audit_into(config, tmp, db=db, charts=charts, engine=engine)


def audit_into(config: str | Path | AuditConfig, folder: Path, *, db: str | None = None,
               charts: bool = True, engine: str | None = None) -> AuditResult:
    """run_audit writing straight into `folder` (the caller owns its atomicity)."""
    import tempfile

    cfg = config if isinstance(config, AuditConfig) else load_config(config)
    with tempfile.TemporaryDirectory(prefix="capi_audit_") as scratch, \
            open_workspace(cfg, db=db, engine=engine, scratch=Path(scratch)) as ws:
        result = compute(ws)
    result.write(folder)
    if charts:
        from capi_audit.charts import write_charts
        write_charts(result, folder / "charts")
    return result


def write_summary(summary: dict[str, Any], path: Path) -> None:
    """Write summary.json with sorted keys (stable for diffs and CI gates)."""
    path.write_text(json.dumps(json_safe(summary), indent=2, sort_keys=True) + "\n", encoding="utf-8")


clean = json_safe


def describe(result: AuditResult) -> str:
    """A short plain-text summary: what was loaded, the headline sentences, the top findings."""
    from capi_audit.findings import findings, headline_sentences

    load = result.summary.get("load", {})
    if load.get("available") is False:   # tables attached on another engine: nothing was loaded here
        lines = [f"Loaded: nothing by capi_audit ({load.get('reason')})"]
    else:
        lines = ["Loaded: " + ", ".join(f"{t} {v.get('rows_loaded', 0):,} (rejected {v.get('rows_rejected', 0):,})"
                                        for t, v in load.items() if isinstance(v, dict))]
    lines += headline_sentences(result)
    found = [f for f in findings(result) if f.severity != "info"]
    for f in found[:10]:
        lines.append(f"[{f.severity}] {f.platform or 'all'}: {f.figure} — {f.cost} → {f.action}")
    if len(found) > 10:
        lines.append(f"… and {len(found) - 10} more findings (see the report)")
    for f in findings(result):
        if f.rule == "not_measured":
            lines.append(f"{f.figure} → {f.action}")
    return "\n".join(lines)
