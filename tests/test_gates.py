"""`capi-audit check`: gates on summary key paths, minimum n, exit codes, JSON verdict."""

from __future__ import annotations

import json
import re

import pytest

from capi_audit.cli import main
from capi_audit.gates import evaluate
from capi_audit.result import AuditResult, ConfigEcho

SUMMARY = {
    "dedup": {"meta": {"Purchase": {"event_coverage": 0.8, "both": 80, "pixel_only": 20},
                       "AddToCart": {"event_coverage": 0.1, "both": 1, "pixel_only": 9}}},
    "consent": {"meta": {"server_sent_without_consent": 0, "pixel_fired_without_consent": 2}},
    "match_keys": {"meta": {"em": {"plaintext_pii": 0.0}, "ph": {"plaintext_pii": 0.0}}},
    "validation": {"meta": {"event_too_old": 0}},
    "recovery": {"available": False, "reason": "no orders loaded"},
}


def _result(tmp_path, summary=SUMMARY):
    AuditResult(summary=summary, config=ConfigEcho(platforms=("meta",))).write(tmp_path / "r")
    return tmp_path / "r"


def test_paths_wildcards_and_conversion_event():
    g = {"name": "cov", "path": "dedup.meta.**.{conversion_event}.event_coverage", "op": ">=", "value": 0.75}
    out = evaluate(SUMMARY, g, "Purchase")
    assert out["status"] == "pass" and [o["path"] for o in out["observed"]] == ["dedup.meta.Purchase.event_coverage"]
    g2 = {**g, "path": "dedup.*.*.event_coverage"}
    assert evaluate(SUMMARY, g2, "Purchase")["status"] == "fail"  # AddToCart at 10 %


def test_min_n_makes_small_samples_inconclusive():
    g = {"name": "cov", "path": "dedup.meta.Purchase.event_coverage", "op": ">=", "value": 0.75, "min_n": 1000,
         "n": "both + pixel_only"}
    out = evaluate(SUMMARY, g, "Purchase")
    assert out["status"] == "inconclusive" and out["observed"][0]["n"] == 100
    assert evaluate(SUMMARY, {**g, "min_n": 100}, "Purchase")["status"] == "pass"


def test_unavailable_section_is_inconclusive_and_missing_platform_not_applicable():
    assert evaluate(SUMMARY, {"name": "r", "path": "recovery.meta.x", "op": ">", "value": 0}, "Purchase")["status"] \
        == "inconclusive"
    assert evaluate(SUMMARY, {"name": "g", "path": "dedup.google.*.event_coverage", "op": ">", "value": 0},
                    "Purchase")["status"] == "not_applicable"


def test_default_gates_fail_on_consent_and_exit_1(tmp_path, capsys):
    res = _result(tmp_path)
    assert main(["check", "--result", str(res)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"no_pixel_fires_without_consent +fail", out) and "verdict: fail" in out
    assert main(["check", "--result", str(res), "--json"]) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["verdict"] == "fail"
    assert {g["name"]: g["status"] for g in verdict["gates"]}["no_plaintext_pii"] == "pass"


def test_gates_file_pass_exit_0_and_write(tmp_path, capsys):
    res = _result(tmp_path)
    gates = tmp_path / "gates.toml"
    gates.write_text('[[gate]]\nname = "cov"\npath = "dedup.meta.Purchase.event_coverage"\nop = ">="\n'
                     'value = 0.75\n', encoding="utf-8")
    assert main(["check", "--result", str(res), "--gates", str(gates), "--write"]) == 0
    assert json.loads((res / "summary.json").read_text())["gates"]["verdict"] == "pass"


@pytest.mark.parametrize("text, message", [
    ('[[gate]]\npath = "a.b"\nop = "=~"\nvalue = 1\n', "op"),
    ('[[gate]]\npath = "a.b"\nvalue = 1\n', "missing 'op'"),
    ('gate = 3\n', "[[gate]]"),
    ('[[gate]]\npath = "a"\nop = ">"\nvalue = 1\nmin_n = -1\n', "min_n"),
])
def test_bad_gates_file_is_one_line_exit_2(tmp_path, capsys, text, message):
    res = _result(tmp_path)
    gates = tmp_path / "gates.toml"
    gates.write_text(text, encoding="utf-8")
    assert main(["check", "--result", str(res), "--gates", str(gates)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("capi-audit: error:") and message in err[0]


def test_check_on_a_missing_result_is_exit_2(tmp_path, capsys):
    assert main(["check", "--result", str(tmp_path / "nope")]) == 2
    assert "not a result folder" in capsys.readouterr().err


def test_table_shows_floats_short_and_json_keeps_them_whole(tmp_path, capsys):
    summary = {**SUMMARY, "dedup": {"meta": {"Purchase": {"event_coverage": 0.8532608695652174, "both": 800,
                                                          "pixel_only": 138}}}}
    res = _result(tmp_path, summary)
    main(["check", "--result", str(res)])
    out = capsys.readouterr().out
    assert "0.8533 at dedup.meta.Purchase.event_coverage" in out and "0.85326086" not in out
    main(["check", "--result", str(res), "--json"])
    verdict = json.loads(capsys.readouterr().out)
    cov = next(g for g in verdict["gates"] if g["name"] == "meta_event_coverage")
    assert cov["observed"][0]["observed"] == 0.8532608695652174


def test_a_server_only_name_variant_does_not_make_the_coverage_gate_inconclusive():
    """Demo, session 3: Meta's server-only `purchase` variant has no browser units (coverage null,
    n = 0); the coverage gate read inconclusive although `Purchase` passed at n = 938."""
    summary = {"dedup": {"meta": {"Purchase": {"event_coverage": 0.85, "pixel_units": 938},
                                  "purchase": {"event_coverage": None, "pixel_units": 0}}}}
    g = {"name": "cov", "path": "dedup.meta.**.{conversion_event}.event_coverage", "op": ">=", "value": 0.75,
         "min_n": 100, "n": "pixel_units"}
    out = evaluate(summary, g, "Purchase")
    assert out["status"] == "pass"
    assert [o["status"] for o in out["observed"]] == ["pass", "not_applicable"]
    only = {"dedup": {"meta": {"purchase": {"event_coverage": None, "pixel_units": 0}}}}
    assert evaluate(only, g, "Purchase")["status"] == "not_applicable"
