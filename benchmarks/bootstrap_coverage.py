"""How often does the day-block bootstrap CI of the capture-rate change cover the planted truth?

The planted truth is the capture-rate change of the generating process, estimated from one very
large scenario with the same parameters (sampling error negligible). Then many small scenarios
with other seeds are audited and the share whose 95% CI contains that truth is reported.

    python benchmarks/bootstrap_coverage.py --reps 100
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

from capi_audit import Workspace, load_config, stats
from capi_audit.metrics import recovery
from capi_audit.synth import ScenarioParams, write_scenario

BASE = ScenarioParams(days=56, orders_per_day=40.0, enable_day={"meta": 28, "google": 28},
                      customer_pool=5000, platforms=("meta",))


def capture_change(params: ScenarioParams, folder: Path, reps: int, block: int) -> tuple[float, list]:
    """Audit one scenario: (c_post - c_pre, [ci_low, ci_high])."""
    write_scenario(params, folder, truth=False)
    ws = Workspace()
    ws.load(load_config(folder / "audit.toml"))
    frame = recovery(ws, bootstrap_reps=10)[0]
    pre, post = frame[frame["period"] == "pre"], frame[frame["period"] == "post"]
    c_pre = pre["reported"].sum() / pre["orders"].sum()
    c_post = post["reported"].sum() / post["orders"].sum()
    ci = stats.block_bootstrap_ci(pre["reported"].to_numpy(float), pre["orders"].to_numpy(float),
                                  post["reported"].to_numpy(float), post["orders"].to_numpy(float),
                                  block=block, reps=reps)
    return c_post - c_pre, list(ci)


def main() -> None:
    """Run the coverage experiment and print a JSON result."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=100, help="small scenarios audited")
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap resamples per CI")
    ap.add_argument("--block", type=int, default=3, help="block length in days")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        big = dataclasses.replace(BASE, orders_per_day=BASE.orders_per_day * 40, seed=1)
        truth, _ = capture_change(big, Path(tmp) / "big", 10, args.block)
        hits, widths = 0, []
        for i in range(args.reps):
            est, (lo, hi) = capture_change(dataclasses.replace(BASE, seed=1000 + i), Path(tmp) / f"s{i}", args.boot,
                                           args.block)
            hits += lo <= truth <= hi
            widths.append(hi - lo)
    print(json.dumps({"truth_capture_rate_change": truth, "replications": args.reps, "block": args.block,
                      "coverage": hits / args.reps, "nominal": 0.95,
                      "mean_ci_width": sum(widths) / len(widths)}, indent=2))


if __name__ == "__main__":
    main()
