"""DuckDB vs Spark local, per metric family, on one synthetic scenario.

    python benchmarks/spark.py --size 10k            # smoke size
    python benchmarks/spark.py --size 1m --out /work/bench_data
    python benchmarks/spark.py --size 10m --out /work/bench_data --only duckdb
    python benchmarks/spark.py --size 10m --out /work/bench_data --only spark --driver-memory 8g

The scenario is generated as Parquet once (benchmarks/run.py's sizes, in <out>/<size>), loaded in
DuckDB and exported to Parquet in <out>/<size>_tables (the engine boundary; kept, so the two sides
can run in separate processes on the same tables). Then every registered family is timed on DuckDB
and on Spark local (the session of capi_audit.engine.spark_session, local[2]) in registry order, so
each family pays for the derived relations it is the first to build, as in a real run. Spark's
session start-up is reported apart.

Results go to benchmarks/spark_results_<size>.json (or --json), rewritten after the DuckDB side and
after every Spark family, so a run cut short keeps what it measured. Each side records the 1-minute
load average at its start and end (the machine is shared: the ratio moves with what else runs).
The DuckDB summary is kept in <out>/<size>_tables/duckdb_summary.json; once both sides ran, the
summaries are compared as tests/test_spark_equal.py does and the slowest Spark statements listed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load1() -> float:
    """The 1-minute load average (the machine is shared)."""
    return round(os.getloadavg()[0], 2)


def timed_families(ws, reps: int, slowest: list | None = None, on_family=None) -> tuple[dict[str, float], dict]:
    """Seconds per family (registry order) and the summary sections. With `slowest`, it receives
    (seconds, family, statement head) for every statement (time from one statement's start to the
    next one's: execution plus the Python between them). `on_family(times, summary, slowest)` is
    called after each family."""
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
            stamps = marks + [(time.perf_counter(), "", "")]
            slowest[:] = sorted(((b[0] - a[0], a[1], a[2]) for a, b in zip(stamps, stamps[1:], strict=False)),
                                reverse=True)
        if on_family is not None:
            on_family(times, summary)
    return times, summary


class Results:
    """The JSON file of one size, rewritten after every measured step."""

    def __init__(self, path: Path, size: str) -> None:
        self.path = path
        old = json.loads(path.read_text()) if path.exists() else {}
        self.data = old if old.get("size") == size else {"size": size}
        self.side = ""

    def save(self) -> None:
        # the other side may run in another process at the same time: keep what it wrote
        if self.path.exists():
            disk = json.loads(self.path.read_text())
            if disk.get("size") == self.data.get("size"):
                for side in ("duckdb", "spark"):
                    if side != self.side and side in disk:
                        self.data[side] = disk[side]
                for k in ("summaries_equal", "differences"):
                    if k in disk and k not in self.data:
                        self.data[k] = disk[k]
        d = self.data
        duck, spark = d.get("duckdb", {}).get("families", {}), d.get("spark", {}).get("families", {})
        d["families"] = [{"family": f, "duckdb_s": duck.get(f), "spark_s": spark.get(f),
                          "ratio": round(spark[f] / duck[f], 1) if duck.get(f) and f in spark else None}
                         for f in list(duck) + [f for f in spark if f not in duck]]
        both = [f for f in duck if f in spark]
        if both:
            d["total_duckdb_s"] = round(sum(duck[f] for f in both), 2)
            d["total_spark_s"] = round(sum(spark[f] for f in both), 2)
            d["ratio"] = round(d["total_spark_s"] / d["total_duckdb_s"], 1) if d["total_duckdb_s"] else None
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(d, indent=2) + "\n")
        tmp.replace(self.path)


def run_duckdb(a, cfg, tables_dir: Path, res: Results) -> None:
    from capi_audit.workspace import Workspace

    res.side = "duckdb"
    side = res.data["duckdb"] = {"load1_start": load1(), "families": {}, "complete": False}
    res.save()
    reuse = bool(a.reuse_db and a.db and Path(a.db).exists())
    if a.db and not reuse:
        Path(a.db).unlink(missing_ok=True)
    with Workspace(a.db, config=cfg, memory_limit=a.memory_limit) as duck:
        if reuse:  # loaded before by `capi-audit load --db` (its time and memory measured there)
            side["load_s"] = None
            side["reused_db"] = True
        else:
            t = time.perf_counter()
            duck.load()
            side["load_s"] = round(time.perf_counter() - t, 2)
        res.save()
        # exported before the families are timed, so that the Spark side (--only spark) can start
        # on the tables while DuckDB runs (on a shared machine: the load averages say how shared)
        marker = tables_dir / "tables.json"
        if not marker.exists():
            t = time.perf_counter()
            tables = {k: str(v) for k, v in duck.export_parquet(tables_dir).items()}
            marker.write_text(json.dumps(tables, indent=2) + "\n")
            side["export_s"] = round(time.perf_counter() - t, 2)
            res.save()
        side["load1_families_start"] = load1()

        def saved(times, summary):
            side["families"] = {f: round(s, 2) for f, s in times.items()}
            res.save()

        _, summary = timed_families(duck, a.reps, on_family=saved)
        side["load1_end"] = load1()
        side["complete"] = True
        res.save()
    from capi_audit.audit import json_safe

    (tables_dir / "duckdb_summary.json").write_text(json.dumps(json_safe(summary), indent=1, sort_keys=True) + "\n")
    compare(tables_dir, res)
    print(f"DuckDB: load {side['load_s']} s, families {sum(side['families'].values()):.1f} s", flush=True)


def run_spark(a, cfg, tables_dir: Path, res: Results) -> None:
    from capi_audit.audit import json_safe
    from capi_audit.engine import SparkEngine, spark_session
    from capi_audit.workspace import Workspace

    marker = tables_dir / "tables.json"
    waited = time.perf_counter()
    while not marker.exists():  # the DuckDB side (another process) may still be loading
        if time.perf_counter() - waited > a.wait:
            sys.exit(f"no exported tables in {tables_dir}: run the DuckDB side first (--only duckdb)")
        time.sleep(10)
    tables = json.loads(marker.read_text())
    res.side = "spark"
    side = res.data["spark"] = {"load1_start": load1(), "driver_memory": a.driver_memory,
                                "partitions": a.partitions, "families": {}, "complete": False}
    res.save()
    t = time.perf_counter()
    spark = spark_session(conf={"spark.driver.memory": a.driver_memory,
                                "spark.sql.shuffle.partitions": a.partitions})
    side["start_s"] = round(time.perf_counter() - t, 2)
    ws = Workspace.on_engine(SparkEngine(spark, timezone=cfg.timezone), tables, config=cfg)
    slowest: list = []

    def saved(times, summary):
        side["families"] = {f: round(s, 2) for f, s in times.items()}
        side["slowest_statements"] = [{"s": round(d, 2), "family": f, "sql": q} for d, f, q in slowest[:20]]
        res.save()
        print(f"spark {list(times)[-1]}: {list(times.values())[-1]:.1f} s (load {load1()})", flush=True)

    try:
        _, summary = timed_families(ws, a.reps, slowest, on_family=saved)
    finally:
        side["load1_end"] = load1()
        res.save()
        spark.stop()
    side["complete"] = True
    (tables_dir / "spark_summary.json").write_text(json.dumps(json_safe(summary), indent=1, sort_keys=True) + "\n")
    compare(tables_dir, res)


def compare(tables_dir: Path, res: Results) -> None:
    """Once both sides ran: the equality test's own comparison (integers, strings and nulls
    identical, floats to 1e-9 relative: the engines sum in another order)."""
    from tests.test_spark_equal import differences

    d, s = tables_dir / "duckdb_summary.json", tables_dir / "spark_summary.json"
    if d.exists() and s.exists():
        diff = differences(json.loads(d.read_text()), json.loads(s.read_text()))
        res.data["summaries_equal"] = not diff
        res.data["differences"] = diff[:50]
    res.save()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="10k", help="10k, 1m or 10m (benchmarks/run.py sizes)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench_data",
                    help="scenario folder (<out>/<size>) and exported tables (<out>/<size>_tables)")
    ap.add_argument("--only", choices=("duckdb", "spark"), help="run one side (the other's results are kept)")
    ap.add_argument("--json", type=Path, help="results file (default benchmarks/spark_results_<size>.json)")
    ap.add_argument("--reps", type=int, default=200, help="bootstrap repetitions (Python side, same on both)")
    ap.add_argument("--driver-memory", default="4g", help="Spark driver memory (local mode: the whole JVM)")
    ap.add_argument("--partitions", default="4", help="spark.sql.shuffle.partitions")
    ap.add_argument("--db", help="DuckDB side: a file-backed workspace (recreated) instead of one in memory")
    ap.add_argument("--memory-limit", help="DuckDB side: memory_limit (e.g. 6GB); the 10M load in memory "
                                           "took 23.5 GB and was killed on a 24 GB machine")
    ap.add_argument("--reuse-db", action="store_true",
                    help="DuckDB side: with --db naming a file `capi-audit load --db` filled, time the "
                         "families on it without loading again")
    ap.add_argument("--wait", type=float, default=0, help="--only spark: seconds to wait for the exported tables")
    a = ap.parse_args()

    from benchmarks.run import scenario
    from capi_audit.config import load_config

    config, events = scenario(a.size, a.out)
    cfg = load_config(config)
    tables_dir = a.out / f"{a.size}_tables"
    tables_dir.mkdir(parents=True, exist_ok=True)
    res = Results(a.json or ROOT / "benchmarks" / f"spark_results_{a.size}.json", a.size)
    res.data["events"] = events
    if a.only != "spark":
        run_duckdb(a, cfg, tables_dir, res)
    if a.only != "duckdb":
        run_spark(a, cfg, tables_dir, res)
    d = res.data
    print(f"| family | DuckDB (s) | Spark local (s) | Spark / DuckDB |  ({events:,} events, {a.size})")
    print("|---|---|---|---|")
    for r in d["families"]:
        print(f"| {r['family']} | {r['duckdb_s']} | {r['spark_s']} | {r['ratio']} |")
    if "total_spark_s" in d:
        print(f"| **all families** | {d['total_duckdb_s']:.1f} | {d['total_spark_s']:.1f} | {d['ratio']} |")
    print(f"summaries equal: {d.get('summaries_equal')}; load average (1 min) duckdb "
          f"{d.get('duckdb', {}).get('load1_start')}→{d.get('duckdb', {}).get('load1_end')}, spark "
          f"{d.get('spark', {}).get('load1_start')}→{d.get('spark', {}).get('load1_end')}")


if __name__ == "__main__":
    main()
