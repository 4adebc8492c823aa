"""Write a scenario (canonical CSV or Parquet), its audit.toml and its truth.json, day by day."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from capi_audit.synth.generate import build_pools, day_bounds, day_frames, gen_orders, gen_platform
from capi_audit.synth.params import ScenarioParams
from capi_audit.synth.reports import report_frame
from capi_audit.synth.truth import Truth

TABLE_FILES = ("orders", "pixel_events", "server_events", "platform_report")
# Written only when the scenario plants them (synth.google: enhanced conversions for web).
OPTIONAL_FILES = ("enhancements",)
NUMERIC = {"value": pa.float64(), "event_time": pa.int64(), "conversions": pa.float64()}


class _Sink:
    """Appends frames to one CSV or Parquet file with a fixed column order."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt = path, fmt
        self.writer: pq.ParquetWriter | None = None
        self.header_done = False
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        self.rows += len(frame)
        if self.fmt == "csv":
            frame.to_csv(self.path, mode="a" if self.header_done else "w", header=not self.header_done,
                         index=False, lineterminator="\n")
            self.header_done = True
            return
        fields = [pa.field(c, NUMERIC.get(c, pa.string())) for c in frame.columns]
        schema = pa.schema(fields)
        cols = {}
        for c in frame.columns:
            s = frame[c]
            if c in NUMERIC:
                cols[c] = pa.array(s.to_numpy(), type=NUMERIC[c], from_pandas=True)
            else:
                vals = s.astype(object).where(s.astype(object) != "", None)
                cols[c] = pa.array(vals.tolist(), type=pa.string())
        table = pa.table(cols, schema=schema)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, schema)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def write_scenario(params: ScenarioParams, out: str | Path, *, fmt: str = "csv",
                   truth: bool = True, real: bool = False) -> dict[str, Any]:
    """Generate and write a scenario; returns counts. Same params, same bytes. With real=True the
    canonical CSVs are also written in real-world formats under out/real/."""
    out = Path(out)
    if real and fmt != "csv":
        raise ValueError("real-world formats are written from the CSV scenario")
    out.mkdir(parents=True, exist_ok=True)
    bounds = day_bounds(params)
    pools = build_pools(params)
    suffix = ".csv" if fmt == "csv" else ".parquet"
    sinks = {t: _Sink(out / f"{t}{suffix}", fmt) for t in TABLE_FILES + OPTIONAL_FILES}
    tr = Truth(params, bounds, full=truth)
    number = 1
    for day in range(params.days):
        o = gen_orders(params, day, bounds, number)
        number += len(o.t0)
        pds = [gen_platform(params, o, pl, i, bounds, pools) for i, pl in enumerate(params.platforms)]
        frames = day_frames(params, o, pds)
        for name, frame in frames.items():
            if len(frame):
                sinks[name].write(frame)
        tr.add_day(o, pds)
    report, tr.report_written = report_frame(params, {pl: tr.report_counts(pl) for pl in params.platforms})
    sinks["platform_report"].write(report)
    for s in sinks.values():
        s.close()
    for name, s in sinks.items():
        if name in TABLE_FILES or s.rows:
            tr.rows_written[name] = s.rows
    extra = tuple(t for t in OPTIONAL_FILES if sinks[t].rows)
    (out / "audit.toml").write_text(audit_toml(params, suffix, extra), encoding="utf-8")
    result: dict[str, Any] = {"events": sinks["pixel_events"].rows + sinks["server_events"].rows,
                              "orders": sinks["orders"].rows}
    if real:
        from capi_audit.synth.real import write_real_formats

        write_real_formats(out, out / "real", timezone=params.timezone, enabled=enabled_at(params, bounds))
    if truth:
        body = tr.result()
        body["planted"] = params.as_dict()
        body["capi_enabled_at"] = enabled_at(params, bounds)
        (out / "truth.json").write_text(json.dumps(_clean(body), indent=2, sort_keys=True) + "\n",
                                        encoding="utf-8")
    return result


def enabled_at(params: ScenarioParams, bounds: np.ndarray) -> dict[str, str]:
    """CAPI enable time per platform (local midnight of its enable day), as UTC ISO strings."""
    out = {pl: dt.datetime.fromtimestamp(int(bounds[d]), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
           for pl, d in sorted(params.enable_day.items()) if pl in params.platforms}
    if "google" in out:  # GA4 Measurement Protocol sends start with the Google uploads (synth/google.py)
        out["ga4"] = out["google"]
    return dict(sorted(out.items()))


def audit_toml(params: ScenarioParams, suffix: str, extra: tuple[str, ...] = ()) -> str:
    """The audit.toml that loads a written scenario."""
    bounds = day_bounds(params)
    lines = [
        "# Written by `capi-audit synth`: loads this synthetic scenario.",
        "[audit]",
        f'timezone = "{params.timezone}"',
        "dedup_window_hours = 48",
        'conversion_event = "Purchase"',
        f"burn_in_days = {params.burn_in_days}",
        f"settle_days = {params.settle_days}",
        "",
        "[capi_enabled_at]",
    ]
    lines += [f'{pl} = "{ts}"' for pl, ts in enabled_at(params, bounds).items()]
    for t in TABLE_FILES + extra:
        lines += ["", "[[sources]]", f'table = "{t}"', f'path = "{t}{suffix}"', 'format = "canonical"']
        if t == "orders":  # raw customer columns: hashed locally into identities, never stored
            lines.append('columns = { email = "Email", phone = "Phone" }')
    return "\n".join(lines) + "\n"


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
