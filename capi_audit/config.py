"""Parse and validate `audit.toml` (design §5) into an `AuditConfig`."""

from __future__ import annotations

import datetime as dt
import errno
import glob
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from capi_audit.errors import ConfigError
from capi_audit.schema import SOURCE_TABLES, TABLES

PLATFORMS = ("meta", "google", "ga4")
# Meta: duplicates are removed only within 48 h of the first receipt of an event_id.
# https://developers.facebook.com/docs/marketing-api/conversions-api/deduplicate-pixel-and-server-events
# Google Ads (transaction_id per conversion action) and GA4 (transaction_id) document no window.
DEFAULT_WINDOW_HOURS: dict[str, float | None] = {"meta": 48.0, "google": None, "ga4": None}


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
        # a literal file wins over a glob reading of its name (`export[1].csv`)
        if Path(self.path).exists() or not any(ch in self.path for ch in "*?["):
            return [Path(self.path)]
        # a glob names files: a folder it matches (`daily/*.csv` and a folder `old.csv/`) is not one
        return [Path(p) for p in sorted(glob.glob(self.path)) if not Path(p).is_dir()]


@dataclass(frozen=True)
class GoogleAction:
    """One `[[google_actions]]` entry: a Google Ads conversion action and how it counts."""

    name: str
    type: str = "webpage"
    primary: bool = True
    counting: str = "one"


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
    # Periods (design §3.0): days skipped after enablement, final days dropped while reports settle.
    burn_in_days: int = 2
    settle_days: int = 3
    # Per-platform time zone of the ad account's report dates (design §2 platform_report).
    report_timezone: dict[str, str] = field(default_factory=dict)

    # Order linkage and conversion classes (design v2 §3.0): see `_parse_linkage`.
    order_key: str = "auto"
    event_aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    google_actions: tuple[GoogleAction, ...] = ()
    # Plausibility window of loaded times (docs/loading.md): rows outside are rejected at load.
    plausible_from: dt.datetime = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    plausible_until: dt.datetime | None = None  # None: one year after the newest order
    engine: EngineSpec = field(default_factory=EngineSpec)
    # DuckDB's memory limit while sources load (docs/loading.md "Memory"): bounded by default so a
    # large file spills to disk instead of growing; a bigger limit loads large files faster.
    load_memory_limit: str = "400MB"

    def report_zone(self, platform: str) -> str:
        """The zone a platform's report days are cut in: `[report_timezone]`, else the audit's."""
        return self.report_timezone.get(platform, self.timezone)

    def window_hours(self, platform: str) -> float | None:
        """Dedup window in hours for a platform; None means unbounded."""
        return self.dedup_window_hours.get(platform, DEFAULT_WINDOW_HOURS.get(platform))


_AUDIT_KEYS = {
    "timezone": str,
    "dedup_window_hours": (int, float),
    "conversion_event": str,
    "default_platform": str,
    "burn_in_days": int,
    "settle_days": int,
    "order_key": str,
    "event_aliases": dict,
    "plausible_from": (str, dt.date),
    "plausible_until": (str, dt.date),
    "load_memory_limit": str,
}
# a DuckDB memory size: a number and a unit (https://duckdb.org/docs/stable/configuration/overview)
_MEMORY_SIZE = re.compile(r"\s*[0-9]+(\.[0-9]+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", re.IGNORECASE)
_SOURCE_KEYS = {
    "table": str,
    "path": str,
    "format": str,
    "columns": dict,
    "platform": str,
    "options": dict,
}
_TOP_KEYS = {"audit", "capi_enabled_at", "dedup_window_hours", "sources", "google_actions", "report_timezone", "engine"}
ORDER_KEYS = ("auto", "order_id", "event_id")
GOOGLE_ACTION_KEYS = {"name": str, "type": str, "primary": bool, "counting": str}
GOOGLE_COUNTING = ("one", "every")
# Raw customer columns an orders source may map: hashed per platform at load into `identities`,
# never stored (design v2 §2).
IDENTITY_COLUMNS = ("email", "phone", "first_name", "last_name", "zip", "city", "state", "country_code")


def _fail(where: Path | str, msg: str) -> ConfigError:
    return ConfigError(f"{where}: {msg}")


def _check_type(where: Path | str, key: str, value: Any, typ: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, typ):
        names = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        from capi_audit.parsing import scrub

        raise _fail(where, f"key '{key}' must be {names}, got {type(value).__name__} {scrub(repr(value))}")


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
    try:
        return ts.astimezone(dt.UTC)
    except (OverflowError, ValueError) as exc:
        raise _fail(where, f"key '{key}': {value!s} cannot be converted to UTC (out of range)") from exc


def check_timezone(where: Path | str, tz: str) -> str:
    """Raise a ConfigError unless tz is a known IANA zone name."""
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _fail(where, f"unknown time zone {tz!r} (use an IANA name such as 'Europe/Berlin')") from exc
    return tz


def _same_file_key(path: str) -> str:
    """Two sources naming one file (`a.csv` and `./a.csv`, a symlink, a hard link) share this key;
    a glob is kept as written (its files are compared when the load plans them)."""
    p = Path(path)
    if any(c in path for c in "*?[") and not p.exists():
        return path
    try:
        st = p.stat()
        return f"{st.st_dev}:{st.st_ino}"
    except OSError:
        try:
            return str(p.resolve())
        except (OSError, RuntimeError):  # a symlink loop: the load names it
            return str(p.absolute())


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
    for plat, hours in windows.items():
        if hours is not None and not math.isfinite(hours):
            raise _fail(where, f"dedup window for {plat} must be a finite number of hours, got {hours!r} "
                               "(leave the key out for the platform's default)")
    if windows["meta"] is not None and windows["meta"] <= 0:
        raise _fail(where, "key 'audit.dedup_window_hours' must be positive")
    enabled = data.get("capi_enabled_at", {})
    if not isinstance(enabled, dict):
        raise _fail(where, "[capi_enabled_at] must be a table of platform = time")
    enabled_at = {}
    for plat, value in enabled.items():
        _check_platform(where, f"capi_enabled_at.{plat}", plat)
        enabled_at[plat] = parse_timestamp(where, f"capi_enabled_at.{plat}", value, tz)
    plausible = {}
    for key in ("plausible_from", "plausible_until"):
        if key in audit:
            plausible[key] = parse_timestamp(where, f"audit.{key}", audit[key], tz)
    if len(plausible) == 2 and plausible["plausible_from"] >= plausible["plausible_until"]:
        raise _fail(where, "key 'audit.plausible_from' must be before 'audit.plausible_until'")
    memory = audit.get("load_memory_limit", "400MB")
    if not _MEMORY_SIZE.fullmatch(memory):
        raise _fail(where, f"key 'audit.load_memory_limit' must be a size such as \"500MB\" or \"4GB\", got {memory!r}")
    default_platform = audit.get("default_platform")
    if default_platform is not None:
        _check_platform(where, "audit.default_platform", default_platform)
    raw_sources = data.get("sources", [])
    if not isinstance(raw_sources, list):
        raise _fail(where, "[[sources]] must be an array of tables")
    sources = tuple(
        _parse_source(where, base, i, s, default_platform) for i, s in enumerate(raw_sources, 1)
    )
    periods = _parse_periods(where, audit, data)
    order_key, aliases, actions = _parse_linkage(where, audit, data.get("google_actions", []))
    seen: dict[tuple[str, str], int] = {}
    for i, s in enumerate(sources, 1):
        key = (s.table, _same_file_key(s.path))
        if key in seen:
            raise _fail(where, f"sources[{seen[key]}] and sources[{i}] both load {s.path!r} into {s.table}: "
                               "every row would count twice; remove one")
        seen[key] = i
    return AuditConfig(
        **periods,
        order_key=order_key,
        event_aliases=aliases,
        google_actions=actions,
        timezone=tz,
        conversion_event=audit.get("conversion_event", "Purchase"),
        dedup_window_hours=windows,
        capi_enabled_at=enabled_at,
        default_platform=default_platform,
        sources=sources,
        path=path,
        engine=parse_engine(where, base, data.get("engine", {})),
        load_memory_limit=memory.strip(),
        **plausible,
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


def _parse_periods(where: Path | str, audit: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """`[audit] burn_in_days`, `settle_days` (whole days, >= 0) and `[report_timezone]`."""
    out: dict[str, Any] = {}
    for key in ("burn_in_days", "settle_days"):
        if key in audit:
            if audit[key] < 0 or audit[key] > 60:
                raise _fail(where, f"key 'audit.{key}' must be a whole number of days from 0 to 60")
            out[key] = int(audit[key])
    zones = data.get("report_timezone", {})
    if not isinstance(zones, dict):
        raise _fail(where, "[report_timezone] must be a table of platform = IANA zone")
    out["report_timezone"] = {}
    for plat, zone in zones.items():
        _check_platform(where, f"report_timezone.{plat}", plat)
        _check_type(where, f"report_timezone.{plat}", zone, str)
        out["report_timezone"][plat] = check_timezone(where, zone)
    return out


def _parse_linkage(
    where: Path | str, audit: dict[str, Any], raw_actions: Any
) -> tuple[str, dict[str, tuple[str, ...]], tuple[GoogleAction, ...]]:
    """`[audit] order_key`, `[audit] event_aliases` and `[[google_actions]]` (design v2 §5)."""
    order_key = audit.get("order_key", "auto")
    if order_key not in ORDER_KEYS:
        raise _fail(where, f"key 'audit.order_key' must be one of {', '.join(ORDER_KEYS)}, got {order_key!r}")
    aliases: dict[str, tuple[str, ...]] = {}
    for cls, names in audit.get("event_aliases", {}).items():
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise _fail(where, f"key 'audit.event_aliases.{cls}' must be a list of event names")
        aliases[str(cls)] = tuple(names)
    if not isinstance(raw_actions, list):
        raise _fail(where, "[[google_actions]] must be an array of tables")
    actions = []
    for i, act in enumerate(raw_actions, 1):
        label = f"google_actions[{i}]"
        if not isinstance(act, dict):
            raise _fail(where, f"{label} must be a table")
        for key, value in act.items():
            if key not in GOOGLE_ACTION_KEYS:
                raise _fail(where, f"unknown key '{key}' in {label} (known: {', '.join(GOOGLE_ACTION_KEYS)})")
            typ = GOOGLE_ACTION_KEYS[key]
            if typ is bool:
                if not isinstance(value, bool):
                    raise _fail(where, f"key '{label}.{key}' must be true or false, got {value!r}")
            else:
                _check_type(where, f"{label}.{key}", value, typ)
        if not act.get("name"):
            raise _fail(where, f"{label} is missing required key 'name'")
        counting = act.get("counting", "one")
        if counting not in GOOGLE_COUNTING:
            raise _fail(where, f"key '{label}.counting' must be one of {', '.join(GOOGLE_COUNTING)}, got {counting!r}")
        actions.append(GoogleAction(name=act["name"], type=act.get("type", "webpage"),
                                    primary=act.get("primary", True), counting=counting))
    names = [a.name for a in actions]
    if len(set(names)) != len(names):
        raise _fail(where, "[[google_actions]] names a conversion action twice")
    return order_key, aliases, tuple(actions)


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
    if table == "orders":
        known_cols |= set(IDENTITY_COLUMNS)
    for canon, source_col in columns.items():
        if canon not in known_cols:
            raise _fail(where, f"{label}.columns: {canon!r} is not a column of {table} (known: {', '.join(sorted(known_cols))})")
        if not isinstance(source_col, str):
            raise _fail(where, f"{label}.columns.{canon} must be a source column name (string)")
    options = src.get("options", {})
    known_opts = FORMATS[fmt].options
    for key, value in options.items():
        if key not in known_opts:
            known = ", ".join(sorted(known_opts)) or "none"
            raise _fail(where, f"unknown key '{key}' in {label}.options for format {fmt!r} (known: {known})")
        _check_type(where, f"{label}.options.{key}", value, known_opts[key])
    platform = src.get("platform", default_platform)
    if platform is not None:
        _check_platform(where, f"{label}.platform", platform)
    path = src["path"]
    if not path.strip():
        raise _fail(where, f"{label}.path is empty: name a file or a glob")
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]+://", path.strip()):
        raise _fail(where, f"{label}.path is a URL; capi-audit reads local files only (no network access): "
                    "download the file and name the local copy")
    if path.startswith("~"):
        raise _fail(where, f"{label}.path starts with `~`, which is not expanded: write the folder out, or a "
                    "path relative to the config file")
    if "\x00" in path:
        raise _fail(where, f"{label}.path holds a NUL character, which no file name can hold")
    full = path if Path(path).is_absolute() else str(base / path)
    try:
        os.stat(full)
    except FileNotFoundError:
        pass  # named as missing when the source is loaded (a glob, or a file that will be written)
    except OSError as exc:  # a name too long for the file system, a loop of links, …
        if exc.errno in (errno.ENAMETOOLONG, errno.ELOOP):
            raise _fail(where, f"{label}.path cannot name a file: {exc.strerror}") from exc
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
        # utf-8-sig: a byte-order mark (Windows editors write one) is not a TOML error
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from exc
    return config_from_dict(data, path=path)
