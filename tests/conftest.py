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
