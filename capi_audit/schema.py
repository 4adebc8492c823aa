"""The canonical tables of design §2: names, types, which columns are required, how to parse them."""

from __future__ import annotations

from dataclasses import dataclass

# Parse kinds: how a raw source value becomes the canonical value (see capi_audit.parsing).
TEXT, TIMESTAMP, DOUBLE, CONSENT, BOOL, DATE, PLATFORM, HASHED_KEY, ADDRESS_KEY = (
    "text", "timestamp", "double", "consent", "bool", "date", "platform", "hashed_key", "address_key",
)

# Customer keys that Meta requires to be SHA-256 hashed before sending.
# https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters
HASHED_KEYS = ("em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country")
# Keys sent unhashed by design (Meta) or identifiers (Google click id).
CLEAR_KEYS = ("client_ip_address", "client_user_agent", "fbc", "fbp", "gclid", "gbraid", "wbraid")
CUSTOMER_KEYS = HASHED_KEYS + ("external_id",) + CLEAR_KEYS
# Address keys: Meta wants them hashed, Google wants them in clear (city, region, postal code,
# country; hashing them breaks Google's matching):
# https://developers.google.com/data-manager/api/devguides/concepts/formatting,
# https://developers.google.com/google-ads/api/reference/rpc/latest/OfflineUserAddressInfo
ADDRESS_KEYS = ("ct", "st", "zp", "country")
# Platforms whose address keys are sent in clear (Google Ads uploads / Data Manager, GA4 MP).
CLEAR_ADDRESS_PLATFORMS = ("google", "ga4")
# Per platform: the customer keys that must be SHA-256 hashed before sending.
HASHED_KEYS_BY_PLATFORM: dict[str, tuple[str, ...]] = {
    "meta": HASHED_KEYS,
    "google": tuple(k for k in HASHED_KEYS if k not in ADDRESS_KEYS),
    "ga4": tuple(k for k in HASHED_KEYS if k not in ADDRESS_KEYS),
}
# Google upload surfaces (server_events.source_api); only Data Manager takes base64 digests.
SOURCE_APIS = ("google_ads_api", "data_manager", "file_upload", "measurement_protocol")


def hashed_keys(platform: str) -> tuple[str, ...]:
    """The keys a platform wants hashed (Meta's list for an unknown platform)."""
    return HASHED_KEYS_BY_PLATFORM.get(platform, HASHED_KEYS)


@dataclass(frozen=True)
class Column:
    """One canonical column."""

    name: str
    sql_type: str
    kind: str
    required: bool = False


@dataclass(frozen=True)
class Table:
    """One canonical table."""

    name: str
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column:
        """The column called name."""
        return next(c for c in self.columns if c.name == name)

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the required columns."""
        return tuple(c.name for c in self.columns if c.required)


def _c(name: str, sql_type: str, kind: str, required: bool = False) -> Column:
    return Column(name, sql_type, kind, required)


# Platforms (design v2 §2): `meta`, `google` (Google Ads conversion actions: tag, uploads, Data
# Manager) and `ga4` (GA4 purchases, its own platform).
_EVENT_COMMON = (
    _c("platform", "VARCHAR", PLATFORM, True),
    # Meta dataset (pixel) id, Google conversion action, GA4 measurement id: part of the dedup key.
    _c("destination", "VARCHAR", TEXT),
    _c("event_name", "VARCHAR", TEXT, True),
    _c("event_id", "VARCHAR", TEXT),
    _c("event_time", "TIMESTAMPTZ", TIMESTAMP, True),
    _c("order_id", "VARCHAR", TEXT),
    _c("value", "DOUBLE", DOUBLE),
    _c("currency", "VARCHAR", TEXT),
)

PIXEL_EVENTS = Table(
    "pixel_events",
    _EVENT_COMMON
    + (
        _c("fbp", "VARCHAR", TEXT),
        _c("fbc", "VARCHAR", TEXT),
        _c("gclid", "VARCHAR", TEXT),
        _c("gbraid", "VARCHAR", TEXT),
        _c("wbraid", "VARCHAR", TEXT),
        _c("external_id", "VARCHAR", TEXT),
        # Advanced-matching hashes the tag sent (`ud[em]`, `ud[ph]`).
        _c("em", "VARCHAR", HASHED_KEY),
        _c("ph", "VARCHAR", HASHED_KEY),
        _c("client_ip_address", "VARCHAR", TEXT),
        _c("client_user_agent", "VARCHAR", TEXT),
        _c("consent_ads", "VARCHAR", CONSENT),
        _c("consent_ad_user_data", "VARCHAR", CONSENT),
        # A Google Advanced Consent Mode ping sent in denied state without identifiers.
        _c("cookieless", "BOOLEAN", BOOL),
        _c("page_url", "VARCHAR", TEXT),
    ),
)

SERVER_EVENTS = Table(
    "server_events",
    _EVENT_COMMON
    + (
        _c("sent_at", "TIMESTAMPTZ", TIMESTAMP),
        # Which request (batch) carried the event: one invalid event rejects a whole Meta request.
        _c("request_id", "VARCHAR", TEXT),
        _c("action_source", "VARCHAR", TEXT),
        _c("event_source_url", "VARCHAR", TEXT),
    )
    + tuple(_c(k, "VARCHAR", ADDRESS_KEY if k in ADDRESS_KEYS else HASHED_KEY) for k in HASHED_KEYS)
    + (
        _c("external_id", "VARCHAR", TEXT),
        _c("client_ip_address", "VARCHAR", TEXT),
        _c("client_user_agent", "VARCHAR", TEXT),
        _c("fbc", "VARCHAR", TEXT),
        _c("fbp", "VARCHAR", TEXT),
        _c("gclid", "VARCHAR", TEXT),
        _c("gbraid", "VARCHAR", TEXT),
        _c("wbraid", "VARCHAR", TEXT),
        _c("consent_ads", "VARCHAR", CONSENT),
        _c("consent_ad_user_data", "VARCHAR", CONSENT),
        _c("data_processing_options", "VARCHAR", TEXT),
        # Set when sent as a test event: the platform does not count it.
        _c("test_event_code", "VARCHAR", TEXT),
        _c("status", "VARCHAR", TEXT),
        _c("error", "VARCHAR", TEXT),
        # Google upload surface (`google_ads_api`, `data_manager`, `file_upload`,
        # `measurement_protocol`): key rules differ (Data Manager also takes base64 digests).
        _c("source_api", "VARCHAR", TEXT),
    ),
)

# Enhanced conversions for web: adjustments that add hashed customer data to a conversion the
# tag already recorded, matched by order id within one conversion action. They add no
# conversion, so they live apart from server_events and no count ever includes them.
# https://developers.google.com/google-ads/api/docs/conversions/upload-online
ENHANCEMENTS = Table(
    "enhancements",
    (
        _c("platform", "VARCHAR", PLATFORM, True),
        _c("destination", "VARCHAR", TEXT),          # conversion action
        _c("order_id", "VARCHAR", TEXT, True),       # the tag conversion's transaction_id
        _c("adjusted_at", "TIMESTAMPTZ", TIMESTAMP, True),  # adjustment time (or sent time)
        _c("conversion_time", "TIMESTAMPTZ", TIMESTAMP),    # the original conversion's time, when sent
        _c("em", "VARCHAR", HASHED_KEY),
        _c("ph", "VARCHAR", HASHED_KEY),
        _c("fn", "VARCHAR", HASHED_KEY),
        _c("ln", "VARCHAR", HASHED_KEY),
        _c("ct", "VARCHAR", ADDRESS_KEY),
        _c("st", "VARCHAR", ADDRESS_KEY),
        _c("zp", "VARCHAR", ADDRESS_KEY),
        _c("country", "VARCHAR", ADDRESS_KEY),
        _c("gclid", "VARCHAR", TEXT),
        _c("consent_ad_user_data", "VARCHAR", CONSENT),
        _c("request_id", "VARCHAR", TEXT),
        _c("status", "VARCHAR", TEXT),
        _c("error", "VARCHAR", TEXT),
    ),
)

# Google's own counts of what it did with offline conversion uploads (Google Ads API
# offline_conversion_upload_*_summary): one row per summary total, daily summary, job summary or
# alert. Diagnostics, never conversions: compared with the logged uploads, not added to any count.
# https://developers.google.com/google-ads/api/reference/rpc/latest/OfflineConversionSummary
UPLOAD_SUMMARIES = Table(
    "upload_summaries",
    (
        _c("platform", "VARCHAR", PLATFORM, True),
        _c("level", "VARCHAR", TEXT, True),          # conversion_action | client
        _c("client", "VARCHAR", TEXT),               # GOOGLE_ADS_API, GOOGLE_ADS_WEB_CLIENT, ...
        _c("destination", "VARCHAR", TEXT),          # conversion action (name, else id)
        _c("destination_id", "VARCHAR", TEXT),       # conversion action id
        _c("status", "VARCHAR", TEXT),               # EXCELLENT, GOOD, NEEDS_ATTENTION, NO_RECENT_UPLOAD
        _c("dimension", "VARCHAR", TEXT, True),      # total | day | job | alert
        _c("upload_date", "DATE", DATE),             # day (account time zone)
        _c("job_id", "VARCHAR", TEXT),
        _c("successful", "DOUBLE", DOUBLE),
        _c("failed", "DOUBLE", DOUBLE),
        _c("pending", "DOUBLE", DOUBLE),
        _c("error", "VARCHAR", TEXT),                # alert: Google's error code
        _c("error_share", "DOUBLE", DOUBLE),         # alert: errorPercentage, in [0, 1]
    ),
)

PLATFORM_REPORT = Table(
    "platform_report",
    (
        _c("platform", "VARCHAR", PLATFORM, True),
        _c("destination", "VARCHAR", TEXT),
        _c("date", "DATE", DATE, True),
        _c("event_name", "VARCHAR", TEXT, True),
        _c("conversions", "DOUBLE", DOUBLE, True),
        _c("value", "DOUBLE", DOUBLE),
        _c("source", "VARCHAR", TEXT),
        # `conversion` (dated when the conversion happened) or `interaction` (click/impression day).
        _c("date_basis", "VARCHAR", TEXT),
    ),
)

ORDERS = Table(
    "orders",
    (
        _c("order_id", "VARCHAR", TEXT, True),
        _c("created_at", "TIMESTAMPTZ", TIMESTAMP, True),
        _c("value", "DOUBLE", DOUBLE),
        _c("currency", "VARCHAR", TEXT),
        # paid (default), pending, cancelled, refunded: only paid orders are real conversions.
        _c("status", "VARCHAR", TEXT),
        _c("consent_ads", "VARCHAR", CONSENT),
        _c("consent_ad_user_data", "VARCHAR", CONSENT),
        _c("country", "VARCHAR", TEXT),
        # Subdivision (US state), for consent rules.
        _c("region", "VARCHAR", TEXT),
        _c("is_test", "BOOLEAN", BOOL),
    ),
)

# The shop's own customer keys, normalized and hashed per platform at load (design v2 §2);
# the raw value is never stored. Filled from orders sources that map raw customer columns.
IDENTITIES = Table(
    "identities",
    (
        _c("order_id", "VARCHAR", TEXT, True),
        _c("platform", "VARCHAR", PLATFORM, True),
        _c("key", "VARCHAR", TEXT, True),
        _c("sha256", "VARCHAR", TEXT, True),
    ),
)

TABLES: dict[str, Table] = {
    t.name: t for t in (PIXEL_EVENTS, SERVER_EVENTS, PLATFORM_REPORT, ORDERS, IDENTITIES, ENHANCEMENTS,
                        UPLOAD_SUMMARIES)
}
# Tables a `[[sources]]` entry may name (identities is filled by the orders loaders).
SOURCE_TABLES = ("pixel_events", "server_events", "platform_report", "orders", "enhancements", "upload_summaries")

# Accounting tables (design §2 "Load accounting").
LOAD_REPORT_DDL = """
CREATE TABLE IF NOT EXISTS load_report (
    table_name VARCHAR, file VARCHAR, format VARCHAR,
    rows_read BIGINT, rows_loaded BIGINT, rows_rejected BIGINT,
    coerced VARCHAR, ignored_columns VARCHAR, skipped BIGINT, note VARCHAR
)"""
REJECTS_DDL = """
CREATE TABLE IF NOT EXISTS rejects (
    table_name VARCHAR, file VARCHAR, line BIGINT, column_name VARCHAR, reason VARCHAR
)"""


def create_table_sql(table: Table) -> str:
    """CREATE TABLE statement for a canonical table."""
    cols = ",\n    ".join(f"{c.name} {c.sql_type}" for c in table.columns)
    return f"CREATE TABLE IF NOT EXISTS {table.name} (\n    {cols}\n)"


def suggest_columns(table: str, source_column: str) -> list[str]:
    """Canonical columns of `table` an unused source column could be mapped to (by name: every
    word of the canonical name appears in the source name, or the names are close), best first."""
    import difflib
    import re

    if table not in TABLES:
        return []
    words = [w for w in re.split(r"[^a-z0-9]+", source_column.lower()) if w]
    flat = "_".join(words)
    names = [c.name for c in TABLES[table].columns]
    out = [n for n in names if n == flat]
    out += [n for n in names if n not in out and all(w in words for w in n.split("_"))]
    out += [n for n in difflib.get_close_matches(flat, names, n=2, cutoff=0.75) if n not in out]
    return out[:3]
