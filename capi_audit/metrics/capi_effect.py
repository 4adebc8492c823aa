"""The CAPI effect, measured directly (design §3.3) — per platform and conversion class.

The pixel keeps running after enablement, so what the platform would have counted without the
server is observable on the same days and orders. Over post days (§3.0: from E + burn_in_days to
the last day every log covers, minus settle_days):

- L = units the platform counts from all logs, P = units it would count from the same logs with
  every server row removed — both from `counted_units` (metrics/units.py), the same code path with
  `with_server=True / False`, so the platform rules (Meta key + 48 h window + Method B, Google Ads
  action + transaction_id, GA4 purchase) are applied once;
- `capi_added_per_day` = mean(L − P); `acr_like` = Σ(L − P) / ΣP, comparable to Meta's
  "additional conversions reported"
  (https://developers.facebook.com/docs/marketing-api/conversions-api/best-practices);
- the exact split of L − P, each unit once: `recovered` (added units of an order with no counted
  pixel unit), `server_double_counted` (units added to an order the pixel already counted, minus
  any the server displaced, by cause), `unlinked_added` (units linked to no order). The three sum
  to capi_added per day, exactly;
- recovered split by the order's consent state (metrics/consent_rules.py, the one place the rule
  lives) and by the best identifier tier of the order's server events (metrics/match_keys.py);
- value twins per currency (the unit's value and currency; L value − P value);
- `*_ci`: 95 % moving-block bootstrap over post days with 7-day blocks — the sampling noise of a
  per-day mean over these days, nothing more.

Orders refunded, pending or cancelled still have their units counted (the platform counted them);
test orders' units are out of every count (counted_units excludes them).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from capi_audit import stats
from capi_audit.metrics.common import FamilyResult, Headline, local_date, tidy
from capi_audit.metrics.consent_rules import (
    CONSENT_STATES,
    consent_state_sql,
    order_consent_sql,
    restricted_send_sql,
)
from capi_audit.metrics.double_counting import CAUSES as DC_CAUSES
from capi_audit.metrics.double_counting import unit_causes
from capi_audit.metrics.periods import Coverage, Periods, periods
from capi_audit.metrics.units import linked_order_sql

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace

TIERS = ("strong", "click", "browser", "none", "unknown")
# The causes are double counting's (one definition: `double_counting.unit_causes_sql`); `other` holds
# what no unit carries: a pair split across midnight (the server unit on one day, the pixel unit it
# displaced on another) and server units whose order has units before enablement. Google:
# `primary_action_overlap` (an upload to another primary action of an order the tag counted).
CAUSES = (*DC_CAUSES, "primary_action_overlap", "other")
SPLIT = ("recovered", "server_double_counted", "unlinked_added")
MIN_POST_DAYS = 14  # two 7-day blocks: fewer and the interval is not defined
LINK_RATE_MIN = 0.8  # design §3.0 order linkage


def _units_sql(rel: str) -> str:
    return f"""
        SELECT platform, conv_class, order_id, {local_date('first_event_time')} AS day, has_pixel, has_server,
            event_id, event_name, unit_id, value, coalesce(currency, 'unknown') AS currency
        FROM {rel} WHERE conv_class IS NOT NULL"""


def _classified_sql(with_rel: str, without_rel: str, causes: str) -> str:
    """Units of both counts, every platform at once, each with its kind (recovered / double /
    unlinked), sign (+1 for L, −1 for P) and, for server units added to an already counted order,
    the cause (`causes`: the materialized `double_counting.unit_causes(ws, with_rel)`)."""
    return f"""
    WITH l AS ({_units_sql(with_rel)}),
    p AS ({_units_sql(without_rel)}),
    po AS (SELECT platform, conv_class, order_id, count(*) AS p_o FROM p WHERE order_id IS NOT NULL
           GROUP BY platform, conv_class, order_id),
    pa AS (SELECT DISTINCT platform, order_id FROM po),  -- orders the pixel counted in any class
    lk AS (
        -- without a pixel unit in this class, an order in pa was counted in another class
        -- (Google: another primary action): a join, not a correlated EXISTS per unit
        SELECT l.*, CASE WHEN l.order_id IS NULL THEN 'unlinked'
                         WHEN po.order_id IS NULL AND NOT (l.platform = 'google' AND pa.order_id IS NOT NULL)
                             THEN 'recovered'
                         ELSE 'double' END AS kind,
            (po.order_id IS NULL) AS other_action
        FROM l LEFT JOIN po ON po.platform = l.platform AND po.conv_class = l.conv_class AND po.order_id = l.order_id
        LEFT JOIN pa ON pa.platform = l.platform AND pa.order_id = l.order_id
    ),
    uc AS (SELECT unit_id, cause FROM {causes}),
    lc AS (  -- a server unit added to an order the pixel already counted: its double-counting cause
        SELECT lk.*, CASE WHEN kind <> 'double' OR has_pixel OR NOT has_server THEN NULL
                          WHEN other_action THEN 'primary_action_overlap' ELSE uc.cause END AS cause
        FROM lk LEFT JOIN uc ON uc.unit_id = lk.unit_id
    )
    SELECT platform, conv_class, order_id, day, kind, cause, currency, value, 1 AS sign FROM lc
    UNION ALL
    SELECT platform, conv_class, order_id, day,
        CASE WHEN order_id IS NULL THEN 'unlinked' ELSE 'double' END, NULL, currency, value, -1 FROM p
    """


def _daily_sql(classified: str) -> str:
    causes = ", ".join(f"sum(CASE WHEN cause = '{c}' THEN 1 ELSE 0 END) AS cause__{c}" for c in CAUSES[:-1])
    return f"""
    WITH u AS (SELECT * FROM {classified})
    SELECT platform, conv_class, day,
        sum(CASE WHEN sign = 1 THEN 1 ELSE 0 END) AS L,
        sum(CASE WHEN sign = -1 THEN 1 ELSE 0 END) AS P,
        sum(CASE WHEN kind = 'recovered' THEN sign ELSE 0 END) AS recovered,
        sum(CASE WHEN kind = 'double' THEN sign ELSE 0 END) AS server_double_counted,
        sum(CASE WHEN kind = 'unlinked' THEN sign ELSE 0 END) AS unlinked_added,
        {causes}
    FROM u GROUP BY platform, conv_class, day
    """


def _value_sql(classified: str) -> str:
    # exact sums: a DOUBLE sum depends on the order the threads add the rows in, and summary.json
    # changed in the 15th digit from one run to the next; DECIMAL(35, 6) is within BigQuery's
    # NUMERIC bounds (29 integer digits) and values are under 1e15 (checked at load)
    v = "CAST(coalesce(value, 0) AS DECIMAL(35, 6)) * sign"
    return f"""
    WITH u AS (SELECT * FROM {classified})
    SELECT platform, conv_class, day, currency,
        CAST(sum({v}) AS DOUBLE) AS capi_added_value,
        CAST(sum(CASE WHEN kind = 'recovered' THEN {v} ELSE 0 END) AS DOUBLE) AS recovered_value,
        CAST(sum(CASE WHEN kind = 'double' THEN {v} ELSE 0 END) AS DOUBLE) AS server_double_counted_value,
        CAST(sum(CASE WHEN kind = 'unlinked' THEN {v} ELSE 0 END) AS DOUBLE) AS unlinked_added_value
    FROM u GROUP BY platform, conv_class, day, currency
    """


def _recovered_sql(classified: str) -> str:
    """Recovered units per platform and day by the order's consent state and its server events'
    best tier."""
    restricted = restricted_send_sql("s.platform", "s.data_processing_options", "s.consent_ad_user_data",
                                     "s.consent_ads", "oc.country")
    state = consent_state_sql(order_consent_sql("u.platform", "oc.consent_ads", "oc.consent_ad_user_data"),
                              "sd.all_restricted")
    return f"""
    WITH u AS (SELECT * FROM {classified} WHERE kind = 'recovered'),
    oc AS (
        SELECT order_id, min(consent_ads) AS consent_ads, min(consent_ad_user_data) AS consent_ad_user_data,
            min(country) AS country
        FROM orders WHERE order_id IS NOT NULL GROUP BY order_id
    ),
    sl AS (
        SELECT s.*, {linked_order_sql('s.order_id', 's.event_id', 'ko', 'ke')} AS linked_order
        FROM server_events s
        LEFT JOIN oc ko ON ko.order_id = s.order_id
        LEFT JOIN oc ke ON ke.order_id = s.event_id
        WHERE s.status IS NULL OR lower(s.status) <> 'rejected'
    ),
    sd AS (
        SELECT s.platform, s.linked_order AS order_id, min(CASE WHEN {restricted} THEN 1 ELSE 0 END) AS all_restricted
        FROM sl s LEFT JOIN oc ON oc.order_id = s.linked_order
        WHERE s.linked_order IS NOT NULL GROUP BY s.platform, s.linked_order
    ),
    tl AS (  -- server events with the order they link to (the units' linkage rule, so an order
             -- reached through its event_id gets its tier too)
        SELECT f.platform, f.tier, {linked_order_sql('f.order_id', 'f.event_id', 'ko', 'ke')} AS linked_order
        FROM sv_flags f
        LEFT JOIN oc ko ON ko.order_id = f.order_id
        LEFT JOIN oc ke ON ke.order_id = f.event_id
        WHERE f.status IS NULL OR lower(f.status) <> 'rejected'
    ),
    tr AS (
        SELECT platform, linked_order AS order_id, min(CASE tier WHEN 'strong' THEN 1 WHEN 'click' THEN 2
                                                 WHEN 'browser' THEN 3 ELSE 4 END) AS best
        FROM tl WHERE linked_order IS NOT NULL
        GROUP BY platform, linked_order
    )
    SELECT u.platform, u.conv_class, u.day, {state} AS consent_state,
        CASE tr.best WHEN 1 THEN 'strong' WHEN 2 THEN 'click' WHEN 3 THEN 'browser' WHEN 4 THEN 'none'
                     ELSE 'unknown' END AS tier,
        count(*) AS recovered
    FROM u
    LEFT JOIN oc ON oc.order_id = u.order_id
    LEFT JOIN sd ON sd.platform = u.platform AND sd.order_id = u.order_id
    LEFT JOIN tr ON tr.platform = u.platform AND tr.order_id = u.order_id
    GROUP BY u.platform, u.conv_class, u.day, {state}, tr.best
    """


_LINK_SQL = """
SELECT channel, count(*) AS n, sum(CASE WHEN linked_order IS NOT NULL THEN 1 ELSE 0 END) AS linked
FROM u_src WHERE platform = $p AND conv_class IS NOT NULL AND (excluded IS NULL OR excluded <> 'test_order')
GROUP BY channel
"""


def weak_linkage(ws: Workspace, platform: str) -> str | None:
    """The §3.0 linkage rule: a channel whose link rate is below 0.8 while the other channel's is
    higher cannot support an order-level split. Returns the reason, or None."""
    from capi_audit.metrics.units import prepare_src

    prepare_src(ws)
    rates = {ch: (linked / n if n else None) for ch, n, linked in ws.rows(_LINK_SQL, {"p": platform})}
    px, sv = rates.get("pixel"), rates.get("server")
    for ch, mine, other in (("pixel", px, sv), ("server", sv, px)):
        if mine is not None and mine < LINK_RATE_MIN and (other is None or other > mine):
            return (f"only {100 * mine:.0f}% of {platform} {ch} events link to an order (needs "
                    f"{100 * LINK_RATE_MIN:.0f}%): recovered vs double counted depends on linkage; send the "
                    "order id with every event or set [audit] order_key")
    return None


def uncatalogued_action(cfg: Any, platform: str, cls: str, classes: list[str]) -> str | None:
    """Why a Google conversion class cannot be trusted without a `[[google_actions]]` catalogue, or None.

    Google counts each primary conversion action separately and a secondary one not at all
    (https://support.google.com/google-ads/answer/6386790); without the catalogue every action is
    taken as primary (design §3.0). The conversion event's own action is measured either way; any
    other action (a second upload action, or a case variant such as `purchase` next to `Purchase`
    that the upload tool may or may not map to the same action) is only right if it is primary.
    """
    if platform != "google" or getattr(cfg, "google_actions", ()) or cls == cfg.conversion_event:
        return None
    variants = sorted(c for c in classes if c != cls and c.lower() == cls.lower())
    what = (f"'{cls}' differs only in case from {', '.join(repr(v) for v in variants)}: a second conversion "
            "action or a typo for the same one" if variants else f"'{cls}' is not the conversion event's action")
    others = ", ".join(repr(c) for c in classes if c != cls) or "none in these logs"
    return (f"Google conversion action {what}; no [[google_actions]] catalogue says whether it is primary "
            f"(counted, and an order it shares with another primary action ({others}) is a double count) or "
            "secondary (not counted at all): declare [[google_actions]] (name, type, primary, counting) for "
            "every action in the logs")


def combine_reasons(*reasons: str | None) -> str | None:
    """'; '-joined reasons that are set, or None."""
    kept = [r for r in reasons if r]
    return "; ".join(kept) if kept else None


def log_coverage(ws: Workspace, platform: str, tz: str) -> dict[str, Coverage]:
    """Days each log source covers for a platform (days with rows), in zone tz."""
    q = {"p": platform, "tz": tz}
    out = {}
    for name, sql in (
        ("pixel_events", f"SELECT DISTINCT {local_date('event_time')} FROM pixel_events WHERE platform = $p"),
        ("server_events", f"SELECT DISTINCT {local_date('event_time')} FROM server_events WHERE platform = $p"),
        ("orders", f"SELECT DISTINCT {local_date('created_at')} FROM orders"),
    ):
        days = sorted(r[0] for r in ws.rows(sql, q) if r[0] is not None)
        if days and name == "server_events":
            # the server log starts at enablement by design: it bounds the last day only
            out[name] = Coverage(dt.date.min, days[-1])
        elif days:
            out[name] = Coverage(days[0], days[-1], frozenset(days))
    return out


def server_first_day(ws: Workspace, platform: str, tz: str) -> dt.date | None:
    """The local day of the platform's first server event (None without server events)."""
    rows = ws.rows(f"SELECT min({local_date('event_time')}) FROM server_events WHERE platform = $p",
                   {"p": platform, "tz": tz})
    return rows[0][0] if rows and rows[0][0] is not None else None


def daily_units_all(ws: Workspace, tz: str) -> dict[str, pd.DataFrame]:
    """Per platform, class and local day (zone tz): L, P, the exact split and the causes; value
    twins per currency; recovered by consent state and tier. Only days with units appear.

    Every platform is classified in one pass, once per workspace, data and zone: the CAPI effect
    and the recovery family both read it (before, each classified every platform apart: six passes
    over the units, each a dozen Spark jobs)."""
    from capi_audit.metrics.match_keys import prepare_flags
    from capi_audit.metrics.units import _token, counted_units, link_params

    key = (_token(ws), tz)
    cache = getattr(ws, "_daily_units_cache", None)
    if cache is not None and cache[0] == key:
        return cache[1]
    with_rel = counted_units(ws, with_server=True)
    without_rel = counted_units(ws, with_server=False)
    prepare_flags(ws)
    q = {"tz": tz, **link_params(ws)}
    causes = unit_causes(ws, with_rel)
    # the classified units are computed once and read by the three views below
    ws.execute(f"CREATE OR REPLACE TEMP TABLE ce_classified AS {_classified_sql(with_rel, without_rel, causes)}", q)
    out = {
        "daily": ws.df(_daily_sql("ce_classified"), q),
        "value": ws.df(_value_sql("ce_classified"), q),
        "recovered": ws.df(_recovered_sql("ce_classified"), q),
    }
    ws.drop("ce_classified")
    ws._daily_units_cache = (key, out)
    return out


def daily_units(ws: Workspace, platform: str, tz: str) -> dict[str, pd.DataFrame]:
    """daily_units_all's frames for one platform (without the platform column)."""
    return {name: f[f["platform"] == platform].drop(columns="platform").reset_index(drop=True)
            for name, f in daily_units_all(ws, tz).items()}


def _fill_days(frame: pd.DataFrame, days: list[dt.date], cols: list[str]) -> pd.DataFrame:
    """Frame indexed by every given day (days without units hold 0: the logs cover them)."""
    f = frame.copy()
    f["day"] = pd.to_datetime(f["day"]).dt.date
    f = f.groupby("day")[cols].sum()
    return f.reindex(days, fill_value=0)


def _mean_ci(x: np.ndarray, reps: int) -> list[float | None]:
    return stats.day_block_interval({"x": x.astype(float)}, lambda c: c["x"].mean(axis=-1), reps=reps)


def _ratio_ci(num: np.ndarray, den: np.ndarray, reps: int) -> list[float | None]:
    def stat(c: dict[str, np.ndarray]) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return c["n"].sum(axis=-1) / c["d"].sum(axis=-1)
    return stats.day_block_interval({"n": num.astype(float), "d": den.astype(float)}, stat, reps=reps)


def late_server_start(per: Periods, server_first: dt.date | None, burn_in_days: int) -> str | None:
    """Reason when the server log starts well after the configured enable time (more than the
    burn-in plus a week): the days between would count as post days without server events and
    dilute every per-day figure. None when the start agrees with the configuration."""
    if server_first is None:
        return None
    lag = (server_first - per.enable_day).days
    if lag <= burn_in_days + 7:
        return None
    return (f"the first server event is on {server_first.isoformat()}, {lag} days after the configured enable "
            f"day {per.enable_day.isoformat()}: the days between would count as post days without server "
            f"events; set [capi_enabled_at] to when the server began sending")


def summarize_class(per: Periods, daily: pd.DataFrame, value: pd.DataFrame, recovered: pd.DataFrame,
                    *, reps: int = 2000, weak: str | None = None) -> tuple[dict[str, Any], pd.DataFrame]:
    """The §3.3 figures of one platform and class over the post days, and its daily frame."""
    days = per.post_days
    cols = ["L", "P", *SPLIT, *[f"cause__{c}" for c in CAUSES[:-1]]]
    d = _fill_days(daily, days, cols) if len(daily) else pd.DataFrame(0, index=days, columns=cols)
    d["capi_added"] = d["L"] - d["P"]
    d["cause__other"] = d["server_double_counted"] - d[[f"cause__{c}" for c in CAUSES[:-1]]].sum(axis=1)
    n = len(days)
    out: dict[str, Any] = {"post_days": n, "periods": per.summary()}
    if n == 0:
        out.update(available=False, reason="no post days: the logs end before enable + burn-in + settle days")
        return out, d.reset_index(names="day")
    mean = {c: float(d[c].mean()) for c in d.columns}
    ci = {c: _mean_ci(d[c].to_numpy(), reps) for c in ("L", "P", "capi_added", *SPLIT)}
    out.update({
        "log_units_per_day": mean["L"], "log_units_per_day_ci": ci["L"],
        "pixel_only_units_per_day": mean["P"], "pixel_only_units_per_day_ci": ci["P"],
        "capi_added": int(d["capi_added"].sum()),
        "capi_added_per_day": mean["capi_added"], "capi_added_per_day_ci": ci["capi_added"],
        "acr_like": float(d["capi_added"].sum() / d["P"].sum()) if d["P"].sum() else None,
        "acr_like_ci": _ratio_ci(d["capi_added"].to_numpy(), d["P"].to_numpy(), reps),
    })
    for s in SPLIT:
        out[s] = int(d[s].sum())
        out[f"{s}_per_day"] = mean[s]
        out[f"{s}_per_day_ci"] = ci[s]
    out["server_double_counted_by_cause_per_day"] = {c: mean[f"cause__{c}"] for c in CAUSES}
    rec = recovered.copy()
    if len(rec):
        rec["day"] = pd.to_datetime(rec["day"]).dt.date
        rec = rec[rec["day"].isin(set(days))]
    by_state = rec.groupby("consent_state")["recovered"].sum() if len(rec) else pd.Series(dtype=float)
    by_tier = rec.groupby("tier")["recovered"].sum() if len(rec) else pd.Series(dtype=float)
    out["recovered_by_consent_per_day"] = {s: float(by_state.get(s, 0)) / n for s in CONSENT_STATES}
    out["recovered_by_tier_per_day"] = {t: float(by_tier.get(t, 0)) / n for t in TIERS}
    vals: dict[str, Any] = {}
    if len(value):
        v = value.copy()
        v["day"] = pd.to_datetime(v["day"]).dt.date
        v = v[v["day"].isin(set(days))]
        for cur, g in v.groupby("currency"):
            vd = _fill_days(g, days, ["capi_added_value", "recovered_value", "server_double_counted_value",
                                      "unlinked_added_value"])
            vals[str(cur)] = {f"{k}_per_day": float(vd[k].mean()) for k in vd.columns}
            vals[str(cur)]["capi_added_value_per_day_ci"] = _mean_ci(vd["capi_added_value"].to_numpy(), reps)
    out["value_per_currency"] = vals
    reasons = []
    if n < MIN_POST_DAYS:
        reasons.append(f"only {n} post days: per-day means and their intervals need at least "
                       f"{MIN_POST_DAYS} (two weekly blocks); audit a longer stretch after enablement")
    if per.post_gaps:
        g = "; ".join(f"{s}: {', '.join(x.isoformat() for x in days_)}" for s, days_ in sorted(per.post_gaps.items()))
        reasons.append(f"days without rows inside the post days ({g}): load the missing logs or "
                       f"shorten the audit window around them")
    if weak:
        reasons.append(weak)
    if reasons:
        out["reliable"] = False
        out["reason"] = "; ".join(reasons)
    frame = d.reset_index(names="day")
    return out, frame


def capi_effect(ws: Workspace, *, bootstrap_reps: int = 2000) -> tuple[pd.DataFrame, Headline]:
    """§3.3 per platform (with an enable time) and conversion class; frame `capi_effect` holds
    the daily L, P and split per platform, class and post day."""
    cfg = ws.config
    if not cfg.capi_enabled_at:
        return pd.DataFrame(), Headline("capi_effect", available=False,
                                        reason="no CAPI enable time configured ([capi_enabled_at])")
    if not ws.count("pixel_events") and not ws.count("server_events"):
        return pd.DataFrame(), Headline("capi_effect", available=False, reason="no pixel or server events loaded")
    values: dict[str, Any] = {}
    frames = []
    orders_loaded = bool(ws.count("orders"))
    for plat, enabled_at in sorted(cfg.capi_enabled_at.items()):
        tz = cfg.timezone
        cov = log_coverage(ws, plat, tz)
        if "pixel_events" not in cov:
            values[plat] = {"available": False, "reason": f"no {plat} pixel events: P (the pixel-only count) "
                            "cannot be measured; load the browser-side log"}
            continue
        per = periods(enabled_at, tz, cov, burn_in_days=cfg.burn_in_days, settle_days=cfg.settle_days)
        parts = daily_units(ws, plat, tz)
        classes = sorted(set(parts["daily"]["conv_class"])) if len(parts["daily"]) else []
        if not classes:
            values[plat] = {"available": False, "reason": f"no {plat} units in a conversion class "
                            f"('{cfg.conversion_event}', its case variants and [audit] event_aliases)"}
            continue
        values[plat] = {}
        late = late_server_start(per, server_first_day(ws, plat, tz), cfg.burn_in_days)
        weak = "; ".join(r for r in (late, weak_linkage(ws, plat)) if r) or None
        for cls in classes:
            sel = {k: f[f["conv_class"] == cls] for k, f in parts.items()}
            out, frame = summarize_class(per, sel["daily"], sel["value"], sel["recovered"], reps=bootstrap_reps,
                                         weak=combine_reasons(weak, uncatalogued_action(cfg, plat, cls, classes)))
            out["orders_loaded"] = orders_loaded
            values[plat][cls] = out
            frames.append(frame.assign(platform=plat, conv_class=cls))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return tidy(frame, ["platform", "conv_class", "day"]) if len(frame) else frame, Headline("capi_effect", values)


def compute(ws: Workspace, *, bootstrap_reps: int = 2000) -> FamilyResult:
    """Family `capi_effect`: the §3.3 figures per platform and class, each with the §3.4 headline
    sentence (`sentence`, read by the findings and the report), and the daily frame."""
    from capi_audit.metrics.recovery import cached_recovery, headline_sentence

    frame, head = capi_effect(ws, bootstrap_reps=bootstrap_reps)
    if head.available:
        _, rec = cached_recovery(ws, bootstrap_reps)
        for plat, classes in head.values.items():
            for cls, v in classes.items():
                if not isinstance(v, dict) or v.get("available") is False:
                    continue
                r = rec.values.get(plat, {}).get(cls) if rec.available else None
                v["sentence"] = headline_sentence(v, r if isinstance(r, dict) else None)
    return FamilyResult(head, {"capi_effect": frame})
