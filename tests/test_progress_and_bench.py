"""The progress indicator stays silent where it must; the benchmark script runs at a tiny size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from capi_audit import progress

ROOT = Path(__file__).resolve().parents[1]


def test_progress_silent_in_ci_and_when_disabled(monkeypatch, capsys):
    monkeypatch.setenv("CI", "true")
    assert not progress.enabled()
    monkeypatch.delenv("CI")
    monkeypatch.setenv("CAPI_AUDIT_PROGRESS", "0")
    assert not progress.enabled()
    monkeypatch.setenv("CAPI_AUDIT_PROGRESS", "1")
    p = progress.Progress("x")
    p.start -= 100  # pretend the run has been going for a while
    with p.step("loading"):
        pass
    assert "[x] loading" in capsys.readouterr().err


def test_progress_prints_nothing_for_quick_runs(monkeypatch, capsys):
    monkeypatch.setenv("CAPI_AUDIT_PROGRESS", "1")
    monkeypatch.delenv("CI", raising=False)
    with progress.Progress("x").step("quick"):
        pass
    assert capsys.readouterr().err == ""


def test_benchmark_smoke(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--sizes", "10k", "--reps", "1",
                          "--out", str(tmp_path), "--no-write"], capture_output=True, text=True, check=True, cwd=ROOT)
    assert "| events | load (s)" in out.stdout and "(10k)" in out.stdout
    assert json.loads((tmp_path / "10k" / "events.json").read_text())["events"] > 5000
