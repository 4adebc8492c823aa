"""The platform report a scenario writes (issue 12 realism): attributed and partly modelled,
conversion- or interaction-dated, with recent days not yet restated and days missing.

Starting from the platform's count per day (every unit it counts, test orders included — the
platform cannot tell a QA purchase from a sale), each day:
- attributed = Binomial(count, share), share = `report_share_pre` before the platform's enable day
  and `report_share_post` from it (the report counting a different share after enablement);
- modelled conversions add `report_modelled` × attributed (fractional values);
- the last m = `report_immature_days` days hold only part of their conversions ((k+1)/(m+1) on the
  k-th day counted back from the last, k = 0 the last), as an export pulled before restatement;
- conversion-dated rows sit on the conversion day; interaction-dated rows spread each day's
  conversions back over the click days with `report_lag_probs` (45 % same day by default);
- `report_gap_days` are missing from the export.
Values are rounded to 2 decimals; the truth uses the written values.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from capi_audit.synth.params import ScenarioParams

COLUMNS = ["platform", "date", "event_name", "conversions", "source", "date_basis"]


def conversion_dated(params: ScenarioParams, platform: str, counts: np.ndarray) -> np.ndarray:
    """Report conversions per scenario day, dated by conversion (before dropping gap days)."""
    pi = list(params.platforms).index(platform)
    enable = params.enable_day.get(platform, params.days)
    out = np.zeros(params.days)
    for d in range(params.days):
        rng = np.random.default_rng([params.seed, d, 70 + pi])
        share = params.report_share_pre if d < enable else params.report_share_post
        attributed = int(rng.binomial(int(counts[d]), min(max(share, 0.0), 1.0)))
        out[d] = attributed * (1.0 + params.report_modelled)
    m = params.report_immature_days
    for k in range(min(m, params.days)):
        out[params.days - 1 - k] *= (k + 1) / (m + 1)
    return np.round(out, 2)


def interaction_dated(params: ScenarioParams, conv: np.ndarray) -> np.ndarray:
    """The same conversions dated by the ad interaction: spread back over the lag days."""
    lag = np.asarray(params.report_lag_probs, float)
    lag = lag / lag.sum()
    out = np.zeros(params.days)
    for d in range(params.days):
        for k, p in enumerate(lag):
            if d - k >= 0:
                out[d - k] += conv[d] * p
    return np.round(out, 2)


def report_frame(params: ScenarioParams, counts: dict[str, np.ndarray]) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The platform_report rows and, per platform, the conversion-dated values per day (NaN on a
    gap day) that the truth uses."""
    start = dt.date.fromisoformat(params.start)
    rows = []
    written: dict[str, np.ndarray] = {}
    default = (params.report_date_basis == "conversion" and params.report_share_pre == 1.0
               and params.report_share_post == 1.0 and not params.report_modelled)
    for pl in params.platforms:
        conv = conversion_dated(params, pl, counts[pl])
        series = {"conversion": conv}
        if params.report_date_basis in ("interaction", "both"):
            series["interaction"] = interaction_dated(params, conv)
        if params.report_date_basis == "interaction":
            del series["conversion"]
        w = conv.copy()
        for d in params.report_gap_days:
            if 0 <= d < params.days:
                w[d] = np.nan
        written[pl] = w
        for basis, vals in series.items():
            for d in range(params.days):
                if d in params.report_gap_days:
                    continue
                rows.append({"platform": pl, "date": (start + dt.timedelta(days=d)).isoformat(),
                             "event_name": "Purchase", "conversions": float(vals[d]), "source": "total",
                             "date_basis": "" if default else basis})
    frame = pd.DataFrame(rows, columns=COLUMNS)
    if default:  # the plain report of earlier versions: no date_basis column
        frame = frame.drop(columns=["date_basis"])
    return frame, written
