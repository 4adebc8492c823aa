"""Every audit.toml error gives one clear message naming the file and the key."""

from __future__ import annotations

import datetime as dt

import pytest

from capi_audit.cli import main
from capi_audit.config import load_config
from capi_audit.errors import ConfigError

from .conftest import write


def cfg(tmp_path, text):
    return load_config(write(tmp_path / "audit.toml", text))


def test_full_config(tmp_path):
    c = cfg(tmp_path, """
        [audit]
        timezone = "Europe/Berlin"
        dedup_window_hours = 24
        conversion_event = "Purchase"
        [capi_enabled_at]
        meta = "2026-03-31T00:00:00Z"
        google = 2026-04-01T00:00:00
        [dedup_window_hours]
        google = 720
        [[sources]]
        table = "orders"
        path = "orders.csv"
        columns = { created_at = "Created at" }
    """)
    assert c.timezone == "Europe/Berlin"
    assert c.window_hours("meta") == 24 and c.window_hours("google") == 720
    assert c.capi_enabled_at["meta"] == dt.datetime(2026, 3, 31, tzinfo=dt.UTC)
    # naive config time is read in the audit's zone
    assert c.capi_enabled_at["google"] == dt.datetime(2026, 3, 31, 22, tzinfo=dt.UTC)
    assert c.sources[0].path == str(tmp_path / "orders.csv")


def test_defaults(tmp_path):
    c = cfg(tmp_path, "")
    assert c.timezone == "UTC" and c.window_hours("meta") == 48 and c.window_hours("google") is None


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[audit]\ntimezone = 3\n", "'audit.timezone' must be str"),
        ("[audit]\ntimezone = \"Mars/Base\"\n", "unknown time zone"),
        ("[audit]\nwindow = 3\n", "unknown key 'window' in [audit]"),
        ("[oops]\n", "unknown top-level key(s): oops"),
        ("[capi_enabled_at]\ntiktok = \"2026-01-01\"\n", "unknown platform 'tiktok'"),
        ("[capi_enabled_at]\nmeta = \"yesterday\"\n", "'capi_enabled_at.meta' is not an ISO 8601 time"),
        ("[dedup_window_hours]\ngoogle = \"x\"\n", "must be int or float"),
        ("[dedup_window_hours]\ngoogle = -1\n", "must be positive"),
        ("[[sources]]\npath = \"a.csv\"\n", "missing required key 'table'"),
        ("[[sources]]\ntable = \"orders\"\npath = \"a.csv\"\nformat = \"xls\"\n", "unknown format 'xls'"),
        ("[[sources]]\ntable = \"sales\"\npath = \"a.csv\"\n", "'sales' is not a table"),
        ("[[sources]]\ntable = \"server_events\"\npath = \"a.csv\"\ncolumns = { email = \"E\" }\n", "'email' is not a column of server_events"),
        ("[[sources]]\ntable = \"orders\"\npath = \"a.csv\"\nsheet = 1\n", "unknown key 'sheet' in sources[1]"),
        ("[[sources]]\ntable = \"orders\"\npath = 5\n", "'sources[1].path' must be str"),
        ("not toml ===", "not valid TOML"),
    ],
)
def test_config_errors(tmp_path, text, needle):
    with pytest.raises(ConfigError) as info:
        cfg(tmp_path, text)
    assert needle in str(info.value)
    assert "audit.toml" in str(info.value)


def test_config_error_exit_status(tmp_path, capsys):
    write(tmp_path / "audit.toml", "[audit]\nbogus = 1\n")
    assert main(["load", "--config", str(tmp_path / "audit.toml")]) == 2
    err = capsys.readouterr().err
    assert "audit.toml" in err and "bogus" in err and "Traceback" not in err


def test_linkage_keys(tmp_path):
    c = cfg(tmp_path, """
        [audit]
        order_key = "event_id"
        event_aliases = { Purchase = ["purchase", "Order Completed"] }
        [[google_actions]]
        name = "Purchase"
        type = "webpage"
        primary = true
        counting = "one"
        [[google_actions]]
        name = "Purchase upload"
        type = "upload_clicks"
        primary = false
        [[sources]]
        table = "orders"
        path = "orders.csv"
        columns = { email = "Email", phone = "Phone" }
    """)
    assert c.order_key == "event_id"
    assert c.event_aliases == {"Purchase": ("purchase", "Order Completed")}
    assert [(a.name, a.primary, a.counting) for a in c.google_actions] == [
        ("Purchase", True, "one"), ("Purchase upload", False, "one")]
    assert c.sources[0].columns == {"email": "Email", "phone": "Phone"}


@pytest.mark.parametrize("text, msg", [
    ('[audit]\norder_key = "sku"', "order_key"),
    ('[audit]\nevent_aliases = { Purchase = 3 }', "event_aliases"),
    ('[[google_actions]]\ntype = "webpage"', "missing required key 'name'"),
    ('[[google_actions]]\nname = "P"\ncounting = "many"', "counting"),
    ('[[google_actions]]\nname = "P"\nprimary = "yes"', "primary"),
])
def test_linkage_key_errors(tmp_path, text, msg):
    with pytest.raises(ConfigError, match=msg):
        cfg(tmp_path, text)
