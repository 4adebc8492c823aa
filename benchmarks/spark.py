"""DuckDB vs Spark local, per metric family, on one synthetic scenario.

    python benchmarks/spark.py --size 10k            # smoke size (what was run for BENCHMARKS.md)
    python benchmarks/spark.py --size 1m             # 1M events (benchmarks/run.py's scenario)
    python benchmarks/spark.py --size 10m            # 10M events (needs a quiet machine)

The scenario is generated as Parquet (benchmarks/run.py's sizes), loaded once in DuckDB and
exported to Parquet (the engine boundary). Then every registered family is timed on DuckDB and on
Spark local (the session of capi_audit.engine.spark_session, local[2]) in registry order, so each
family pays for the derived relations it is the first to build, as in a real run. Spark's session
start-up is reported apart. Results are printed as Markdown rows and written to
benchmarks/spark_results_<size>.json (with the slowest Spark statements); the summaries of both engines are checked equal.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed_families(ws, reps: int, slowest: list | None = None) -> tuple[dict[str, float], dict]:
    """Seconds per family (registry order) and the summary sections. With `slowest`, it receives
    (seconds, family, statement head) for every statement (time from one statement's start to the
    next one's: execution plus the Python between them)."""
    from capi_audit import metrics

    times, summary = {}, {}
    marks: list = []
    current = [""]
    if slowest is not None:
        ws.engine.listeners.append(lambda sql, _: marks.append((time.perf_counter(), current[0], " ".join(sql.split())[:140])))
    for fam in metrics.FAMILIES:
        current[0] = fam.name
        t = time.perf_counter()
        out = fam.run(ws, bootstrap_reps=reps)
        times[fam.name] = time.perf_counter() - t
        summary[fam.name] = out.headline.summary()
    if slowest is not None:
        marks.append((time.perf_counter(), "", ""))
        slowest += sorted(((b[0] - a[0], a[1], a[2]) for a, b in zip(marks, marks[1:], strict=False)), reverse=True)
    return times, summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="10k", help="10k, 1m or 10m (benchmarks/run.py sizes)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench_data")
    ap.add_argument("--reps", type=int, default=200, help="bootstrap repetitions (Python side, same on both)")
    ap.add_argument("--driver-memory", default="4g", help="Spark driver memory (local mode: the whole JVM)")
    ap.add_argument("--partitions", default="4", help="spark.sql.shuffle.partitions")
    a = ap.parse_args()

    from benchmarks.run import scenario
    from capi_audit.audit import json_safe
    from capi_audit.config import load_config
    from capi_audit.engine import SparkEngine, spark_session
    from capi_audit.workspace import Workspace

    config, events = scenario(a.size, a.out)
    cfg = load_config(config)
    with tempfile.TemporaryDirectory() as tmp:
        with Workspace(config=cfg) as duck:
            t = time.perf_counter()
            duck.load()
            load_s = time.perf_counter() - t
            d_times, d_sum = timed_families(duck, a.reps)
            tables = {k: str(v) for k, v in duck.export_parquet(Path(tmp)).items()}
        print(f"DuckDB: load {load_s:.1f} s, families {sum(d_times.values()):.1f} s", flush=True)
        t = time.perf_counter()
        spark = spark_session(conf={"spark.driver.memory": a.driver_memory,
                                    "spark.sql.shuffle.partitions": a.partitions})
        start_s = time.perf_counter() - t
        ws = Workspace.on_engine(SparkEngine(spark, timezone=cfg.timezone), tables, config=cfg)
        slowest: list = []
        s_times, s_sum = timed_families(ws, a.reps, slowest)
        spark.stop()
    # the equality test's own comparison: integers, strings and nulls identical, floats to 1e-9
    # relative (the engines sum in another order)
    from tests.test_spark_equal import differences

    diff = differences(json_safe(d_sum), json_safe(s_sum))
    same = not diff
    rows = [{"family": f, "duckdb_s": round(d_times[f], 2), "spark_s": round(s_times[f], 2),
             "ratio": round(s_times[f] / d_times[f], 1) if d_times[f] else None} for f in d_times]
    total_d, total_s = sum(d_times.values()), sum(s_times.values())
    result = {"size": a.size, "events": events, "duckdb_load_s": round(load_s, 2),
              "spark_start_s": round(start_s, 2), "families": rows,
              "total_duckdb_s": round(total_d, 2), "total_spark_s": round(total_s, 2),
              "summaries_equal": same, "differences": diff[:50],
              "slowest_spark_statements": [{"s": round(d, 2), "family": f, "sql": q} for d, f, q in slowest[:15]]}
    (ROOT / "benchmarks" / f"spark_results_{a.size}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"| family | DuckDB (s) | Spark local (s) | Spark / DuckDB |  ({events:,} events, {a.size})")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['family']} | {r['duckdb_s']} | {r['spark_s']} | {r['ratio']} |")
    print(f"| **all families** | {total_d:.1f} | {total_s:.1f} | {total_s / total_d:.1f} |")
    print(f"Spark session start {start_s:.1f} s; DuckDB load {load_s:.1f} s; summaries equal: {same}")


if __name__ == "__main__":
    main()
