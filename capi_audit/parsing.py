"""SQL expressions that turn a raw source value into a canonical value.

Each builder takes a SQL expression for the raw value (a quoted identifier, never data) and the
DuckDB type of the source column, and returns a SQL expression. Values such as the time zone and
the default platform are named parameters (`$tz`, `$platform`) bound at execution time.
"""

from __future__ import annotations

from capi_audit import schema

# Spellings that mean "no value" for typed columns; they are nulls, not coercions.
NULLISH = ("", "null", "none", "nan", "n/a", "na", "-", "--", "unknown", "unset",
           "unspecified", "not set", "(not set)", "undefined")

# Consent spellings (design §2). Google Consent Mode `gcs` = G1<ad_storage><analytics_storage>,
# https://support.google.com/tagmanager/answer/13802165 (domain/google.md §4.4); the Ads/Data
# Manager enums GRANTED / DENIED / CONSENT_GRANTED / CONSENT_DENIED; GA4 export Yes / No.
CONSENT_GRANTED = ("granted", "true", "1", "yes", "y", "t", "consent_granted", "allow",
                   "allowed", "opt_in", "opt-in", "accepted")
CONSENT_DENIED = ("denied", "false", "0", "no", "n", "f", "consent_denied", "deny",
                  "opt_out", "opt-out", "refused", "rejected")
BOOL_TRUE = ("true", "1", "yes", "y", "t")
BOOL_FALSE = ("false", "0", "no", "n", "f")

# What a hashed value may look like: SHA-256 hex (with Meta's parameter-builder appendix,
# domain/meta.md §5.3), MD5 hex, or a base64 SHA-256 digest (Google Data Manager, google.md §1.3).
HASH_SHAPED = r"[0-9A-Fa-f]{64}(\.[A-Za-z0-9_-]{2,8})?|[0-9A-Fa-f]{32}|[A-Za-z0-9+/]{43}="
PLAINTEXT_PREFIX = "<plaintext:"

_STRINGY = ("VARCHAR", "JSON")
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE")


def _sql_list(values: tuple[str, ...]) -> str:
    # Constant spellings from this module, not user data.
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def _is_list(src_type: str) -> bool:
    return src_type.endswith("[]") or src_type.startswith(("STRUCT", "MAP"))


def as_text(x: str, src_type: str) -> str:
    """Source value as trimmed VARCHAR; lists and structs become JSON text."""
    if _is_list(src_type):
        return f"CAST(to_json({x}) AS VARCHAR)"
    if src_type in _STRINGY:
        return f"NULLIF(trim({x}), '')"
    return f"CAST({x} AS VARCHAR)"


def given(x: str, src_type: str) -> str:
    """True when the source holds a real value (not null, empty or a null-ish spelling)."""
    if src_type in _STRINGY:
        return f"({x} IS NOT NULL AND lower(trim({x})) NOT IN {_sql_list(NULLISH)})"
    return f"({x} IS NOT NULL)"


def _epoch(t: str) -> str:
    # Unix epoch in s, ms or µs, told apart by magnitude (design §2): below 1e11 seconds
    # (until year 5138), below 1e14 milliseconds, else microseconds.
    i = f"try_cast({t} AS BIGINT)"
    return (
        f"CASE WHEN abs({i}) < 100000000000 THEN make_timestamptz({i} * 1000000) "
        f"WHEN abs({i}) < 100000000000000 THEN make_timestamptz({i} * 1000) "
        f"WHEN abs({i}) < 100000000000000000 THEN make_timestamptz({i}) END"
    )


def _epoch_decimal(t: str) -> str:
    d = f"try_cast({t} AS DOUBLE)"
    return (
        f"CASE WHEN abs({d}) < 1e11 THEN make_timestamptz(CAST(round({d} * 1e6) AS BIGINT)) "
        f"WHEN abs({d}) < 1e14 THEN make_timestamptz(CAST(round({d} * 1e3) AS BIGINT)) "
        f"WHEN abs({d}) < 1e17 THEN make_timestamptz(CAST(round({d}) AS BIGINT)) END"
    )


_OFFSET = r".*[0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?\s*(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)"


def timestamp(x: str, src_type: str) -> str:
    """TIMESTAMPTZ from ISO 8601 with offset or Z, naive ISO (in $tz), or Unix epoch s/ms/µs."""
    if src_type == "TIMESTAMP WITH TIME ZONE":
        return x
    if src_type.startswith("TIMESTAMP") or src_type == "DATE":
        return f"timezone($tz, CAST({x} AS TIMESTAMP))"
    if src_type in _NUMERIC:
        if src_type in ("FLOAT", "DOUBLE"):
            return _epoch_decimal(x)
        return _epoch(x)
    t = f"trim(CAST({x} AS VARCHAR))"
    iso = f"regexp_replace(regexp_replace({t}, '\\s+(UTC|GMT)$', 'Z'), '\\s+([+-][0-9]{{2}}(:?[0-9]{{2}})?)$', '\\1')"
    # Fast path: ISO text with an explicit offset or Z casts directly (most machine logs).
    fast = f"CASE WHEN regexp_full_match({x}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}[T ][0-9:.]+(Z|[+-][0-9]{{2}}:?[0-9]{{2}})') THEN try_cast({x} AS TIMESTAMPTZ) END"
    return (
        f"coalesce({fast}, CASE WHEN {x} IS NULL THEN NULL "
        f"WHEN regexp_full_match({t}, '-?[0-9]{{1,18}}') THEN {_epoch(t)} "
        f"WHEN regexp_full_match({t}, '-?[0-9]{{1,17}}\\.[0-9]+') THEN {_epoch_decimal(t)} "
        f"WHEN regexp_full_match({iso}, '{_OFFSET}') THEN try_cast({iso} AS TIMESTAMPTZ) "
        f"ELSE timezone($tz, try_cast({t} AS TIMESTAMP)) END)"
    )


def date(x: str, src_type: str) -> str:
    """DATE from YYYY-MM-DD, YYYYMMDD or a naive timestamp's date."""
    if src_type == "DATE":
        return x
    if src_type.startswith("TIMESTAMP"):
        return f"CAST({x} AS DATE)"
    t = f"trim(CAST({x} AS VARCHAR))"
    return (
        f"CASE WHEN regexp_full_match({t}, '[0-9]{{8}}') THEN CAST(try_strptime({t}, '%Y%m%d') AS DATE) "
        f"ELSE CAST(try_cast({t} AS TIMESTAMP) AS DATE) END"
    )


def double(x: str, src_type: str) -> str:
    """DOUBLE from a number or numeric text."""
    if src_type in _NUMERIC:
        return f"CAST({x} AS DOUBLE)"
    return f"try_cast(trim(CAST({x} AS VARCHAR)) AS DOUBLE)"


def consent(x: str, src_type: str) -> str:
    """'granted' / 'denied' / NULL from booleans, yes/no, enums and Consent Mode gcs strings."""
    if src_type == "BOOLEAN":
        return f"CASE WHEN {x} THEN 'granted' WHEN NOT {x} THEN 'denied' END"
    v = f"lower(trim(CAST({x} AS VARCHAR)))"
    return (
        f"CASE WHEN {v} IN {_sql_list(CONSENT_GRANTED)} THEN 'granted' "
        f"WHEN {v} IN {_sql_list(CONSENT_DENIED)} THEN 'denied' "
        f"WHEN regexp_full_match({v}, 'g11[01-]') THEN 'granted' "
        f"WHEN regexp_full_match({v}, 'g10[01-]') THEN 'denied' END"
    )


def boolean(x: str, src_type: str) -> str:
    """BOOLEAN from true/false, 1/0, yes/no."""
    if src_type == "BOOLEAN":
        return x
    if src_type in _NUMERIC:
        return f"({x} <> 0)"
    v = f"lower(trim(CAST({x} AS VARCHAR)))"
    return f"CASE WHEN {v} IN {_sql_list(BOOL_TRUE)} THEN TRUE WHEN {v} IN {_sql_list(BOOL_FALSE)} THEN FALSE END"


def platform(x: str, src_type: str) -> str:
    """'meta' / 'google' / 'ga4' from the column, or the configured default ($platform) when absent.

    GA4 is its own platform (design v2 §2): it deduplicates purchases on its own, apart from
    Google Ads conversion actions."""
    v = f"lower(trim(CAST({x} AS VARCHAR)))"
    return (
        f"CASE WHEN {x} IS NULL OR {v} = '' THEN $platform "
        f"WHEN {v} IN ('meta', 'facebook', 'fb') THEN 'meta' "
        f"WHEN {v} IN ('google', 'google_ads', 'adwords') THEN 'google' "
        f"WHEN {v} IN ('ga4', 'google_analytics', 'analytics') THEN 'ga4' END"
    )


def _redact_element(e: str) -> str:
    # A value that is not hash-shaped in a hash-required key is plaintext PII: it is replaced
    # by a marker naming its kind, so no raw value ever lands in a table.
    return (
        f"CASE WHEN regexp_full_match({e}, '{HASH_SHAPED}') THEN {e} "
        f"WHEN {e} LIKE '%@%' THEN '{PLAINTEXT_PREFIX}email>' "
        f"WHEN regexp_full_match({e}, '[+0-9 ().-]{{7,}}') THEN '{PLAINTEXT_PREFIX}phone>' "
        f"ELSE '{PLAINTEXT_PREFIX}text>' END"
    )


def hashed_key(x: str, src_type: str) -> str:
    """A hash-required customer key as sent, with any plaintext value replaced by a marker.

    A list (JSON array text, or a list column) stays a JSON array of its elements.
    """
    t = as_text(x, src_type)
    # Fast path: a clean hash-shaped value is kept as it is.
    if src_type in _STRINGY:
        return (
            f"CASE WHEN regexp_full_match({x}, '{HASH_SHAPED}') THEN {x} WHEN {t} IS NULL THEN NULL "
            f"WHEN starts_with({t}, '[') AND json_valid({t}) THEN CAST(to_json(list_transform("
            f"CAST(json_extract_string({t}, '$[*]') AS VARCHAR[]), lambda e: {_redact_element('e')})) AS VARCHAR) "
            f"ELSE {_redact_element(t)} END"
        )
    return (
        f"CASE WHEN {t} IS NULL THEN NULL "
        f"WHEN starts_with({t}, '[') AND json_valid({t}) THEN CAST(to_json(list_transform("
        f"CAST(json_extract_string({t}, '$[*]') AS VARCHAR[]), lambda e: {_redact_element('e')})) AS VARCHAR) "
        f"ELSE {_redact_element(t)} END"
    )


def address_key(x: str, src_type: str, platform_sql: str = "$platform") -> str:
    """An address key (city, region, postal code, country): in clear for Google and GA4, which
    want these unhashed (https://developers.google.com/data-manager/api/devguides/concepts/formatting),
    hash-required (plaintext replaced by a marker) for every other platform (Meta)."""
    clear = ", ".join(f"'{p}'" for p in schema.CLEAR_ADDRESS_PLATFORMS)
    return f"CASE WHEN {platform_sql} IN ({clear}) THEN {as_text(x, src_type)} ELSE {hashed_key(x, src_type)} END"


def text(x: str, src_type: str) -> str:
    """VARCHAR as given (trimmed; empty means null)."""
    return as_text(x, src_type)


BUILDERS = {
    schema.TEXT: text,
    schema.TIMESTAMP: timestamp,
    schema.DOUBLE: double,
    schema.CONSENT: consent,
    schema.BOOL: boolean,
    schema.DATE: date,
    schema.PLATFORM: platform,
    schema.HASHED_KEY: hashed_key,
    schema.ADDRESS_KEY: address_key,
}


def parse_expr(kind: str, x: str, src_type: str) -> str:
    """SQL expression parsing raw expression x of DuckDB type src_type into canonical kind."""
    return BUILDERS[kind](x, src_type)


def quote_ident(name: str) -> str:
    """Quote a column name as a SQL identifier."""
    return '"' + name.replace('"', '""') + '"'
