"""A command stopped part-way (Ctrl-C, SIGTERM from a CI job's timeout, a failure while writing)
ends with one line and leaves nothing behind: no partial output folder, no spill folder.

Before: Ctrl-C printed a Python traceback; SIGTERM left DuckDB's spill folder (gigabytes on a large
load) in the temporary folder; `run` wrote straight into `--out`, so a failure in the charts left a
summary.json without its charts, and `run --out` into a folder with other files mixed them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_hostile import one_error, write_config

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "data_fixtures" / "scenario_main" / "audit.toml"


def _cli(capsys, *argv):
    from capi_audit.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _small(tmp_path: Path) -> Path:
    (tmp_path / "o.csv").write_text("order_id,created_at,value,currency\nA1,2026-03-01T10:00:00Z,5,EUR\n")
    return write_config(tmp_path, [{"table": "orders", "path": "o.csv"}])


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name or ".old-" in p.name)


def test_ctrl_c_during_run_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    import capi_audit.audit as audit

    def interrupted(ws):
        raise KeyboardInterrupt

    monkeypatch.setattr(audit, "compute", interrupted)
    code, _, err = _cli(capsys, "run", "--config", str(_small(tmp_path)), "--out", str(tmp_path / "out"))
    assert code == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("capi-audit: error: stopped"), err
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path) == []


def test_failure_while_writing_charts_leaves_no_partial_result(tmp_path, capsys, monkeypatch):
    import capi_audit.charts as charts

    def broken(result, folder):
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "half.png").write_bytes(b"x")
        raise OSError("disk full")

    monkeypatch.setattr(charts, "write_charts", broken)
    code, _, err = _cli(capsys, "run", "--config", str(_small(tmp_path)), "--out", str(tmp_path / "out"))
    assert code == 2 and "disk full" in err
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path) == []


def test_a_failed_rerun_keeps_the_previous_result(tmp_path, capsys, monkeypatch):
    import capi_audit.charts as charts

    cfg, out = _small(tmp_path), tmp_path / "out"
    assert _cli(capsys, "run", "--config", str(cfg), "--out", str(out), "--no-charts")[0] == 0
    before = (out / "summary.json").read_text()
    monkeypatch.setattr(charts, "write_charts", lambda result, folder: (_ for _ in ()).throw(OSError("disk full")))
    assert _cli(capsys, "run", "--config", str(cfg), "--out", str(out))[0] == 2
    assert (out / "summary.json").read_text() == before
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("command, option", [("run", "--out"), ("export", "--to"), ("report", "--out")])
def test_an_output_folder_with_other_content_is_refused(tmp_path, capsys, command, option):
    # the finished output replaces the folder whole: a folder holding other files is never used
    cfg = _small(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    argv = [command, "--config", str(cfg), option, str(tmp_path / "mine")]
    one_error(*_cli(capsys, *argv)[::2], option, "other content")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_export_is_written_whole(tmp_path, capsys):
    cfg = _small(tmp_path)
    code, out, err = _cli(capsys, "export", "--config", str(cfg), "--to", str(tmp_path / "tables"))
    assert code == 0, err
    assert (tmp_path / "tables" / "orders.parquet").is_file()
    assert str(tmp_path / "tables" / "orders.parquet") in out  # the final path, not the temporary one
    assert _leftovers(tmp_path) == []
    # a second export replaces the first
    assert _cli(capsys, "export", "--config", str(cfg), "--to", str(tmp_path / "tables"))[0] == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_run_ends_in_one_line_and_removes_the_spill_folder(tmp_path, sig):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "out"
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "capi_audit.cli", "run", "--config", str(MAIN), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    # wait until the load has started (its spill folder exists), then stop it
    deadline = time.monotonic() + 60
    while not any(tmp.glob("capi_audit_spill_*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:  # finished before the signal arrived: a complete result
        assert (out / "summary.json").is_file()
    else:
        assert proc.returncode == 130, err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("capi-audit: error: stopped"), err
        assert not out.exists()
    assert _leftovers(tmp_path) == []
    assert list(tmp.iterdir()) == []


def test_the_library_never_replaces_a_folder_holding_other_files(tmp_path):
    # run_audit writes its folder whole and moves it into place: named a project folder, it would
    # have moved the project away and deleted it
    from capi_audit.audit import run_audit
    from capi_audit.errors import ConfigError

    cfg = _small(tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    (project / "analysis.ipynb").write_text("{}")
    with pytest.raises(ConfigError, match="other content"):
        run_audit(cfg, project, charts=False)
    assert (project / "analysis.ipynb").read_text() == "{}"
    run_audit(cfg, tmp_path / "result", charts=False)
    run_audit(cfg, tmp_path / "result", charts=False)  # a previous result is replaced
    assert (tmp_path / "result" / "summary.json").is_file()
