"""Hash agreement with list-valued keys that miss their order's own hash (Meta accepts a list of
hashes per key): the search for another order's customer among them.

    python benchmarks/hash_agreement_lists.py <orders> <lists> [--folder DIR]

loads <orders> orders with an email each (identities hashed at load), adds <lists> Meta server
events whose `em` is a list of two hashes of nobody, and times `hash_agreement`. Before the lists
were split into elements, each such list was compared with LIKE against every customer of the key.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from capi_audit import Workspace
from capi_audit.config import config_from_dict
from capi_audit.metrics.hash_agreement import hash_agreement


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("orders", type=int)
    ap.add_argument("lists", type=int)
    ap.add_argument("--folder", type=Path, default=None)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = a.folder or Path(tmp)
        with open(d / "orders.csv", "w", encoding="utf-8") as f:
            f.write("order_id,created_at,Email\n")
            f.writelines(f"o{i},2026-03-01T10:00:00Z,user{i}@example.com\n" for i in range(a.orders))
        cfg = config_from_dict({"sources": [{"table": "orders", "path": "orders.csv", "columns": {"email": "Email"}}]},
                               path=d / "audit.toml")
        with Workspace(config=cfg) as ws:
            ws.load()
            ws.execute("""INSERT INTO server_events (platform, event_name, event_time, order_id, event_id, em)
                SELECT 'meta', 'Purchase', TIMESTAMPTZ '2026-03-01 10:00:00+00', 'o' || i, 'e' || i,
                    '["' || sha256('x' || i) || '", "' || sha256('y' || i) || '"]' FROM range($n) t(i)""",
                       {"n": a.lists})
            t = time.perf_counter()
            got = hash_agreement(ws)["meta"]["em"]
            print(f"{a.orders} orders, {a.lists} lists: {time.perf_counter() - t:.2f} s "
                  f"(n {got['n']}, unexplained {got['mismatch']['unexplained']})")


if __name__ == "__main__":
    main()
