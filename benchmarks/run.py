"""`make bench`: generate scenarios, time load / run / the DuckDB floor / pandas, write BENCHMARKS.md.

    python benchmarks/run.py                   # 1M and 10M events, 3 repetitions
    python benchmarks/run.py --sizes 1m,10m,100m
    python benchmarks/run.py --sizes 10k --reps 1 --out /tmp/b --no-write   # smoke run

Each step runs in a fresh process (median of the repetitions; peak RSS is the largest seen).
100M events are the 10M scenario replicated ten times in DuckDB with distinct ids per copy
(the Python generator writes ~25k events/s, an hour for 100M); workspaces of 100M are
file-backed with a memory limit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = {"10k": (10, 450.0), "1m": (120, 3700.0), "10m": (365, 12300.0)}
PANDAS_MAX = 15_000_000
BIG_MEMORY_LIMIT = "2500MB"


def scenario(size: str, out: Path) -> tuple[Path, int]:
    """The Parquet scenario for a size (generated once), and its event count."""
    folder = out / size
    marker = folder / "events.json"
    if marker.exists():
        return folder / "audit.toml", json.loads(marker.read_text())["events"]
    if size == "100m":
        base, n = scenario("10m", out)
        replicate(base.parent, folder, 10)
        events = n * 10
    else:
        from capi_audit.synth import ScenarioParams, write_scenario

        days, opd = SIZES[size]
        p = ScenarioParams(days=days, orders_per_day=opd,
                           enable_day={"meta": days // 2, "google": min(days - 1, days // 2 + 7)})
        t = time.perf_counter()
        events = write_scenario(p, folder, fmt="parquet", truth=False)["events"]
        print(f"generated {size}: {events} events in {time.perf_counter() - t:.0f} s", flush=True)
    marker.write_text(json.dumps({"events": events}))
    return folder / "audit.toml", events


def replicate(src: Path, dest: Path, copies: int) -> None:
    """Write `copies` copies of a scenario with ids suffixed per copy (DuckDB COPY)."""
    import duckdb

    dest.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET memory_limit = '4GB'")
    ids = {"orders": ("order_id",), "pixel_events": ("order_id", "event_id"), "server_events": ("order_id", "event_id")}
    for table in ("orders", "pixel_events", "server_events", "platform_report"):
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{src / (table + '.parquet')}')").fetchall()]
        sel = ", ".join(
            f"CASE WHEN {c} IS NULL THEN NULL ELSE {c} || '-' || k END AS {c}" if c in ids.get(table, ()) else
            (f"conversions * {copies} AS conversions" if c == "conversions" else c) for c in cols)
        if table == "platform_report":
            con.execute(f"COPY (SELECT {sel} FROM read_parquet('{src / (table + '.parquet')}')) TO '{dest / (table + '.parquet')}' (FORMAT parquet)")
        else:
            con.execute(f"COPY (SELECT {sel} FROM read_parquet('{src / (table + '.parquet')}'), range({copies}) r(k)) "
                        f"TO '{dest / (table + '.parquet')}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)")
    (dest / "audit.toml").write_text((src / "audit.toml").read_text())
    print(f"replicated {src.name} x{copies} into {dest}", flush=True)


def step(name: str, config: Path, big: bool, tmp: Path) -> dict:
    """Run one step in a subprocess; return its JSON."""
    args = [sys.executable, str(ROOT / "benchmarks" / "step.py"), name, str(config)]
    if big:
        db = tmp / f"{name}.duckdb"
        for p in (db, Path(str(db) + ".wal")):
            p.unlink(missing_ok=True)
        args += ["--db", str(db), "--memory-limit", BIG_MEMORY_LIMIT]
    env = {**os.environ, "CAPI_AUDIT_PROGRESS": "0"}
    out = subprocess.run(args, check=True, capture_output=True, text=True, env=env, cwd=ROOT)
    if big:
        for p in tmp.glob(f"{name}.duckdb*"):
            p.unlink()
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> str:
    """One line describing this machine."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1]) // 1024 // 1024
    except (OSError, StopIteration):
        mem = 0
    import duckdb
    import pandas

    return (f"{cpu}, {os.cpu_count()} cores, {mem} GiB RAM; Python {platform.python_version()}, "
            f"DuckDB {duckdb.__version__}, pandas {pandas.__version__}")


def main() -> None:
    """Run the benchmark and write the results."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1m,10m")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench_data")
    ap.add_argument("--no-write", action="store_true", help="print results, do not write BENCHMARKS.md")
    ap.add_argument("--steps", default=None, help="only these steps, merged into benchmarks/results.json")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    saved = ROOT / "benchmarks" / "results.json"
    previous = {r["size"]: r for r in json.loads(saved.read_text())} if a.steps and saved.exists() else {}
    results = []
    for size in a.sizes.split(","):
        config, events = scenario(size, a.out)
        big = events > 20_000_000
        steps = ["bare_read", "load", "floor", "headline", "run"] + (["pandas"] if events <= PANDAS_MAX else [])
        if a.steps:
            steps = [s for s in steps if s in a.steps.split(",")]
        row: dict = {**previous.get(size, {}), "size": size, "events": events, "file_backed": big}
        for name in steps:
            runs = [step(name, config, big, a.out) for _ in range(a.reps if not big else 1)]
            row[name] = {"seconds": statistics.median(r["seconds"] for r in runs),
                         "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "reps": len(runs)}
            print(f"{size} {name}: {row[name]}", flush=True)
        results.append(row)
    if a.steps:
        done = {r["size"] for r in results}
        results = [r for r in previous.values() if r["size"] not in done] + results
        order = {k: i for i, k in enumerate(["10k", "1m", "10m", "100m"])}
        results.sort(key=lambda r: order.get(r["size"], 99))
    report = render(results, machine())
    print(report)
    if not a.no_write:
        (ROOT / "benchmarks" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        update_benchmarks_md(report)


def render(results: list[dict], mach: str) -> str:
    """The results table in Markdown."""
    lines = [f"Machine: {mach}", "",
             "| events | load (s) | bare reader (s) | load / bare | headline (s) | run (s) | DuckDB floor (s) | headline / floor | run / floor | pandas (s) | pandas / run | peak RSS run (MB) | peak RSS pandas (MB) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        pd_s = r.get("pandas", {}).get("seconds")
        run_s, floor_s, load_s, bare_s = (r[k]["seconds"] for k in ("run", "floor", "load", "bare_read"))
        head_s = r.get("headline", {}).get("seconds")
        head_cells = ("–", "–") if head_s is None else (f"{head_s:.1f}", f"{head_s / floor_s:.2f}")
        pandas_cell = "skipped" if pd_s is None else f"{pd_s:.1f}"
        ratio_cell = "–" if pd_s is None else f"{pd_s / run_s:.1f}"
        rss_pd = "–" if pd_s is None else f"{r['pandas']['peak_rss_mb']:,.0f}"
        label = f"{r['events']:,} ({r['size']}{', file-backed' if r['file_backed'] else ''})"
        lines.append(f"| {label} | {load_s:.1f} | {bare_s:.1f} | {load_s / bare_s:.2f} | {head_cells[0]} | {run_s:.1f} | "
                     f"{floor_s:.1f} | {head_cells[1]} | {run_s / floor_s:.2f} | {pandas_cell} | {ratio_cell} | "
                     f"{r['run']['peak_rss_mb']:,.0f} | {rss_pd} |")
    return "\n".join(lines)


def update_benchmarks_md(table: str) -> None:
    """Replace the generated results block in BENCHMARKS.md."""
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "<!-- results -->\n<!-- /results -->\n"
    head, _, rest = text.partition("<!-- results -->")
    _, _, tail = rest.partition("<!-- /results -->")
    path.write_text(f"{head}<!-- results -->\n{table}\n<!-- /results -->{tail}")


if __name__ == "__main__":
    main()

