"""SQL expressions that turn a raw source value into a canonical value.

Each builder takes a SQL expression for the raw value (a quoted identifier, never data) and the
DuckDB type of the source column, and returns a SQL expression. Values such as the time zone and
the default platform are named parameters (`$tz`, `$platform`) bound at execution time.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from capi_audit import schema

if TYPE_CHECKING:
    from collections.abc import Callable

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


# UTC offsets in use run from -12:00 to +14:00: an offset beyond ±14:59, with minutes over 59 or
# with seconds (`+99:99`, `+24:00`, `+05:30:45`) is not a time. DuckDB took `+99:99` as a shift of
# four days and cast `+05:30:45` as if it had no offset.
_OFF_OK = r"(Z|z|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)"
_OFFSET = r".*[0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?\s*" + _OFF_OK
_OFF_ANY = r"[0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?\s*[+-][0-9]"


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
    if src_type.startswith("DECIMAL"):
        return _epoch_decimal(f"CAST({x} AS DOUBLE)")
    if src_type not in _STRINGY:
        # BOOLEAN, TIME, BLOB, lists, structs...: no time can be read from them
        return "CAST(NULL AS TIMESTAMPTZ)"
    t = f"trim(CAST({x} AS VARCHAR))"
    # Fast path: ISO text with an explicit offset or Z casts directly (most machine logs).
    # Naive ISO text (most exports) casts directly in the configured zone.
    fast = (f"CASE WHEN regexp_full_match({x}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}[T ][0-9:.]+(Z|[+-](0[0-9]|1[0-4]):?[0-5][0-9])') "
            f"THEN try_cast({x} AS TIMESTAMPTZ) "
            f"WHEN regexp_full_match({x}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}[T ][0-9]{{2}}:[0-9]{{2}}(:[0-9]{{2}}(\\.[0-9]+)?)?') "
            f"THEN timezone($tz, try_cast({x} AS TIMESTAMP)) END")
    u = _iso_spelling(t)
    # A leap second (`23:59:60`, RFC 3339 §5.7) is read as the second after `23:59:59`.
    leap = f"regexp_matches({t}, '[0-9]:59:60([^0-9]|$)')"
    u = f"regexp_replace({u}, '([0-9]:59:)60([^0-9]|$)', '\\159\\2')"
    body = (
        f"CASE WHEN {x} IS NULL THEN NULL "
        f"WHEN regexp_full_match({t}, '-?[0-9]{{1,18}}') THEN {_epoch(t)} "
        f"WHEN regexp_full_match({t}, '-?[0-9]{{1,17}}\\.[0-9]+') THEN {_epoch_decimal(t)} "
        f"WHEN regexp_full_match({u}, '{_OFFSET}') THEN try_cast({u} AS TIMESTAMPTZ) "
        f"WHEN regexp_matches({u}, '{_OFF_ANY}') THEN CAST(NULL AS TIMESTAMPTZ) "
        f"WHEN regexp_full_match({u}, '{_NAIVE}\\s+{_ZONE_NAME}') THEN try_cast({u} AS TIMESTAMPTZ) "
        f"WHEN regexp_full_match({u}, '{_NAIVE}') THEN timezone($tz, try_cast({u} AS TIMESTAMP)) END"
    )
    return f"coalesce({fast}, {body} + CASE WHEN {leap} THEN INTERVAL 1 SECOND ELSE INTERVAL 0 SECOND END)"


# A naive ISO date-time. DuckDB's TIMESTAMP cast also takes text with any word after it
# (`… 12:00:00 Europe/Paris`, `… EST`, `… foo`) and drops the word, which would read a Paris time
# as a time in the configured zone: only this shape is read as naive.
_NAIVE = r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([T ][0-9]{1,2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?)?"
# An IANA zone name after the time (`Area/Location`, upper-cased by _iso_spelling), read by ICU.
# Abbreviations (EST, IST, CST) are ambiguous and `UTC+2` has two sign conventions: not a time.
_ZONE_NAME = r"[A-Z][A-Z0-9_+-]*(/[A-Z0-9_+-]+)+"


def _iso_spelling(t: str) -> str:
    """The text's ISO 8601 spelling: `t`/`z` in either case, a decimal comma, a ` UTC`/` GMT`
    suffix as `Z`, a space before the offset, and Java's `+02:00[Europe/Paris]` (the offset
    decides, the bracketed zone is dropped)."""
    u = f"upper({t})"
    u = f"regexp_replace({u}, '(:[0-9]{{2}}),([0-9])', '\\1.\\2')"
    u = f"regexp_replace({u}, '(Z|[+-][0-9]{{2}}(:?[0-9]{{2}})?)\\[[^]]*\\]$', '\\1')"
    u = f"regexp_replace({u}, '\\s+(UTC|GMT)$', 'Z')"
    return f"regexp_replace({u}, '\\s+([+-][0-9]{{2}}(:?[0-9]{{2}})?)$', '\\1')"


def date(x: str, src_type: str) -> str:
    """DATE from YYYY-MM-DD, YYYYMMDD or a naive timestamp's date."""
    if src_type == "DATE":
        return x
    if src_type.startswith("TIMESTAMP"):
        return f"CAST({x} AS DATE)"
    if src_type not in _STRINGY:
        return "CAST(NULL AS DATE)"
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
    # in clear, an email or phone there is still personal data misplaced: replaced by a marker
    return (f"CASE WHEN {platform_sql} IN ({clear}) THEN {pseudonym_sql(as_text(x, src_type), link=False)} "
            f"ELSE {hashed_key(x, src_type)} END")


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


# -- personal data in free text ------------------------------------------------------------
# An email: local@domain.tld (also URL-encoded `%40`; letters beyond ASCII as in `hans@müller.de`,
# a quoted local part, an address literal `@[192.0.2.1]`). A phone: a `+` and 7-15 digits with
# optional separators, or a North-American style number written with at least one separator
# (`(415) 555-0123`, `415-555-0123`, `1 415 5550123`), not glued to other digits. Bare digit runs
# are NOT phones here: they are order numbers, customer ids and error codes. The patterns hold
# non-ASCII characters literally, so the same text runs in Python's re and in DuckDB's RE2.
_HI = "\u00c0-\ud7ff"  # letters beyond ASCII (Latin-1 letters up to the end of the BMP's scripts)
EMAIL_RE = ('(?:"[^"@:,{}]{1,64}"|[A-Za-z0-9._%+' + _HI + '-]+)(@|%40)(\\[[0-9A-Fa-f.:]+\\]|[A-Za-z0-9' + _HI
            + '-]+(\\.[A-Za-z0-9' + _HI + '-]+)*\\.[A-Za-z' + _HI + ']{2,})')
# what a written North-American number puts between digit groups: space, no-break spaces, . -
# (not `/`: Meta's `code 100/2804050` is an error code and subcode)
_SEP = "[ .\u00a0\u202f-]"
_SPACE = "[ \u00a0\u202f]"
# Both phone forms are matched with the characters around them (groups 1 and 3; the phone is group
# 2): no letter or digit may touch a phone, so a `+` inside base64 text or a search
# (`?q=order+1234567890`) and a digit run inside a UUID (`…a965-8116648f…`) are not phones.
_PLUS_CORE = "(?:\\+|%2[Bb])[0-9][0-9 ()./\u00a0\u202f-]{5,18}[0-9]"
PLUS_PHONE_RE = f"(^|[^0-9A-Za-z])({_PLUS_CORE})($|[^0-9A-Za-z])"
# North-American: (415) 555-0123 / (415)555-0123, 415-555-0123 / 415.555.0123 / 415 555 0123 (two
# separators), or one space between 3 and 7 digits or 6 and 4 (`415 5550123`; with a dash that is
# an ERP number, `ORD-260301-1234`); an optional leading 1 / +1. No separator and digit may follow
# (`123-4567890-1234567` is an Amazon order number).
_NA_CORE = (f"(?:\\+?1{_SEP}?)?(?:\\([0-9]{{3}}\\){_SEP}?[0-9]{{3}}{_SEP}?[0-9]{{4}}"
            f"|[0-9]{{3}}{_SEP}[0-9]{{3}}{_SEP}[0-9]{{4}}|[0-9]{{3}}{_SPACE}[0-9]{{7}}|[0-9]{{6}}{_SPACE}[0-9]{{4}})")
NA_PHONE_RE = f"(^|[^0-9A-Za-z])({_NA_CORE})($|[^0-9A-Za-z .\u00a0\u202f-]|{_SEP}(?:$|[^0-9]))"
_EMAIL = re.compile(EMAIL_RE)
_PLUS_PHONE = re.compile(PLUS_PHONE_RE)
_NA_PHONE = re.compile(NA_PHONE_RE)
EMAIL_MARK = "<redacted:email>"
PHONE_MARK = "<redacted:phone>"


def looks_personal(text: str) -> bool:
    """True when text holds something shaped like an email address or a phone number."""
    return bool(_EMAIL.search(text) or _PLUS_PHONE.search(text) or _NA_PHONE.search(text))


def _sub_phones(text: str, mark: Callable[[str], str]) -> str:
    """text with each phone-shaped part replaced by mark(part)."""
    for pattern in (_PLUS_PHONE, _NA_PHONE):
        for _ in range(2):  # a match takes the character after it: a number right after needs a second pass
            text = pattern.sub(lambda m: m.group(1) + mark(m.group(2)) + m.group(3), text)
    return text


def scrub(text: str) -> str:
    """Text with every email- or phone-shaped part replaced by a marker (for messages, names)."""
    return _sub_phones(_EMAIL.sub(EMAIL_MARK, text), lambda _: PHONE_MARK)


# Extensions of input files, kept when a file name is redacted (`orders_jane@x.com.csv.gz`).
_FILE_EXT = re.compile(r"(\.(?:csv|tsv|txt|jsonl|ndjson|json|parquet|pq|log|har|gz|gzip|zst|bz2|xz|zip))+$", re.I)


def redact_path(text: str) -> str:
    """A path naming an input file (or a message holding one) with every email- or phone-shaped
    part replaced by `<redacted:email:1a2b3c>` / `<redacted:phone:…>`: the tag is the first 6 hex
    digits of the part's SHA-256, so two files stay apart; the folders, the rest of the name and
    the file's extensions are kept so the analyst can find the file. Every input-derived path that
    is printed or stored passes here (load output, load_report, rejects, summary, errors)."""
    import hashlib

    def tag(part: str) -> str:
        return hashlib.sha256(part.encode("utf-8", "surrogatepass")).hexdigest()[:6]

    def email(m: re.Match) -> str:
        part, keep = m.group(0), ""
        ext = _FILE_EXT.search(part)
        if ext and _EMAIL.fullmatch(part[: ext.start()]):
            part, keep = part[: ext.start()], ext.group(0)
        return f"<redacted:email:{tag(part)}>{keep}"

    return _sub_phones(_EMAIL.sub(email, str(text)), lambda part: f"<redacted:phone:{tag(part)}>")


def phones_sql(x: str, mark: str) -> str:
    """SQL: x with each phone-shaped part replaced by the literal mark."""
    step = x
    for pattern in (PLUS_PHONE_RE, NA_PHONE_RE):
        for _ in range(2):  # as in `_sub_phones`
            step = f"regexp_replace({step}, '{pattern}', '\\1{mark}\\3', 'g')"
    return step


def scrub_sql(x: str) -> str:
    """SQL: free text with email- and phone-shaped parts replaced by markers (the replacements
    run only on text with an `@`, a `+`, a `%` escape or a North-American phone, one of which
    every match has: most user agents and error texts skip them)."""
    maybe = (f"(strpos({x}, '@') > 0 OR strpos({x}, '+') > 0 OR strpos({x}, '%') > 0 "
             f"OR regexp_matches({x}, '{NA_PHONE_RE}'))")
    emails = f"regexp_replace({x}, '{EMAIL_RE}', '{EMAIL_MARK}', 'g')"
    return f"CASE WHEN {maybe} THEN {phones_sql(emails, PHONE_MARK)} ELSE {x} END"




def pseudonym_sql(x: str, *, link: bool = True, north_american: bool = True) -> str:
    """SQL: an id (order, event, request, job, click, browser, external or client id) with an
    email- or phone-shaped value replaced by `<plaintext:email:…>` / `<plaintext:phone:…>`, the
    first 16 hex digits of its SHA-256, so equal ids stay equal (linkage holds) and the value is
    never stored (link=False: the bare marker, for clear address keys). Cheap tests first for the
    email and `+` forms (most ids have no `@` and no `+`); the North-American form is one match."""
    email = f"((strpos({x}, '@') > 0 OR strpos({x}, '%40') > 0) AND regexp_matches({x}, '{EMAIL_RE}'))"
    phone = f"((strpos({x}, '+') > 0 OR strpos({x}, '%2') > 0) AND regexp_matches({x}, '{PLUS_PHONE_RE}'))"
    if north_american:  # off for account ids: a Google Ads customer id is written 123-456-7890
        phone = f"({phone} OR regexp_matches({x}, '{NA_PHONE_RE}'))"
    tag = f":' || left(sha256({x}), 16) || '" if link else ""
    return (f"CASE WHEN {email} THEN '{PLAINTEXT_PREFIX}email{tag}>' "
            f"WHEN {phone} THEN '{PLAINTEXT_PREFIX}phone{tag}>' ELSE {x} END")


def personal_sql(x: str, *, north_american: bool = True) -> str:
    """SQL: TRUE when the text holds an email- or phone-shaped part (north_american=False: not
    counting the North-American form, for account ids)."""
    na = f" OR regexp_matches({x}, '{NA_PHONE_RE}')" if north_american else ""
    return f"(regexp_matches({x}, '{EMAIL_RE}') OR regexp_matches({x}, '{PLUS_PHONE_RE}'){na})"


# URL query parameters whose value is an email or a phone, or whose name says it is one: the name's
# last token (split at _ . - [ ]) is `email`, `phone`, `em`, … (`user_phone`, `ud[em]`,
# `email_address`; not `utm_medium`, `phone_case` or `is_mobile`), and the value has five characters
# or more with a digit or an `@` in them (not `mobile=1` or `email_opt_in=true`).
_PII_PARAM = (r"(?:[^=&#]*[_.\[-])?(?:e?mail|e-mail|phone|tel|telephone|mobile|cell|msisdn|whatsapp|em|ph)"
              r"(?:_address|_number|\])?")
_PII_VALUE = r"(?:[^&#]{4,}[0-9@][^&#]*|[^&#]*[0-9@][^&#]{4,})"
URL_VALUE_RE = (r"([?&;][^=&#]*=)((?:[^&#]*(?:@|%40)[^&#]*)|(?:(?:\+|%2[Bb])[0-9][0-9 ().%+-]{5,24}[0-9]))(&|#|$)")


def redact_url_sql(x: str) -> str:
    """SQL: a URL with query values that are emails or phones (or named email/phone) replaced, then
    every email- or phone-shaped part left anywhere else (path, fragment: `/u/jane@x.com/`,
    `#email=…`, `?contact=tel:415-555-0123`) replaced by a marker."""
    named = rf"([?&;#]{_PII_PARAM}=){_PII_VALUE}"
    step = f"regexp_replace({x}, '(?i){named}', '\\1<redacted>', 'g')"
    # a value is consumed with its trailing separator, so run twice for adjacent parameters
    for _ in range(2):
        step = f"regexp_replace({step}, '{URL_VALUE_RE}', '\\1<redacted>\\3', 'g')"
    emails = f"regexp_replace({step}, '{EMAIL_RE}', '{EMAIL_MARK}', 'g')"
    # the replacements run only on a URL holding an `@` or a phone-shaped part: a match is cheaper
    # than a replacement (measured side by side on a busy machine, a million URLs without one on
    # one thread: 9.7 s with the replacements on every URL, 5.9 s so; on a quiet one the whole
    # redaction went from 1.3 s, when only the query was read, to 2.0 s)
    left = (f"(strpos({step}, '@') > 0 OR strpos({step}, '%40') > 0 OR regexp_matches({step}, '{PLUS_PHONE_RE}') "
            f"OR regexp_matches({step}, '{NA_PHONE_RE}'))")
    return f"CASE WHEN {left} THEN {phones_sql(emails, PHONE_MARK)} ELSE {step} END"
