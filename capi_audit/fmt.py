"""One number format and human labels for every table, page and message of the report.

Rules (by the metric's key, so new figures from new families format correctly without code):
- integers: thousands separators (`12,345`);
- rates and shares (key ends in `_rate`, `_share`, `coverage`, starts with `share_`, or is one of
  the share keys of match keys / identifier tiers): percent with one decimal (`12.3 %`);
- `*_per_day`: one decimal with a sign where it is a change (`+4.2/day`);
- durations (key ends in `_s` or `_seconds`): `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`;
- p-values: three significant digits;
- intervals (`*_ci`, or a two-element list): `[low – high]` in the unit of the base key;
- missing values: `n/a` (never NaN); booleans: yes / no.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pandas as pd

PLATFORMS = {"meta": "Meta", "google": "Google", "ga4": "GA4"}

SHARE_KEYS = {"present", "valid", "plaintext_pii", "shared_value", "strong", "click", "browser", "none",
              "valid_share", "share", "event_coverage", "dedup_rate", "capture_rate_pre", "capture_rate_post",
              "acr_like", "pi_pre", "pi_post"}

LABELS = {
    # load
    "rows_read": "Rows read", "rows_loaded": "Rows loaded", "rows_rejected": "Rows rejected",
    "table_name": "Table", "file": "File", "format": "Format", "coerced": "Values set to empty (per column)",
    "ignored_columns": "Source columns not used", "column_name": "Column", "reason": "Reason", "rows": "Rows",
    "orders": "Orders", "pixel_events": "Browser (pixel) events", "server_events": "Server events",
    "platform_report": "Platform report rows", "identities": "Customer identities",
    # dedup
    "both": "Keys in both channels (deduplicated)", "both_outside_window": "Pairs outside the dedup window",
    "pixel_only": "Keys only from the browser", "server_only": "Keys only from the server",
    "name_mismatch": "Same ID under another event name",
    "missing_event_id_pixel": "Browser events without event ID",
    "missing_event_id_server": "Server events without event ID",
    "pixel_duplicates": "Duplicate browser rows", "server_duplicates": "Duplicate server rows",
    "event_coverage": "Event coverage (browser keys the server also sent)",
    "dedup_rate": "Dedup rate (server keys paired with the browser)",
    "expected_platform_count": "Expected platform count", "report_gap": "Report minus expected count",
    "expected": "Expected count", "outside_window_counts": "Counted twice (outside window)",
    "missing_event_id": "Without event ID", "reported": "Platform reported",
    # double counting
    "orders_matched": "Orders reached", "orders_double_counted": "Orders counted more than once",
    "counted_events": "Counted conversions", "inflation_rate": "Inflation (extra counts ÷ orders)",
    "id_mismatch": "Server does not reuse the browser event ID", "outside_window": "Sent outside the window",
    "server_retry_new_id": "Server retry with a new ID", "name_variant": "Event name variant",
    "method_b_miss": "Not paired without event ID (fbp / external_id)", "pre_existing": "Before the server (pre-existing)",
    "server_caused": "Caused by the server", "total": "Total", "conv_class": "Conversion class",
    "counted_units": "Counted units", "orders_also_under_other_names": "Orders also under other event names",
    "orders_merged_away": "Orders merged away", "linked": "Linked events", "link_rate": "Link rate",
    "link_rate_ci": "Link rate, 95 % CI", "linked_via_event_id": "Linked via event ID", "orders_reached": "Orders reached",
    "orphans": "Orphan events (unknown order)", "order_key": "Order key", "reliable": "Reliable",
    "hash_agreement": "Hash agreement with the shop's keys", "agree": "Agree with the shop's hash",
    "mismatch": "Mismatches by cause", "consistency": "Consistency on pairs", "counted_by_platform": "Not counted by the platform",
    "key_coverage": "Key coverage", "paired_by": "Paired by", "sentinel_event_ids": "Sentinel event IDs",
    "pairs": "Pairs", "same": "Same value", "event_id_collisions": "Event ID collisions",
    "method_b": "Paired without event ID (Method B)", "pixel_units": "Browser units", "server_units": "Server units",
    "report_to_log_ratio": "Report ÷ log ratio", "assumed_rejected": "Assumed rejected",
    "batch_collateral": "Rejected with their batch", "test_event_code_counted": "Test events (test_event_code)",
    "test_order_events": "Events of test orders", "rejected": "Rejected by the platform", "cause": "Cause", "extra_counts": "Extra counts",
    # recovery
    "reported_change_per_day": "Change in reported conversions", "net_new_per_day": "Real orders moving (report units)",
    "capi_reported_per_day": "Added by the server (report units)", "pixel_capture_change_per_day": "Pixel capture change",
    "attribution_change_per_day": "Attribution change", "capi_added_per_day": "Added by the server (log units)",
    "capi_added": "Added by the server (log units), count", "log_units_per_day": "Counted from all logs (L)",
    "pixel_only_units_per_day": "Counted from the pixel alone (P)", "recovered": "Recovered by the server, count",
    "server_double_counted": "Double counted by the server, count", "unlinked_added": "Added, linked to no order, count",
    "orders_loaded": "Orders table loaded", "sentence": "In words",
    "acr_like": "Additional conversions reported (like Meta's ACR)", "server_double_counted_per_day": "Double counted by the server",
    "unlinked_added_per_day": "Added, linked to no order", "rho_pre": "Report ÷ log before (ρ)", "rho_post": "Report ÷ log after (ρ)",
    "pi_pre": "Pixel capture before (π)", "pi_post": "Pixel capture after (π)", "orders_change_per_day": "Real orders change",
    "orders_change_mde": "Smallest detectable orders change (80 % power)", "placebo_p_value": "Placebo p-value",
    "measurement_change_per_day": "Measurement change", "recovered_per_day": "Recovered by the server",
    "double_counted_per_day": "Double counted", "unexplained_per_day": "Unexplained",
    "sales_change_p_value": "p-value of the sales change", "capture_rate_change_ci": "Capture-rate change, 95 % CI",
    "capture_rate_pre": "Capture rate before", "capture_rate_post": "Capture rate after",
    "orders_per_day_pre": "Orders per day before", "orders_per_day_post": "Orders per day after",
    "reported_per_day_pre": "Reported per day before", "reported_per_day_post": "Reported per day after",
    "pre_days": "Days before", "post_days": "Days after",
    "orders_post_pixel_and_server": "Orders after: browser and server",
    "orders_post_server_only": "Orders after: server only", "orders_post_pixel_only": "Orders after: browser only",
    "orders_post_unreported": "Orders after: neither channel", "period": "Period", "component": "Component",
    "per_day": "Per day", "measurement_ci_low": "CI low (measurement)", "measurement_ci_high": "CI high (measurement)",
    # match keys
    "present": "Present", "valid": "Valid", "plaintext_pii": "Plaintext personal data",
    "shared_value": "Shared (implausible) value", "identifier_tiers": "Best identifier",
    "strong": "Strong (hashed email / phone)", "click": "Click ID", "browser": "Browser IDs only",
    "none": "Nothing usable", "key": "Key", "tier": "Tier", "valid_share": "Valid share",
    "match_quality_proxy": "Match quality proxy (not EMQ)", "slot_share": "Identifier slots filled",
    "slots": "Slots",
    # consent
    "denied_rate": "Denied (of known consent)", "consent_drop_rate": "Denied and lost by the browser",
    "browser_loss_rate": "Granted but lost by the browser", "server_gap_rate": "Granted, not sent by the server",
    "consent_unknown": "Orders with unknown consent", "pixel_fired_without_consent": "Browser fired despite denial",
    "server_sent_without_consent": "Server sent despite denial", "country": "Country",
    # validation
    "event_too_old": "Event too old", "event_in_future": "Event time in the future",
    "missing_action_source": "Missing action_source", "website_missing_user_agent": "Website event without user agent",
    "website_missing_source_url": "Website event without source URL",
    "purchase_missing_value": "Purchase without value", "purchase_missing_currency": "Purchase without currency",
    "invalid_currency": "Invalid currency", "insufficient_customer_keys": "Insufficient customer keys",
    "unhashed_key": "Key not hashed", "malformed_fbc": "Malformed fbc", "malformed_fbp": "Malformed fbp",
    "click_id_too_old": "Click ID too old",
    "address_field_hashed": "Address field hashed (Google wants it in clear)",
    "gbraid_and_wbraid": "Both gbraid and wbraid", "more_than_one_click_id": "More than one click ID",
    "order_id_contains_pii": "Order ID contains personal data", "value_negative": "Negative value",
    "consent_missing_ad_user_data": "Upload without ad_user_data consent",
    "too_many_conversions_in_request": "Over 2,000 conversions in one request",
    "mp_backdated_over_72h": "Measurement Protocol event backdated over 72 h",
    "days": "Days covered",
    # latency
    "median_s": "Median delay", "p95_s": "95th percentile delay", "share_over_1h": "Sent after 1 h",
    "share_over_24h": "Sent after 24 h", "share_over_window": "Sent after the dedup window", "share_over_age_limit": "Sent past the age limit",
    "events_without_sent_at": "Server events without send time", "log10_s": "Delay (log10 seconds)",
    # shared
    "platform": "Platform", "destination": "Destination", "event_name": "Event", "day": "Day",
    "events": "Events", "n": "n (denominator)", "value": "Value", "currency": "Currency",
}

FRAME_LABELS = {
    "load": "Files loaded", "load_rejects": "Rejected rows by reason",
    "dedup": "Key overlap per event name (after enablement)", "dedup_daily": "Daily expected platform count",
    "double_counting": "Extra counts by cause", "recovery": "Orders and reported conversions per day",
    "recovery_decomposition": "Decomposition components", "match_keys": "Match keys per platform",
    "match_keys_daily": "Valid share per key and day", "match_keys_tiers": "Identifier tiers per event name",
    "consent": "Consent per platform, country and day", "consent_by_country": "Consent by country",
    "validation": "Rule violations per event name and day", "latency": "Send latency per platform",
    "latency_bins": "Send latency distribution",
}


def register_labels(labels: dict[str, str]) -> None:
    """Labels a family brings with its registry entry (`Family.labels`); existing labels win."""
    for k, v in labels.items():
        LABELS.setdefault(k, v)


def humanize(key: str) -> str:
    """A readable label for a key nobody labelled yet: underscores to spaces, first letter up."""
    text = str(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else text


def label(key: Any, extra: dict[str, str] | None = None) -> str:
    """The human label of a metric, column or entity key."""
    key = str(key)
    if extra and key in extra:
        return extra[key]
    if key in LABELS:
        return LABELS[key]
    if key in PLATFORMS:
        return PLATFORMS[key]
    if key.endswith("_ci") and key[:-3] in LABELS:  # an interval is labelled after its figure
        return f"{LABELS[key[:-3]]} — 95 % interval"
    return humanize(key)


def frame_label(name: str) -> str:
    return FRAME_LABELS.get(name, humanize(name))


def platform(name: str) -> str:
    return PLATFORMS.get(name, humanize(name))


def is_share(key: str) -> bool:
    k = str(key).lower()
    return (k in SHARE_KEYS or k.endswith(("_rate", "_share", "coverage")) or k.startswith("share_")
            or k.endswith("_rate_pre") or k.endswith("_rate_post"))


def pct(x: float) -> str:
    """A share as a percentage with one decimal (`12.3 %`)."""
    return f"{100 * float(x):.1f} %"


def duration(seconds: float) -> str:
    """Seconds as s / min / h min / d h."""
    s = float(seconds)
    sign = "-" if s < 0 else ""
    s = abs(s)
    if s < 60:
        return f"{sign}{s:.0f} s"
    if s < 3600:
        return f"{sign}{s / 60:.0f} min"
    if s < 86400:
        h, m = divmod(round(s / 60), 60)
        return f"{sign}{h} h {m} min" if m else f"{sign}{h} h"
    d, h = divmod(round(s / 3600), 24)
    return f"{sign}{d} d {h} h" if h else f"{sign}{d} d"


def missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value)) if not isinstance(value, list | tuple | dict) else False
    except (TypeError, ValueError):
        return False


def value(key: str, v: Any) -> str:
    """Format one value by its key's meaning (see the module docstring)."""
    k = str(key).lower()
    if missing(v):
        return "n/a"
    if isinstance(v, list | tuple):
        if len(v) == 2:
            base = k[:-3] if k.endswith("_ci") else k
            if k.endswith("_ci") and "change" in k and is_share(base.replace("_change", "")):
                return "[" + " – ".join("n/a" if missing(x) else f"{100 * float(x):+.1f} pp" for x in v) + "]"
            return "[" + " – ".join(value(base, x) for x in v) + "]"
        return ", ".join(value(k, x) for x in v)
    if isinstance(v, dict):
        # children of a per-day figure (recovered by consent / tier / cause) are per-day counts too
        sub = (lambda a: f"{a}_per_day") if k.endswith("_per_day") else (lambda a: a)
        return "; ".join(f"{label(a)}: {value(sub(a), b)}" for a, b in v.items())
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, pd.Timestamp | dt.datetime):
        if k == "day" or k.endswith("_day"):  # local days are stored as midnight timestamps
            return pd.Timestamp(v).strftime("%Y-%m-%d")
        return pd.Timestamp(v).strftime("%Y-%m-%d %H:%M")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, str):
        return v
    x = float(v)
    if math.isinf(x):
        return "n/a"
    if "p_value" in k:
        return f"{x:.3g}"
    if is_share(k):
        return pct(x)
    if k.endswith(("_s", "_seconds")) and k != "log10_s":
        return duration(x)
    if k.endswith("_per_day"):
        signed = "change" in k or k.startswith(("net_new", "recovered", "double_counted", "unexplained"))
        return (f"{x:+,.1f}" if signed else f"{x:,.1f}") + "/day"
    if isinstance(v, int) or x.is_integer() and not k.endswith(("_ms",)) and abs(x) < 1e15:
        return f"{int(round(x)):,}"
    return f"{x:,.2f}"


def frame_cells(frame: pd.DataFrame, *, max_rows: int | None = None) -> pd.DataFrame:
    """A frame with human column labels and every cell formatted (strings only)."""
    f = frame if max_rows is None else frame.head(max_rows)
    out = pd.DataFrame({label(c): [value(c, v) if c != "platform" else platform(str(v)) for v in f[c]]
                        for c in f.columns})
    return out
