"""Small helpers the curated notebooks call, so that notebooks hold no logic of their own."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from IPython.display import Image, Markdown

from capi_audit.audit import AuditResult, compute
from capi_audit.metrics import headline_sentences
from capi_audit.workspace import Workspace

RATE_WORDS = ("rate", "coverage", "share", "present", "valid", "plaintext", "strong", "click", "browser", "none")


@lru_cache(maxsize=4)
def audit(config: str) -> AuditResult:
    """Load a config's sources and compute every metric (cached per config path)."""
    ws = Workspace()
    ws.load(Path(config))
    result = compute(ws)
    result.rejects = ws.rejects()  # type: ignore[attr-defined]
    ws.close()
    return result


def show(ax: Any) -> Image:
    """Display a chart in a notebook (rendered to PNG here, whatever the plotting backend)."""
    from capi_audit.charts import png_bytes

    return Image(data=png_bytes(ax), format="png")


def _fmt(metric: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(metric, v) for v in value) + "]"
    if isinstance(value, bool | str | dict):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if any(w in metric for w in RATE_WORDS) and "per_day" not in metric and "p_value" not in metric:
        return f"{100 * value:.1f}%"
    if "p_value" in metric:
        return f"{value:.3g}"
    return f"{value:,.2f}"


def _flatten(v: dict, prefix: str, out: dict[str, str]) -> None:
    """Nested summary values as dotted metric names (formatted by their last part)."""
    for k, x in v.items():
        name = f"{prefix}{k}"
        if isinstance(x, dict):
            _flatten(x, name + ".", out)
        else:
            out[name] = _fmt(str(k), x)


def table(result: AuditResult, section: str, *, event_name: str | None = None) -> pd.DataFrame | Markdown:
    """One summary section as a formatted table: metrics as rows, platforms as columns."""
    data = result.summary[section]
    if data.get("available", True) is False:
        return Markdown(f"**Not available:** {data['reason']}")
    cols: dict[str, dict[str, str]] = {}
    for plat, v in data.items():
        if isinstance(v, dict) and event_name is not None and event_name in v:
            v = v[event_name]
        if not isinstance(v, dict):
            continue
        flat: dict[str, str] = {}
        _flatten(v, "", flat)
        cols[plat] = flat
    frame = pd.DataFrame(cols)
    frame.index.name = "metric"
    return frame


def load_table(result: AuditResult) -> pd.DataFrame:
    """Rows read / loaded / rejected per canonical table."""
    return pd.DataFrame(result.summary["load"]).T.rename_axis("table")


def rejects_table(result: AuditResult) -> pd.DataFrame:
    """Rejected rows grouped by table, column and reason (never the values)."""
    rej = getattr(result, "rejects", pd.DataFrame())
    if not len(rej):
        return pd.DataFrame({"rejected rows": []})
    g = rej.fillna({"column_name": "(whole row)"}).groupby(["table_name", "column_name", "reason"]).size()
    return g.rename("rejected rows").reset_index()


def headline(result: AuditResult) -> Markdown:
    """The report's headline sentences, one per platform."""
    return Markdown("\n".join(f"- {s}" for s in headline_sentences(result.summary)))


def match_key_table(result: AuditResult, platform: str) -> pd.DataFrame:
    """Per key: present / valid / plaintext / shared shares for one platform."""
    mk = result.summary["match_keys"].get(platform, {})
    rows = {k: {m: _fmt(m, v) for m, v in vals.items()} for k, vals in mk.items()
            if k not in ("identifier_tiers", "hash_agreement")}
    frame = pd.DataFrame(rows).T
    frame.index.name = "key"
    return frame


def consent_by_country(result: AuditResult) -> pd.DataFrame:
    """Consent rates and violations per platform and country, formatted."""
    f = result.frames.get("consent_by_country", pd.DataFrame())
    if not len(f):
        return f
    out = f.copy()
    for c in out.columns:
        if c not in ("platform", "country"):
            out[c] = [_fmt(c, v) for v in out[c]]
    return out.set_index(["platform", "country"])
