"""The one module where SQL meets a dialect.

Metric SQL is written once, in DuckDB's syntax, using only portable constructs plus a few
project-named functions whose meaning is fixed here (the engines disagree on the obvious
spellings, sometimes silently):

| function | meaning |
|---|---|
| `local_date(ts, tz)` | calendar day of instant `ts` in time zone `tz` |
| `local_midnight(day, tz)` | the instant at which local day `day` starts in `tz` |
| `ms_between(a, b)` | `epoch_ms_of(b) - epoch_ms_of(a)`: whole milliseconds, each instant truncated to its millisecond (DuckDB's `date_diff` counts unit boundaries, Spark's elapsed units: 00:00:00.9 -> 00:00:01.1 is 1 s vs 0 s) |
| `seconds_between(a, b)` | whole seconds: the difference of the instants' truncated epoch seconds (00:00:00.9 -> 00:00:01.1 is 1) |
| `epoch_ms_of(ts)` | milliseconds since 1970-01-01 UTC of instant `ts`, truncated (DuckDB's `epoch_ms` rounds to the nearest millisecond, and is overloaded both ways: BIGINT -> TIMESTAMP too) |
| `full_match(s, re)` | the whole of `s` matches regular expression `re` (RE2/Java common subset) |
| `regex_find(s, re)` | `re` matches somewhere in `s` |
| `json_list_all(js, lambda e: pred)` | `js` is a JSON list of strings, non-empty, and `pred` holds for every element (a one-element list included) |
| `json_list_item(js, i)` | element `i` (an integer literal, from 0) of JSON list of strings `js`, NULL past its end |
| `percentile(x, q)` | continuous (interpolated) quantile `q` of `x`, an aggregate |
| `day_series(lo, hi)` | in a SELECT list: one row per DATE from `lo` to `hi` inclusive |

`render(sql, dialect)` parses a statement with sqlglot, expands these functions for the target
dialect (`duckdb`, `spark`, `bigquery`) and fixes the traps sqlglot leaves in a plain transpile:
decimal literals become DOUBLE (Spark keeps `1.0` a DECIMAL, so averages and shares differ in
the last digits), `log10(x)` stays a base-10 logarithm (not `LOG(10, x)`, whose rounding moves
values across bin edges), date arithmetic on a visible DATE (`CAST(x AS DATE) + 1`,
`local_date(ts, tz) - n`) becomes BigQuery's `DATE_ADD` / `DATE_SUB` (BigQuery has no `date + int`;
write day arithmetic on a cast or a project function, not on a bare column, so it can be seen),
and `$name` parameters become the dialect's markers (`:name` in Spark,
`@name` in BigQuery). DuckDB-only calls outside this module are refused by the portability test
(tests/test_portability.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import sqlglot
from sqlglot import exp

DIALECTS = ("duckdb", "spark", "bigquery")


class NotPortable(ValueError):
    """A statement uses something the target dialect cannot express."""


def quote_ident(name: str, dialect: str = "duckdb") -> str:
    """A column or relation name quoted for the dialect (the one quoting API)."""
    return exp.to_identifier(name, quoted=True).sql(dialect)


# Per dialect, a template in that dialect's own syntax; {0}, {1} stand for the arguments.
_TEMPLATES: dict[str, dict[str, str]] = {
    "local_date": {
        "duckdb": "CAST(timezone({1}, {0}) AS DATE)",
        "spark": "CAST(from_utc_timestamp({0}, {1}) AS DATE)",   # session time zone is UTC
        "bigquery": "DATE({0}, {1})",
    },
    "local_midnight": {
        "duckdb": "timezone({1}, CAST({0} AS TIMESTAMP))",
        "spark": "to_utc_timestamp(CAST({0} AS TIMESTAMP), {1})",
        "bigquery": "TIMESTAMP(DATETIME({0}), {1})",
    },
    "epoch_ms_of": {
        # DuckDB's epoch_ms rounds to the nearest millisecond; Spark and BigQuery truncate.
        "duckdb": "(epoch_us(CAST({0} AS TIMESTAMPTZ)) // 1000)",
        "spark": "unix_millis({0})",
        "bigquery": "UNIX_MILLIS({0})",
    },
    "ms_between": {
        "duckdb": "((epoch_us(CAST({1} AS TIMESTAMPTZ)) // 1000) - (epoch_us(CAST({0} AS TIMESTAMPTZ)) // 1000))",
        "spark": "(unix_millis({1}) - unix_millis({0}))",
        "bigquery": "(UNIX_MILLIS({1}) - UNIX_MILLIS({0}))",
    },
    "seconds_between": {
        # whole seconds between the instants' seconds (DuckDB's date_diff('second') semantics):
        # 00:00:00.9 -> 00:00:01.1 is 1 on every engine
        "duckdb": "((epoch_us(CAST({1} AS TIMESTAMPTZ)) // 1000000) - (epoch_us(CAST({0} AS TIMESTAMPTZ)) // 1000000))",
        "spark": "(unix_seconds({1}) - unix_seconds({0}))",
        "bigquery": "(UNIX_SECONDS({1}) - UNIX_SECONDS({0}))",
    },
    "regex_find": {
        "duckdb": "regexp_matches({0}, {1})",
        "spark": "({0} RLIKE {1})",
        "bigquery": "REGEXP_CONTAINS({0}, {1})",
    },
    "percentile": {
        "duckdb": "quantile_cont({0}, {1})",
        "spark": "percentile({0}, {1})",
        # BigQuery has no exact aggregate PERCENTILE_CONT (it is analytic only): approximate.
        "bigquery": "APPROX_QUANTILES({0}, 1000)[OFFSET(CAST(ROUND({1} * 1000) AS INT64))]",
    },
    "day_series": {
        "duckdb": "CAST(unnest(generate_series(CAST({0} AS TIMESTAMP), CAST({1} AS TIMESTAMP), INTERVAL 1 DAY)) AS DATE)",
        "spark": "explode(sequence(CAST({0} AS DATE), CAST({1} AS DATE), INTERVAL 1 DAY))",
        "bigquery": "UNNEST(GENERATE_DATE_ARRAY({0}, {1}))",   # moved into FROM, see _bigquery_series
    },
}
_ARITY = {"local_date": 2, "local_midnight": 2, "epoch_ms_of": 1, "ms_between": 2, "seconds_between": 2,
          "regex_find": 2,
          "percentile": 2, "day_series": 2, "full_match": 2, "json_list_all": 2, "json_list_item": 2}
FUNCTIONS = tuple(sorted(_ARITY))
_MENTION = re.compile(r"\b(" + "|".join(FUNCTIONS) + r")\s*\(", re.IGNORECASE)


def mentions_project_function(sql: str) -> bool:
    """Whether a statement calls one of the project functions (cheap text check)."""
    return bool(_MENTION.search(sql))


@functools.cache
def _template(name: str, dialect: str) -> exp.Expression:
    text = _TEMPLATES[name][dialect].format(*(f"__arg{i}__" for i in range(_ARITY[name])))
    return sqlglot.parse_one(text, read=dialect)


def _fill(template: exp.Expression, args: list[exp.Expression]) -> exp.Expression:
    def sub(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table and node.name.startswith("__arg"):
            return args[int(node.name[5:-2])].copy()
        return node
    return template.copy().transform(sub)


def _anchored(pattern: exp.Expression, dialect: str) -> exp.Expression:
    """A pattern that matches only the whole string: ^(?:re)$ (Java: \\z, since its $ also
    matches before a final line break)."""
    end = "\\z" if dialect == "spark" else "$"
    if isinstance(pattern, exp.Literal) and pattern.is_string:
        return exp.Literal.string(f"^(?:{pattern.this}){end}")
    return exp.func("concat", exp.Literal.string("^(?:"), pattern.copy(), exp.Literal.string(f"){end}"))


def _full_match(args: list[exp.Expression], dialect: str) -> exp.Expression:
    if dialect == "duckdb":
        return _fill(sqlglot.parse_one("regexp_full_match(__arg0__, __arg1__)", read="duckdb"), args)
    anchored = _anchored(args[1], dialect)
    if dialect == "spark":
        return exp.Paren(this=exp.RegexpLike(this=args[0].copy(), expression=anchored))
    return exp.Anonymous(this="REGEXP_CONTAINS", expressions=[args[0].copy(), anchored])


def _json_list_all(args: list[exp.Expression], dialect: str) -> exp.Expression:
    js, lam = args
    if not isinstance(lam, exp.Lambda) or len(lam.expressions) != 1:
        raise NotPortable("json_list_all(js, lambda e: predicate) needs a one-argument lambda")
    var = lam.expressions[0].name
    body = lam.this
    if dialect == "duckdb":
        tpl = ("coalesce(list_bool_and(list_transform(CAST(json_extract_string(__arg0__, '$[*]') AS VARCHAR[]), "
               f"lambda {var}: __arg1__)), FALSE)")
        return _fill(sqlglot.parse_one(tpl, read="duckdb"), [js, body])
    if dialect == "spark":
        tpl = ("coalesce(size(from_json(__arg0__, 'array<string>')) > 0 AND "
               f"forall(from_json(__arg0__, 'array<string>'), {var} -> __arg1__), FALSE)")
        return _fill(sqlglot.parse_one(tpl, read="spark"), [js, body])
    tpl = (f"coalesce((SELECT count(*) > 0 AND LOGICAL_AND(__arg1__) FROM UNNEST(JSON_VALUE_ARRAY(__arg0__)) AS {var}), "
           "FALSE)")
    return _fill(sqlglot.parse_one(tpl, read="bigquery"), [js, body])


def _json_list_item(args: list[exp.Expression], dialect: str) -> exp.Expression:
    js, i = args
    if not (isinstance(i, exp.Literal) and not i.is_string and i.this.isdigit()):
        raise NotPortable("json_list_item(js, i) needs a non-negative integer literal i (BigQuery's JSON paths are literals)")
    path = exp.Literal.string(f"$[{int(i.this)}]")
    name = {"duckdb": "json_extract_string", "spark": "get_json_object", "bigquery": "JSON_VALUE"}[dialect]
    return exp.Anonymous(this=name, expressions=[js.copy(), path])


_SPECIAL: dict[str, Callable[[list[exp.Expression], str], exp.Expression]] = {
    "full_match": _full_match, "json_list_all": _json_list_all, "json_list_item": _json_list_item,
}


def _expand(node: exp.Expression, dialect: str) -> exp.Expression:
    if isinstance(node, exp.Anonymous) and node.name.lower() in _ARITY:
        name = node.name.lower()
        args = list(node.expressions)
        if len(args) != _ARITY[name]:
            raise NotPortable(f"{name} takes {_ARITY[name]} arguments, got {len(args)}")
        if name in _SPECIAL:
            return _SPECIAL[name](args, dialect)
        return _fill(_template(name, dialect), args)
    if isinstance(node, exp.Log) and node.expression is not None and node.this.is_number \
            and node.this.to_py() == 10:
        return exp.Anonymous(this="LOG10", expressions=[node.expression.copy()])
    if dialect == "duckdb":
        return node
    if isinstance(node, exp.Literal) and not node.is_string and re.search(r"[.eE]", node.this):
        return exp.Cast(this=node.copy(), to=exp.DataType.build("DOUBLE"))
    if dialect == "bigquery" and isinstance(node, exp.Add | exp.Sub):
        dated = _date_arithmetic(node)
        if dated is not None:
            return dated
    if dialect == "bigquery" and isinstance(node, exp.SplitPart):
        # BigQuery has no SPLIT_PART: SPLIT(s, d)[SAFE_OFFSET(n - 1)] (n a positive literal here)
        n = int(node.args["part_index"].to_py()) - 1
        return sqlglot.parse_one(f"SPLIT(__arg0__, __arg1__)[SAFE_OFFSET({n})]", read="bigquery").transform(
            lambda x: _arg_sub(x, [node.this, node.args["delimiter"]]))
    return node


_DATE_VALUED = (exp.Date, exp.DateAdd, exp.DateSub, exp.CurrentDate, exp.DateFromParts, exp.StrToDate,
                exp.TsOrDsToDate, exp.LastDay)


def _is_date(node: exp.Expression) -> bool:
    """Whether an (already expanded) expression is visibly of type DATE: a cast or literal, a
    date function, or a project function that returns a day (`local_date`)."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Cast | exp.TryCast):
        return node.to.is_type(exp.DataType.Type.DATE)
    return isinstance(node, _DATE_VALUED)


def _date_arithmetic(node: exp.Add | exp.Sub) -> exp.Expression | None:
    """`day + n` / `day - n` (n whole days, DuckDB and Spark) as BigQuery's DATE_ADD / DATE_SUB;
    `n + day` too. None when no operand is visibly a DATE, or the other is an INTERVAL already
    (sqlglot renders `day + INTERVAL n DAY` itself)."""
    left, right = node.this, node.expression
    if isinstance(node, exp.Add) and not _is_date(left) and _is_date(right):
        left, right = right, left
    if _is_date(left) and _is_date(right):
        raise NotPortable("date - date: DuckDB gives days, Spark an INTERVAL, BigQuery refuses it; "
                          "compare epoch_ms_of(local_midnight(...)) or count days in Python")
    if not _is_date(left) or isinstance(right, exp.Interval):
        return None
    cls = exp.DateAdd if isinstance(node, exp.Add) else exp.DateSub
    return cls(this=left.copy(), expression=right.copy(), unit=exp.var("DAY"))


def _arg_sub(node: exp.Expression, args: list[exp.Expression]) -> exp.Expression:
    if isinstance(node, exp.Column) and not node.table and node.name.startswith("__arg"):
        return args[int(node.name[5:-2])].copy()
    return node


def _walk(node: exp.Expression, dialect: str) -> exp.Expression:
    """Expand bottom-up, so project functions nested in arguments are expanded too."""
    for key, value in list(node.args.items()):
        if isinstance(value, exp.Expression):
            node.set(key, _walk(value, dialect))
        elif isinstance(value, list):
            node.set(key, [_walk(v, dialect) if isinstance(v, exp.Expression) else v for v in value])
    return _expand(node, dialect)


def _bigquery_series(tree: exp.Expression) -> exp.Expression:
    """BigQuery has no set-returning call in a SELECT list: `SELECT day_series(lo, hi) AS d
    FROM x` becomes `SELECT d FROM x CROSS JOIN UNNEST(GENERATE_DATE_ARRAY(lo, hi)) AS d`."""
    for select in list(tree.find_all(exp.Select)):
        for item in list(select.expressions):
            call = item.this if isinstance(item, exp.Alias) else item
            if isinstance(call, exp.Anonymous) and call.name.lower() == "day_series":
                alias = item.alias if isinstance(item, exp.Alias) else "day"
                lo, hi = call.expressions
                tpl = sqlglot.parse_one(f"SELECT 1 FROM UNNEST(GENERATE_DATE_ARRAY(__arg0__, __arg1__)) AS {alias}",
                                        read="bigquery").find(exp.From).this
                unnest = _fill(tpl, [lo, hi])
                item.replace(exp.column(alias))
                if select.args.get("from_") is None and select.args.get("from") is None:
                    select.from_(unnest, copy=False)     # SELECT day_series(..) AS d: FROM UNNEST(..) AS d
                else:
                    select.join(unnest, join_type="cross", copy=False)
    return tree


@functools.lru_cache(maxsize=4096)
def render(sql: str, dialect: str = "duckdb") -> str:
    """The statement `sql` (DuckDB syntax with project functions) in `dialect`."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; one of {', '.join(DIALECTS)}")
    try:
        trees = sqlglot.parse(sql, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise NotPortable(f"cannot parse statement: {str(exc).splitlines()[0]}") from exc
    if len(trees) != 1 or trees[0] is None:
        raise NotPortable("render takes exactly one statement")
    tree = trees[0]
    if dialect == "bigquery":
        tree = _bigquery_series(tree)
    tree = _walk(tree, dialect)
    return tree.sql(dialect=dialect, unsupported_level=sqlglot.ErrorLevel.RAISE)
