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
# Functions a rule may not call: they do not run the same on other engines, or reach outside the data.
FORBIDDEN_FUNCTIONS = {
    "hash",
    "random",
    "uuid",
    "gen_random_uuid",
    "now",
    "current_date",
    "current_timestamp",
    "today",
    "read_csv",
    "read_csv_auto",
    "read_parquet",
    "read_json",
    "read_json_auto",
    "read_text",
    "read_blob",
    "getenv",
    "setseed",
    "glob",
    "query",
    "query_table",
}
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
    for func in tree.find_all(exp.Func):
        name = _func_name(func)
        if name in FORBIDDEN_FUNCTIONS:
            raise ExpressionError(
                where,
                f"{key}: function {name}() is not allowed in rules",
                "it does not give the same result on every engine; use a deterministic function",
            )


def _func_name(func: exp.Func) -> str:
    if isinstance(func, exp.Anonymous):
        return str(func.this).lower()
    return func.sql_name().lower()


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
