"""The shop's own customer keys, hashed locally into `identities` (design v2 §2, §3.7).

An orders source may map raw customer columns (`columns = { email = "Email", phone = "Phone" }`;
also first_name, last_name, zip, city, state, country_code). While a file is loaded, each value is
normalized and SHA-256 hashed per platform with `capi_audit.hashing` (Meta:
https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters ;
Google: https://developers.google.com/data-manager/api/devguides/concepts/formatting), in memory,
through a Python function registered with DuckDB. Only hashes are stored; the raw value lives in
the loader's temporary staging table for the duration of one file and is never written, printed
or reported.

Besides the expected hash (key `em`, `ph`, ...), a few hashes of the common mistakes are kept so a
mismatch can be explained without the raw value (key `em~unnormalized`, `ph~no_country_code`,
`em~hashed_twice`, ...): the value hashed as it was typed (case, whitespace), a phone number
without its country code, and the expected hash hashed again.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from capi_audit import hashing

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace

# raw column -> canonical key
RAW_KEYS = {"email": "em", "phone": "ph", "first_name": "fn", "last_name": "ln", "zip": "zp",
            "city": "ct", "state": "st", "country_code": "country"}
# Google hashes only email, phone and names; address parts go in clear (domain/google.md §1.1).
PLATFORM_KEYS = {"meta": ("em", "ph", "fn", "ln", "zp", "ct", "st", "country"), "google": ("em", "ph", "fn", "ln")}
VARIANTS = ("unnormalized", "no_country_code", "no_country_code_0", "hashed_twice")
UDF = "capi_identity_hash"


def _hash(platform: str, key: str, variant: str, raw: str | None, region: str | None) -> str | None:
    """Hash of one raw value per platform rules (variant '' = the expected hash), or None."""
    if raw is None or not str(raw).strip():
        return None
    raw = str(raw)
    region = region.strip() if isinstance(region, str) and region.strip() else None
    try:
        expected = hashing.hash_value(platform, key, raw, region=region)
    except (ValueError, TypeError):
        return None
    if variant == "":
        return expected
    if variant == "hashed_twice":
        return hashing.sha256_hex(expected)
    if variant == "unnormalized":
        # typed as is, or trimmed only: what a sender that skips lower-casing / trimming hashes
        cand = raw if raw != raw.strip() else raw.strip()
        h = hashing.sha256_hex(cand)
        return None if h == expected else h
    if variant.startswith("no_country_code") and key == "ph":
        digits = re.sub(r"\D", "", raw)
        try:
            import phonenumbers

            num = phonenumbers.parse(raw, region.upper() if region else None)
            national = str(num.national_number)
        except Exception:  # noqa: BLE001 - any unparsable number simply has no variant
            return None
        if variant == "no_country_code_0":   # national notation with its trunk prefix, digits only
            cand = "0" + national
        else:
            cand = national if platform == "meta" else "+" + national
        h = hashing.sha256_hex(cand)
        return None if h == expected or not digits else h
    return None


def _register(ws: Workspace) -> None:
    if getattr(ws, "_identity_udf", False):
        return
    ws.function(UDF, _hash, ["VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR"], "VARCHAR")
    ws._identity_udf = True


def mapped(columns: dict[str, str]) -> dict[str, str]:
    """The raw customer columns a source maps (raw name -> source column)."""
    return {k: v for k, v in columns.items() if k in RAW_KEYS}


def ingest(ws: Workspace, staged_columns: list[str]) -> int:
    """Hash the raw customer columns of the loaded rows of `_parsed` / `_stage` into identities,
    (`_stage` is dropped by the caller right after). Returns the number of identity rows written."""
    raw_cols = [c for c in staged_columns if c in RAW_KEYS]
    if not raw_cols:
        return 0
    _register(ws)
    before = ws.count("identities")
    # a multi-file scan stages several files at once: rows are told apart by `_file` too
    same_file = " AND s._file = p._file" if "_file" in ws.df("SELECT * FROM _stage LIMIT 0").columns else ""
    for raw in raw_cols:
        key = RAW_KEYS[raw]
        for plat, keys in PLATFORM_KEYS.items():
            if key not in keys:
                continue
            for variant in ("", *VARIANTS):
                if variant.startswith("no_country_code") and key != "ph":
                    continue
                name = key if not variant else f"{key}~{variant.removesuffix('_0')}"
                ws.execute(f"""
                    INSERT INTO identities
                    SELECT DISTINCT order_id, platform, key, sha256 FROM (
                        SELECT p.order_id, CAST($plat AS VARCHAR) AS platform, CAST($name AS VARCHAR) AS key,
                            {UDF}($plat, $key, $variant, CAST(s."{raw}" AS VARCHAR), CAST(p.country AS VARCHAR)) AS sha256
                        FROM _parsed p JOIN _stage s ON s._rec = p._rec{same_file}
                        WHERE p._reason IS NULL AND p.order_id IS NOT NULL
                    ) WHERE sha256 IS NOT NULL
                """, {"plat": plat, "name": name, "key": key, "variant": variant})
    return ws.count("identities") - before
