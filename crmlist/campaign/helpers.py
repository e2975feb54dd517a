"""Rule helpers such as bought(category => 'tv', within_days => 730), expanded into semi-joins."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from crmlist.campaign.expressions import DIALECT, FACTS_ALIAS, HELPERS, ExpressionError

_BOUGHT = """
SELECT pu.customer_id FROM purchases AS pu
CROSS JOIN run_params AS rp
LEFT JOIN products AS pr ON pr.product_id = pu.product_id
WHERE pu.order_date <= rp.as_of AND pu.customer_id IS NOT NULL
"""
_CONTACTED = """
SELECT ch.customer_id FROM contact_history AS ch
CROSS JOIN run_params AS rp
WHERE NOT ch.is_control AND ch.as_of <= rp.as_of AND ch.customer_id IS NOT NULL
  AND ch.as_of > rp.as_of - CAST($days AS INTEGER) AND ch.run_id IS DISTINCT FROM rp.exclude_run
"""
# A responses row in (as-of - N, as-of] that belongs to the campaign: its campaign names it, or it is blank
# and the customer was a target of the campaign at most N days before responding.
_RESPONDED = """
SELECT r.customer_id FROM responses AS r
CROSS JOIN run_params AS rp
WHERE r.customer_id IS NOT NULL AND r.responded_at <= rp.as_of
  AND r.responded_at > rp.as_of - CAST($days AS INTEGER)
  AND (CAST($campaign AS VARCHAR) IS NULL OR trim(r.campaign) = $campaign
       OR (nullif(trim(r.campaign), '') IS NULL AND EXISTS (
           SELECT 1 FROM contact_history AS ch
           WHERE ch.customer_id = r.customer_id AND ch.campaign = $campaign AND NOT ch.is_control
             AND ch.as_of <= r.responded_at AND r.responded_at <= ch.as_of + CAST($days AS INTEGER)
             AND ch.run_id IS DISTINCT FROM rp.exclude_run)))
"""
_CONDITIONS = {
    "category": "coalesce(pu.category, pr.category) = CAST($value AS VARCHAR)",
    "product": "pu.product_id = CAST($value AS VARCHAR)",
    "within_days": "pu.order_date > rp.as_of - CAST($value AS INTEGER)",
}
_TYPES: dict[str, type | tuple[type, ...]] = {
    "category": str,
    "product": str,
    "within_days": int,
    "min_amount": (int, float, str),
    "days": int,
    "campaign": str,
}


class HelperExpander:
    """Replaces helper calls in rule expressions, collecting their values as bound parameters."""

    def __init__(self, root: Path | None = None) -> None:
        self.params: dict[str, Any] = {}
        self.root = root or Path.cwd()  # in_list() files are relative to the workspace

    def expand(self, tree: exp.Expr, where: str, key: str) -> exp.Expr:
        def visit(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Anonymous) and str(node.this).lower() in HELPERS:
                return self._expand_call(node, where, key)
            return node

        return tree.transform(visit, copy=True)

    def _expand_call(self, node: exp.Anonymous, where: str, key: str) -> exp.Expr:
        name = str(node.this).lower()
        if name == "in_list":
            return self._in_list(node, where, key)
        args = self._arguments(node, name, where, key)
        if name == "bought":
            return self._bought(args)
        if name == "responded":
            return self._responded(args, where, key)
        return self._not_contacted(args, where, key)

    def _arguments(self, node: exp.Anonymous, name: str, where: str, key: str) -> dict[str, Any]:
        args: dict[str, Any] = {}
        for arg in node.expressions:
            if not isinstance(arg, (exp.Kwarg, exp.PropertyEQ)) or not isinstance(arg.expression, exp.Literal):
                raise ExpressionError(
                    where,
                    f"{key}: {name}() takes named literal arguments",
                    f"write e.g. {name}({next(iter(sorted(HELPERS[name])))} => 'value')",
                )
            arg_name = arg.this.name.lower()
            if arg_name not in HELPERS[name]:
                raise ExpressionError(
                    where,
                    f"{key}: {name}() has no argument {arg_name!r}",
                    f"its arguments: {', '.join(sorted(HELPERS[name]))}",
                )
            literal = arg.expression
            value: Any = literal.this if literal.is_string else _number(literal.this)
            if not isinstance(value, _TYPES[arg_name]) or isinstance(value, bool):
                raise ExpressionError(where, f"{key}: {name}({arg_name} => ...) has the wrong type", None)
            args[arg_name] = value
        return args

    def _param(self, node: exp.Expr, value: Any) -> exp.Expr:
        """Give every $placeholder in a snippet a unique name bound to `value`."""
        index = len(self.params)

        def rename(part: exp.Expr) -> exp.Expr:
            if isinstance(part, exp.Placeholder) and part.name == "value":
                name = f"h{index}"
                self.params[name] = value
                return exp.Placeholder(this=name)
            return part

        return node.transform(rename)

    def _bought(self, args: dict[str, Any]) -> exp.Expr:
        query = sqlglot.parse_one(_BOUGHT, read=DIALECT)
        assert isinstance(query, exp.Select)
        for arg, snippet in _CONDITIONS.items():
            if arg in args:
                query = query.where(self._param(sqlglot.parse_one(snippet, read=DIALECT), args[arg]))
        if "min_amount" in args:
            having = self._param(
                sqlglot.parse_one("sum(pu.amount) >= CAST($value AS DECIMAL(18,2))", read=DIALECT),
                str(args["min_amount"]),
            )
            query = query.group_by("pu.customer_id").having(having)
        return exp.In(this=exp.column("customer_id", table=FACTS_ALIAS), query=exp.Subquery(this=query))

    def _not_contacted(self, args: dict[str, Any], where: str, key: str) -> exp.Expr:
        if "days" not in args:
            raise ExpressionError(where, f"{key}: not_contacted() needs days => N", "write not_contacted(days => 30)")
        query = sqlglot.parse_one(_CONTACTED, read=DIALECT)
        index = len(self.params)
        self.params[f"h{index}"] = args["days"]
        query = query.transform(
            lambda n: exp.Placeholder(this=f"h{index}") if isinstance(n, exp.Placeholder) and n.name == "days" else n
        )
        inside = exp.In(this=exp.column("customer_id", table=FACTS_ALIAS), query=exp.Subquery(this=query))
        return exp.Not(this=exp.Paren(this=inside))

    def _responded(self, args: dict[str, Any], where: str, key: str) -> exp.Expr:
        if "days" not in args:
            raise ExpressionError(
                where, f"{key}: responded() needs days => N", "write responded(campaign => 'winback', days => 90)"
            )
        values = {"days": args["days"], "campaign": args.get("campaign")}
        names: dict[str, str] = {}
        for arg, value in values.items():
            names[arg] = f"h{len(self.params)}"
            self.params[names[arg]] = value
        query = sqlglot.parse_one(_RESPONDED, read=DIALECT).transform(
            lambda n: exp.Placeholder(this=names[n.name]) if isinstance(n, exp.Placeholder) and n.name in names else n
        )
        return exp.In(this=exp.column("customer_id", table=FACTS_ALIAS), query=exp.Subquery(this=query))

    def _in_list(self, node: exp.Anonymous, where: str, key: str) -> exp.Expr:
        """in_list('seeds.csv'): customers whose id is in the file's customer_id column (else its first).

        crmlist reads the file itself and binds the ids as one list parameter: the database never opens a
        file (the session is sandboxed), and the ids never reach an error message.
        """
        args = node.expressions
        if len(args) != 1 or not isinstance(args[0], exp.Literal) or not args[0].is_string:
            raise ExpressionError(where, f"{key}: in_list() takes one file name", "write in_list('seeds.csv')")
        ids = read_id_list(self.root, str(args[0].this), where, key)
        name = f"h{len(self.params)}"
        self.params[name] = ids
        query = sqlglot.parse_one(f"SELECT unnest(CAST(${name} AS VARCHAR[]))", read=DIALECT)
        return exp.In(this=exp.column("customer_id", table=FACTS_ALIAS), query=exp.Subquery(this=query))


def list_path(root: Path, given: str, where: str, key: str) -> Path:
    """The in_list() file named `given`: relative, without '..', and inside the workspace once symlinks resolve."""
    relative = Path(given)
    if not given.strip() or relative.is_absolute() or ".." in relative.parts:
        raise ExpressionError(
            where,
            f"{key}: in_list() takes a path inside the workspace, relative and without '..'",
            "put the file in the workspace and name it from there, e.g. in_list('lists/seeds.csv')",
        )
    base = root.resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base):
        raise ExpressionError(
            where,
            f"{key}: in_list() file {given} leads outside the workspace (a symlink)",
            "copy the file into the workspace instead of linking to it",
        )
    if not path.is_file():
        raise ExpressionError(
            where, f"{key}: in_list() cannot read {given}", "give a UTF-8 CSV file relative to the workspace"
        )
    return path


def read_id_list(root: Path, given: str, where: str, key: str) -> list[str]:
    """The ids of an in_list() file: its customer_id column, else its first; blank ids left out."""
    path = list_path(root, given, where, key)
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = csv.reader(fh)
            header = [h.strip() for h in next(rows, [])]
            if not header:
                raise ExpressionError(
                    where, f"{key}: in_list() file {given} is empty", "add a customer_id header and the ids"
                )
            index = header.index("customer_id") if "customer_id" in header else 0
            return [row[index] for row in rows if len(row) > index and row[index].strip()]
    except (OSError, UnicodeDecodeError, csv.Error):
        # The reason only: the file's own text (a line, a field) never goes into a message.
        raise ExpressionError(
            where, f"{key}: in_list() cannot read {given}: not a UTF-8 CSV file", "save the list as UTF-8 CSV"
        ) from None


def _number(text: str) -> int | float | str:
    try:
        return int(text)
    except ValueError:
        return text
