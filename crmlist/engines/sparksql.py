"""DuckDB SQL as Spark SQL: sqlglot transpiles the AST; typed rewrites fix what the engines do differently."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

from crmlist.errors import BadInputError

SPARK = "spark"
DUCKDB = "duckdb"
# Relation name -> column name -> DuckDB type, for typing the tree (date - date, decimal / decimal, ...).
Schema = Mapping[str, Mapping[str, str]]

# DuckDB date_sub(part, s, e): complete months from s to e (s <= e), where an e on its month's last day
# counts as reaching any later day of s ("2000-02-29" to "2001-02-28" is 12 months).
_MONTHS = (
    "(YEAR(__e) - YEAR(__s)) * 12 + MONTH(__e) - MONTH(__s) - CASE WHEN DAY(__e) < LEAST(DAY(__s), "
    "CASE WHEN __e = LAST_DAY(__e) THEN DAY(__e) ELSE 32 END) THEN 1 ELSE 0 END"
)
_COMPLETE = {
    "day": "DATEDIFF(__e, __s)",
    "week": "DATEDIFF(__e, __s) DIV 7",
    "month": f"CASE WHEN __s <= __e THEN {_MONTHS} ELSE -({_MONTHS.replace('__', '__x')}) END",
    "quarter": f"(CASE WHEN __s <= __e THEN {_MONTHS} ELSE -({_MONTHS.replace('__', '__x')}) END) DIV 3",
    "year": f"(CASE WHEN __s <= __e THEN {_MONTHS} ELSE -({_MONTHS.replace('__', '__x')}) END) DIV 12",
}
# DuckDB date_diff(part, s, e): part boundaries crossed from s to e (weeks are whole 7-day spans).
_BOUNDARIES = {
    "day": "DATEDIFF(__e, __s)",
    "week": "DATEDIFF(__e, __s) DIV 7",
    "month": "(YEAR(__e) - YEAR(__s)) * 12 + MONTH(__e) - MONTH(__s)",
    "quarter": "(YEAR(__e) - YEAR(__s)) * 4 + QUARTER(__e) - QUARTER(__s)",
    "year": "YEAR(__e) - YEAR(__s)",
}
_DATE_TYPES = {exp.DataType.Type.DATE}
_UNSIGNED_64 = {exp.DataType.Type.UBIGINT}
_INTERVALS = {exp.DataType.Type.INTERVAL}
_WIDE_INTEGERS = {exp.DataType.Type.INT128, exp.DataType.Type.UINT128, exp.DataType.Type.UINT256}


class SparkTranslationError(BadInputError):
    """A DuckDB construct that has no faithful Spark SQL equivalent."""


def to_spark(tree: exp.Expr, schema: Schema, where: str) -> str:
    """Spark SQL text for a DuckDB query or expression, typed against `schema` for the rewrites."""
    try:
        types = MappingSchema({table: dict(columns) for table, columns in schema.items()}, dialect=DUCKDB)
        qualified = qualify(
            tree.copy(), schema=types, dialect=DUCKDB, expand_stars=False, validate_qualify_columns=False, identify=True
        )
        typed = annotate_types(qualified, schema=types, dialect=DUCKDB)
        return _translated(typed, where).sql(dialect=SPARK)
    except SqlglotError as exc:
        raise SparkTranslationError(where, f"cannot translate to Spark SQL: {str(exc)[:200]}", None) from None


def parse_duckdb(sql: str) -> exp.Expr:
    """Parse DuckDB SQL the way the compiler writes it."""
    return sqlglot.parse_one(sql, read=DUCKDB)


def _translated(tree: exp.Expr, where: str) -> exp.Expr:
    """A rewritten copy; a replaced node's children are not revisited by transform, so rules call this on them."""
    return tree.copy().transform(lambda node: _rewrite(node, where), copy=False)


def _rewrite(node: exp.Expr, where: str) -> exp.Expr:
    for kind, rule in _RULES:
        if isinstance(node, kind):
            return rule(node, where)
    return node


def _is(node: exp.Expr, types: set[Any]) -> bool:
    return node.type is not None and node.type.this in types


def _sub(node: exp.Expr, where: str) -> exp.Expr:
    """DuckDB date - date is a BIGINT of days; Spark's is an interval."""
    if _is(node.this, _DATE_TYPES) and _is(node.expression, _DATE_TYPES):
        return _bigint(_template("DATEDIFF(__e, __s)", where, s=node.expression, e=node.this))
    return node


def _anonymous(node: exp.Expr, where: str) -> exp.Expr:
    """date_sub(part, s, e) / datesub: complete parts between two dates, as DuckDB counts them."""
    name = str(node.this).lower()
    if name not in {"date_sub", "datesub"}:
        return node
    args = node.expressions
    if len(args) != 3 or not isinstance(args[0], exp.Literal) or not args[0].is_string:
        raise SparkTranslationError(
            where, f"{name}() needs a literal date part on Spark", "write date_sub('year', a, b)"
        )
    return _by_part(_COMPLETE, args[0].this, args[1], args[2], name, where)


def _date_diff(node: exp.Expr, where: str) -> exp.Expr:
    """date_diff(part, s, e): part boundaries crossed, not complete parts as Spark's DATEDIFF(unit, ...)."""
    unit = node.args.get("unit")
    part = unit.name if unit is not None else "day"
    return _by_part(_BOUNDARIES, part, node.expression, node.this, "date_diff", where)


def _by_part(table: dict[str, str], part: str, start: exp.Expr, end: exp.Expr, name: str, where: str) -> exp.Expr:
    part = part.lower().rstrip("s")
    if part not in table:
        raise SparkTranslationError(
            where, f"{name}() with part {part!r} is not supported on Spark", f"use one of: {', '.join(table)}"
        )
    return _bigint(_template(table[part], where, s=start, e=end, xs=end, xe=start))


def _array_agg(node: exp.Expr, where: str) -> exp.Expr:
    """list(DISTINCT x ORDER BY x) FILTER (...): Spark's collect_* has no order, so sort the result."""
    agg = node.this if isinstance(node, exp.Filter) else node
    if not isinstance(agg, exp.ArrayAgg) or (isinstance(node, exp.ArrayAgg) and isinstance(node.parent, exp.Filter)):
        return node
    inner, order = agg.this, None
    if isinstance(inner, exp.Order):
        inner, order = inner.this, inner.expressions
    distinct = isinstance(inner, exp.Distinct)
    value = inner.expressions[0] if distinct else inner
    if order and (len(order) != 1 or order[0].this != value or order[0].args.get("desc")):
        raise SparkTranslationError(
            where, "list(... ORDER BY ...) is supported on Spark only ordered by the listed value", None
        )
    collected: exp.Expr = exp.Anonymous(
        this="COLLECT_SET" if distinct else "COLLECT_LIST", expressions=[_translated(value, where)]
    )
    if isinstance(node, exp.Filter):
        collected = exp.Filter(this=collected, expression=_translated(node.expression, where))
    # DuckDB's list() over no rows is NULL where collect_* gives an empty array.
    result = exp.Nullif(this=collected, expression=exp.Array(expressions=[]))
    return exp.Anonymous(this="SORT_ARRAY", expressions=[result]) if order else result


def _cast(node: exp.Expr, where: str) -> exp.Expr:
    """UBIGINT and HUGEINT have no Spark type: exact decimals of the same range instead."""
    if _is(node.args["to"], _UNSIGNED_64):
        inner = node.this.unnest()
        if isinstance(inner, exp.DPipe) and inner.this == exp.Literal.string("0x"):
            # '0x' || hex as UBIGINT: conv() reads 16 hex digits as unsigned but returns a string.
            digits = exp.Anonymous(
                this="CONV",
                expressions=[_translated(inner.expression, where), exp.Literal.number(16), exp.Literal.number(10)],
            )
            return exp.cast(digits, exp.DataType.build("DECIMAL(20, 0)"))
        return exp.cast(_translated(node.this, where), exp.DataType.build("DECIMAL(20, 0)"))
    if _is(node.args["to"], _WIDE_INTEGERS):
        return exp.cast(_translated(node.this, where), exp.DataType.build("DECIMAL(38, 0)"))
    return node


def _sign(node: exp.Expr, where: str) -> exp.Expr:
    """DuckDB's sign() is a TINYINT; Spark's a DOUBLE, which would make exact cents inexact."""
    return exp.cast(exp.Sign(this=_translated(node.this, where)), exp.DataType.build("TINYINT"))


def _div(node: exp.Expr, where: str) -> exp.Expr:
    """DuckDB's / is IEEE double division (x / 0 is inf, -inf or nan); Spark keeps decimals and fails on 0."""
    if _is(node.this, _INTERVALS) or _is(node.expression, _INTERVALS):
        return node
    return _template(
        "CASE WHEN CAST(__b AS DOUBLE) = 0 THEN CAST(__a AS DOUBLE) * CAST('Infinity' AS DOUBLE) "
        "ELSE CAST(__a AS DOUBLE) / CAST(__b AS DOUBLE) END",
        where,
        a=node.this,
        b=node.expression,
    )


def _length(node: exp.Expr, where: str) -> exp.Expr:
    """len(list) is the list's size; Spark's LENGTH is for strings only."""
    if _is(node.this, {exp.DataType.Type.ARRAY}):
        return exp.Anonymous(this="SIZE", expressions=[_translated(node.this, where)])
    return node


def _template(sql: str, where: str, **operands: exp.Expr) -> exp.Expr:
    """A Spark expression with __name columns replaced by translated copies of the operand trees."""
    tree = sqlglot.parse_one(sql, read=SPARK)

    def fill(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table and node.name.startswith("__"):
            return exp.Paren(this=_translated(operands[node.name[2:]], where))
        return node

    return tree.transform(fill)


def _bigint(node: exp.Expr) -> exp.Expr:
    return exp.cast(exp.Paren(this=node), exp.DataType.build("BIGINT"))


_RULES: list[tuple[type[exp.Expr], Callable[[exp.Expr, str], exp.Expr]]] = [
    (exp.Sub, _sub),
    (exp.Anonymous, _anonymous),
    (exp.DateDiff, _date_diff),
    (exp.Filter, _array_agg),
    (exp.ArrayAgg, _array_agg),
    (exp.Cast, _cast),
    (exp.Sign, _sign),
    (exp.Div, _div),
    (exp.Length, _length),
]
