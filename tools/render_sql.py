"""Print every statement an audit runs, rendered for a dialect (duckdb, spark, bigquery).

    python tools/render_sql.py --config data_fixtures/scenario_main/audit.toml --dialect bigquery

The audit runs on DuckDB (loading the config's sources); each metric statement is captured as
written and printed as capi_audit.sql.render makes it for the dialect. For BigQuery this is the
compile target described in docs/scale.md (untested against the service).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--dialect", default="bigquery", choices=("duckdb", "spark", "bigquery"))
    a = ap.parse_args()
    from capi_audit import audit
    from capi_audit.config import load_config
    from capi_audit.sql import render
    from capi_audit.workspace import Workspace

    seen: list[str] = []
    with Workspace(config=load_config(a.config)) as ws:
        ws.load()
        ws.engine.listeners.append(lambda sql, rendered: seen.append(sql))
        audit.compute(ws, bootstrap_reps=20)
    for sql in dict.fromkeys(seen):
        print(render(sql, a.dialect) + ";\n")


if __name__ == "__main__":
    main()
