"""The exported report on the second scenario: notebooks run by papermill with its parameters."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from capi_audit.cli import main
from capi_audit.report import NOTEBOOKS

FIXTURE = Path(__file__).resolve().parents[1] / "data_fixtures" / "scenario_second" / "audit.toml"
PII = [re.compile(r"c\d+@example\.com"), re.compile(r"\+49 ?151"), re.compile(r"\b81\.\d+\.\d+\.\d+\b"),
       re.compile(r"2a02:810d"), re.compile(r"python-requests")]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert main(["report", "--config", str(FIXTURE), "--out", str(out)]) == 0
    return out


def test_report_files(report):
    assert (report / "index.html").exists()
    summary = json.loads((report / "summary.json").read_text())
    assert summary["load"]["orders"]["rows_rejected"] == 0
    index = (report / "index.html").read_text()
    for name, _ in NOTEBOOKS:
        page = report / f"{name}.html"
        assert page.exists() and f'href="{name}.html"' in index
        text = page.read_text()
        assert "nb.audit(config)" not in text  # code hidden
        assert "Traceback" not in text
    pngs, svgs = sorted((report / "charts").glob("*.png")), sorted((report / "charts").glob("*.svg"))
    assert len(pngs) == len(svgs) >= 18


def test_every_chart_cell_shows_its_figure(report):
    root = Path(__file__).resolve().parents[1] / "notebooks"
    for name, _ in NOTEBOOKS:
        nb = json.loads((root / f"{name}.ipynb").read_text())
        chart_cells = sum(1 for c in nb["cells"] if c["cell_type"] == "code" and "charts.plot" in "".join(c["source"]))
        images = (report / f"{name}.html").read_text().count("data:image/png;base64")
        assert images >= chart_cells, (name, images, chart_cells)


def test_second_scenario_figures_reach_the_notebooks(report):
    summary = json.loads((report / "summary.json").read_text())
    both = summary["dedup"]["meta"]["Purchase"]["both"]
    assert f"{both:,}" in (report / "02_dedup.html").read_text()


def test_no_raw_personal_data_anywhere(report):
    for path in report.rglob("*"):
        if path.suffix in (".html", ".json", ".svg"):
            text = path.read_text(errors="ignore")
            for pat in PII:
                assert not pat.search(text), (path.name, pat.pattern)
