"""Normalize and SHA-256 hash customer data per platform rules, and check hashed values.

Meta: https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters
(domain/meta.md §2-3). Google: https://developers.google.com/data-manager/api/devguides/concepts/formatting
(domain/google.md §1.2: Gmail dots and +suffix removed for gmail.com / googlemail.com only; phone in E.164).
Used to hash raw PII at ingest (so it never lands in a table) and to explain mismatched hashes.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata

import phonenumbers

from capi_audit.validity import SENTINEL_HASHES

US_STATES = {
    "alabama": "al", "alaska": "ak", "arizona": "az", "arkansas": "ar", "california": "ca",
    "colorado": "co", "connecticut": "ct", "delaware": "de", "florida": "fl", "georgia": "ga",
    "hawaii": "hi", "idaho": "id", "illinois": "il", "indiana": "in", "iowa": "ia", "kansas": "ks",
    "kentucky": "ky", "louisiana": "la", "maine": "me", "maryland": "md", "massachusetts": "ma",
    "michigan": "mi", "minnesota": "mn", "mississippi": "ms", "missouri": "mo", "montana": "mt",
    "nebraska": "ne", "nevada": "nv", "newhampshire": "nh", "newjersey": "nj", "newmexico": "nm",
    "newyork": "ny", "northcarolina": "nc", "northdakota": "nd", "ohio": "oh", "oklahoma": "ok",
    "oregon": "or", "pennsylvania": "pa", "rhodeisland": "ri", "southcarolina": "sc",
    "southdakota": "sd", "tennessee": "tn", "texas": "tx", "utah": "ut", "vermont": "vt",
    "virginia": "va", "washington": "wa", "westvirginia": "wv", "wisconsin": "wi", "wyoming": "wy",
    "districtofcolumbia": "dc",
}
COUNTRY_NAMES = {
    "unitedstates": "us", "unitedstatesofamerica": "us", "usa": "us", "unitedkingdom": "gb",
    "greatbritain": "gb", "germany": "de", "deutschland": "de", "france": "fr", "spain": "es",
    "italy": "it", "netherlands": "nl", "austria": "at", "switzerland": "ch", "canada": "ca",
    "australia": "au", "brazil": "br", "mexico": "mx", "india": "in", "japan": "jp",
    "indonesia": "id", "poland": "pl", "sweden": "se", "belgium": "be", "ireland": "ie",
}
_HEX64 = re.compile(r"[0-9a-f]{64}")


def sha256_hex(text: str) -> str:
    """Lowercase hex SHA-256 of the UTF-8 bytes of text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _strip_punct(text: str) -> str:
    return "".join(ch for ch in text if not unicodedata.category(ch).startswith(("P", "S")))


def _nfc(text: str) -> str:
    # NFC before hashing: the NFD form of 'valéry' hashes differently (domain/meta.md §3.1).
    return unicodedata.normalize("NFC", text)


@functools.lru_cache(maxsize=4096)
def parse_phone(text: str, region: str | None) -> tuple[str, str] | None:
    """(E.164, national number) of a phone parsed with `phonenumbers` in `region` (upper-case ISO
    code or None), or None when it does not parse. Cached: hashing one value for both platforms
    and its mistake variants parses it once (parsing is the slow part of loading customer keys)."""
    try:
        num = phonenumbers.parse(text, region)
    except Exception:  # noqa: BLE001 - NumberParseException, or input phonenumbers cannot take: no number
        return None
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164), str(num.national_number)


def _phone_digits(raw: str, region: str | None) -> str:
    """Digits with country code and no leading zeros (Meta) from a phone in any notation."""
    text = raw.strip()
    digits = re.sub(r"\D", "", text)
    if text.startswith("+") or digits.startswith("00") or region is None:
        return digits.lstrip("0")
    parsed = parse_phone(text, region.upper())
    return digits.lstrip("0") if parsed is None else parsed[0].lstrip("+")


def _date_of_birth(raw: str) -> str:
    parts = [p for p in re.split(r"\D+", raw.strip()) if p]
    if len(parts) == 1 and len(parts[0]) == 8:
        return parts[0]
    if len(parts) != 3:
        return re.sub(r"\D", "", raw)
    a, b, c = parts
    if len(a) == 4:
        y, m, d = a, b, c
    elif int(a) > 12:
        d, m, y = a, b, c
    else:
        m, d, y = a, b, c
    return f"{int(y):04d}{int(m):02d}{int(d):02d}"


def normalize_meta(key: str, raw: str, *, region: str | None = None) -> str:
    """Meta's normalization of one customer-information value before hashing."""
    v = _nfc(raw.strip())
    if key == "em":
        return v.lower()
    if key == "ph":
        return _phone_digits(v, region)
    if key in ("fn", "ln"):
        return _strip_punct(v.lower()).strip()
    if key == "ct":
        return re.sub(r"\s+", "", _strip_punct(v.lower()))
    if key == "st":
        s = re.sub(r"\s+", "", _strip_punct(v.lower()))
        return US_STATES.get(s, s)
    if key == "zp":
        s = v.lower()
        m = re.fullmatch(r"(\d{5})(-?\d{4})?", s)
        return m.group(1) if m else re.sub(r"[\s-]", "", s)
    if key == "country":
        s = re.sub(r"\s+", "", _strip_punct(v.lower()))
        return COUNTRY_NAMES.get(s, s)
    if key == "db":
        return _date_of_birth(v)
    if key == "ge":
        s = v.lower()
        return {"female": "f", "male": "m", "gender.female": "f", "gender.male": "m"}.get(s, s[:1])
    if key == "external_id":
        return v.lower()
    raise ValueError(f"no Meta normalization for key {key!r}")


def normalize_google(key: str, raw: str, *, region: str | None = None) -> str:
    """Google's normalization (Data Manager / Customer Match rules) before hashing."""
    v = raw.strip()
    if key == "em":
        v = re.sub(r"\s+", "", v.lower())
        local, _, domain = v.partition("@")
        if domain in ("gmail.com", "googlemail.com"):
            local = local.split("+", 1)[0].replace(".", "")
        return f"{local}@{domain}" if domain else v
    if key == "ph":
        parsed = parse_phone(v, region.upper() if region else None)
        return "+" + re.sub(r"\D", "", v).lstrip("0") if parsed is None else parsed[0]
    if key in ("fn", "ln"):
        return v.lower()
    raise ValueError(f"no Google normalization for key {key!r}")


def hash_value(platform: str, key: str, raw: str, *, region: str | None = None) -> str:
    """Normalize raw per the platform's rules and return its SHA-256 hex digest."""
    norm = normalize_meta if platform == "meta" else normalize_google
    return sha256_hex(norm(key, raw, region=region))


def is_valid_hash(value: str) -> bool:
    """64 lowercase hex characters (an optional parameter-builder appendix allowed) and not the
    hash of an empty or junk string."""
    head = value.split(".", 1)[0]
    return bool(_HEX64.fullmatch(head)) and head not in SENTINEL_HASHES
