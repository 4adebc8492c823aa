"""Timestamp, consent, boolean and key parsing on tiny inputs with exact expected values."""

from __future__ import annotations

import datetime as dt

import pytest

from capi_audit import Workspace, parsing
from capi_audit.config import AuditConfig

UTC = dt.UTC


def ts(raw: str | None, tz: str = "UTC") -> dt.datetime | None:
    ws = Workspace(config=AuditConfig(timezone=tz))
    expr = parsing.timestamp("x", "VARCHAR")
    value = ws.scalar(f"SELECT {expr} FROM (SELECT CAST($v AS VARCHAR) AS x)", {"v": raw, "tz": tz})
    return None if value is None else value.astimezone(UTC)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("2026-03-01T10:00:00Z", dt.datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01T10:00:00+01:00", dt.datetime(2026, 3, 1, 9, tzinfo=UTC)),
        ("2026-03-01 10:00:00 -0400", dt.datetime(2026, 3, 1, 14, tzinfo=UTC)),
        ("2026-03-01 10:00:00 -04:00", dt.datetime(2026, 3, 1, 14, tzinfo=UTC)),
        ("2026-03-01 10:00:00+00", dt.datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01 10:00:00 UTC", dt.datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01T10:00:00.250Z", dt.datetime(2026, 3, 1, 10, 0, 0, 250000, tzinfo=UTC)),
        ("1772359200", dt.datetime(2026, 3, 1, 10, tzinfo=UTC)),  # epoch seconds
        ("1772359200123", dt.datetime(2026, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)),  # ms
        ("1772359200123456", dt.datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)),  # µs
        ("1772359200.5", dt.datetime(2026, 3, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2026-03-01 10:00:00", dt.datetime(2026, 3, 1, 10, tzinfo=UTC)),  # naive in UTC
        ("garbage", None),
        ("", None),
        (None, None),
    ],
)
def test_timestamp_forms_utc(raw, expected):
    assert ts(raw) == expected


def test_naive_uses_configured_zone():
    assert ts("2026-03-01 10:00:00", "Europe/Berlin") == dt.datetime(2026, 3, 1, 9, tzinfo=UTC)
    assert ts("2026-07-01 10:00:00", "Europe/Berlin") == dt.datetime(2026, 7, 1, 8, tzinfo=UTC)
    # an offset in the value wins over the configured zone
    assert ts("2026-03-01T10:00:00Z", "Europe/Berlin") == dt.datetime(2026, 3, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw, expected",
    [
        # lowercase designators, a decimal comma, a lowercase suffix (RFC 3339 §5.6 allows t/z)
        ("2026-03-01t10:00:00z", dt.datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01 10:00:00,5Z", dt.datetime(2026, 3, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2026-03-01 10:00:00 utc", dt.datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01 10:00:00 GMT", dt.datetime(2026, 3, 1, 10, tzinfo=UTC)),
        # a leap second is the second after 23:59:59 (offsets shift the hour)
        ("2016-12-31T23:59:60Z", dt.datetime(2017, 1, 1, tzinfo=UTC)),
        ("2017-01-01T00:59:60.5+01:00", dt.datetime(2017, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
        ("2026-03-01 10:00:60Z", None),  # not a leap second: minute 00
        # an IANA zone name after the time is read in that zone, not in the configured one
        ("2026-03-01 10:00:00 Europe/Paris", dt.datetime(2026, 3, 1, 9, tzinfo=UTC)),
        ("2026-03-01 10:00:00 Etc/GMT+2", dt.datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("2026-03-01 10:00:00 Nowhere/Atlantis", None),
        # Java's ZonedDateTime: the offset decides
        ("2026-03-01T10:00+01:00[Europe/Paris]", dt.datetime(2026, 3, 1, 9, tzinfo=UTC)),
        # abbreviations are ambiguous (IST, CST) and UTC+2 has two sign conventions; a word
        # after the time was dropped by DuckDB's cast and the time read in the configured zone
        ("2026-03-01 10:00:00 EST", None),
        ("2026-03-01 10:00:00 UTC+2", None),
        ("2026-03-01 10:00:00 foo", None),
        ("2026-03-01T10:00:00[Europe/Paris]", None),
    ],
)
def test_timestamp_spellings_in_new_york(raw, expected):
    # the configured zone is New York, so a suffix that was dropped shows as a 4-5 hour error
    assert ts(raw, "America/New_York") == expected


def test_dst_boundaries_in_berlin():
    tz = "Europe/Berlin"
    # spring forward 2026-03-29 02:00 -> 03:00 local: 01:59 is CET, 03:00 is CEST
    assert ts("2026-03-29 01:59:00", tz) == dt.datetime(2026, 3, 29, 0, 59, tzinfo=UTC)
    assert ts("2026-03-29 03:00:00", tz) == dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    # a wall time that does not exist is read with the offset before the gap (CET)
    assert ts("2026-03-29 02:30:00", tz) == dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    # fall back 2026-10-25 03:00 -> 02:00: an ambiguous wall time is read as standard time (CET)
    assert ts("2026-10-25 02:30:00", tz) == dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert ts("2026-10-25 03:30:00", tz) == dt.datetime(2026, 10, 25, 2, 30, tzinfo=UTC)


def one(expr_builder, raw, src_type="VARCHAR"):
    ws = Workspace()
    return ws.scalar(f"SELECT {expr_builder('x', src_type)} FROM (SELECT CAST($v AS VARCHAR) AS x)", {"v": raw})


@pytest.mark.parametrize("raw", ["granted", "GRANTED", "true", "1", "yes", "Yes", "G111", "G110",
                                 "consent_granted", "CONSENT_GRANTED", " y "])
def test_consent_granted_spellings(raw):
    assert one(parsing.consent, raw) == "granted"


@pytest.mark.parametrize("raw", ["denied", "DENIED", "false", "0", "no", "No", "G100", "G101",
                                 "CONSENT_DENIED", "n"])
def test_consent_denied_spellings(raw):
    assert one(parsing.consent, raw) == "denied"


@pytest.mark.parametrize("raw", [None, "", "unknown", "Unset", "UNSPECIFIED", "maybe"])
def test_consent_unknown_is_null(raw):
    assert one(parsing.consent, raw) is None


@pytest.mark.parametrize("raw, expected", [("true", True), ("1", True), ("yes", True), ("false", False),
                                           ("0", False), ("No", False), ("x", None), (None, None)])
def test_booleans(raw, expected):
    assert one(parsing.boolean, raw) is expected


def test_hashed_key_plaintext_is_replaced_never_kept():
    h = "a" * 64
    assert one(parsing.hashed_key, h) == h
    assert one(parsing.hashed_key, "A" * 64) == "A" * 64  # upper-case hex is kept (invalid, not PII)
    assert one(parsing.hashed_key, "john@example.com") == "<plaintext:email>"
    assert one(parsing.hashed_key, "+1 (650) 555-1212") == "<plaintext:phone>"
    assert one(parsing.hashed_key, "Mary") == "<plaintext:text>"
    assert one(parsing.hashed_key, f'["{h}", "x@y.z"]') == f'["{h}","<plaintext:email>"]'
    assert one(parsing.hashed_key, "") is None


def test_platform_default_and_aliases():
    ws = Workspace()
    expr = parsing.platform("x", "VARCHAR")
    q = f"SELECT {expr} FROM (SELECT CAST($v AS VARCHAR) AS x)"
    assert ws.scalar(q, {"v": "Facebook", "platform": None}) == "meta"
    assert ws.scalar(q, {"v": None, "platform": "google"}) == "google"
    assert ws.scalar(q, {"v": "tiktok", "platform": "meta"}) is None
