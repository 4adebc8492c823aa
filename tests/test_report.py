"""The report: rendered from one result, every section on every shape of input, never a traceback.

The fixture report (scenario_second) runs the real pipeline once; the config matrix runs
`capi-audit report` on small variants of a short synthetic scenario (a few days), one per shape of
input that crashed the v1 report (README example, Google only, no send time, orders without
consent, conversion_event = "purchase") and more.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from capi_audit.cli import main
from capi_audit.metrics import FAMILIES
from capi_audit.result import AuditResult

FIXTURE = Path(__file__).resolve().parents[1] / "data_fixtures" / "scenario_second" / "audit.toml"
PII = [re.compile(r"c\d+@example\.com"), re.compile(r"\+49 ?151"), re.compile(r"\b81\.\d+\.\d+\.\d+\b"),
       re.compile(r"2a02:810d"), re.compile(r"python-requests")]
PAGES = ["index", *(f.name for f in FAMILIES)]


def _strip_images(text: str) -> str:
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)


def assert_clean_page(text: str) -> None:
    """No traceback, no NaN, no raw Python reprs, no script from anywhere."""
    body = _strip_images(text)
    assert "Traceback" not in body and "Error" not in body
    assert not re.search(r"\bnan\b|\bNaN\b|\bNone\b", body)
    assert not re.search(r"<IPython|object at 0x|\{'|\['|DataFrame|dtype", body)
    assert "<script" not in body.lower()
    assert not re.search(r"src=\"https?:", body)


@pytest.fixture(scope="module")
def report(second_report):
    """The scenario_second report (conftest: rendered once per run, shared with test_spark_equal)."""
    return second_report


def test_report_files_and_navigation(report):
    for name in PAGES:
        page = report / f"{name}.html"
        assert page.exists(), name
        text = page.read_text()
        assert_clean_page(text)
        for other in PAGES:  # every page links every other page
            assert f'href="{other}.html"' in text
    assert AuditResult.read(report).summary == json.loads((report / "summary.json").read_text())
    pngs, svgs = sorted((report / "charts").glob("*.png")), sorted((report / "charts").glob("*.svg"))
    assert len(pngs) == len(svgs) >= 15
    assert not list(report.parent.glob(".*partial*"))


def test_charts_have_captions_not_file_names(report):
    text = (report / "dedup.html").read_text()
    assert "<figcaption>Meta: What the platform counts per day" in text
    assert "meta_dedup_daily</figcaption>" not in text


def _leaves(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    else:
        yield path, node


def _int_leaves(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _int_leaves(v, (*path, k))
    elif isinstance(node, int) and not isinstance(node, bool):
        yield path, node


def test_report_shows_every_count_of_the_summary(report):
    """Every integer of every section of summary.json is on that section's page, formatted."""
    summary = json.loads((report / "summary.json").read_text())
    checked = 0
    for fam in FAMILIES:
        page = (report / f"{fam.name}.html").read_text()
        for path, v in _int_leaves(summary[fam.name]):
            assert f"<td>{v:,}</td>" in page, (fam.name, path, v)
            checked += 1
    assert checked > 200
    from capi_audit.fmt import is_share, pct

    shares = 0
    for fam in FAMILIES:  # and every share, as a percentage
        page = (report / f"{fam.name}.html").read_text()
        for path, v in _leaves(summary[fam.name]):
            if isinstance(v, float) and is_share(path[-1]):
                assert f"<td>{pct(v)}</td>" in page, (fam.name, path, v)
                shares += 1
    assert shares > 50
    cov = summary["dedup"]["meta"]["Purchase"]["event_coverage"]
    assert f"<td>{100 * cov:.1f} %</td>" in (report / "dedup.html").read_text()


def test_index_has_window_headline_and_ranked_findings(report):
    text = (report / "index.html").read_text()
    assert "Audit window" in text and "America/New_York" in text and "2026-09-14 to 2026-10-25" in text
    assert "Findings, most costly first" in text
    sev = re.findall(r'<tr class="sev-(\w+)">', text)
    order = ["high", "medium", "low", "info"]
    assert sev and [order.index(s) for s in sev] == sorted(order.index(s) for s in sev)
    assert "conversions/day" in text


def test_no_raw_personal_data_anywhere(report):
    for path in report.rglob("*"):
        if path.suffix in (".html", ".json", ".svg"):
            text = path.read_text(errors="ignore")
            for pat in PII:
                assert not pat.search(text), (path.name, pat.pattern)


def test_report_from_an_existing_result_renders_the_same_numbers(report, tmp_path):
    out = tmp_path / "again"
    assert main(["report", "--result", str(report), "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text()) == json.loads((report / "summary.json").read_text())
    assert _strip_images((out / "dedup.html").read_text()) == _strip_images((report / "dedup.html").read_text())


# -- the config matrix ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A short scenario (8 days, both platforms) in canonical and real-world formats."""
    from capi_audit.synth import ScenarioParams, write_scenario

    root = tmp_path_factory.mktemp("small")
    write_scenario(ScenarioParams(days=8, orders_per_day=12, seed=11, enable_day={"meta": 4, "google": 5}),
                   root, truth=False, real=True)
    return root


ENABLED = '[capi_enabled_at]\nmeta = "2026-02-05T00:00:00+01:00"\ngoogle = "2026-02-06T00:00:00+01:00"\n'


def _config(folder: Path, tables: dict[str, pd.DataFrame | None], *, audit: str = "", enabled: str = ENABLED) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ['[audit]\ntimezone = "Europe/Berlin"\n' + audit, enabled]
    for table, frame in tables.items():
        if frame is None:
            continue
        frame.to_csv(folder / f"{table}.csv", index=False)
        lines.append(f'[[sources]]\ntable = "{table}"\npath = "{table}.csv"\nformat = "canonical"\n')
    path = folder / "audit.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _variant(small: Path, name: str, tmp: Path) -> Path:
    t = {k: pd.read_csv(small / f"{k}.csv", dtype=str, keep_default_na=False)
         for k in ("orders", "pixel_events", "server_events", "platform_report")}
    folder = tmp / name
    if name == "readme_example":  # Meta CAPI logs + Shopify orders, no platform report
        real = small / "real"
        folder.mkdir()
        path = folder / "audit.toml"
        path.write_text(f'[audit]\ntimezone = "Europe/Berlin"\nconversion_event = "Purchase"\n\n'
                        f'[capi_enabled_at]\nmeta = "2026-02-05T00:00:00+01:00"\n\n'
                        f'[[sources]]\ntable = "server_events"\npath = "{real / "meta_capi_requests.jsonl"}"\n'
                        f'format = "meta_capi_payload"\n\n'
                        f'[[sources]]\ntable = "orders"\npath = "{real / "shopify_orders.csv"}"\n'
                        f'format = "shopify_orders"\n', encoding="utf-8")
        return path
    if name in ("google_only", "meta_only"):
        plat = name.split("_")[0]
        return _config(folder, {k: (v[v.platform == plat] if "platform" in v else v) for k, v in t.items()})
    if name == "no_sent_at":
        t["server_events"] = t["server_events"].drop(columns=["sent_at"])
        return _config(folder, t)
    if name == "orders_without_consent":
        t["orders"] = t["orders"].drop(columns=["consent_ads"])
        return _config(folder, t)
    if name == "no_orders":
        return _config(folder, {**t, "orders": None})
    if name == "no_platform_report":
        return _config(folder, {**t, "platform_report": None})
    if name == "conversion_event_purchase":
        return _config(folder, t, audit='conversion_event = "purchase"\n')
    if name == "second_destination":
        for k in ("pixel_events", "server_events"):
            t[k]["destination"] = ["pixel-A" if i % 3 else "pixel-B" for i in range(len(t[k]))]
        return _config(folder, t)
    if name == "no_enable_time":
        return _config(folder, t, enabled="")
    if name == "server_events_only":
        return _config(folder, {"server_events": t["server_events"]}, enabled="")
    raise AssertionError(name)


# The five shapes that crashed the v1 report run through the notebooks; the others through the
# same calls rendered in-process (--no-notebooks), to keep the suite fast.
CRASHED_V1 = ["readme_example", "google_only", "no_sent_at", "orders_without_consent", "conversion_event_purchase"]
MATRIX = [*CRASHED_V1, "meta_only", "no_orders", "no_platform_report", "second_destination", "no_enable_time",
          "server_events_only"]


@pytest.fixture(scope="module")
def reported(small, tmp_path_factory):
    """reported(name, capsys) -> (exit code, stderr, report folder) of `capi-audit report` on one
    variant, run once per module: the matrix and the README regression test share a variant's."""
    done: dict[str, tuple[int, str, Path]] = {}

    def get(name: str, capsys=None) -> tuple[int, str, Path]:
        if name not in done:
            tmp = tmp_path_factory.mktemp(name)
            config = _variant(small, name, tmp)
            out = tmp / "out"
            inline = [] if name in CRASHED_V1 else ["--no-notebooks"]
            rc = main(["report", "--config", str(config), "--out", str(out), *inline])
            done[name] = (rc, capsys.readouterr().err if capsys is not None else "", out)
        return done[name]

    return get


@pytest.mark.parametrize("name", MATRIX)
def test_report_renders_every_section_on_every_shape_of_input(reported, name, capsys):
    rc, err, out = reported(name, capsys)
    assert rc == 0, err
    summary = json.loads((out / "summary.json").read_text())
    for fam in FAMILIES:
        text = (out / f"{fam.name}.html").read_text()
        assert_clean_page(text)
        sec = summary[fam.name]
        if sec.get("available") is False:  # says what is missing and what would provide it
            assert "Not available:" in text and "To compute it, provide:" in text
    assert_clean_page((out / "index.html").read_text())


def test_report_with_a_file_backed_workspace(small, tmp_path):
    config = _variant(small, "no_enable_time", tmp_path)
    out = tmp_path / "out"
    assert main(["report", "--config", str(config), "--db", str(tmp_path / "audit.duckdb"), "--out", str(out),
                 "--no-notebooks"]) == 0
    assert (tmp_path / "audit.duckdb").exists() and (out / "index.html").exists()


def test_readme_example_regression_reports(reported, capsys):
    """v1 crashed (KeyError in the notebooks) on the README's own example: Meta CAPI + Shopify.
    (The report, with its notebooks, is the matrix's readme_example one: run once per module.)"""
    rc, err, out = reported("readme_example", capsys)
    assert rc == 0, err
    text = (out / "recovery.html").read_text()
    assert "no platform_report loaded" in text and "platform_report source" in text


def test_error_is_one_line_exit_2_and_leaves_nothing(tmp_path, capsys):
    bad = tmp_path / "audit.toml"
    bad.write_text('[audit]\ntimezone = "Mars/Olympus"\n', encoding="utf-8")
    out = tmp_path / "out"
    assert main(["report", "--config", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("capi-audit: error:")
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_report_never_replaces_a_folder_with_other_content(tmp_path, capsys):
    out = tmp_path / "docs"
    out.mkdir()
    (out / "thesis.txt").write_text("mine")
    assert main(["report", "--config", str(FIXTURE), "--out", str(out), "--no-notebooks"]) == 2
    assert "other content" in capsys.readouterr().err
    assert (out / "thesis.txt").read_text() == "mine" and not list(tmp_path.glob(".*"))


def test_report_needs_config_or_result(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path / "o")]) == 2
    assert "exactly one of --config" in capsys.readouterr().err
    assert main(["report", "--result", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "not a result folder" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
