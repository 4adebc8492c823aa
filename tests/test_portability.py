"""The portability guard: every statement the audit runs is captured and checked.

A metric statement may use only functions every engine shares (PORTABLE below) and the project's
own functions (capi_audit/sql/dialect.py); an engine-specific call (date_diff, epoch_ms,
timezone, regexp_*, json/list functions, quantile_cont, generate_series, ...) outside that module
fails here, as do `NOT IN (subquery)`, row-by-row inserts and a temp table that replaces itself.
(Decimal literals are typed DOUBLE for every engine by the dialect module itself, in one place.) Every statement must also render for Spark and BigQuery (sqlglot raises on
what it cannot express); the BigQuery rendering is kept as a snapshot.

When metric SQL changes on purpose, refresh the snapshot:
    CAPI_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/test_portability.py
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from capi_audit import audit
from capi_audit.sql.dialect import FUNCTIONS, render

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ("scenario_main", "scenario_second")

# sqlglot expression classes whose meaning and spelling every target engine shares.
PORTABLE = {
    "And", "Or", "Not", "Xor", "Abs", "Avg", "Case", "If", "Cast", "TryCast", "Coalesce", "Count", "Exists",
    "Floor", "Ceil", "Round", "Greatest", "Least", "Length", "Lower", "Upper", "Max", "Min", "Sum", "Replace",
    "SplitPart", "StartsWith", "Concat", "Substring", "Trim", "RowNumber", "Rank", "DenseRank", "Lag", "Lead",
    "Sqrt", "Ln", "Exp", "Pow", "Nullif", "Mod", "Stddev", "StddevSamp", "StddevPop", "Variance",
    "VariancePop", "CountIf", "Sign", "Log",
}
PROJECT = {f.upper() for f in FUNCTIONS}


def _upload_case_statements(tmp: Path) -> list[str]:
    """The Google upload comparison (logged uploads vs Google's upload summaries): statements the
    fixtures never run, because they carry no upload summaries."""
    from tests.test_google import upload_case

    seen: list[str] = []
    with upload_case(tmp) as ws:
        ws.engine.listeners.append(lambda sql, rendered: seen.append(sql))
        audit.compute(ws, bootstrap_reps=20)
    return list(dict.fromkeys(seen))


@pytest.fixture(scope="module")
def statements(tmp_path_factory, fixture_audit) -> dict[str, list[str]]:
    # the fixtures' statements: captured while conftest's shared audit of each ran
    out = {f: fixture_audit(f).statements for f in FIXTURES}
    out["google_upload_case"] = _upload_case_statements(tmp_path_factory.mktemp("uploads"))
    return out


def test_upload_comparison_statements_are_captured(statements):
    assert any("upload_summaries" in sql for sql in statements["google_upload_case"])


def problems(sql: str) -> list[str]:
    """What keeps one statement from being portable (empty when it is)."""
    out = []
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        return [f"does not parse: {str(exc).splitlines()[0]}"]
    for node in tree.find_all(exp.Func):
        name = node.name.upper() if isinstance(node, exp.Anonymous) else type(node).__name__
        if isinstance(node, exp.Anonymous) and name in PROJECT:
            continue
        if name not in PORTABLE:
            out.append(f"engine-specific function {node.sql('duckdb')[:60]!r}: use a helper of capi_audit/sql/dialect.py")
        if isinstance(node, exp.Log) and not (node.expression is not None and node.this.is_number
                                              and node.this.to_py() == 10):
            out.append("log with a base other than 10")
    for node in tree.find_all(exp.In):
        if node.args.get("query") is not None and isinstance(node.parent, exp.Not):
            out.append("NOT IN (subquery): use NOT EXISTS (Spark plans NOT IN as a nested loop)")
    names = [c.alias_or_name.lower() for c in tree.find_all(exp.CTE)]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        out.append(f"CTE name {dup!r} defined twice in one statement (Spark hoists nested WITHs into one)")
    if isinstance(tree, exp.Insert):
        out.append("INSERT from Python: build the relation with Workspace.from_rows or a query")
    if isinstance(tree, exp.Create):
        target = tree.this.name.lower() if isinstance(tree.this, exp.Table) else \
            tree.this.this.name.lower() if isinstance(tree.this, exp.Schema) else ""
        query = tree.expression
        if query is None:
            out.append(f"CREATE TABLE {target} with columns: build it with Workspace.from_rows")
        elif any(t.name.lower() == target for t in query.find_all(exp.Table)):
            out.append(f"temp table {target} replaces itself: give the new relation its own name")
    return out


def test_audit_statements_are_portable(statements):
    bad = {}
    for stmts in statements.values():
        for sql in stmts:
            found = problems(sql)
            if found:
                bad[" ".join(sql.split())[:160]] = sorted(set(found))
    assert not bad, "\n".join(f"{k}\n  - " + "\n  - ".join(v) for k, v in bad.items())


@pytest.mark.parametrize("dialect", ["spark", "bigquery"])
def test_audit_statements_render_and_parse(statements, dialect):
    for stmts in statements.values():
        for sql in stmts:
            out = render(sql, dialect)   # sqlglot raises on what the dialect cannot express
            tree = sqlglot.parse_one(out, read=dialect)
            if dialect == "bigquery":
                assert not bigquery_problems(tree), (bigquery_problems(tree), out[:300])


def test_conformance_statement_passes_the_bigquery_check():
    from tests.test_dialect import SQL

    assert not bigquery_problems(sqlglot.parse_one(render(SQL, "bigquery"), read="bigquery"))


def bigquery_problems(tree: exp.Expression) -> list[str]:
    """What sqlglot's (lenient) BigQuery parser accepts but BigQuery would refuse."""
    from capi_audit.sql.dialect import _is_date

    out = []
    for sel in tree.find_all(exp.Select):
        if sel.args.get("joins") and not (sel.args.get("from_") or sel.args.get("from")):
            out.append("a JOIN without FROM")
    for node in tree.find_all(exp.Add, exp.Sub):
        if _is_date(node.this) or _is_date(node.expression):
            out.append(f"date arithmetic {node.sql('bigquery')[:60]!r}: BigQuery needs DATE_ADD / DATE_SUB")
    return out


@pytest.mark.parametrize("sql, needle", [
    ("SELECT d CROSS JOIN UNNEST([1]) AS d", "without FROM"),
    ("SELECT CAST(x AS DATE) + 1", "date arithmetic"),
])
def test_bigquery_check_catches(sql, needle):
    assert any(needle in p for p in bigquery_problems(sqlglot.parse_one(sql, read="bigquery")))


@pytest.mark.parametrize("sql, needle", [
    ("SELECT date_diff('second', a, b) FROM t", "engine-specific"),
    ("SELECT epoch_ms(a) FROM t", "engine-specific"),
    ("SELECT quantile_cont(x, 0.5) FROM t", "engine-specific"),
    ("SELECT regexp_full_match(x, 'a') FROM t", "engine-specific"),
    ("SELECT my_udf(x) FROM t", "engine-specific"),
    ("SELECT * FROM t WHERE x NOT IN (SELECT y FROM u)", "NOT IN"),
    ("CREATE OR REPLACE TEMP TABLE f AS SELECT *, 1 AS k FROM f", "replaces itself"),
    ("CREATE OR REPLACE TEMP TABLE p (a VARCHAR)", "from_rows"),
    ("INSERT INTO p VALUES ($a)", "INSERT"),
    ("WITH a AS (WITH x AS (SELECT 1 AS v) SELECT v FROM x), b AS (WITH x AS (SELECT 2 AS v) SELECT v FROM x) "
     "SELECT * FROM a, b", "defined twice"),
])
def test_guard_catches(sql, needle):
    assert any(needle in p for p in problems(sql))


def test_guard_accepts_project_functions():
    assert problems("SELECT local_date(t, $tz), ms_between(a, b), percentile(x, CAST(0.5 AS DOUBLE)) FROM t "
                    "WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.k = t.k)") == []
