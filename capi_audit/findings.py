"""Ranked findings for the executive summary, produced from a result by the rules in `RULES`.

Every rule reads summary.json figures only (never the data), so the findings are the same wherever
the result is opened. A finding carries a severity, the figure that triggered it, what it costs
(conversions per day, or a share), and what to do. Ranking: severity (high, medium, low, info),
then cost per day, largest first. docs/report.md lists the rules; keep it in step with `RULES`.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from capi_audit import fmt
from capi_audit.result import AuditResult

SEVERITIES = ("high", "medium", "low", "info")


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    section: str
    platform: str | None
    figure: str
    cost: str
    action: str
    per_day: float = 0.0

    def sort_key(self) -> tuple:
        return (SEVERITIES.index(self.severity), -self.per_day, self.section, self.platform or "", self.rule,
                self.figure)


def _dicts(node: Any, key: str, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict]]:
    """Every dict under node holding `key`, with its path."""
    if isinstance(node, dict):
        if key in node:
            yield path, node
        for k, v in node.items():
            yield from _dicts(v, key, (*path, str(k)))


def _sec(result: AuditResult, name: str) -> dict:
    v = result.summary.get(name)
    if not isinstance(v, dict) or v.get("available", True) is False:
        return {}
    return {k: x for k, x in v.items() if isinstance(x, dict)}


def post_days(result: AuditResult, platform: str) -> int:
    """Days the after-enablement counts (dedup, double counting) cover: the enable day to the last
    day of data (every day of data when no enable time is set). Those counts take every event at
    or after the enable time, so the divisor is every such day — not the recovery section's whole
    weeks, which leave out burn-in and settling days and would inflate the cost per day."""
    cfg = result.config
    if not cfg.last_day:
        return 1
    last = dt.date.fromisoformat(cfg.last_day)
    start = dt.date.fromisoformat(cfg.first_day) if cfg.first_day else last
    iso = cfg.enabled_at.get(platform)
    if iso:
        from zoneinfo import ZoneInfo

        # an enable time before the first day of data does not add days the logs do not cover
        start = max(start, dt.datetime.fromisoformat(iso).astimezone(ZoneInfo(cfg.timezone)).date())
    return max((last - start).days + 1, 1)


def _per_day(result: AuditResult, platform: str, count: float) -> tuple[float, str]:
    days = post_days(result, platform)
    per = float(count) / days
    return per, f"{per:,.1f} conversions/day ({int(count):,} over {days:,} days)"


# -- rules -----------------------------------------------------------------------------------------
CAUSE_ACTIONS = {
    "id_mismatch": "pass the browser's event ID to the server event (the server sends its own ID)",
    "missing_event_id": "send an event ID on every browser and server event",
    "name_mismatch": "send the same event name from the browser and the server",
    "name_variant": "send the same event name from the browser and the server",
    "method_b_miss": "send the event ID (or fbp / external_id in both channels) so the platform can pair them",
    "outside_window": "send server events within the platform's dedup window",
    "server_retry_new_id": "make server retries reuse the first attempt's event ID",
}
RULE_ACTIONS = {
    "event_too_old": ("high", "send within the platform's age limit (Meta: 7 days, 62 for physical_store; "
                              "GA4 Measurement Protocol: 72 h): older events are rejected"),
    "event_in_future": ("high", "fix the server clock or the event_time field (future times are rejected)"),
    "insufficient_customer_keys": ("high", "add a strong key (hashed email or phone) or a click ID"),
    "unhashed_key": ("high", "hash customer keys with SHA-256 after normalizing them"),
    "order_id_contains_pii": ("high", "use an order number without email or phone in it (Google rejects it)"),
    "gbraid_and_wbraid": ("high", "send only one of gbraid / wbraid per conversion (Google rejects both)"),
    "more_than_one_click_id": ("high", "send one click ID per conversion (gclid, else gbraid or wbraid)"),
    "too_many_conversions_in_request": ("high", "send at most 2,000 conversions per Google Ads request"),
    "address_field_hashed": ("medium", "send city, region, postal code and country to Google in clear "
                                       "(Google cannot match them hashed)"),
    "consent_missing_ad_user_data": ("medium", "state ad_user_data consent on every Google upload"),
    "value_negative": ("medium", "send conversion values of zero or more (refunds are adjustments)"),
    "missing_action_source": ("medium", "set action_source on every server event"),
    "website_missing_user_agent": ("medium", "send the browser's user agent with website events"),
    "website_missing_source_url": ("medium", "send event_source_url with website events"),
    "purchase_missing_value": ("medium", "send value with every purchase"),
    "purchase_missing_currency": ("medium", "send a currency with every purchase"),
    "invalid_currency": ("medium", "send ISO 4217 currency codes"),
    "malformed_fbc": ("medium", "pass the _fbc cookie unchanged (fb.1.<time>.<fbclid>)"),
    "malformed_fbp": ("medium", "pass the _fbp cookie unchanged (fb.1.<time>.<random>)"),
    "click_id_too_old": ("low", "drop click IDs older than 90 days"),
}
# `mp_backdated_over_72h` is GA4's `event_too_old` under its own name: one finding, not two.
RULES_WITHOUT_FINDING = ("mp_backdated_over_72h",)


def rule_dedup_causes(result: AuditResult) -> Iterator[Finding]:
    """Double counting by cause (per platform and conversion class): every cause with extra counts
    is a finding; severity high when the cause adds 2 % or more of the orders reached, medium
    from 0.5 %, else low; cost = extra counts per day after enablement (the server-caused part
    when the section splits it)."""
    for plat, vals in _sec(result, "double_counting").items():
        for path, d in _dicts(vals, "orders_matched"):
            base = d.get("orders_matched") or 0
            causes = d.get("extra_counts") if isinstance(d.get("extra_counts"), dict) else d
            for cause, raw in causes.items():
                if cause not in CAUSE_ACTIONS:
                    continue
                n = raw.get("server_caused", raw.get("total")) if isinstance(raw, dict) else raw
                if isinstance(n, bool) or not isinstance(n, int | float) or n <= 0:
                    continue
                per, cost = _per_day(result, plat, n)
                share = f" ({fmt.pct(n / base)} of {int(base):,} orders reached)" if base else ""
                rate = n / base if base else 1.0
                sev = "high" if rate >= 0.02 else "medium" if rate >= 0.005 else "low"
                where = f" · {' · '.join(path)}" if path else ""
                action = CAUSE_ACTIONS[cause]
                if cause == "outside_window":  # the window as configured for this platform
                    w = result.config.windows.get(plat)
                    action = ("send server events within the platform's dedup window"
                              + (f" ({w:g} h)" if w else ""))
                yield Finding("double_counting_cause", sev, "double_counting", plat,
                              f"{fmt.label(cause)}{where}: {int(n):,} extra counts{share}", cost, action, per)


def rule_event_coverage(result: AuditResult) -> Iterator[Finding]:
    """Event coverage of the conversion event below Meta's 75 % goal: high; cost = browser-only
    keys per day the server did not send."""
    conv = result.config.conversion_event
    aliases = (result.config.settings.get("event_aliases") or {}).get(conv, ())
    names = {n.lower() for n in (conv, *aliases)}  # the conversion class: case variants and aliases
    for plat, vals in _sec(result, "dedup").items():
        for path, d in _dicts(vals, "event_coverage"):
            cov = d.get("event_coverage")
            if not names & {p.lower() for p in path} or cov is None or cov >= 0.75:
                continue
            # one finding per place to fix: per destination when the class has several, else the class
            if "destinations" in path:
                cls = vals
                for key in path[:path.index("destinations")]:
                    cls = cls.get(key, {}) if isinstance(cls, dict) else {}
                if len(cls.get("destinations") or {}) < 2:
                    continue
            elif len(d.get("destinations") or {}) >= 2:
                continue
            per, cost = _per_day(result, plat, d.get("pixel_only") or 0)
            action = "send every browser conversion from the server too, with the same event ID"
            if "destinations" in path and d.get("server_units") == 0:
                action = ("the server never sends to this destination: remove a leftover browser tag sending "
                          "to it, or send its conversions from the server too")
            yield Finding("event_coverage_below_goal", "high", "dedup", plat,
                          f"event coverage {fmt.value('event_coverage', cov)} for {' · '.join(path)} (goal 75 %)",
                          cost, action, per)


def rule_consent(result: AuditResult) -> Iterator[Finding]:
    """Sends despite denied ads consent (orders): high; cost = orders (a compliance issue)."""
    for plat, vals in _sec(result, "consent").items():
        for key, action in (("server_sent_without_consent",
                             "do not send denied orders from the server, or flag them for restricted processing"),
                            ("pixel_fired_without_consent", "gate the browser tag on the consent banner")):
            n = vals.get(key)
            if isinstance(n, int | float) and n > 0:
                den = vals.get(f"{key}_n")
                of = f" of {int(den):,} denied orders" if isinstance(den, int) and den > 0 else " orders"
                yield Finding("consent_violation", "high", "consent", plat, f"{fmt.label(key)}: {int(n):,}{of}",
                              f"{int(n):,} orders sent without consent", action, 0.0)
        gap = vals.get("server_gap_rate")
        if isinstance(gap, int | float) and gap >= 0.10:
            yield Finding("server_gap", "medium", "consent", plat, f"{fmt.label('server_gap_rate')}: "
                          f"{fmt.value('server_gap_rate', gap)}", f"{fmt.pct(gap)} of granted orders",
                          "send every granted order from the server", 0.0)


def rule_plaintext(result: AuditResult) -> Iterator[Finding]:
    """Plaintext personal data in server events: high (a privacy incident); cost = share of events."""
    for plat, vals in _sec(result, "match_keys").items():
        for path, d in _dicts(vals, "plaintext_pii"):
            share = d.get("plaintext_pii")
            if isinstance(share, int | float) and share > 0:
                key = path[-1] if path else "key"
                rows = "browser hits" if "pixel" in path else "server events"
                n = (vals.get("pixel") or {}).get("n") if "pixel" in path else vals.get("n")
                of = f" of {int(n):,}" if isinstance(n, int) and n > 0 else ""
                yield Finding("plaintext_pii", "high", "match_keys", plat,
                              f"{fmt.value('plaintext_pii', share)}{of} {rows} carry {key} in plain text",
                              f"{fmt.pct(share)} of {rows}",
                              f"hash {key} with SHA-256 after normalizing it, before sending"
                              + (" (the tag's advanced matching)" if "pixel" in path else ""), 0.0)


def rule_payload(result: AuditResult) -> Iterator[Finding]:
    """Payload rule violations (server events): severity per rule (rejected: high); cost = events
    per day over the days the platform's server events span (validation counts every day, not
    only post days)."""
    for plat, vals in _sec(result, "validation").items():
        days = vals.get("days")
        if isinstance(days, bool) or not isinstance(days, int) or days <= 0:
            days = post_days(result, plat)
        total = vals.get("events")
        for rule, (sev, action) in RULE_ACTIONS.items():
            n = vals.get(rule)
            if isinstance(n, int | float) and n > 0:
                per = float(n) / days
                of = f" of {int(total):,}" if isinstance(total, int) and total > 0 else ""
                yield Finding("payload_rule", sev, "validation", plat,
                              f"{fmt.label(rule)}: {int(n):,}{of} server events",
                              f"{per:,.1f} server events/day ({int(n):,} over {days:,} days)", action, per)


def rule_latency(result: AuditResult) -> Iterator[Finding]:
    """Median send delay over one hour: low (Meta recommends sending within the hour)."""
    for plat, vals in _sec(result, "latency").items():
        med = vals.get("median_s")
        if isinstance(med, int | float) and med > 3600:
            yield Finding("slow_sends", "low", "latency", plat, f"median delay {fmt.duration(med)}",
                          f"{fmt.value('share_over_24h', vals.get('share_over_24h'))} sent after 24 h",
                          "send server events as the conversion happens (within the hour)", 0.0)


def rule_rejected_rows(result: AuditResult) -> Iterator[Finding]:
    """Input rows rejected at load: medium; cost = share of the table's rows."""
    for table, vals in _sec(result, "load").items():
        n, read = vals.get("rows_rejected") or 0, vals.get("rows_read") or 0
        if n > 0:
            yield Finding("rejected_rows", "medium", "load", None, f"{int(n):,} {fmt.label(table).lower()} rows rejected",
                          f"{fmt.pct(n / read)} of the table's rows" if read else f"{int(n):,} rows",
                          "see the load page for the reasons; fix the export or map the column in audit.toml",
                          0.0)


def rule_not_measured(result: AuditResult) -> Iterator[Finding]:
    """A section whose inputs are missing: info, with what would provide them."""
    for sec in result.sections:
        if not sec.available:
            yield Finding("not_measured", "info", sec.name, None, f"{sec.title.split(':')[0]}: not measured "
                          f"({sec.reason})", "unknown", f"provide {sec.needs}" if sec.needs else "provide the inputs",
                          0.0)


def rule_unreliable(result: AuditResult) -> Iterator[Finding]:
    """A figure marked not reliable: info, with its reason."""
    for sec in result.sections:
        for path, reason in sec.unreliable():
            yield Finding("not_reliable", "info", sec.name, None, f"{sec.title.split(':')[0]} · {path}: not reliable",
                          "unknown", reason, 0.0)


RULES: tuple[tuple[str, Callable[[AuditResult], Iterator[Finding]]], ...] = (
    ("double_counting_cause", rule_dedup_causes),
    ("event_coverage_below_goal", rule_event_coverage),
    ("consent_violation", rule_consent),
    ("plaintext_pii", rule_plaintext),
    ("payload_rule", rule_payload),
    ("slow_sends", rule_latency),
    ("rejected_rows", rule_rejected_rows),
    ("not_measured", rule_not_measured),
    ("not_reliable", rule_unreliable),
)


def findings(result: AuditResult) -> list[Finding]:
    """Every finding of every rule, ranked. A rule that cannot read its figures yields nothing."""
    out: list[Finding] = []
    for _, rule in RULES:
        try:
            out += list(rule(result))
        except (TypeError, ValueError, KeyError, AttributeError):
            continue  # a section shaped differently than the rule expects: no finding, never a crash
    return sorted(out, key=Finding.sort_key)


# -- headline sentence (design §3.4) ---------------------------------------------------------------
def headline_sentences(result: AuditResult) -> list[str]:
    """One sentence per platform and conversion class: a `sentence` string a family provides
    (capi_effect, then recovery) wins; else the v1 recovery figures are phrased here."""
    out: list[str] = []
    for name in ("capi_effect", "recovery"):
        for plat, vals in _sec(result, name).items():
            for path, d in _dicts(vals, "sentence"):
                if isinstance(d["sentence"], str) and d["sentence"]:
                    out.append(f"{fmt.platform(plat)}{' · ' + ' · '.join(path) if path else ''}: {d['sentence']}")
        if out:
            return out
    from capi_audit.metrics import headline_sentence

    for plat, vals in _sec(result, "recovery").items():
        for path, d in _dicts(vals, "reported_change_per_day"):
            try:
                s = headline_sentence(d)
            except (KeyError, TypeError, ValueError):
                s = None
            if s:
                out.append(f"{fmt.platform(plat)}{' · ' + ' · '.join(path) if path else ''}: {s}")
    return out


def audit_window(result: AuditResult) -> list[tuple[str, str]]:
    """(label, text) rows: data span, enable times (local), time zone, conversion event, platforms."""
    from zoneinfo import ZoneInfo

    cfg = result.config
    rows = [("Data", f"{cfg.first_day} to {cfg.last_day}" if cfg.first_day else "no dated rows loaded"),
            ("Time zone", cfg.timezone), ("Conversion event", cfg.conversion_event),
            ("Platforms", ", ".join(fmt.platform(p) for p in cfg.platforms) or "none")]
    for plat in cfg.platforms:
        iso = cfg.enabled_at.get(plat)
        when = (dt.datetime.fromisoformat(iso).astimezone(ZoneInfo(cfg.timezone)).strftime("%Y-%m-%d %H:%M")
                + f" ({cfg.timezone})") if iso else "not configured ([capi_enabled_at])"
        window = cfg.windows.get(plat)
        rows.append((f"{fmt.platform(plat)} server events enabled", when))
        rows.append((f"{fmt.platform(plat)} dedup window", "unbounded" if window is None else f"{window:g} h"))
    return rows


def summary_block(result: AuditResult):  # -> notebook.Block
    """The index page's executive summary: audit window, headline sentences, ranked findings."""
    from capi_audit.notebook import Block

    e = html.escape
    win = audit_window(result)
    parts = ["<h2>Audit window</h2><table class=\"ca\"><tbody>"
             + "".join(f"<tr><th>{e(a)}</th><td>{e(b)}</td></tr>" for a, b in win) + "</tbody></table>"]
    text = ["Audit window:"] + [f"  {a}: {b}" for a, b in win]
    sentences = headline_sentences(result)
    parts.append("<h2>Headline</h2>")
    if sentences:
        parts.append("<ul class=\"headline\">" + "".join(f"<li>{e(s)}</li>" for s in sentences) + "</ul>")
        text += ["Headline:"] + [f"  {s}" for s in sentences]
    else:
        rec = result.summary.get("recovery", {})
        why = rec.get("reason") if isinstance(rec, dict) else None
        msg = ("The split of the change in reported conversions is not available"
               + (f": {why}." if why else ".") + " Provide orders, a platform report and [capi_enabled_at].")
        parts.append(f"<p>{e(msg)}</p>")
        text.append(msg)
    found = findings(result)
    parts.append("<h2>Findings, most costly first</h2>")
    if found:
        rows = "".join(
            f'<tr class="sev-{f.severity}"><td>{e(f.severity)}</td><td>{e(fmt.platform(f.platform) if f.platform else "all")}'
            f"</td><td>{e(f.figure)}</td><td>{e(f.cost)}</td><td>{e(f.action)}</td></tr>" for f in found)
        parts.append('<table class="ca findings"><thead><tr><th>Severity</th><th>Platform</th><th>Finding</th>'
                     f"<th>Cost</th><th>What to do</th></tr></thead><tbody>{rows}</tbody></table>")
        text += ["Findings:"] + [f"  [{f.severity}] {f.platform or 'all'}: {f.figure} — {f.cost} → {f.action}"
                                 for f in found]
    else:
        parts.append("<p>No rule found anything to fix.</p>")
        text.append("No findings.")
    return Block("".join(parts), "\n".join(text))
