"""Run one benchmark step in this process and print its wall time and peak RSS as JSON.

    python benchmarks/step.py {bare_read,load,run,headline,floor,pandas} CONFIG [--db FILE] [--memory-limit 2.5GB]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    """Parse arguments, run the step, print {step, seconds, peak_rss_mb}."""
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=("bare_read", "load", "run", "headline", "floor", "pandas"))
    ap.add_argument("config", type=Path)
    ap.add_argument("--db", default=None)
    ap.add_argument("--memory-limit", default=None)
    a = ap.parse_args()
    t = time.perf_counter()
    if a.step == "bare_read":
        import duckdb

        cfg = tomllib.loads(a.config.read_text())
        con = duckdb.connect(a.db or ":memory:")
        if a.memory_limit:
            con.execute(f"SET memory_limit = '{a.memory_limit}'")
        for src in cfg["sources"]:
            con.execute(f"CREATE OR REPLACE TABLE {src['table']} AS SELECT * FROM read_parquet('{a.config.parent / src['path']}')")
        con.close()
    elif a.step == "load":
        from capi_audit import Workspace

        with Workspace(a.db, memory_limit=a.memory_limit) as ws:
            ws.load(a.config)
    elif a.step == "run":
        from capi_audit.audit import compute
        from capi_audit.workspace import Workspace

        with Workspace(a.db, memory_limit=a.memory_limit) as ws:
            ws.load(a.config)
            compute(ws)
    elif a.step == "headline":
        # like for like with the floor: load, then only the dedup, double counting and recovery families
        from capi_audit import metrics
        from capi_audit.workspace import Workspace

        with Workspace(a.db, memory_limit=a.memory_limit) as ws:
            ws.load(a.config)
            metrics.dedup_overlap(ws)
            metrics.double_counting(ws)
            metrics.recovery(ws)
    elif a.step == "floor":
        from benchmarks.floor import run_floor

        run_floor(a.config, a.db, a.memory_limit)
    else:
        from benchmarks import pandas_impl

        data = pandas_impl.load(a.config)
        pandas_impl.dedup(data)
        pandas_impl.double_counting(data)
        pandas_impl.recovery(data)
    seconds = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"step": a.step, "seconds": round(seconds, 3), "peak_rss_mb": round(rss, 1)}))


if __name__ == "__main__":
    main()
