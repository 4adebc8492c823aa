"""Parse and validate `audit.toml` (design §5) into an `AuditConfig`."""

from __future__ import annotations

import datetime as dt
import glob
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from capi_audit.errors import ConfigError
from capi_audit.schema import SOURCE_TABLES, TABLES

PLATFORMS = ("meta", "google")
# Meta: duplicates are removed only within 48 h of the first receipt of an event_id.
# https://developers.facebook.com/docs/marketing-api/conversions-api/deduplicate-pixel-and-server-events
DEFAULT_WINDOW_HOURS: dict[str, float | None] = {"meta": 48.0, "google": None}


@dataclass(frozen=True)
class SourceSpec:
    """One `[[sources]]` entry: which canonical table a file (or glob) fills, and how."""

    table: str
    path: str
    format: str = "canonical"
    columns: dict[str, str] = field(default_factory=dict)
    platform: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def files(self) -> list[Path]:
        """The files this source names, sorted; a glob may match several."""
        if any(ch in self.path for ch in "*?["):
            return [Path(p) for p in sorted(glob.glob(self.path))]
        return [Path(self.path)]


ENGINE_KINDS = ("duckdb", "spark")
ENGINE_FORMATS = ("parquet", "delta", "table")


@dataclass(frozen=True)
class EngineSpec:
    """`[engine]`: where the metrics run. DuckDB loads the sources itself; Spark starts from
    canonical tables that already exist (`[engine.tables]`: table = Parquet/Delta path or catalog
    table name) or, when none are named, from the sources loaded in DuckDB and exported to Parquet."""

    kind: str = "duckdb"
    format: str = "parquet"
    tables: dict[str, str] = field(default_factory=dict)
    master: str = "local[2]"
    conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditConfig:
    """Everything an audit needs to know besides the data itself."""

    timezone: str = "UTC"
    conversion_event: str = "Purchase"
    dedup_window_hours: dict[str, float | None] = field(
        default_factory=lambda: dict(DEFAULT_WINDOW_HOURS)
    )
    capi_enabled_at: dict[str, dt.datetime] = field(default_factory=dict)
    default_platform: str | None = None
    sources: tuple[SourceSpec, ...] = ()
    path: Path | None = None
    engine: EngineSpec = field(default_factory=EngineSpec)

    def window_hours(self, platform: str) -> float | None:
        """Dedup window in hours for a platform; None means unbounded."""
        return self.dedup_window_hours.get(platform, DEFAULT_WINDOW_HOURS.get(platform))


_AUDIT_KEYS = {
    "timezone": str,
    "dedup_window_hours": (int, float),
    "conversion_event": str,
    "default_platform": str,
}
_SOURCE_KEYS = {
    "table": str,
    "path": str,
    "format": str,
    "columns": dict,
    "platform": str,
    "options": dict,
}
_TOP_KEYS = {"audit", "capi_enabled_at", "dedup_window_hours", "sources", "engine"}


def _fail(where: Path | str, msg: str) -> ConfigError:
    return ConfigError(f"{where}: {msg}")


def _check_type(where: Path | str, key: str, value: Any, typ: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, typ):
        names = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        raise _fail(where, f"key '{key}' must be {names}, got {type(value).__name__} {value!r}")


def parse_timestamp(where: Path | str, key: str, value: Any, tz: str) -> dt.datetime:
    """A config timestamp (TOML datetime or ISO string) as an aware UTC datetime."""
    if isinstance(value, dt.datetime):
        ts = value
    elif isinstance(value, dt.date):
        ts = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            ts = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise _fail(where, f"key '{key}' is not an ISO 8601 time: {value!r}") from exc
    else:
        raise _fail(where, f"key '{key}' must be a time, got {type(value).__name__}")
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=ZoneInfo(tz))
    return ts.astimezone(dt.UTC)


def check_timezone(where: Path | str, tz: str) -> str:
    """Raise a ConfigError unless tz is a known IANA zone name."""
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _fail(where, f"unknown time zone {tz!r} (use an IANA name such as 'Europe/Berlin')") from exc
    return tz


def config_from_dict(data: dict[str, Any], *, path: Path | None = None) -> AuditConfig:
    """Validate a parsed audit.toml; source paths are resolved against the file's folder."""
    where: Path | str = path or "audit.toml"
    base = path.parent if path else Path(".")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise _fail(where, f"unknown top-level key(s): {', '.join(sorted(unknown))}")
    audit = data.get("audit", {})
    if not isinstance(audit, dict):
        raise _fail(where, "[audit] must be a table")
    for key, value in audit.items():
        if key not in _AUDIT_KEYS:
            raise _fail(where, f"unknown key '{key}' in [audit] (known: {', '.join(_AUDIT_KEYS)})")
        _check_type(where, f"audit.{key}", value, _AUDIT_KEYS[key])
    tz = check_timezone(where, audit.get("timezone", "UTC"))
    windows = dict(DEFAULT_WINDOW_HOURS)
    if "dedup_window_hours" in audit:
        windows["meta"] = float(audit["dedup_window_hours"])
    per_platform = data.get("dedup_window_hours", {})
    if not isinstance(per_platform, dict):
        raise _fail(where, "[dedup_window_hours] must be a table of platform = hours")
    for plat, hours in per_platform.items():
        _check_platform(where, f"dedup_window_hours.{plat}", plat)
        _check_type(where, f"dedup_window_hours.{plat}", hours, (int, float))
        if hours <= 0:
            raise _fail(where, f"key 'dedup_window_hours.{plat}' must be positive")
        windows[plat] = float(hours)
    if windows["meta"] is not None and windows["meta"] <= 0:
        raise _fail(where, "key 'audit.dedup_window_hours' must be positive")
    enabled = data.get("capi_enabled_at", {})
    if not isinstance(enabled, dict):
        raise _fail(where, "[capi_enabled_at] must be a table of platform = time")
    enabled_at = {}
    for plat, value in enabled.items():
        _check_platform(where, f"capi_enabled_at.{plat}", plat)
        enabled_at[plat] = parse_timestamp(where, f"capi_enabled_at.{plat}", value, tz)
    default_platform = audit.get("default_platform")
    if default_platform is not None:
        _check_platform(where, "audit.default_platform", default_platform)
    raw_sources = data.get("sources", [])
    if not isinstance(raw_sources, list):
        raise _fail(where, "[[sources]] must be an array of tables")
    sources = tuple(
        _parse_source(where, base, i, s, default_platform) for i, s in enumerate(raw_sources, 1)
    )
    return AuditConfig(
        timezone=tz,
        conversion_event=audit.get("conversion_event", "Purchase"),
        dedup_window_hours=windows,
        capi_enabled_at=enabled_at,
        default_platform=default_platform,
        sources=sources,
        path=path,
        engine=parse_engine(where, base, data.get("engine", {})),
    )


def parse_engine(where: Path | str, base: Path, raw: Any) -> EngineSpec:
    """Validate `[engine]` (kind, format, master, [engine.tables], [engine.conf])."""
    from capi_audit.schema import TABLES as CANONICAL

    if not isinstance(raw, dict):
        raise _fail(where, "[engine] must be a table")
    known = {"kind": str, "format": str, "master": str, "tables": dict, "conf": dict}
    for key, value in raw.items():
        if key not in known:
            raise _fail(where, f"unknown key '{key}' in [engine] (known: {', '.join(known)})")
        _check_type(where, f"engine.{key}", value, known[key])
    kind = raw.get("kind", "duckdb")
    if kind not in ENGINE_KINDS:
        raise _fail(where, f"engine.kind: unknown engine {kind!r} (known: {', '.join(ENGINE_KINDS)})")
    fmt = raw.get("format", "parquet")
    if fmt not in ENGINE_FORMATS:
        raise _fail(where, f"engine.format: unknown format {fmt!r} (known: {', '.join(ENGINE_FORMATS)})")
    tables = {}
    allowed = set(CANONICAL) | {"load_report", "rejects"}
    for name, loc in raw.get("tables", {}).items():
        if name not in allowed:
            raise _fail(where, f"engine.tables: {name!r} is not a canonical table (known: {', '.join(sorted(allowed))})")
        if not isinstance(loc, str) or not loc:
            raise _fail(where, f"engine.tables.{name} must be a path or a table name (string)")
        is_uri = "://" in loc or fmt == "table"
        tables[name] = loc if is_uri or Path(loc).is_absolute() else str(base / loc)
    if tables and kind == "duckdb":
        raise _fail(where, "[engine.tables] is for kind = \"spark\"; DuckDB loads [[sources]]")
    conf = {str(k): str(v) for k, v in raw.get("conf", {}).items()}
    return EngineSpec(kind=kind, format=fmt, tables=tables, master=raw.get("master", "local[2]"), conf=conf)


def _check_platform(where: Path | str, key: str, plat: Any) -> None:
    if plat not in PLATFORMS:
        raise _fail(where, f"key '{key}': unknown platform {plat!r} (known: {', '.join(PLATFORMS)})")


def _parse_source(
    where: Path | str, base: Path, index: int, src: Any, default_platform: str | None
) -> SourceSpec:
    from capi_audit.io import FORMATS  # local import: io depends on config

    label = f"sources[{index}]"
    if not isinstance(src, dict):
        raise _fail(where, f"{label} must be a table")
    for key, value in src.items():
        if key not in _SOURCE_KEYS:
            raise _fail(where, f"unknown key '{key}' in {label} (known: {', '.join(_SOURCE_KEYS)})")
        _check_type(where, f"{label}.{key}", value, _SOURCE_KEYS[key])
    for key in ("table", "path"):
        if key not in src:
            raise _fail(where, f"{label} is missing required key '{key}'")
    fmt = src.get("format", "canonical")
    if fmt not in FORMATS:
        raise _fail(where, f"{label}.format: unknown format {fmt!r} (known: {', '.join(sorted(FORMATS))})")
    table = src["table"]
    allowed = FORMATS[fmt].tables
    if table not in SOURCE_TABLES or (allowed and table not in allowed):
        choices = allowed or SOURCE_TABLES
        raise _fail(where, f"{label}.table: {table!r} is not a table format {fmt!r} fills (use one of {', '.join(choices)})")
    columns = src.get("columns", {})
    known_cols = {c.name for c in TABLES[table].columns}
    for canon, source_col in columns.items():
        if canon not in known_cols:
            raise _fail(where, f"{label}.columns: {canon!r} is not a column of {table} (known: {', '.join(sorted(known_cols))})")
        if not isinstance(source_col, str):
            raise _fail(where, f"{label}.columns.{canon} must be a source column name (string)")
    platform = src.get("platform", default_platform)
    if platform is not None:
        _check_platform(where, f"{label}.platform", platform)
    path = src["path"]
    full = path if Path(path).is_absolute() else str(base / path)
    return SourceSpec(
        table=table,
        path=full,
        format=fmt,
        columns=dict(columns),
        platform=platform,
        options=dict(src.get("options", {})),
    )


def load_config(path: str | Path) -> AuditConfig:
    """Read and validate an audit.toml file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    return config_from_dict(data, path=path)
