"""SQL predicates for whether a sent customer key is present, valid, or plaintext.

Rules and their sources:
- hashed keys: 64 lowercase hex (optionally Meta's parameter-builder appendix), never the hash of
  an empty or junk string (domain/meta.md §2.2, §3.3;
  https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters);
  a list is valid only if every value is (design §2);
- fbp / fbc: `fb.{subdomain}.{creation ms, 13 digits}.{random | fbclid}` and fbc creation not
  after the event (domain/meta.md §5.1, §5.4;
  https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/fbp-and-fbc);
- IP: a public IPv4 / IPv6 address (Meta wants the real client address);
- user agent: non-empty and not an HTTP library's.
"""

from __future__ import annotations

from capi_audit import schema
from capi_audit.parsing import PLAINTEXT_PREFIX

# SHA-256 of '', 'null', 'undefined', 'None', '[object Object]', 'test' (domain/meta.md §3.3).
SENTINEL_HASHES = (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "74234e98afe7498fb5daf1f36ac2d78acc339464f950703b8c019892f982b90b",
    "eb045d78d273107348b0300c01d29b7552d622abbc6faf81b3ec55359aa9950c",
    "dc937b59892604f5a86ac96936cd7ff09e25f18ae6b758e8014a24c7fa039e91",
    "b28c94b2195c8ed259f0b415aaee3f39b0b2920a4537611499fa044956917a21",
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
)
HASH_RE = r"[0-9a-f]{64}(\.([A-Za-z0-9_-]{8}|AQ|Ag|Aw|BA|BQ|Bg))?"
FBP_RE = r"fb\.[0-9]+\.[0-9]{13}\.[0-9]+(\.([A-Za-z0-9_-]{8}|AQ|Ag|Aw|BA|BQ|Bg))?"
FBC_RE = r"fb\.[0-9]+\.[0-9]{13}\.[A-Za-z0-9_-]+(\.([A-Za-z0-9_-]{8}|AQ|Ag|Aw|BA|BQ|Bg))?"
GCLID_RE = r"[A-Za-z0-9_-]{10,}"
LIBRARY_UA_RE = (r"(?i)^(python-requests|python-urllib|python/|aiohttp|httpx|curl|wget|go-http-client|java/|"
                 r"okhttp|axios|node-fetch|undici|got |guzzlehttp|apache-httpclient|libwww-perl|ruby|php/|"
                 r"postmanruntime|insomnia|restsharp|dart:io|facebook-php-sdk|fbbizsdk)")
FBC_SKEW_MS = 5 * 60 * 1000
MATCH_KEYS = schema.HASHED_KEYS + ("external_id", "client_ip_address", "client_user_agent",
                                   "fbc", "fbp", "gclid")
_SENTINELS = "(" + ", ".join(f"'{h}'" for h in SENTINEL_HASHES) + ")"


def present(col: str) -> str:
    """SQL: the key carries a value."""
    return f"({col} IS NOT NULL AND {col} <> '' AND {col} <> '[]')"


def plaintext(col: str) -> str:
    """SQL: a plaintext value was found where a hash was due (replaced by a marker at ingest)."""
    return f"({col} LIKE '%{PLAINTEXT_PREFIX}%')"


def _hash_ok(e: str) -> str:
    return f"(full_match({e}, '{HASH_RE}') AND split_part({e}, '.', 1) NOT IN {_SENTINELS})"


def hashed_valid(col: str) -> str:
    """SQL: every value of a hashed key is a proper, non-sentinel SHA-256 hex digest."""
    return (
        f"(CASE WHEN NOT {present(col)} THEN FALSE "
        f"WHEN starts_with({col}, '[') THEN json_list_all({col}, lambda e: {_hash_ok('e')}) "
        f"ELSE {_hash_ok(col)} END)"
    )


def _ipv4_public(col: str) -> str:
    o = [f"try_cast(split_part({col}, '.', {i}) AS INTEGER)" for i in range(1, 5)]
    return (
        f"(full_match({col}, '[0-9]{{1,3}}(\\.[0-9]{{1,3}}){{3}}') "
        f"AND {o[0]} BETWEEN 1 AND 223 AND {o[1]} <= 255 AND {o[2]} <= 255 AND {o[3]} <= 255 "
        f"AND {o[0]} NOT IN (10, 127) "
        f"AND NOT ({o[0]} = 100 AND {o[1]} BETWEEN 64 AND 127) "
        f"AND NOT ({o[0]} = 169 AND {o[1]} = 254) "
        f"AND NOT ({o[0]} = 172 AND {o[1]} BETWEEN 16 AND 31) "
        f"AND NOT ({o[0]} = 192 AND {o[1]} = 168) "
        f"AND NOT ({o[0]} = 192 AND {o[1]} = 0 AND {o[2]} IN (0, 2)) "
        f"AND NOT ({o[0]} = 198 AND {o[1]} IN (18, 19)) "
        f"AND NOT ({o[0]} = 198 AND {o[1]} = 51 AND {o[2]} = 100) "
        f"AND NOT ({o[0]} = 203 AND {o[1]} = 0 AND {o[2]} = 113))"
    )


def _ipv6_public(col: str) -> str:
    low = f"lower({col})"
    return (
        f"(full_match({low}, '[0-9a-f:]{{2,39}}') AND {low} LIKE '%:%' "
        f"AND length({low}) - length(replace({low}, ':', '')) BETWEEN 2 AND 7 "
        f"AND full_match({low}, '([0-9a-f]{{1,4}}|:)(:{{1,2}}[0-9a-f]{{0,4}})*') "
        f"AND NOT regex_find({low}, '^(fc|fd|fe[89ab]|ff)') "
        f"AND NOT starts_with({low}, '2001:db8:') AND {low} NOT IN ('::', '::1'))"
    )


def ip_valid(col: str) -> str:
    """SQL: a public IPv4 or IPv6 address (private, loopback, documentation ranges are not)."""
    return f"(CASE WHEN NOT {present(col)} THEN FALSE ELSE ({_ipv4_public(col)} OR {_ipv6_public(col)}) END)"


def ua_valid(col: str) -> str:
    """SQL: a user agent that is not an HTTP library's."""
    return f"({present(col)} AND NOT regex_find({col}, '{LIBRARY_UA_RE}'))"


def fbp_valid(col: str) -> str:
    """SQL: fbp in Meta's documented format."""
    return f"({present(col)} AND full_match({col}, '{FBP_RE}'))"


def fbc_creation_ms(col: str) -> str:
    """SQL: the creation time (ms) in an fbc value."""
    return f"try_cast(split_part({col}, '.', 3) AS BIGINT)"


def fbc_valid(col: str, event_time: str = "event_time") -> str:
    """SQL: fbc in Meta's documented format, created no later than the event (5 min skew)."""
    return (f"({present(col)} AND full_match({col}, '{FBC_RE}') AND "
            f"{fbc_creation_ms(col)} <= epoch_ms_of({event_time}) + {FBC_SKEW_MS})")


def gclid_valid(col: str) -> str:
    """SQL: a plausible Google click id (opaque, URL-safe base64 characters)."""
    return f"({present(col)} AND full_match({col}, '{GCLID_RE}'))"


def external_id_valid(col: str) -> str:
    """SQL: external_id present and not a hash of an empty or junk value."""
    return f"({present(col)} AND lower(split_part({col}, '.', 1)) NOT IN {_SENTINELS})"


def valid(key: str) -> str:
    """SQL: the validity predicate for a key column of server_events."""
    if key in schema.HASHED_KEYS:
        return hashed_valid(key)
    return {
        "external_id": external_id_valid, "client_ip_address": ip_valid, "client_user_agent": ua_valid,
        "fbp": fbp_valid, "fbc": fbc_valid, "gclid": gclid_valid,
    }[key](key)
