"""The audit's result as one typed object: computed once, written, read back unchanged.

`AuditResult` holds the summary (design §4: one section per registered family, plus `notes`), every
frame the families own, and `config` — an echo of what the numbers depend on (time zone, windows,
enable times, conversion event, platforms present, age limits, the span of the data and any other
audit.toml setting). `write(dir)` produces:

    dir/summary.json          the machine-readable summary (sorted keys; what `check` gates on)
    dir/result.json           the config echo and the list of frames
    dir/frames/<name>.parquet one file per frame

`AuditResult.read(dir)` gives back an equal object. Notebooks, charts, the report and `check` read
this folder; none of them recomputes anything.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from capi_audit.errors import ConfigError

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ConfigEcho:
    """What the figures depend on, echoed from the config and the loaded data."""

    timezone: str = "UTC"
    conversion_event: str = "Purchase"
    platforms: tuple[str, ...] = ()
    enabled_at: dict[str, str] = field(default_factory=dict)      # platform -> ISO 8601 UTC
    windows: dict[str, float | None] = field(default_factory=dict)  # platform -> hours (None: unbounded)
    age_limit_s: dict[str, float] = field(default_factory=dict)     # platform -> seconds
    first_day: str | None = None                                     # local days spanned by the data
    last_day: str | None = None
    sources: tuple[dict[str, str], ...] = ()                         # table, format, file name
    settings: dict[str, Any] = field(default_factory=dict)           # every other audit.toml setting

    def enabled(self, platform: str) -> dt.datetime | None:
        """The platform's CAPI enable time, or None when not configured."""
        iso = self.enabled_at.get(platform)
        return dt.datetime.fromisoformat(iso) if iso else None

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["platforms"] = list(self.platforms)
        d["sources"] = list(self.sources)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConfigEcho:
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d["platforms"] = tuple(d.get("platforms", ()))
        d["sources"] = tuple(d.get("sources", ()))
        return cls(**d)


@dataclass
class Section:
    """One summary section with its family's registry facts and frames."""

    name: str
    title: str
    values: dict[str, Any]
    frames: dict[str, pd.DataFrame]
    needs: str = ""

    @property
    def available(self) -> bool:
        return self.values.get("available", True) is not False

    @property
    def reason(self) -> str | None:
        return None if self.available else str(self.values.get("reason") or "inputs missing")

    @property
    def platforms(self) -> list[str]:
        """Top-level keys that hold a platform's figures."""
        return [] if not self.available else sorted(k for k, v in self.values.items() if isinstance(v, dict))

    def unreliable(self) -> list[tuple[str, str]]:
        """(path, reason) of every figure marked `"reliable": false` in the section."""
        out: list[tuple[str, str]] = []

        def walk(node: Any, path: tuple[str, ...]) -> None:
            if isinstance(node, dict):
                if node.get("reliable") is False:
                    out.append((" · ".join(path), str(node.get("reason") or "not reliable")))
                for k, v in node.items():
                    walk(v, (*path, str(k)))

        walk(self.values, ())
        return out


def json_safe(obj: Any) -> Any:
    """JSON-safe values: numpy scalars to Python, NaN/inf to null, tuples to lists, times to ISO."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, dt.datetime | dt.date):
        return obj.isoformat()
    if hasattr(obj, "item") and not isinstance(obj, str):
        obj = obj.item()
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    return obj


@dataclass
class AuditResult:
    """Everything one audit produced. Sections follow the family registry."""

    summary: dict[str, Any]
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    config: ConfigEcho = field(default_factory=ConfigEcho)

    # -- typed access -------------------------------------------------------------------------
    def section(self, name: str) -> Section:
        """One family's section (KeyError for a name the registry does not know)."""
        from capi_audit.metrics import family

        fam = family(name)
        values = self.summary.get(name, {"available": False, "reason": "not computed in this result"})
        owned = {k: v for k, v in self.frames.items() if k == name or k.startswith(name + "_")}
        return Section(name, fam.title, values, owned, fam.needs)

    @property
    def sections(self) -> list[Section]:
        """Every registered family's section, in registry order."""
        from capi_audit.metrics import FAMILIES

        return [self.section(f.name) for f in FAMILIES]

    def available(self, name: str) -> bool:
        return self.section(name).available

    @property
    def notes(self) -> list[str]:
        return list(self.summary.get("notes", []))

    @property
    def text(self) -> str:
        """A short plain-text summary (what `run` prints)."""
        from capi_audit.audit import describe

        return describe(self)

    def frame(self, name: str) -> pd.DataFrame:
        """A frame by name; an empty frame when the result has none of that name."""
        return self.frames.get(name, pd.DataFrame())

    # -- persistence ----------------------------------------------------------------------------
    def write(self, folder: str | Path) -> Path:
        """Write summary.json, result.json and frames/<name>.parquet into folder."""
        folder = Path(folder)
        (folder / "frames").mkdir(parents=True, exist_ok=True)
        (folder / "summary.json").write_text(
            json.dumps(json_safe(self.summary), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        names = sorted(self.frames)
        for name in names:
            self.frames[name].to_parquet(folder / "frames" / f"{name}.parquet", index=False)
        meta = {"format_version": FORMAT_VERSION, "config": json_safe(self.config.as_dict()), "frames": names}
        (folder / "result.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def read(cls, folder: str | Path) -> AuditResult:
        """Read a result folder written by `write` (ConfigError when it is not one)."""
        folder = Path(folder)
        meta_path, summary_path = folder / "result.json", folder / "summary.json"
        if not meta_path.is_file() or not summary_path.is_file():
            raise ConfigError(f"{folder}: not a result folder (expected summary.json and result.json; "
                              "write one with `capi-audit run --out DIR`)")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ConfigError(f"{folder}: result files are not valid JSON: {exc}") from exc
        except RecursionError as exc:
            raise ConfigError(f"{folder}: result files are nested too deeply to be a result; "
                              "rerun `capi-audit run`") from exc
        if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
            version = meta.get("format_version") if isinstance(meta, dict) else None
            raise ConfigError(f"{folder}: result format {version!r} is not {FORMAT_VERSION}; rerun `capi-audit run`")
        _check_summary(summary_path, summary)
        frames = {}
        for name in meta.get("frames", []):
            path = folder / "frames" / f"{name}.parquet"
            if not path.is_file():
                raise ConfigError(f"{path}: frame listed in result.json is missing")
            frames[name] = pd.read_parquet(path)
        return cls(summary=summary, frames=frames, config=ConfigEcho.from_dict(meta.get("config", {})))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AuditResult):
            return NotImplemented
        if json_safe(self.summary) != json_safe(other.summary) or self.config != other.config:
            return False
        if sorted(self.frames) != sorted(other.frames):
            return False
        return all(_frames_equal(self.frames[k], other.frames[k]) for k in self.frames)

    __hash__ = None  # type: ignore[assignment]



def _check_summary(path: Path, summary: Any) -> None:
    """A summary.json that `run` could not have written (edited or spoiled: a family's section null
    or a string, or no family at all) is refused: read as it is, every gate on it was `not
    applicable` and `check` passed. A section may be missing (a result built from some families)."""
    from capi_audit.metrics import REGISTRY

    if not isinstance(summary, dict) or not REGISTRY.keys() & summary.keys():
        raise ConfigError(f"{path}: not an audit summary (no metric family's section); rerun `capi-audit run`")
    bad = sorted(name for name in REGISTRY if name in summary and not isinstance(summary[name], dict))
    if bad:
        raise ConfigError(f"{path}: section{'s' if len(bad) > 1 else ''} {', '.join(bad)} not an object "
                          "(the file was edited or spoiled); rerun `capi-audit run`")


def _frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return False
    try:
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True),
                                      check_dtype=False, check_index_type=False, check_column_type=False)
    except AssertionError:
        return False
    return True
