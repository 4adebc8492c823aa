"""Shared helpers for tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from capi_audit import Workspace
from capi_audit.config import config_from_dict

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "samples"


def write(path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write dedented text to path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding=encoding)
    return path


def load_one(tmp_path: Path, table: str, name: str, text: str | bytes, *, tz: str = "UTC",
             platform: str | None = None, columns: dict | None = None) -> Workspace:
    """Write one file and load it into a fresh workspace."""
    f = tmp_path / name
    if isinstance(text, bytes):
        f.write_bytes(text)
    else:
        write(f, text)
    src = {"table": table, "path": name}
    if platform:
        src["platform"] = platform
    if columns:
        src["columns"] = columns
    cfg = config_from_dict({"audit": {"timezone": tz}, "sources": [src]}, path=tmp_path / "audit.toml")
    ws = Workspace(config=cfg)
    ws.load()
    return ws


@pytest.fixture
def samples() -> Path:
    """The shared real-world samples folder (skips when absent)."""
    if not SAMPLES.is_dir():
        pytest.skip("../shared/samples not present")
    return SAMPLES


# Session fixtures computed once per process. Under pytest-xdist (`-n 2 --dist loadgroup`) every
# test using one of them runs on the same worker, so each is still computed once (the Spark JVM
# starts once); the other worker takes the rest of the suite.
SHARED = {"spark", "fixture_audit", "spark_main_audit", "second_report"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SHARED & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("shared"))


# Bootstrap replicates of the shared fixture audits below (test_spark_equal runs Spark with the same).
AUDIT_REPS = 200


class FixtureAudit:
    """One committed fixture loaded into DuckDB and audited once per test run: the workspace stays
    open (tests read more from it), the result is written to a folder, every distinct statement
    the audit ran is kept (tests/test_portability.py), and the canonical tables are exported to
    Parquet on first use (the starting point of the Spark tests)."""

    def __init__(self, name: str, folder: Path):
        import json

        from capi_audit.audit import compute
        from capi_audit.config import load_config

        self.name = name
        self.config = load_config(ROOT / "data_fixtures" / name / "audit.toml")
        self.truth = json.loads((ROOT / "data_fixtures" / name / "truth.json").read_text())
        self.ws = Workspace(config=self.config)
        self.ws.load()
        seen: list[str] = []
        listener = lambda sql, rendered: seen.append(sql)  # noqa: E731
        self.ws.engine.listeners.append(listener)
        self.result = compute(self.ws, bootstrap_reps=AUDIT_REPS)
        self.ws.engine.listeners.remove(listener)
        self.statements = list(dict.fromkeys(seen))
        self.folder = folder
        self.out = folder / "result"
        self.result.write(self.out)
        self._tables: dict[str, str] | None = None

    def parquet(self) -> dict[str, str]:
        """The canonical tables and the load accounting as Parquet files: table -> path."""
        if self._tables is None:
            self._tables = {t: str(p) for t, p in self.ws.export_parquet(self.folder / "canonical").items()}
        return self._tables


@pytest.fixture(scope="session")
def fixture_audit(tmp_path_factory):
    """fixture_audit("scenario_main") -> FixtureAudit, computed on first use and shared by every
    module (the truth, result, chart, pandas-reference, portability and Spark tests)."""
    done: dict[str, FixtureAudit] = {}

    def get(name: str) -> FixtureAudit:
        if name not in done:
            done[name] = FixtureAudit(name, tmp_path_factory.mktemp(name))
        return done[name]

    yield get
    for audit in done.values():
        audit.ws.close()


@pytest.fixture(scope="session")
def spark_main_audit(spark, fixture_audit):  # noqa: F811  (spark: the session fixture imported below)
    """scenario_main audited on Spark local once per run, from the Parquet export of conftest's
    DuckDB audit: the summary (tests/test_spark_equal.py), the optimized and physical plan of
    every statement and the estimated sizes of the small relations held in Python
    (tests/test_spark_plans.py)."""
    from capi_audit.audit import compute
    from capi_audit.engine import SparkEngine

    duck = fixture_audit("scenario_main")
    engine = SparkEngine(spark, timezone=duck.config.timezone)
    plans: list[tuple[str, str, str]] = []   # (statement head, optimized plan, physical plan)
    original = engine._frame

    def frame(sql, params):
        f = original(sql, params)
        qe = f._jdf.queryExecution()
        plans.append((" ".join(sql.split())[:100], qe.optimizedPlan().toString(), qe.executedPlan().toString()))
        return f

    engine._frame = frame
    with Workspace.on_engine(engine, duck.parquet(), config=duck.config) as ws:
        summary = compute(ws, bootstrap_reps=AUDIT_REPS).summary
        sizes = {name: int(str(spark.table(name)._jdf.queryExecution().optimizedPlan().stats().sizeInBytes()))
                 for name in ("u_params", "u_classes", "u_one_actions")}
    return {"summary": summary, "plans": plans, "sizes": sizes}


@pytest.fixture(scope="session")
def second_report(tmp_path_factory) -> Path:
    """`capi-audit report --config` on the scenario_second fixture (DuckDB), once per test run:
    the report tests and the Spark equality test (its DuckDB side) share it."""
    from capi_audit.cli import main

    out = tmp_path_factory.mktemp("report") / "out"
    assert main(["report", "--config", str(ROOT / "data_fixtures" / "scenario_second" / "audit.toml"),
                 "--out", str(out)]) == 0
    return out


from tests.spark_support import spark  # noqa: E402,F401  (session fixture: Spark local, or skip)
