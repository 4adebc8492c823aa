"""Match-key validity, plaintext, shared values and tiers on hand-built server events."""

from __future__ import annotations

import pytest

from capi_audit import Workspace, validity
from capi_audit.hashing import sha256_hex
from capi_audit.metrics import match_keys
from capi_audit.metrics.match_keys import shared_values

from .helpers import at, make_ws

H = sha256_hex("someone@example.com")


def check(key: str, value: str | None, event_h: float = 0.0, *, platform: str = "meta",
          source_api: str | None = None) -> bool:
    ws = Workspace()
    return ws.scalar(
        f"SELECT {validity.valid(key)} FROM (SELECT CAST($v AS VARCHAR) AS {key}, CAST($t AS TIMESTAMPTZ) AS event_time, "
        "CAST($p AS VARCHAR) AS platform, CAST($s AS VARCHAR) AS source_api)",
        {"v": value, "t": at(event_h), "p": platform, "s": source_api})


@pytest.mark.parametrize("value, ok", [
    (H, True), (H.upper(), False), (H + ".AQYCAQMA", True), (sha256_hex(""), False),
    (sha256_hex("undefined"), False), ("<plaintext:email>", False), ("5d41402abc4b2a76b9719d911017c592", False),
    (f'["{H}", "{sha256_hex("x")}"]', True), (f'["{H}", "<plaintext:email>"]', False), ("[]", False), (None, False),
])
def test_hashed_key_validity(value, ok):
    assert check("em", value) is ok


@pytest.mark.parametrize("value, ok", [
    ("81.2.69.160", True), ("8.8.8.8", True), ("10.0.0.1", False), ("192.168.1.1", False),
    ("172.20.1.1", False), ("127.0.0.1", False), ("203.0.113.7", False), ("100.64.0.1", False),
    ("256.1.1.1", False), ("2a02:810d:1234::1", True), ("2001:db8::1", False), ("::1", False),
    ("fe80::1", False), ("fd00::1", False), ("not-an-ip", False), ("", False),
])
def test_ip_validity(value, ok):
    assert check("client_ip_address", value) is ok


@pytest.mark.parametrize("value, ok", [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36", True),
    ("python-requests/2.31.0", False), ("curl/8.4.0", False), ("Go-http-client/1.1", False),
    ("axios/1.6.0", False), ("", False),
])
def test_user_agent_validity(value, ok):
    assert check("client_user_agent", value) is ok


@pytest.mark.parametrize("value, ok", [
    ("fb.1.1596403881668.1116446470", True), ("fb.1.1558571054389.1098115397", True),
    ("fb.1.1778869247376.52390506499288804.AQYCAQMA", True), ("fb.1.1596403881.1116446470", False),
    ("fb.1.abc", False), (H, False),
])
def test_fbp_validity(value, ok):
    assert check("fbp", value) is ok


def test_fbc_validity_and_creation_time():
    doc = "fb.1.1554763741205.AbCdEfGhIjKlMnOpQrStUvWxYz1234567890"  # Meta's doc example (2019)
    assert check("fbc", doc) is True
    assert check("fbc", "fb.1.1554763741.AbCdEf") is False          # seconds, not milliseconds
    future = f"fb.1.{int(at(1).timestamp() * 1000)}.IwAR0abc"
    assert check("fbc", future, event_h=0) is False                 # created an hour after the event
    assert check("fbc", future, event_h=0.99) is True               # within the 5 min skew


def test_shares_tiers_and_plaintext():
    rows = [
        {"event_id": "1", "event_time": at(0), "em": H},                                           # strong
        {"event_id": "2", "event_time": at(0), "em": "<plaintext:email>", "fbc": "fb.1.1554763741205.IwAR1"},  # click
        {"event_id": "3", "event_time": at(0), "fbp": "fb.1.1596403881668.1116446470",
         "client_ip_address": "81.2.69.160", "client_user_agent": "Mozilla/5.0 Firefox/120.0"},     # browser
        {"event_id": "4", "event_time": at(0), "fbp": "fb.1.1596403881668.1116446470",
         "client_ip_address": "10.0.0.1", "client_user_agent": "Mozilla/5.0 Firefox/120.0"},        # none
    ]
    frame, head = match_keys(make_ws(server=rows))
    em = head.values["meta"]["em"]
    assert em == {"present": 0.5, "valid": 0.25, "plaintext_pii": 0.25, "shared_value": 0.0}
    assert head.values["meta"]["identifier_tiers"] == {"strong": 0.25, "click": 0.25, "browser": 0.25, "none": 0.25}
    assert head.values["meta"]["client_ip_address"]["valid"] == 0.25
    # no raw value anywhere in the frame
    assert "81.2.69.160" not in frame.to_csv()


def test_shared_value_threshold():
    rows = [{"event_id": str(i), "event_time": at(0), "client_ip_address": "34.120.55.7" if i < 12 else f"81.2.{i}.1"}
            for i in range(100)]
    ws = make_ws(server=rows)
    head = match_keys(ws)[1]
    assert head.values["meta"]["client_ip_address"]["shared_value"] == 0.12
    sv = shared_values(ws)
    row = sv[(sv.platform == "meta") & (sv.key == "client_ip_address")].iloc[0]
    assert (row.shared_values, row.shared_rows) == (1, 12)
    assert "34.120.55.7" not in sv.to_csv()
    # below 10 rows nothing is shared, whatever the share
    ws = make_ws(server=rows[:9])
    assert match_keys(ws)[1].values["meta"]["client_ip_address"]["shared_value"] == 0.0
