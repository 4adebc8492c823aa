"""The Spark plans (and seconds) of the audit's statements, for the exported tables of one size.

    python benchmarks/spark_plans.py --out /work/bench_data --size 1m --match "WITH ua AS" --plans /tmp/plans
    python benchmarks/spark_plans.py --out /work/bench_data --size 1m --families linkage,dedup

Runs the registered families on Spark (as benchmarks/spark.py does, on <out>/<size>_tables) up to
the last family named in --families (all by default), times every statement, and for each statement
whose text contains one of the --match strings writes its formatted physical plan
(`explain("formatted")`, before adaptive execution re-plans) to --plans/<n>.txt. Prints the
statements slower than --min seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1m")
    ap.add_argument("--out", type=Path, default=ROOT / "bench_data")
    ap.add_argument("--families", default="", help="comma-separated; stops after the last one named")
    ap.add_argument("--match", action="append", default=[], help="write the plans of statements containing this")
    ap.add_argument("--plans", type=Path, default=Path("/tmp/plans"))
    ap.add_argument("--min", type=float, default=2.0)
    ap.add_argument("--driver-memory", default="4g")
    ap.add_argument("--partitions", default="4")
    a = ap.parse_args()

    from benchmarks.run import scenario
    from capi_audit import metrics
    from capi_audit.config import load_config
    from capi_audit.engine import SparkEngine, spark_session
    from capi_audit.workspace import Workspace

    config, _ = scenario(a.size, a.out)
    cfg = load_config(config)
    tables = json.loads((a.out / f"{a.size}_tables" / "tables.json").read_text())
    spark = spark_session(conf={"spark.driver.memory": a.driver_memory, "spark.sql.shuffle.partitions": a.partitions})
    engine = SparkEngine(spark, timezone=cfg.timezone)
    ws = Workspace.on_engine(engine, tables, config=cfg)
    a.plans.mkdir(parents=True, exist_ok=True)
    original = engine._frame

    def frame(sql, params):
        f = original(sql, params)
        flat = " ".join(sql.split())
        if any(m in flat for m in a.match):
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                f.explain("formatted")
            n = len(list(a.plans.glob("*.txt")))
            (a.plans / f"{n:03d}.txt").write_text(flat + "\n\n" + engine.render(sql) + "\n\n" + buf.getvalue())
            print(f"plan {n:03d}: {flat[:100]}", flush=True)
        return f

    engine._frame = frame
    marks: list = []
    current = [""]
    engine.listeners.append(lambda sql, _: marks.append((time.perf_counter(), current[0], " ".join(sql.split())[:160])))
    wanted = [f for f in a.families.split(",") if f]
    for fam in metrics.FAMILIES:
        current[0] = fam.name
        t = time.perf_counter()
        fam.run(ws, bootstrap_reps=50)
        print(f"{fam.name}: {time.perf_counter() - t:.1f} s", flush=True)
        if wanted and fam.name == wanted[-1]:
            break
    marks.append((time.perf_counter(), "", ""))
    for d, f, q in sorted(((b[0] - x[0], x[1], x[2]) for x, b in zip(marks, marks[1:], strict=False)), reverse=True):
        if d >= a.min:
            print(f"{d:7.1f} {f:16} {q}")
    spark.stop()


if __name__ == "__main__":
    main()
