"""`capi-audit check`: CI gates on any summary.json figure.

A gate names a key path into summary.json (dots between keys; `*` matches any one key, `**` any
number of keys including none; `{conversion_event}` is replaced by the result's conversion event
and, as a whole path part, matches its case variants and `event_aliases` too), a comparison and a threshold, and optionally a minimum `n`:

    [[gate]]
    name = "meta_event_coverage"
    path = "dedup.meta.**.{conversion_event}.event_coverage"
    op = ">="            # one of >= > <= < == !=
    value = 0.75
    min_n = 100          # optional: fewer observations -> inconclusive, not pass
    n = "pixel_units"       # optional: sibling key(s) holding n, "a + b" sums (default: the sibling `n`)

Every figure the path matches must satisfy the comparison. Status per gate: `pass`, `fail`,
`inconclusive` (the section is not available, a matched figure is null or marked
`"reliable": false`, or n is below `min_n`) or `not_applicable` (nothing matches, e.g. a Meta gate
on a Google-only audit). Verdict: `fail` if any gate fails, else `inconclusive` if any is, else
`pass`. Exit status: 0 pass, 1 fail or inconclusive, 2 error.
"""

from __future__ import annotations

import json
import operator
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from capi_audit.errors import ConfigError
from capi_audit.result import AuditResult

OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq,
       "!=": operator.ne}

# design §5: Meta's 75 % event-coverage goal, no consent violations, no plaintext PII, no events
# past the age limit. Meta's Dataset Quality API reports `event_coverage` with a goal_percentage of
# 75 (https://developers.facebook.com/docs/marketing-api/conversions-api/dataset-quality-api).
DEFAULT_GATES: tuple[dict[str, Any], ...] = (
    {"name": "meta_event_coverage", "path": "dedup.meta.**.{conversion_event}.event_coverage", "op": ">=",
     "value": 0.75, "min_n": 100, "n": "pixel_units"},  # event_coverage's own denominator
    {"name": "no_server_sends_without_consent", "path": "consent.*.server_sent_without_consent", "op": "==",
     "value": 0},
    {"name": "no_pixel_fires_without_consent", "path": "consent.*.pixel_fired_without_consent", "op": "==",
     "value": 0},
    {"name": "no_plaintext_pii", "path": "match_keys.*.**.plaintext_pii", "op": "==", "value": 0},
    {"name": "no_events_past_age_limit", "path": "validation.*.**.event_too_old", "op": "==", "value": 0},
)


def load_gates(path: Path) -> list[dict[str, Any]]:
    """Read and validate gates.toml (a list of [[gate]] tables)."""
    if not path.is_file():
        raise ConfigError(f"{path}: gates file not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    unknown = set(data) - {"gate"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))} (use [[gate]] tables)")
    gates = data.get("gate", [])
    if not isinstance(gates, list) or not gates:
        raise ConfigError(f"{path}: no [[gate]] tables")
    for i, g in enumerate(gates, 1):
        where = f"{path}: gate {i}"
        if not isinstance(g, dict):
            raise ConfigError(f"{where} must be a table")
        extra = set(g) - {"name", "path", "op", "value", "min_n", "n"}
        if extra:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
        for key in ("path", "op", "value"):
            if key not in g:
                raise ConfigError(f"{where} is missing '{key}'")
        if g["op"] not in OPS:
            raise ConfigError(f"{where}: op {g['op']!r} is not one of {' '.join(OPS)}")
        if not isinstance(g["path"], str) or not g["path"]:
            raise ConfigError(f"{where}: path must be a non-empty string")
        if isinstance(g["value"], bool) or not isinstance(g["value"], int | float | str):
            raise ConfigError(f"{where}: value must be a number or a string")
        if "min_n" in g and (isinstance(g["min_n"], bool) or not isinstance(g["min_n"], int) or g["min_n"] < 0):
            raise ConfigError(f"{where}: min_n must be a non-negative integer")
        g.setdefault("name", g["path"])
    return gates


def _match(node: Any, parts: list, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any, Any]]:
    """(path, value, parent dict) of every key path matching the pattern parts."""
    if not parts:
        yield path, node, None
        return
    head, rest = parts[0], parts[1:]
    if head == "**":
        yield from _match(node, rest, path)
        if isinstance(node, dict):
            for k, v in node.items():
                yield from _match(v, parts, (*path, str(k)))
        return
    if not isinstance(node, dict):
        return
    if isinstance(head, frozenset):  # the conversion class: its names in any case
        keys = [k for k in node if str(k).lower() in head]
    else:
        keys = list(node) if head == "*" else [head] if head in node else []
    for k in keys:
        if not rest:
            yield (*path, str(k)), node[k], node
        else:
            yield from _match(node[k], rest, (*path, str(k)))


def _n(parent: Any, spec: str) -> float | None:
    if not isinstance(parent, dict):
        return None
    total = 0.0
    for key in (k.strip() for k in spec.split("+")):
        v = parent.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float):
            return None
        total += v
    return total


def evaluate(summary: dict[str, Any], gate: dict[str, Any], conversion_event: str,
             aliases: tuple[str, ...] = ()) -> dict[str, Any]:
    """One gate's status with every figure it looked at. A path part that is exactly
    `{conversion_event}` matches the conversion class: the event, its case variants and its
    `event_aliases` (a site firing `purchase` for `Purchase` must not make a gate not applicable)."""
    pattern = gate["path"].replace("{conversion_event}", conversion_event)
    names = frozenset(n.lower() for n in (conversion_event, *aliases))
    parts: list = [names if p == "{conversion_event}" else p.replace("{conversion_event}", conversion_event)
                   for p in gate["path"].split(".")]
    out = {"name": gate["name"], "path": pattern, "op": gate["op"], "value": gate["value"],
           "min_n": gate.get("min_n"), "observed": []}
    section = summary.get(parts[0])
    if isinstance(section, dict) and section.get("available") is False:
        return {**out, "status": "inconclusive", "reason": f"section {parts[0]} not available: {section.get('reason')}"}
    matches = [(p, v, parent) for p, v, parent in _match(summary, parts) if not isinstance(v, dict)]
    if not matches:
        return {**out, "status": "not_applicable", "reason": "no figure matches the path"}
    statuses = []
    for p, v, parent in matches:
        n = _n(parent, gate.get("n", "n")) if gate.get("min_n") is not None else None
        obs: dict[str, Any] = {"path": ".".join(p), "observed": v, "n": n}
        if isinstance(parent, dict) and parent.get("reliable") is False:
            obs.update(status="inconclusive", reason=f"not reliable: {parent.get('reason')}")
        elif v is None and n == 0:
            # nothing to measure (e.g. a server-only event name variant has no browser units to
            # cover): this figure does not apply, it does not make the gate inconclusive
            obs.update(status="not_applicable", reason="n = 0: nothing to measure")
        elif v is None:
            obs.update(status="inconclusive", reason="figure is null (not computable)")
        elif gate.get("min_n") is not None and (n is None or n < gate["min_n"]):
            obs.update(status="inconclusive", reason=f"n = {n if n is not None else 'unknown'} below min_n {gate['min_n']}")
        else:
            try:
                ok = OPS[gate["op"]](v, gate["value"])
            except TypeError:
                obs.update(status="inconclusive", reason=f"cannot compare {v!r} with {gate['value']!r}")
            else:
                obs["status"] = "pass" if ok else "fail"
        out["observed"].append(obs)
        if obs["status"] != "not_applicable":
            statuses.append(obs["status"])
    if not statuses:
        return {**out, "status": "not_applicable", "reason": "no matching figure has anything to measure"}
    status = "fail" if "fail" in statuses else "inconclusive" if "inconclusive" in statuses else "pass"
    return {**out, "status": status}


def check(result_dir: Path, gates: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The verdict of every gate (default gates when none are given) on a result folder."""
    result = AuditResult.read(result_dir)
    gates = list(gates) if gates is not None else [dict(g) for g in DEFAULT_GATES]
    conv = result.config.conversion_event
    aliases = tuple((result.config.settings.get("event_aliases") or {}).get(conv, ()))
    results = [evaluate(result.summary, g, conv, aliases) for g in gates]
    statuses = [r["status"] for r in results]
    verdict = "fail" if "fail" in statuses else "inconclusive" if "inconclusive" in statuses else "pass"
    return {"verdict": verdict, "gates": results}


def _short(v: Any) -> str:
    """A figure as the table shows it: floats to four significant digits (the JSON keeps them whole)."""
    if isinstance(v, float) and not isinstance(v, bool):
        return f"{v:.4g}"
    return str(v)


def print_table(verdict: dict[str, Any]) -> None:
    """A short table: gate, status, the worst observed figure."""
    rows = [("gate", "status", "observed", "rule")]
    for g in verdict["gates"]:
        obs = g["observed"]
        # the first figure that decided the gate's status (a failing one for a failed gate)
        worst = next((o for o in obs if o["status"] == g["status"]), obs[0] if obs else None)
        seen = "-" if worst is None else f"{_short(worst['observed'])} at {worst['path']}"
        if worst is not None and worst.get("reason"):
            seen += f" ({worst['reason']})"
        elif worst is None and g.get("reason"):
            seen = g["reason"]
        rule = f"{g['op']} {g['value']}" + (f", n >= {g['min_n']}" if g.get("min_n") is not None else "")
        rows.append((g["name"], g["status"], seen, rule))
    widths = [max(len(str(r[i])) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "  " + r[3])
    print(f"verdict: {verdict['verdict']}")


def write_verdict(result_dir: Path, verdict: dict[str, Any]) -> None:
    """Store the verdict as the `gates` section of summary.json."""
    path = result_dir / "summary.json"
    summary = json.loads(path.read_text(encoding="utf-8"))
    summary["gates"] = verdict
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
