"""Google Ads measurement health (summary section `google`), per conversion action.

- **Enhanced conversions for web** (`enhanced_conversions`): an enhancement adds hashed customer
  data to a conversion the tag recorded, matched by order id (= the tag's transaction_id) within
  one conversion action, and must arrive within 24 h of the conversion
  (https://developers.google.com/google-ads/api/docs/conversions/upload-online). `coverage` =
  tag conversions (distinct action × transaction_id) enhanced within 24 h / tag conversions with
  a transaction id (`n`); `enhanced_late` (matched after 24 h), `tag_conversions_without_order_id`
  (cannot be enhanced: MISSING_ORDER_ID_FOR_WEBPAGE) and `enhancements_without_tag_conversion`
  (an enhancement whose action and order id match no tag conversion: Google answers
  CONVERSION_NOT_FOUND; it adds nothing). Enhancements are never conversions: they live in their
  own table and no count includes them. Rejected enhancements are left out.
- **Click ids** (`click_ids`): share of server conversions carrying gclid / gbraid / wbraid / any
  (`n` = server conversions), both braids set, and the click's age where the click is seen in the
  browser logs (first pixel hit carrying the same id): `click_age_known`, `median_click_age_days`,
  `over_click_window` (older than the action's click-through window, default 90 days, the
  maximum: https://support.google.com/google-ads/answer/3123169; Google answers EXPIRED_EVENT).
- **Upload errors** (`upload_errors`): server events with a Google error reason, by reason
  (partial-failure codes such as EXPIRED_EVENT, CLICK_NOT_FOUND, Data Manager reasons), and the
  rejected share (`rejected_rate`, `n` = uploads with a logged status).
- **Primary action overlap** (`primary_action_overlap`): orders counted by two or more primary
  conversion actions (conversion classes of the counted units): Google counts both, so each is
  a double count by design of the catalogue (https://support.google.com/google-ads/answer/6386790).
- **Upload diagnostics** (`upload_diagnostics`): Google's own offline-conversion upload summaries
  (table `upload_summaries`: per conversion action, per day and per job, successful / failed /
  pending counts; https://developers.google.com/google-ads/api/reference/rpc/latest/OfflineConversionSummary)
  compared with the uploads this audit's logs hold (Google Ads API server events of that action,
  by the local day of `sent_at` in the account's zone, `[report_timezone]`, or by `request_id` =
  job id) — and Data Manager request statuses (`requestStatus.retrieve`: the request's event count,
  failures by reason; https://developers.google.com/data-manager/api/reference/rest/v1/requestStatus/retrieve)
  with the logged Data Manager events of that request (`request_id`). A day, job or request disagrees when Google's total (successful + failed + pending) differs
  from the logged uploads, or Google's failed count from the logged rejections (when every logged
  upload has a status); logged upload days inside the summary's range that Google does not list
  disagree too. Also Google's `status` per action and its alerts (error code, share of events).
- **Identifier tiers** (`identifier_tiers`): Google's tiers per action (strong: email / phone /
  full address; click: gclid / gbraid / wbraid; none) from the match-key flags.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from capi_audit.metrics.common import (
    Headline,
    local_date,
    median,
    not_test_row,
    params,
    prepare,
    ratio,
    seconds_between,
    tidy,
)

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace

ENHANCE_WINDOW_S = 24 * 3600
CLICK_WINDOW_DAYS = 90

def _enh_sql(ws: Workspace) -> str:
    return f"""
WITH tag AS (
    SELECT destination, event_id, min(event_time) AS t FROM pixel_events p
    -- the tag's transaction id (event_id) is the order number whatever [audit] order_key says
    WHERE platform = 'google' AND event_id IS NOT NULL AND {not_test_row(ws, 'p.order_id', 'p.event_id')}
      AND NOT EXISTS (SELECT 1 FROM test_orders t WHERE t.order_id = p.event_id)
    GROUP BY destination, event_id
),
enh AS (
    SELECT destination, order_id, min(adjusted_at) AS a FROM enhancements e
    WHERE platform = 'google' AND (status IS NULL OR lower(status) <> 'rejected')
    GROUP BY destination, order_id
)
SELECT tag.destination, {local_date('tag.t')} AS day, count(*) AS tag_conversions,
    sum(CASE WHEN enh.order_id IS NOT NULL AND {seconds_between('tag.t', 'enh.a')} <= {ENHANCE_WINDOW_S} THEN 1 ELSE 0 END) AS enhanced_24h,
    sum(CASE WHEN enh.order_id IS NOT NULL AND {seconds_between('tag.t', 'enh.a')} > {ENHANCE_WINDOW_S} THEN 1 ELSE 0 END) AS enhanced_late
FROM tag LEFT JOIN enh ON enh.order_id = tag.event_id
    AND (enh.destination = tag.destination OR (enh.destination IS NULL AND tag.destination IS NULL))
GROUP BY 1, 2 ORDER BY 1, 2
"""

_ORPHAN_SQL = """
SELECT count(*) FROM (SELECT DISTINCT destination, order_id FROM enhancements e
    WHERE platform = 'google' AND (status IS NULL OR lower(status) <> 'rejected')) e
WHERE NOT EXISTS (SELECT 1 FROM pixel_events p WHERE p.platform = 'google' AND p.event_id = e.order_id
                  AND (p.destination = e.destination OR (p.destination IS NULL AND e.destination IS NULL)))
"""

def _click_cte(ws: Workspace) -> str:
    return f"""
WITH seen AS (
    SELECT click_id, min(event_time) AS first_seen FROM (
        SELECT gclid AS click_id, event_time FROM pixel_events WHERE gclid IS NOT NULL
        UNION ALL SELECT gbraid, event_time FROM pixel_events WHERE gbraid IS NOT NULL
        UNION ALL SELECT wbraid, event_time FROM pixel_events WHERE wbraid IS NOT NULL
    ) GROUP BY click_id
),
s AS (
    SELECT s.destination, s.gclid, s.gbraid, s.wbraid, s.event_time, coalesce(s.gclid, s.gbraid, s.wbraid) AS click_id
    FROM server_events s
    WHERE s.platform = 'google' AND {not_test_row(ws, 's.order_id', 's.event_id')}
),
a AS (
    SELECT s.*, {seconds_between('seen.first_seen', 's.event_time')} / CAST(86400 AS DOUBLE) AS age_days
    FROM s LEFT JOIN seen ON seen.click_id = s.click_id
)
"""
def _click_sql(ws: Workspace) -> str:
    return _click_cte(ws) + f"""
SELECT destination, count(*) AS events,
    sum(CASE WHEN gclid IS NOT NULL THEN 1 ELSE 0 END) AS with_gclid,
    sum(CASE WHEN gbraid IS NOT NULL THEN 1 ELSE 0 END) AS with_gbraid,
    sum(CASE WHEN wbraid IS NOT NULL THEN 1 ELSE 0 END) AS with_wbraid,
    sum(CASE WHEN click_id IS NOT NULL THEN 1 ELSE 0 END) AS with_any,
    sum(CASE WHEN gbraid IS NOT NULL AND wbraid IS NOT NULL THEN 1 ELSE 0 END) AS gbraid_and_wbraid,
    sum(CASE WHEN age_days IS NOT NULL THEN 1 ELSE 0 END) AS click_age_known,
    sum(CASE WHEN age_days > $window THEN 1 ELSE 0 END) AS over_click_window,
    {median('age_days')} AS median_click_age_days
FROM a GROUP BY destination ORDER BY destination
"""

def _err_sql(ws: Workspace) -> str:
    return f"""
SELECT coalesce(source_api, 'unknown') AS source_api, coalesce(error, '(none)') AS error,
    coalesce(lower(status), 'unknown') AS status, count(*) AS events
FROM server_events s
WHERE platform = 'google' AND {not_test_row(ws, 's.order_id', 's.event_id')}
  AND (error IS NOT NULL OR status IS NOT NULL)
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""


def _enhanced(ws: Workspace) -> tuple[dict[str, Any], pd.DataFrame]:
    if not ws.count("enhancements"):
        return {"available": False, "reason": "no enhancements loaded (load ECFW adjustment logs into table "
                                              "enhancements with format google_upload_log)"}, pd.DataFrame()
    frame = ws.df(_enh_sql(ws), params(ws))
    no_id = ws.scalar("SELECT count(*) FROM pixel_events WHERE platform = 'google' AND event_id IS NULL")
    n = int(frame["tag_conversions"].sum()) if len(frame) else 0
    e24 = int(frame["enhanced_24h"].sum()) if len(frame) else 0
    out = {"coverage": ratio(e24, n), "n": n, "enhanced_24h": e24,
           "enhanced_late": int(frame["enhanced_late"].sum()) if len(frame) else 0,
           "tag_conversions_without_order_id": int(no_id),
           "enhancements_without_tag_conversion": int(ws.scalar(_ORPHAN_SQL))}
    if not n:
        out.update(reliable=False, reason="no Google Ads tag conversion with a transaction id: load the tag hits "
                                          "(format google_tag_hits) to measure coverage")
    return out, frame


def _click_ids(ws: Workspace, window: float) -> tuple[dict[str, Any], pd.DataFrame]:
    frame = ws.df(_click_sql(ws), {"window": window})
    if not len(frame):
        return {"available": False, "reason": "no Google server events"}, frame
    s = frame.drop(columns=["destination", "median_click_age_days"]).sum()
    n = int(s["events"])
    out: dict[str, Any] = {"n": n}
    for k in ("gclid", "gbraid", "wbraid", "any"):
        out[f"{k}_coverage"] = ratio(s[f"with_{k}"], n)
    known = int(s["click_age_known"])
    out.update(gbraid_and_wbraid=int(s["gbraid_and_wbraid"]), click_age_known=known,
               over_click_window=int(s["over_click_window"]), click_window_days=window,
               over_click_window_rate=ratio(s["over_click_window"], known), over_click_window_rate_n=known)
    if known:
        out["median_click_age_days"] = float(ws.scalar(_click_cte(ws) + f"SELECT {median('age_days')} FROM a"))
    else:
        out["median_click_age_days"] = None
        out["click_age_note"] = "no click id of a server event is seen in the browser logs: click ages unknown"
    return out, frame


def _errors(ws: Workspace) -> tuple[dict[str, Any], pd.DataFrame]:
    frame = ws.df(_err_sql(ws))
    if not len(frame):
        return {"available": False, "reason": "no Google upload status or error logged"}, frame
    with_status = frame[frame["status"].isin(["accepted", "rejected"])]["events"].sum()
    rejected = frame[frame["status"] == "rejected"]["events"].sum()
    by_reason = (frame[frame["error"] != "(none)"].groupby("error")["events"].sum().sort_index())
    return {"rejected": int(rejected), "rejected_rate": ratio(rejected, with_status), "rejected_rate_n": int(with_status),
            "by_reason": {str(k): int(v) for k, v in by_reason.items()}}, frame


def _overlap(ws: Workspace) -> tuple[dict[str, Any], pd.DataFrame]:
    try:
        from capi_audit.metrics.units import counted_units  # owned by the linkage family
    except ImportError:
        return {"available": False, "reason": "needs counted units per conversion class (metrics.units)"}, pd.DataFrame()
    rel = counted_units(ws)
    frame = ws.df(f"""
        WITH u AS (SELECT DISTINCT order_id, conv_class FROM {rel}
                   WHERE platform = 'google' AND conv_class IS NOT NULL AND order_id IS NOT NULL)
        SELECT a.conv_class AS action_a, b.conv_class AS action_b, count(*) AS orders
        FROM u a JOIN u b ON a.order_id = b.order_id AND a.conv_class < b.conv_class
        GROUP BY 1, 2 ORDER BY 1, 2
    """)
    n_orders = ws.scalar(f"SELECT count(DISTINCT order_id) FROM {rel} WHERE platform = 'google' AND conv_class IS NOT NULL")
    overlap = ws.scalar(f"""
        SELECT count(*) FROM (SELECT order_id FROM {rel} WHERE platform = 'google' AND conv_class IS NOT NULL
                              AND order_id IS NOT NULL GROUP BY order_id HAVING count(DISTINCT conv_class) > 1)
    """)
    extra = ws.scalar(f"""
        SELECT coalesce(sum(k - 1), 0) FROM (SELECT count(DISTINCT conv_class) AS k FROM {rel} WHERE platform = 'google'
               AND conv_class IS NOT NULL AND order_id IS NOT NULL GROUP BY order_id HAVING count(DISTINCT conv_class) > 1)
    """)
    return {"orders": int(overlap), "extra_counts": int(extra), "rate": ratio(overlap, n_orders),
            "rate_n": int(n_orders or 0)}, frame


_LOGGED_UPLOADS = """
    SELECT destination, {day} AS day, request_id,
        CASE WHEN status IS NOT NULL AND lower(status) = 'accepted' THEN 1 ELSE 0 END AS accepted,
        CASE WHEN status IS NOT NULL AND lower(status) = 'rejected' THEN 1 ELSE 0 END AS rejected,
        CASE WHEN status IS NULL THEN 1 ELSE 0 END AS unknown
    FROM server_events
    WHERE platform = 'google' AND (source_api IS NULL OR source_api = 'google_ads_api')
"""
_SUMMARY_ROWS = """
    SELECT destination, destination_id, upload_date, job_id, coalesce(successful, 0) AS successful,
        coalesce(failed, 0) AS failed, coalesce(pending, 0) AS pending
    FROM upload_summaries
    WHERE platform = 'google' AND level = 'conversion_action' AND dimension = '{dim}'
        AND (client IS NULL OR client = 'GOOGLE_ADS_API')
"""
_SAME_ACTION = ("(s.destination = g.destination OR s.destination = g.destination_id "
                "OR s.destination LIKE concat('%/', g.destination_id))")


def _diag_sql() -> str:
    """Google's daily and job summaries next to the logged uploads of the same action and day / job,
    plus logged upload days inside a summarized action's range that Google does not list."""
    logged = _LOGGED_UPLOADS.format(day=local_date("coalesce(sent_at, event_time)"))
    sums = "count(s.destination) AS logged, coalesce(sum(s.accepted), 0) AS logged_accepted, " \
           "coalesce(sum(s.rejected), 0) AS logged_rejected, coalesce(sum(s.unknown), 0) AS logged_unknown"
    return f"""
    WITH s AS ({logged}),
    sdm AS ({_LOGGED_UPLOADS.format(day='NULL').replace("(source_api IS NULL OR source_api = 'google_ads_api')",
                                                         "source_api = 'data_manager'")}),
    gr AS (SELECT destination, destination_id, job_id, coalesce(successful, 0) AS successful,
               coalesce(failed, 0) AS failed, coalesce(pending, 0) AS pending
           FROM upload_summaries WHERE platform = 'google' AND level = 'data_manager_request' AND dimension = 'job'),
    gd AS ({_SUMMARY_ROWS.format(dim='day')}),
    gj AS ({_SUMMARY_ROWS.format(dim='job')}),
    rng AS (SELECT destination, destination_id, min(upload_date) AS d0, max(upload_date) AS d1
            FROM gd GROUP BY destination, destination_id)
    SELECT 'day' AS dimension, g.destination, CAST(g.upload_date AS VARCHAR) AS key_value,
        g.successful AS google_successful, g.failed AS google_failed, g.pending AS google_pending, {sums}
    FROM gd g LEFT JOIN s ON {_SAME_ACTION} AND s.day = g.upload_date
    GROUP BY g.destination, g.upload_date, g.successful, g.failed, g.pending
    UNION ALL
    SELECT 'job', g.destination, g.job_id, g.successful, g.failed, g.pending, {sums}
    FROM gj g LEFT JOIN s ON {_SAME_ACTION} AND s.request_id = g.job_id
    GROUP BY g.destination, g.job_id, g.successful, g.failed, g.pending
    UNION ALL
    SELECT 'data_manager_request', g.destination, g.job_id, g.successful, g.failed, g.pending,
        {sums.replace('s.', 'x.')}
    FROM gr g LEFT JOIN sdm x ON (x.destination = g.destination OR x.destination = g.destination_id)
        AND x.request_id = g.job_id
    GROUP BY g.destination, g.job_id, g.successful, g.failed, g.pending
    UNION ALL
    SELECT 'day', g.destination, CAST(s.day AS VARCHAR), CAST(0 AS DOUBLE), CAST(0 AS DOUBLE), CAST(0 AS DOUBLE),
        {sums}
    FROM rng g JOIN s ON {_SAME_ACTION} AND s.day BETWEEN g.d0 AND g.d1
    WHERE NOT EXISTS (SELECT 1 FROM gd x WHERE x.destination = g.destination AND x.upload_date = s.day)
    GROUP BY g.destination, s.day
    """


def _upload_diagnostics(ws: Workspace) -> tuple[dict[str, Any], pd.DataFrame]:
    if not ws.count("upload_summaries"):
        return {"available": False, "reason": "no Google upload summaries loaded (load the Google Ads API "
                "offline_conversion_upload_conversion_action_summary into upload_summaries)"}, pd.DataFrame()
    frame = ws.df(_diag_sql(), {"tz": ws.config.report_zone("google")})
    for c in ("logged", "logged_accepted", "logged_rejected", "logged_unknown"):
        frame[c] = frame[c].astype("int64")
    reasons = []
    for r in frame.itertuples():
        total = r.google_successful + r.google_failed + r.google_pending
        why = []
        if r.logged != total:
            why.append(f"Google counts {total:g} uploaded events, the logs hold {r.logged}")
        if r.logged_unknown == 0 and r.logged and r.logged_rejected != r.google_failed:
            why.append(f"Google failed {r.google_failed:g}, the logs rejected {r.logged_rejected}")
        reasons.append("; ".join(why))
    frame["agree"] = [not x for x in reasons]
    frame["reason"] = reasons
    frame = tidy(frame, ["dimension", "destination", "key_value"])
    alerts = ws.rows("SELECT error, max(error_share) FROM upload_summaries WHERE platform = 'google' "
                     "AND dimension = 'alert' AND error IS NOT NULL GROUP BY error ORDER BY error")
    status = ws.rows("SELECT coalesce(destination, concat('(account) ', coalesce(client, ''))), min(status) "
                     "FROM upload_summaries WHERE platform = 'google' AND status IS NOT NULL GROUP BY 1 ORDER BY 1")
    bad = frame[~frame["agree"]]
    out = {"compared": len(frame), "disagree": len(bad),
           "google_events": float((frame["google_successful"] + frame["google_failed"] + frame["google_pending"])
                                  [frame["dimension"] == "day"].sum()),
           "logged_events": int(frame[frame["dimension"] == "day"]["logged"].sum()),
           "disagreements": [f"{d.destination} {d.dimension} {d.key_value}: {d.reason}" for d in bad.itertuples()],
           "status": {str(k): str(v) for k, v in status}, "alerts": {str(k): float(v) for k, v in alerts}}
    if len(bad):
        out["note"] = ("Google's upload summaries and the logged uploads disagree: uploads missing from the "
                       "logs, uploads Google never received, or failures the logs do not show")
    return out, frame


def _tiers(ws: Workspace) -> tuple[dict[str, Any], pd.DataFrame]:
    from capi_audit.metrics.match_keys import prepare_flags

    if not ws.scalar("SELECT count(*) FROM server_events WHERE platform = 'google'"):
        return {"available": False, "reason": "no Google server events"}, pd.DataFrame()
    prepare_flags(ws)
    frame = ws.df("SELECT destination, tier, count(*) AS events FROM sv_flags WHERE platform = 'google' "
                  "GROUP BY 1, 2 ORDER BY 1, 2")
    n = int(frame["events"].sum())
    tiers = {t: ratio(frame[frame["tier"] == t]["events"].sum(), n) for t in ("strong", "click", "none")}
    return {**tiers, "n": n}, frame


def google_metrics(ws: Workspace) -> tuple[dict[str, pd.DataFrame], Headline]:
    """The `google` section and its frames (google_enhancements, google_click_ids,
    google_upload_errors, google_action_overlap, google_tiers)."""
    has_google = ws.scalar("SELECT count(*) FROM (SELECT platform FROM pixel_events UNION ALL SELECT platform "
                           "FROM server_events UNION ALL SELECT platform FROM enhancements UNION ALL SELECT platform "
                           "FROM upload_summaries) WHERE platform = 'google'")
    if not has_google:
        return {}, Headline("google", available=False, reason="no Google Ads events loaded")
    prepare(ws)
    window = float(getattr(ws.config, "google_click_window_days", None) or CLICK_WINDOW_DAYS)
    enh, f_enh = _enhanced(ws)
    clicks, f_clicks = _click_ids(ws, window)
    errs, f_errs = _errors(ws)
    overlap, f_overlap = _overlap(ws)
    tiers, f_tiers = _tiers(ws)
    diag, f_diag = _upload_diagnostics(ws)
    values = {"google": {"enhanced_conversions": enh, "click_ids": clicks, "upload_errors": errs,
                         "upload_diagnostics": diag, "primary_action_overlap": overlap, "identifier_tiers": tiers}}
    if len(f_enh):  # the platform column lets the charts omit it where Google has no data
        f_enh = tidy(f_enh, ["destination", "day"])
        f_enh.insert(0, "platform", "google")
    frames = {"google_enhancements": f_enh,
              "google_click_ids": f_clicks, "google_upload_errors": f_errs,
              "google_action_overlap": f_overlap, "google_tiers": f_tiers, "google_upload_diagnostics": f_diag}
    return frames, Headline("google", values)


def google_notes(ws: Workspace) -> list[str]:
    """Caveats about the Google inputs of this run (for summary.json `notes`)."""
    out = []
    n = ws.scalar("SELECT count(*) FROM platform_report WHERE platform = 'google' AND date_basis = 'interaction'")
    if n:
        out.append(f"{n} Google report rows are dated by the ad interaction (click), not by the conversion: recent "
                   "days are still growing; download `Conversions (by conv. time)` to compare with logs")
    tagged = ws.scalar("SELECT count(*) FROM pixel_events WHERE platform = 'google' AND destination LIKE 'AW-%/%'")
    if tagged and ws.scalar("SELECT count(*) FROM server_events WHERE platform = 'google'"):
        out.append(f"{tagged} Google Ads tag hits name their conversion action only by label (AW-…/…): map labels "
                   "to action names (options.actions) or they never share a dedup key with uploads")
    if ws.scalar("SELECT count(*) FROM pixel_events WHERE platform IN ('google', 'ga4') AND cookieless"):
        out.append("Google cookieless pings (Advanced Consent Mode) are counted apart, never as consent violations")
    if ws.scalar("SELECT count(*) FROM server_events WHERE platform IN ('google', 'ga4')") and not ws.scalar(
            "SELECT count(*) FROM orders WHERE consent_ad_user_data IS NOT NULL") and ws.scalar(
            "SELECT count(*) FROM orders WHERE consent_ads IS NOT NULL"):
        out.append("orders record no ad_user_data consent: their ads consent stands in for it in Google's consent rules")
    return out


def compute(ws: Workspace) -> Any:
    """Family entry point: a `FamilyResult(headline, frames)` where the registry defines it (else the
    pair (frames, headline))."""
    frames, head = google_metrics(ws)
    try:
        from capi_audit.metrics.common import FamilyResult  # type: ignore[attr-defined]
    except ImportError:
        return frames, head
    return FamilyResult(head, frames)
