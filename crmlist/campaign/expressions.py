"""Rule expressions: parse with sqlglot, allow only expressions, resolve columns, expand helpers."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from crmlist.errors import BadInputError

DIALECT = "duckdb"
FACTS_ALIAS = "f"
# The functions a rule or view may call, as DuckDB spells them, each as a sample call: deterministic (the
# same rows give the same answer on every run) and with a Spark counterpart that sqlglot transpiles to.
# Everything else is refused: clocks, random numbers, uuids, hash(), settings and variables, file readers.
# A sample call rather than a name because DuckDB's parser folds aliases into one node (len and length,
# list_contains and array_contains), and a rule is checked on those nodes.
SCALAR_CALLS = (
    "abs(x)", "ceil(x)", "floor(x)", "round(x, 2)", "sign(x)", "sqrt(x)", "ln(x)", "power(x, 2)",
    "coalesce(x, y)", "ifnull(x, y)", "nullif(x, y)", "greatest(x, y)", "least(x, y)", "if(c, x, y)",
    "lower(s)", "upper(s)", "trim(s)", "ltrim(s)", "rtrim(s)", "length(s)", "len(s)", "substring(s, 1, 2)",
    "substr(s, 1, 2)", "concat(s, t)", "replace(s, 'a', 'b')", "starts_with(s, 'a')", "ends_with(s, 'a')",
    "contains(s, 'a')", "regexp_matches(s, 'a')", "regexp_replace(s, 'a', 'b')", "left(s, 2)", "right(s, 2)",
    "lpad(s, 2, '0')", "rpad(s, 2, '0')", "strpos(s, 'a')", "split_part(s, ',', 1)",
    "date_diff('day', d, e)", "datediff('day', d, e)", "date_sub('year', d, e)", "date_part('year', d)",
    "year(d)", "month(d)", "day(d)", "dayofyear(d)", "quarter(d)", "date_trunc('month', d)",
    "make_date(2026, 1, 1)", "last_day(d)", "strftime(d, '%Y-%m')",
    "list_contains(l, 'a')", "array_contains(l, 'a')", "list_has(l, 'a')", "list_has_any(l, m)",
    "array_length(l)", "list_distinct(l)", "list_sort(l)", "list_value(1, 2)",
    "cast(x AS INTEGER)", "try_cast(x AS INTEGER)",
)  # fmt: skip
# Aggregates, window functions, unnest and COLUMNS(...): in views only (a rule is a condition on one
# customer's row).
VIEW_CALLS = (
    "count(x)", "sum(x)", "min(x)", "max(x)", "avg(x)", "list(x)", "array_agg(x)", "count_if(c)",
    "bool_and(c)", "bool_or(c)", "string_agg(s, ',')", "median(x)", "unnest(l)", "columns('x')",
    "row_number() OVER ()", "rank() OVER ()", "dense_rank() OVER ()", "lag(x) OVER ()", "lead(x) OVER ()",
)  # fmt: skip
# Written without a function call: CASE, extract(... FROM ...), x::TYPE, DATE '...', [1, 2].
_SYNTAX = ("CASE WHEN c THEN x END", "extract(year FROM d)", "x::DATE", "[1, 2]")


def _name(call: str) -> str:
    return call.split("(", 1)[0].strip().lower()


SCALAR_FUNCTIONS = tuple(sorted({_name(c) for c in SCALAR_CALLS} | {"extract"}))
VIEW_FUNCTIONS = tuple(sorted({_name(c) for c in VIEW_CALLS}))
HELPERS = {
    "bought": {"category", "product", "within_days", "min_amount"},
    "not_contacted": {"days"},
    "in_list": {"path"},
    "responded": {"campaign", "days"},
}


@dataclass(frozen=True)
class Catalog:
    """The columns a rule may use: the facts, then each view's, by relation name."""

    facts: tuple[str, ...]
    views: Mapping[str, tuple[str, ...]]

    def all_names(self) -> list[str]:
        names = list(self.facts)
        for columns in self.views.values():
            names.extend(c for c in columns if c not in names)
        return names


class ExpressionError(BadInputError):
    """A rule expression that does not parse, is not an expression, or names unknown columns."""


def parse_condition(text: str, where: str, key: str) -> exp.Expr:
    """Parse one rule expression, accepting nothing but a single expression."""
    if not text.strip():
        raise ExpressionError(where, f"{key}: empty expression", 'write a SQL condition such as "frequency >= 2"')
    try:
        trees = sqlglot.parse(text, read=DIALECT)
    except sqlglot.errors.ParseError as exc:
        err = exc.errors[0] if exc.errors else {}
        position = f" at column {err.get('col')}" if err.get("col") is not None else ""
        raise ExpressionError(
            where,
            f"{key}: not valid SQL{position}: {err.get('description', 'syntax error')}",
            'write one SQL boolean expression, e.g. "recency_days BETWEEN 180 AND 365"',
        ) from None
    if len(trees) != 1 or trees[0] is None:
        raise ExpressionError(where, f"{key}: more than one statement", "write a single expression, no ';'")
    tree = trees[0]
    _require_expression(tree, where, key)
    return tree


def parse_order_by(text: str, where: str, key: str) -> list[exp.Ordered]:
    """Parse an order_by list ("monetary DESC, recency_days") into ordered terms."""
    if ";" in text:
        raise ExpressionError(where, f"{key}: more than one statement", "write a list of sort keys, no ';'")
    try:
        tree = sqlglot.parse_one(f"SELECT 1 ORDER BY {text}", read=DIALECT)
    except sqlglot.errors.ParseError:
        raise ExpressionError(where, f"{key}: not a list of sort keys", 'write e.g. "monetary DESC"') from None
    order = tree.args.get("order")
    extra = [k for k, v in tree.args.items() if v and k not in {"expressions", "order"}]
    if not isinstance(order, exp.Order) or extra:
        raise ExpressionError(where, f"{key}: not a list of sort keys", 'write e.g. "monetary DESC"')
    terms = list(order.expressions)
    for term in terms:
        _require_expression(term.this, where, key)
    return terms


def _require_expression(tree: exp.Expr, where: str, key: str) -> None:
    if isinstance(tree, (exp.Query, exp.Command, exp.DDL, exp.DML)) or tree.find(exp.Query):
        raise ExpressionError(
            where,
            f"{key}: only an expression is allowed here, not a query or statement",
            "use columns of customer_facts and views, or helpers such as bought(...)",
        )
    if tree.find(exp.Placeholder):
        raise ExpressionError(
            where, f"{key}: parameters ($name, ?) are not allowed in rules", "write the value itself, e.g. 'tv'"
        )
    check_functions(tree, _RULE_KEYS | set(HELPERS), where, f"{key}: ", "rules")


def check_functions(tree: exp.Expr, allowed: set[str], where: str, prefix: str, what: str) -> None:
    """Refuse every function call outside `allowed` (keys of function_key), naming it."""
    for func in tree.find_all(exp.Func):
        if isinstance(func, exp.Connector):  # AND, OR, XOR: operators that sqlglot types as functions
            continue
        if function_key(func) not in allowed:
            raise ExpressionError(
                where,
                f"{prefix}function {function_name(func)}() is not allowed in {what}",
                "rules and views call only deterministic functions that run on every engine: "
                "see README.md, Campaign rule files, for the list",
            )


def function_key(func: exp.Func) -> str:
    """What identifies a function call: its sqlglot node, or its name when sqlglot does not know it."""
    if isinstance(func, exp.Anonymous):
        return str(func.this).lower()
    return type(func).__name__


def function_name(func: exp.Func) -> str:
    """The function's name as DuckDB writes it, for messages."""
    if isinstance(func, exp.Anonymous):
        return str(func.this).lower()
    return func.sql(dialect=DIALECT).split("(", 1)[0].strip().lower() or func.sql_name().lower()


def _keys(calls: tuple[str, ...]) -> set[str]:
    keys = set()
    for call in calls:
        tree = sqlglot.parse_one(f"SELECT {call}", read=DIALECT).expressions[0]
        keys |= {function_key(f) for f in tree.find_all(exp.Func) if not isinstance(f, exp.Window)}
    return keys - {"x", "y", "s", "t", "d", "e", "l", "m", "c"}


_RULE_KEYS = _keys(SCALAR_CALLS + _SYNTAX)
VIEW_KEYS = _RULE_KEYS | _keys(VIEW_CALLS)


def resolve_columns(tree: exp.Expr, catalog: Catalog, where: str, key: str, used_views: set[str]) -> exp.Expr:
    """Qualify every column with the facts or the view that has it; unknown names get suggestions."""
    for column in list(tree.find_all(exp.Column)):
        if _inside_helper(column):
            continue
        name = column.name
        qualifier = column.table
        relation = _relation_for(name, qualifier, catalog, where, key)
        if relation != FACTS_ALIAS:
            used_views.add(relation)
        column.set("table", exp.to_identifier(relation, quoted=relation != FACTS_ALIAS))
        column.set("db", None)
        column.set("catalog", None)
    return tree


def _inside_helper(node: exp.Expr) -> bool:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, exp.Anonymous) and str(parent.this).lower() in HELPERS:
            return True
        parent = parent.parent
    return False


def _relation_for(name: str, qualifier: str, catalog: Catalog, where: str, key: str) -> str:
    if qualifier:
        columns = catalog.views.get(qualifier)
        if qualifier in {FACTS_ALIAS, "customer_facts"}:
            columns, qualifier = catalog.facts, FACTS_ALIAS
        if columns is None:
            close = difflib.get_close_matches(qualifier, list(catalog.views), n=3)
            raise ExpressionError(where, f"{key}: unknown view {qualifier!r}", _did_you_mean(close, "views"))
        if name not in columns:
            close = difflib.get_close_matches(name, list(columns), n=3)
            raise ExpressionError(where, f"{key}: view {qualifier} has no column {name!r}", _did_you_mean(close))
        return qualifier
    if name in catalog.facts:
        return FACTS_ALIAS
    holders = [view for view, columns in catalog.views.items() if name in columns and view != "customer_facts"]
    if len(holders) == 1:
        return holders[0]
    if len(holders) > 1:
        raise ExpressionError(
            where,
            f"{key}: column {name!r} is in several views: {', '.join(sorted(holders))}",
            f"qualify it, e.g. {sorted(holders)[0]}.{name}",
        )
    close = difflib.get_close_matches(name, catalog.all_names(), n=3, cutoff=0.6)
    raise ExpressionError(where, f"{key}: unknown column {name!r}", _did_you_mean(close))


def _did_you_mean(close: list[str], what: str = "columns") -> str:
    if close:
        return "did you mean " + " or ".join(f"`{c}`" for c in close) + "?"
    return f'see the available {what} with: crmlist sql "DESCRIBE customer_facts"'
