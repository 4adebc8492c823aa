"""identities (raw customer columns hashed locally at load) and hash agreement, exact cases."""

from __future__ import annotations

from capi_audit import Workspace
from capi_audit.config import config_from_dict
from capi_audit.hashing import hash_value, sha256_hex
from capi_audit.metrics.hash_agreement import hash_agreement

ORDERS = ("order_id,created_at,Email,Phone,country\n"
          "o1,2026-03-01T10:00:00Z, Joe@Example.com ,0151 2345678,DE\n"
          "o2,2026-03-01T10:00:00Z,ann@example.com,+1 650 555 1212,US\n"
          "o3,2026-03-01T10:00:00Z,Bob@Example.com,,US\n"
          "o4,2026-03-01T10:00:00Z,zed@example.com,,US\n")


def ws_with_orders(tmp_path, text=ORDERS, columns=None) -> Workspace:
    (tmp_path / "orders.csv").write_text(text, encoding="utf-8")
    cfg = config_from_dict({"sources": [{"table": "orders", "path": "orders.csv",
                                         "columns": columns or {"email": "Email", "phone": "Phone"}}]},
                           path=tmp_path / "audit.toml")
    ws = Workspace(config=cfg)
    ws.load()
    return ws


def test_raw_customer_columns_are_hashed_and_never_stored(tmp_path):
    ws = ws_with_orders(tmp_path)
    got = dict(((o, p, k), h) for o, p, k, h in ws.rows("SELECT * FROM identities"))
    assert got[("o1", "meta", "em")] == hash_value("meta", "em", "joe@example.com")
    assert got[("o1", "meta", "ph")] == sha256_hex("491512345678")         # national number + DE code
    assert got[("o2", "google", "ph")] == sha256_hex("+16505551212")
    assert got[("o1", "meta", "em~hashed_twice")] == sha256_hex(got[("o1", "meta", "em")])
    # nothing raw anywhere in the database
    for table in ("orders", "identities", "load_report", "rejects"):
        text = str(ws.rows(f"SELECT * FROM {table}"))
        assert "example.com" not in text.lower() and "2345678" not in text
    assert "Email" not in ws.scalar("SELECT ignored_columns FROM load_report")


def test_identities_hashed_in_batches_equal_one_batch(tmp_path, monkeypatch):
    # the orders' customer keys are hashed a batch of records at a time (bounded memory on
    # millions of orders): one record per batch, with an order repeated across batches, gives
    # the same distinct identity rows as one batch
    from capi_audit.io import identities

    text = ORDERS + "o1,2026-03-01T11:00:00Z, Joe@Example.com ,0151 2345678,DE\n"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = sorted(ws_with_orders(tmp_path / "a", text).rows("SELECT * FROM identities"))
    monkeypatch.setattr(identities, "BATCH", 1)
    many = sorted(ws_with_orders(tmp_path / "b", text).rows("SELECT * FROM identities"))
    assert one == many and len(one) == len(set(one)) > 20
    # the distinct rows are taken per slice of order ids (one DISTINCT over the whole stage ran the
    # 10M benchmark's 4.6M orders out of the load's memory limit): many slices, the same rows
    monkeypatch.setattr(identities, "PARTITION_ROWS", 3)
    (tmp_path / "c").mkdir()
    sliced = sorted(ws_with_orders(tmp_path / "c", text).rows("SELECT * FROM identities"))
    assert sliced == one


def test_identity_rows_are_distinct_whether_an_order_repeats_within_or_across_batches(tmp_path, monkeypatch):
    # Orders whose records all fall in one batch go straight into identities (only distinct rows);
    # an order with records in two batches is gathered first. With two records per batch: o1 twice
    # in the first batch, o2 in the first and third, o3 with another email in the second.
    from capi_audit.io import identities

    lines = ORDERS.splitlines()
    text = "\n".join([lines[0], lines[1], lines[1], lines[2], lines[3].replace("Bob@", "bob2@"),
                      lines[2], lines[3], lines[4]]) + "\n"
    want = None
    for k, batch in enumerate((10_000, 2, 1)):
        monkeypatch.setattr(identities, "BATCH", batch)
        (tmp_path / str(k)).mkdir()
        ws = ws_with_orders(tmp_path / str(k), text)
        got = ws.rows("SELECT * FROM identities ORDER BY ALL")
        assert len(got) == len(set(got)) > 20, batch
        assert ws.scalar("SELECT count(DISTINCT sha256) FROM identities WHERE order_id = 'o3' AND key = 'em'") == 2
        # the load report counts the rows written, and no helper table is left behind
        assert str(len(got)) in ws.scalar("SELECT note FROM load_report")
        assert not ws.rows("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '\\_id\\_%' ESCAPE '\\'")
        want = want or got
        assert got == want, batch


def test_an_order_in_two_files_or_two_chunks_keeps_one_copy_of_its_identity_rows(tmp_path, monkeypatch):
    # Daily order exports list an order again when it changes (a refund the next day). Each file
    # (and each chunk of a large Parquet file) was hashed on its own, so the order's identity rows
    # were stored twice and hash agreement counted its server event twice (n = 2 for one event).
    import duckdb

    from capi_audit.io import canonical

    later = "o1,2026-03-02T10:00:00Z, Joe@Example.com ,0151 2345678,DE\n"
    one = sorted(ws_with_orders(tmp_path, ORDERS).rows("SELECT * FROM identities"))
    head = ORDERS.splitlines()[0] + "\n"
    cases = {"files": None, "chunks": None}
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "orders_1.csv").write_text(ORDERS, encoding="utf-8")
    (tmp_path / "files" / "orders_2.csv").write_text(head + later, encoding="utf-8")
    (tmp_path / "chunks").mkdir()
    (tmp_path / "chunks" / "all.csv").write_text(ORDERS + later, encoding="utf-8")
    duckdb.sql(f"COPY (FROM read_csv('{tmp_path / 'chunks' / 'all.csv'}', all_varchar = true)) "
               f"TO '{tmp_path / 'chunks' / 'orders_1.parquet'}' (FORMAT parquet)")
    (tmp_path / "chunks" / "all.csv").unlink()
    monkeypatch.setattr(canonical, "PARQUET_CHUNK_ROWS", 2)  # o1 in the first chunk and the third
    for case in cases:
        cfg = config_from_dict({"sources": [{"table": "orders", "path": "orders_*", "format": "canonical",
                                             "columns": {"email": "Email", "phone": "Phone"}}]},
                               path=tmp_path / case / "audit.toml")
        ws = Workspace(config=cfg)
        ws.load()
        assert ws.scalar("SELECT count(*) FROM orders") == 5
        assert sorted(ws.rows("SELECT * FROM identities")) == one, case
        ws.execute("INSERT INTO server_events (platform, event_name, event_time, order_id, event_id, em) "
                   "VALUES ('meta', 'Purchase', TIMESTAMPTZ '2026-03-01 10:00:00+00', 'o1', 'e1', $e)",
                   {"e": hash_value("meta", "em", "joe@example.com")})
        got = hash_agreement(ws)["meta"]["em"]
        assert (got["n"], got["agree"]) == (1, 1), case


def test_an_order_with_two_values_of_a_key_counts_each_event_once(tmp_path):
    # A customer's email corrected between two rows of one order gives the order two expected
    # hashes. Each event was counted once per expected hash (3 events gave n = 6, share 1/3).
    text = ("order_id,created_at,Email,Phone,country\n"
            "o1,2026-03-01T10:00:00Z,joe@example.com,,DE\n"
            "o1,2026-03-02T10:00:00Z,joe.new@example.com,,DE\n")
    ws = ws_with_orders(tmp_path, text)
    for i, raw in enumerate(["joe@example.com", "joe.new@example.com", "other@example.com"]):
        ws.execute("INSERT INTO server_events (platform, event_name, event_time, order_id, event_id, em) "
                   "VALUES ('meta', 'Purchase', TIMESTAMPTZ '2026-03-01 10:00:00+00', 'o1', $i, $e)",
                   {"i": f"e{i}", "e": hash_value("meta", "em", raw)})
    got = hash_agreement(ws)["meta"]["em"]
    assert (got["n"], got["agree"], got["mismatch"]["unexplained"]) == (3, 2, 1)


def test_hash_agreement_diagnoses_each_mismatch(tmp_path):
    ws = ws_with_orders(tmp_path)
    em = lambda raw: hash_value("meta", "em", raw)  # noqa: E731
    rows = [
        ("o1", em("joe@example.com"), sha256_hex("01512345678")),      # email agrees; phone hashed nationally
        ("o2", sha256_hex(em("ann@example.com")), None),              # hashed twice
        ("o3", sha256_hex("Bob@Example.com"), None),                  # not normalized (case)
        ("o4", em("joe@example.com"), None),                          # another order's customer
        ("o1", em("joe@example.com").upper(), None),                  # upper-case hex
        ("o2", f'["{em("ann@example.com")}", "{"0" * 64}"]', None),   # list: any element agrees
    ]
    for i, (order, e, p) in enumerate(rows):
        ws.execute("INSERT INTO server_events (platform, event_name, event_time, order_id, event_id, em, ph) "
                   "VALUES ('meta', 'Purchase', TIMESTAMPTZ '2026-03-01 10:00:00+00', $o, $i, $e, $p)",
                   {"o": order, "i": f"e{i}", "e": e, "p": p})
    got = hash_agreement(ws)["meta"]
    assert (got["em"]["n"], got["em"]["agree"]) == (6, 2)
    assert {k: v for k, v in got["em"]["mismatch"].items() if v} == {
        "hashed_twice": 1, "not_normalized": 1, "another_orders_customer": 1, "uppercase_hex": 1}
    # the phone was hashed without its country code (0151... instead of 49151...)
    assert got["ph"]["mismatch"]["phone_without_country_code"] == 1


def send_em(ws: Workspace, rows: list[tuple[str, str]]) -> None:
    """One Meta Purchase server event per (order, em as sent)."""
    for i, (order, e) in enumerate(rows):
        ws.execute("INSERT INTO server_events (platform, event_name, event_time, order_id, event_id, em) "
                   "VALUES ('meta', 'Purchase', TIMESTAMPTZ '2026-03-01 10:00:00+00', $o, $i, $e)",
                   {"o": order, "i": f"e{i}", "e": e})


def test_another_orders_customer_in_a_list_and_as_a_value(tmp_path):
    """Both forms of another order's hash are found: a plain value (equi-join on the hash) and an
    element of a JSON list (the LIKE test, run only for list values that miss the order's own)."""
    ws = ws_with_orders(tmp_path)
    em = lambda raw: hash_value("meta", "em", raw)  # noqa: E731
    rows = [("o1", em("zed@example.com")),                                  # o4's customer
            ("o2", f'["{"0" * 64}", "{em("bob@example.com")}"]'),            # o3's customer, in a list
            ("o3", f'["{"1" * 64}"]'),                                       # nobody's: unexplained
            ("o4", f'["{em("zed@example.com")}", "{em("joe@example.com")}"]')]  # own hash listed: agrees
    send_em(ws, rows)
    got = hash_agreement(ws)["meta"]["em"]
    assert (got["n"], got["agree"]) == (4, 1)
    assert {k: v for k, v in got["mismatch"].items() if v} == {"another_orders_customer": 2, "unexplained": 1}


def test_without_identities_hash_agreement_is_unavailable():
    ws = Workspace()
    assert hash_agreement(ws)["available"] is False


def test_shopify_maps_email_and_phone_into_identities(tmp_path, samples):
    f = samples / "shopify_orders" / "forezia_devstore_orders_export_full_columns.csv"
    cfg = config_from_dict({"sources": [{"table": "orders", "path": str(f), "format": "shopify_orders"}]},
                           path=tmp_path / "audit.toml")
    ws = Workspace(config=cfg)
    ws.load()
    n_orders = ws.count("orders")
    with_email = ws.scalar("SELECT count(DISTINCT order_id) FROM identities WHERE key = 'em' AND platform = 'meta'")
    assert n_orders and with_email
    assert "@" not in str(ws.rows("SELECT * FROM identities")) + str(ws.rows("SELECT note FROM load_report"))


def test_another_orders_customer_at_any_list_position(tmp_path):
    """Another order's hash is found at every position of a list: the first LIST_ELEMENTS by an
    equi-join on the element (with a Meta parameter-builder appendix cut off), later ones by the
    substring test kept for long lists. (The substring test against every customer of the key
    was the only path before: quadratic in lists × customers.)"""
    from capi_audit.metrics.hash_agreement import LIST_ELEMENTS

    ws = ws_with_orders(tmp_path)
    em = lambda raw: hash_value("meta", "em", raw)  # noqa: E731
    bob = em("bob@example.com")  # o3's customer
    rows = []
    for pos in (0, 1, LIST_ELEMENTS - 1, LIST_ELEMENTS, LIST_ELEMENTS + 3):
        filler = [f"{pos:02d}{k:02d}".ljust(64, "a") for k in range(max(pos + 1, 2))]
        filler[pos] = bob
        rows.append(("o1", "[" + ", ".join(f'"{h}"' for h in filler) + "]"))
    rows.append(("o2", f'["{"2" * 64}", "{bob}.AQYBAAYA"]'))  # with an appendix
    rows.append(("o2", f'["{"3" * 64}", "{bob[:-1]}"]'))  # one digit short: nobody's
    send_em(ws, rows)
    got = hash_agreement(ws)["meta"]["em"]
    assert (got["n"], got["agree"]) == (7, 0)
    assert {k: v for k, v in got["mismatch"].items() if v} == {"another_orders_customer": 6, "unexplained": 1}


def test_a_failure_while_making_identities_distinct_is_one_error_and_rolls_the_load_back(tmp_path, monkeypatch):
    import duckdb
    import pytest

    from capi_audit.errors import InputError
    from capi_audit.io import identities

    def fail(ws):
        raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate")

    monkeypatch.setattr(identities, "finish", fail)
    (tmp_path / "orders.csv").write_text(ORDERS, encoding="utf-8")
    cfg = config_from_dict({"sources": [{"table": "orders", "path": "orders.csv",
                                         "columns": {"email": "Email", "phone": "Phone"}}]},
                           path=tmp_path / "audit.toml")
    ws = Workspace(config=cfg)
    with pytest.raises(InputError, match="identities: cannot keep one copy"):
        ws.load()
    assert ws.scalar("SELECT count(*) FROM identities") == 0 and ws.scalar("SELECT count(*) FROM orders") == 0
