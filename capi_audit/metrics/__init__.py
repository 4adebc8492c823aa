"""Metric families (design §3); each takes the workspace and returns (tidy frame, Headline)."""

from capi_audit.metrics.capi_effect import capi_effect
from capi_audit.metrics.consent import consent
from capi_audit.metrics.dedup import dedup_daily, dedup_overlap
from capi_audit.metrics.double_counting import double_counting
from capi_audit.metrics.latency import latency
from capi_audit.metrics.match_keys import match_keys
from capi_audit.metrics.recovery import headline_sentence, headline_sentences, recovery
from capi_audit.metrics.validation import payload_validity

__all__ = ["capi_effect", "consent", "dedup_daily", "dedup_overlap", "double_counting", "headline_sentence", "headline_sentences",
           "latency", "match_keys", "payload_validity", "recovery"]
