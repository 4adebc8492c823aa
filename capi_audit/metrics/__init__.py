"""Metric families (design §3) and THE registry every consumer derives from.

Each family module exposes `compute(ws) -> FamilyResult` (its summary.json section and every frame
it owns). `FAMILIES` lists them in report order: `audit.compute`, the summary sections, the charts,
the notebooks and the report's pages all iterate it. A new family is one `Family(...)` entry here;
the report renders it with the generic section view (headline tables, frames, charts) without
further code.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from capi_audit.metrics import capi_effect as _capi_effect
from capi_audit.metrics import consent as _consent
from capi_audit.metrics import dedup as _dedup
from capi_audit.metrics import double_counting as _double_counting
from capi_audit.metrics import google as _google
from capi_audit.metrics import latency as _latency
from capi_audit.metrics import linkage as _linkage
from capi_audit.metrics import load as _load
from capi_audit.metrics import match_keys as _match_keys
from capi_audit.metrics import recovery as _recovery
from capi_audit.metrics import validation as _validation
from capi_audit.metrics.capi_effect import capi_effect
from capi_audit.metrics.common import FamilyResult
from capi_audit.metrics.consent import consent
from capi_audit.metrics.dedup import dedup_daily, dedup_overlap
from capi_audit.metrics.double_counting import double_counting
from capi_audit.metrics.latency import latency
from capi_audit.metrics.match_keys import match_keys
from capi_audit.metrics.recovery import headline_sentence, headline_sentences, recovery
from capi_audit.metrics.validation import payload_validity

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace


@dataclass(frozen=True)
class Chart:
    """One chart of a family: `charts.plot_<view>(frames[frame], ...)`.

    `per_platform`: drawn once per platform that has rows in the frame (platforms without data get
    no chart, not an empty one), limited to `platforms` when given. `options(result, platform)` returns extra keyword arguments taken
    from the result (conversion event, windows, age limits), so views never restate platform rules.
    """

    view: str
    frame: str
    caption: str
    per_platform: bool = True
    options: Callable[[Any, str | None], dict[str, Any]] | None = None
    platforms: tuple[str, ...] | None = None  # drawn only for these platforms (None: every platform)


@dataclass(frozen=True)
class Family:
    """A registry entry: name (= summary.json section), page title, compute, what inputs it needs."""

    name: str
    title: str
    compute: Callable[..., FamilyResult]
    needs: str
    intro: str = ""
    charts: tuple[Chart, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)  # human labels of this family's keys

    def run(self, ws: Workspace, **options: Any) -> FamilyResult:
        """Compute, passing only the options the family's compute accepts."""
        accepted = inspect.signature(self.compute).parameters
        return self.compute(ws, **{k: v for k, v in options.items() if k in accepted})


def _conv(result: Any, platform: str | None) -> dict[str, Any]:
    return {"event_name": result.config.conversion_event}


def _cls(result: Any, platform: str | None) -> dict[str, Any]:
    return {"conv_class": result.config.conversion_event}


def _latency_opts(result: Any, platform: str | None) -> dict[str, Any]:
    return {"age_limit_s": result.config.age_limit_s.get(platform or ""),
            "window_h": result.config.windows.get(platform or "")}


FAMILIES: tuple[Family, ...] = (
    Family("load", "Load report: what was read, loaded and rejected", _load.compute,
           needs="at least one [[sources]] entry in audit.toml",
           intro="Every input row is either loaded or rejected with file, line and reason "
                 "(rows read = loaded + rejected). Values of rejected rows are never shown. Source "
                 "columns the loader did not use are listed per file: map them with `columns` in "
                 "audit.toml if they hold a canonical field."),
    Family("linkage", "Order linkage: which events reach a known order", _linkage.compute,
           needs="orders and events that carry an order reference (order_id, or an event_id equal to an "
                 "order id; [audit] order_key)",
           intro="Per platform and channel: events, linked events, link rate and orders reached. Figures "
                 "that rest on a weakly linked channel are marked not reliable."),
    Family("dedup", "Deduplication: where browser and server pair, and where they leak", _dedup.compute,
           needs="pixel_events and server_events sources ([[sources]] table = \"pixel_events\" / "
                 "\"server_events\"); [capi_enabled_at] limits the overlap to events after enablement",
           intro="A platform counts a browser hit and a server event once when they share the dedup key "
                 "(Meta: event name and event ID within the window; Google: conversion action and "
                 "transaction ID). Pairs outside the window, name variants and events without ID are "
                 "counted twice or cannot pair.",
           charts=(Chart("dedup_daily", "dedup_daily",
                         "What the platform counts per day for the conversion event, by channel, with the "
                         "platform's own report as a line", options=_conv),)),
    Family("double_counting", "Double counting: orders counted more than once, by cause",
           _double_counting.compute,
           needs="pixel or server events that carry an order_id (map the order reference with "
                 "`columns = { order_id = ... }` in the source)",
           intro="Per order: how many times the platform counts it under its own dedup rules, and the "
                 "cause of every extra count.",
           charts=(Chart("dedup_leaks", "double_counting", "Extra counted conversions by cause"),)),
    Family("capi_effect", "The CAPI effect: what the server added that the pixel alone would not have counted",
           _capi_effect.compute,
           needs="pixel_events and server_events sources and [capi_enabled_at] for the platform",
           intro="Over the post days (enable day + burn-in to the last day every log covers, minus settle days): "
                 "L counts the units the platform counts from all logs, P the units it would count from the pixel "
                 "alone, under the same rules. What the server added, L − P, splits exactly into recovered orders "
                 "(by consent state and identifier tier), double counts (by cause) and unlinked units. Intervals: "
                 "sampling noise of a per-day mean only.",
           charts=(Chart("capi_daily", "capi_effect",
                         "Per post day: counted with the server (L) vs by the pixel alone (P); the gap shaded as "
                         "recovered and double counted", options=_cls),)),
    Family("recovery", "Recovered vs net-new: the change in the platform's report, decomposed exactly",
           _recovery.compute,
           needs="orders, a platform_report source and [capi_enabled_at] for the platform",
           intro="Whole weeks before and after enablement (burn-in and settle days left out): the change in "
                 "reported conversions per day = what the server added (in report units) + real orders moving "
                 "+ pixel capture changing + the report counting a different share, exactly. Intervals resample "
                 "whole weeks; they do not cover trends or anything else that changed with the rollout.",
           charts=(Chart("waterfall", "recovery_waterfall",
                         "The four terms of the reported change per day, with 95 % intervals", options=_cls),
                   Chart("bridge", "recovery",
                         "Report-to-log ratio ρ and pixel capture π per settled day, enable day marked",
                         options=_cls))),
    Family("match_keys", "Match keys: coverage, validity and plaintext leaks", _match_keys.compute,
           needs="server_events with customer keys (em, ph, fbp, fbc, gclid, …)",
           intro="Shares of server events whose keys are present and valid; plaintext personal data is "
                 "counted, never shown.",
           charts=(Chart("match_keys_heatmap", "match_keys_daily", "Valid share of each match key by day"),
                   Chart("identifier_tiers", "match_keys_tiers",
                         "Best identifier on each server event, per platform", per_platform=False))),
    Family("consent", "Consent: what denial removes, and sends that should not happen", _consent.compute,
           needs="orders with a consent column (ads consent at checkout: map it with "
                 "`columns = { consent_ads = ... }` in the orders source)",
           intro="Denied orders should reach neither channel unless a restriction applies (Meta LDU); "
                 "granted orders lost by the browser are what the server can legitimately recover.",
           charts=(Chart("consent_funnel", "consent",
                         "Orders after enablement: consent granted, then reached by each channel"),
                   Chart("consent_violations", "consent_by_country",
                         "Orders sent despite denied ads consent, by country"),
                   Chart("consent_by_type", "consent",
                         "Denied share by consent type (ad storage vs ad_user_data), kept apart",
                         platforms=("google", "ga4")))),
    Family("validation", "Payload validity: what the platform would reject or degrade", _validation.compute,
           needs="server_events",
           intro="Each server event checked against the platform's documented payload rules.",
           charts=(Chart("payload_rules", "validation", "Server events breaking each payload rule"),)),
    Family("latency", "Send latency: how late the server sends", _latency.compute,
           needs="server_events with a send time (map it with `columns = { sent_at = ... }`)",
           intro="Delay between the event and the server's send. Sends later than the dedup window count "
                 "twice on Meta; sends past the age limit are rejected.",
           charts=(Chart("latency", "latency_bins",
                         "Distribution of the server's send delay, with the dedup window and age limit",
                         options=_latency_opts),)),
    Family("google", "Google Ads: enhanced conversions, click ids, upload errors, primary actions", _google.compute,
           needs="Google Ads events (tag hits, uploads or Data Manager logs; `platform = \"google\"`); "
                 "enhanced conversions for web need an `enhancements` source",
           intro="Tag conversions enhanced within 24 h, enhancements without a tag conversion, click-id coverage "
                 "and click age against the click-through window, upload errors by reason, Google's upload "
                 "summaries against the logged uploads, primary conversion "
                 "actions counting one order more than once, and the best identifier on each upload.",
           charts=(Chart("google_enhancements", "google_enhancements",
                         "Tag conversions per day and how many were enhanced within 24 h or later",
                         platforms=("google",)),),
           labels={"error": "Google's reason code", "source_api": "Upload API", "status": "Status",
                   "enhanced_conversions": "Enhanced conversions for web", "click_ids": "Click ids",
                   "upload_errors": "Upload errors", "primary_action_overlap": "Orders counted by two primary actions",
                   "upload_diagnostics": "Google's upload summaries vs the logged uploads",
                   "google_successful": "Google: successful", "google_failed": "Google: failed",
                   "google_pending": "Google: pending", "logged": "Logged uploads",
                   "tag_conversions_without_order_id": "Tag conversions without transaction id",
                   "enhancements_without_tag_conversion": "Enhancements without a tag conversion"}),
)

REGISTRY: dict[str, Family] = {f.name: f for f in FAMILIES}


def _register_labels() -> None:
    from capi_audit.fmt import register_labels

    for fam in FAMILIES:
        register_labels(fam.labels)


_register_labels()


def family(name: str) -> Family:
    """The registry entry of a family (KeyError names the known families)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown family {name!r} (known: {', '.join(REGISTRY)})") from None


__all__ = ["FAMILIES", "REGISTRY", "Chart", "Family", "FamilyResult", "capi_effect", "consent", "dedup_daily", "dedup_overlap",
           "double_counting", "family", "headline_sentence", "headline_sentences", "latency", "match_keys", "payload_validity",
           "recovery"]
