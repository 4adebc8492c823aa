"""The shop's own customer keys, hashed locally into `identities` (design v2 §2, §3.7).

An orders source may map raw customer columns (`columns = { email = "Email", phone = "Phone" }`;
also first_name, last_name, zip, city, state, country_code). While a file is loaded, each value is
normalized and SHA-256 hashed per platform with `capi_audit.hashing` (Meta:
https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters ;
Google: https://developers.google.com/data-manager/api/devguides/concepts/formatting), in memory
(the orders are read into pandas 5,000 records at a time, each distinct value of a batch hashed once, a phone parsed once for every platform and variant). Only hashes are
stored; the raw value lives in the loader's temporary staging table for the duration of one file
and is never written, printed or reported.

Besides the expected hash (key `em`, `ph`, ...), a few hashes of the common mistakes are kept so a
mismatch can be explained without the raw value (key `em~unnormalized`, `ph~no_country_code`,
`em~hashed_twice`, ...): the value hashed as it was typed (case, whitespace), a phone number
without its country code, and the expected hash hashed again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from capi_audit import hashing

if TYPE_CHECKING:
    from capi_audit.workspace import Workspace

# raw column -> canonical key
RAW_KEYS = {"email": "em", "phone": "ph", "first_name": "fn", "last_name": "ln", "zip": "zp",
            "city": "ct", "state": "st", "country_code": "country"}
# Google hashes only email, phone and names; address parts go in clear (domain/google.md §1.1).
PLATFORM_KEYS = {"meta": ("em", "ph", "fn", "ln", "zp", "ct", "st", "country"), "google": ("em", "ph", "fn", "ln")}
VARIANTS = ("unnormalized", "no_country_code", "hashed_twice")  # key suffixes `<key>~<variant>`
PARTITION_ROWS = 1_000_000  # staged identity rows of split orders deduplicated at a time
BATCH = 5_000  # orders (record ordinals) hashed per Python batch


def mapped(columns: dict[str, str]) -> dict[str, str]:
    """The raw customer columns a source maps (raw name -> source column)."""
    return {k: v for k, v in columns.items() if k in RAW_KEYS}


def _national(raw: str, region: str | None) -> str | None:
    """The national number of a phone (no country code), or None."""
    # the same parse the platforms' normalization uses (cached per value: parsed once)
    parsed = hashing.parse_phone(raw.strip(), region.upper() if region else None)
    return None if parsed is None else parsed[1]


def _all_hashes(raw_name: str, raw: str, region: str | None) -> list[tuple[str, str, str]]:
    """(platform, key, sha256) rows for one raw value: the expected hash per platform and the
    hashes of the common mistakes (each computed once: parsing phones is the slow part)."""
    key = RAW_KEYS[raw_name]
    typed = hashing.sha256_hex(raw)
    national = _national(raw, region) if key == "ph" else None
    out = []
    for plat, keys in PLATFORM_KEYS.items():
        if key not in keys:
            continue
        try:
            expected = hashing.hash_value(plat, key, raw, region=region)
        except (ValueError, TypeError):
            continue
        out.append((plat, key, expected))
        out.append((plat, f"{key}~hashed_twice", hashing.sha256_hex(expected)))
        if typed != expected:
            out.append((plat, f"{key}~unnormalized", typed))
        if national:
            for cand in ((national, "0" + national) if plat == "meta" else ("+" + national, "0" + national)):
                h = hashing.sha256_hex(cand)
                if h != expected:
                    out.append((plat, f"{key}~no_country_code", h))
    return sorted(set(out))


def ingest(ws: Workspace, staged_columns: list[str]) -> int:
    """Hash the raw customer columns of the loaded rows of `_parsed` / `_stage` into identities
    (`_stage` is dropped by the caller right after). The orders are read BATCH records at a time,
    hashed in Python (each distinct value of a batch once) and only distinct rows are inserted.
    Returns the number of identity rows written."""
    import pyarrow as pa

    raw_cols = [c for c in staged_columns if c in RAW_KEYS]
    if not raw_cols:
        return 0
    # a multi-file scan stages several files at once: rows are told apart by `_file` too
    same_file = " AND s._file = p._file" if "_file" in ws.df("SELECT * FROM _stage LIMIT 0").columns else ""
    sel = ", ".join(f'CAST(s."{c}" AS VARCHAR) AS "{c}"' for c in raw_cols)
    lo, hi = ws.rows("SELECT min(_rec), max(_rec) FROM _parsed")[0]
    if lo is None:
        return 0
    lo, hi = int(lo), int(hi)
    # An order whose records all fall in one batch has all its rows in that batch: the batch's
    # distinct rows go straight into identities. Only an order with records in two batches (a
    # file listing an order again further down) needs its rows gathered first; those rows wait in
    # `_id_stage` and are made distinct at the end. (Staging every row and taking one DISTINCT at
    # the end held about ten rows per order in DuckDB at once and read them all back: the peak of
    # a 4.7M-order file was 1.20 GB, most of it that step.)
    ws.drop("_id_split", "_id_stage")
    ws.execute("CREATE TEMP TABLE _id_split AS SELECT order_id FROM _parsed "
               "WHERE _reason IS NULL AND order_id IS NOT NULL GROUP BY order_id "
               "HAVING min((_rec - $lo) // $n) <> max((_rec - $lo) // $n)", {"lo": lo, "n": BATCH})
    ws.execute("CREATE TEMP TABLE _id_stage (order_id VARCHAR, platform VARCHAR, key VARCHAR, sha256 VARCHAR)")
    names = ("order_id", "platform", "key", "sha256")
    before = int(ws.target.rows("SELECT count(*) FROM identities")[0][0])
    # one slice of record ordinals at a time: Python holds one batch of raw values and of hash
    # rows (about ten per order), not the whole orders file; both sides of the join are cut to
    # the slice (a join over the whole staged file per batch made a 6.7M-order CSV take over 15 min)
    for start in range(lo, hi + 1, BATCH):
        frame = ws.df(f"""
            SELECT p.order_id, CAST(p.country AS VARCHAR) AS country,
                   p.order_id IN (SELECT order_id FROM _id_split) AS split, {sel}
            FROM _parsed p JOIN _stage s ON s._rec = p._rec{same_file}
            WHERE p._reason IS NULL AND p.order_id IS NOT NULL AND p._rec >= $lo AND p._rec < $hi
              AND s._rec >= $lo AND s._rec < $hi
        """, {"lo": start, "hi": start + BATCH})
        # the hash rows of each distinct value of the batch, computed once; the output is kept
        # column-wise (four lists of shared string objects; a set of row tuples took twice the
        # memory), an order's rows repeated within the batch are removed on insert
        cache: dict[tuple[str, str, str | None], list[tuple[str, str, str]]] = {}
        out: dict[bool, tuple[list[str], ...]] = {False: ([], [], [], []), True: ([], [], [], [])}
        for rec in frame.itertuples(index=False):
            region = rec.country if isinstance(rec.country, str) else None
            order_id, cols = rec.order_id, out[bool(rec.split)]
            for c in raw_cols:
                raw = getattr(rec, c) if c.isidentifier() else None
                if not isinstance(raw, str) or not raw.strip():
                    continue
                k = (c, raw, region)
                if k not in cache:
                    cache[k] = _all_hashes(c, raw, region)
                for plat, key, h in cache[k]:
                    cols[0].append(order_id)
                    cols[1].append(plat)
                    cols[2].append(key)
                    cols[3].append(h)
        del frame, cache  # the raw values leave memory with the frame
        for split, cols in out.items():
            if cols[0]:
                batch = pa.table({name: pa.array(col, pa.string()) for name, col in zip(names, cols, strict=True)})
                ws.append_arrow("_id_stage" if split else "identities", batch, distinct=not split)
        del out
    # The gathered rows of split orders: distinct per slice of order ids, each small enough for
    # the load's memory limit (a file that lists every order twice stages about ten rows per order
    # here; one DISTINCT over all of them could not spill within 500 MB).
    staged = int(ws.scalar("SELECT count(*) FROM _id_stage"))
    parts = max(1, -(-staged // PARTITION_ROWS))
    for part in range(parts if staged else 0):
        ws.write("identities", "SELECT DISTINCT order_id, platform, key, sha256 FROM _id_stage "
                 "WHERE hash(order_id) % $parts = $part", {"parts": parts, "part": part})
    ws.drop("_id_stage", "_id_split")
    # the orders of this call, to find at the end of the load those hashed by more than one call
    # (an order listed again in a later chunk or file; see `finish`)
    ws.execute("CREATE TEMP TABLE IF NOT EXISTS _id_seen (order_id VARCHAR)")
    ws.execute("INSERT INTO _id_seen SELECT DISTINCT order_id FROM _parsed WHERE _reason IS NULL AND order_id IS NOT NULL")
    # the rows written are counted on the table itself
    return int(ws.target.rows("SELECT count(*) FROM identities")[0][0]) - before


def finish(ws: Workspace) -> int:
    """At the end of a load (staging still open): make the identity rows of an order hashed by more
    than one `ingest` call distinct (an order listed again in a later chunk or another file of the
    load got its rows once per call, and hash agreement counted its events once per copy). Only
    those orders' rows are rewritten, a slice of order ids at a time. Returns the rows removed."""
    if "_id_seen" not in {r[0] for r in ws.rows("SELECT table_name FROM duckdb_tables() WHERE temporary")}:
        return 0
    target = ws.target
    target.execute("DROP TABLE IF EXISTS _id_recur")
    target.execute("CREATE TEMP TABLE _id_recur (order_id VARCHAR)")
    ws.write("_id_recur", "SELECT order_id FROM _id_seen GROUP BY order_id HAVING count(*) > 1")
    ws.drop("_id_seen")
    removed = 0
    if int(target.rows("SELECT count(*) FROM _id_recur")[0][0]):
        rows = int(target.rows("SELECT count(*) FROM identities WHERE order_id IN (SELECT order_id FROM _id_recur)")[0][0])
        parts = max(1, -(-rows // PARTITION_ROWS))
        for part in range(parts):
            target.execute("DROP TABLE IF EXISTS _id_fix")
            target.execute("CREATE TEMP TABLE _id_fix AS SELECT DISTINCT order_id, platform, key, sha256 FROM identities "
                           "WHERE order_id IN (SELECT order_id FROM _id_recur WHERE hash(order_id) % $parts = $part)",
                           {"parts": parts, "part": part})
            target.execute("DELETE FROM identities WHERE order_id IN "
                           "(SELECT order_id FROM _id_recur WHERE hash(order_id) % $parts = $part)",
                           {"parts": parts, "part": part})
            target.execute("INSERT INTO identities SELECT * FROM _id_fix")
        removed = rows - int(target.rows("SELECT count(*) FROM identities WHERE order_id IN (SELECT order_id FROM _id_recur)")[0][0])
        target.execute("DROP TABLE IF EXISTS _id_fix")
    target.execute("DROP TABLE _id_recur")
    return removed
