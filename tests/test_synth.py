"""The generator: deterministic, loads cleanly, recovers its planted rates, plants bad rows."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from capi_audit import Workspace, load_config
from capi_audit.cli import main
from capi_audit.synth import ScenarioParams, write_scenario
from capi_audit.synth.corrupt import plant_bad_rows

SMALL = ScenarioParams(seed=5, days=12, orders_per_day=25.0, enable_day={"meta": 6, "google": 8},
                       customer_pool=5000)


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_seed_same_bytes(tmp_path):
    write_scenario(SMALL, tmp_path / "a")
    write_scenario(SMALL, tmp_path / "b")
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    write_scenario(ScenarioParams(**{**SMALL.__dict__, "seed": 6}), tmp_path / "c")
    assert digest(tmp_path / "a")["orders.csv"] != digest(tmp_path / "c")["orders.csv"]


def test_parquet_same_seed_same_bytes(tmp_path):
    write_scenario(SMALL, tmp_path / "a", fmt="parquet")
    write_scenario(SMALL, tmp_path / "b", fmt="parquet")
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_scenario_loads_with_zero_rejects(tmp_path, fmt):
    write_scenario(SMALL, tmp_path, fmt=fmt)
    ws = Workspace()
    reports = ws.load(load_config(tmp_path / "audit.toml"))
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert all(r.rows_rejected == 0 for r in reports)
    for r in reports:
        assert r.rows_loaded == truth["load"][r.table]["rows_loaded"]


def test_cli_synth(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--days", "8", "--orders-per-day", "10", "--seed", "3"]) == 0
    assert (tmp_path / "truth.json").exists() and (tmp_path / "audit.toml").exists()
    assert main(["synth", "--out", str(tmp_path), "--days", "2"]) == 2


def test_planted_bad_rows_are_exactly_the_rejects(tmp_path):
    write_scenario(SMALL, tmp_path)
    planted = plant_bad_rows(tmp_path, seed=3)
    ws = Workspace()
    ws.load(load_config(tmp_path / "audit.toml"))
    got = [{"table": t, "line": int(line), "reason": r, "column": c}
           for t, line, c, r in ws.rows("SELECT table_name, line, column_name, reason FROM rejects")]
    key = lambda d: (d["table"], d["line"])  # noqa: E731
    assert sorted(got, key=key) == sorted(planted, key=key)
    truth = json.loads((tmp_path / "truth.json").read_text())
    for t, read, loaded, rej in ws.rows("SELECT table_name, rows_read, rows_loaded, rows_rejected FROM load_report"):
        n_planted = sum(1 for p in planted if p["table"] == t)
        assert loaded == truth["load"][t]["rows_loaded"]
        assert rej == n_planted and read == loaded + rej


def test_planted_rates_are_recovered_within_sampling_error(tmp_path):
    """Over a larger scenario, observed frequencies sit within 4 standard errors of the plants."""
    p = ScenarioParams(seed=99, days=40, orders_per_day=150.0, enable_day={"meta": 10, "google": 10},
                       customer_pool=20000)
    write_scenario(p, tmp_path)
    ws = Workspace()
    ws.load(load_config(tmp_path / "audit.toml"))

    def close(observed, n, rate):
        se = np.sqrt(rate * (1 - rate) / n)
        assert abs(observed / n - rate) < 4 * se + 1e-12, (observed / n, rate)

    n_orders = ws.count("orders")
    close(ws.scalar("SELECT count(*) FROM orders WHERE is_test"), n_orders, p.test_order_rate)
    close(ws.scalar("SELECT count(*) FROM orders WHERE consent_ads IS NULL"), n_orders, p.consent_unknown_rate)
    shares = {c: v[0] for c, v in p.countries.items()}
    for c, share in shares.items():
        close(ws.scalar("SELECT count(*) FROM orders WHERE country = $c", {"c": c}), n_orders, share)
    for c, (_, denial) in p.countries.items():
        known = ws.scalar("SELECT count(*) FROM orders WHERE country = $c AND consent_ads IS NOT NULL", {"c": c})
        denied = ws.scalar("SELECT count(*) FROM orders WHERE country = $c AND consent_ads = 'denied'", {"c": c})
        close(denied, known, denial)
    # server sends that carry a plaintext email, among Meta sends with an email
    sent = ws.scalar("SELECT count(*) FROM server_events WHERE platform = 'meta' AND em IS NOT NULL")
    plain = ws.scalar("SELECT count(*) FROM server_events WHERE platform = 'meta' AND em LIKE '<plaintext:%'")
    close(plain, sent, p.em_plaintext_rate)
    # Meta server events that were rejected as too old, among first sends
    first = ws.scalar("SELECT count(DISTINCT order_id) FROM server_events WHERE platform = 'meta'")
    old = ws.scalar("SELECT count(*) FROM server_events WHERE platform = 'meta' AND status = 'rejected'")
    close(old, first, p.defect_rates["too_old"])
