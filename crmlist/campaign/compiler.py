"""The campaign compiler: a validated rule file becomes one SQL query over the facts (sqlglot AST)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlglot
from sqlglot import exp

from crmlist.campaign.expressions import (
    DIALECT,
    FACTS_ALIAS,
    Catalog,
    parse_condition,
    parse_order_by,
    resolve_columns,
)
from crmlist.campaign.helpers import HelperExpander
from crmlist.campaign.model import Campaign
from crmlist.errors import BadInputError
from crmlist.workspace import Workspace

# The result's stage of global control members who would otherwise have passed the campaign's steps.
GLOBAL_STAGE = -1
# The relation a compiled query reads the facts from unless told otherwise: evaluate materialises the
# facts the campaign needs under this name (Compiled.facts), once per evaluation.
FACTS_TABLE = "crm_facts"

# Channel -> (consent flag, conditions that make its contact usable, dedupe keys in the order applied).
CONTACT = {
    "email": ("email_opt_in", ["nullif(trim(f.email), '') IS NOT NULL"], ["f.email_key"]),
    "sms": ("sms_opt_in", ["nullif(trim(f.phone), '') IS NOT NULL"], ["f.phone_key"]),
    "phone": ("phone_opt_in", ["nullif(trim(f.phone), '') IS NOT NULL"], ["f.phone_key"]),
    "mail": (
        "mail_opt_in",
        [
            "nullif(trim(f.street), '') IS NOT NULL",
            "nullif(trim(f.postal_code), '') IS NOT NULL",
            "nullif(trim(f.city), '') IS NOT NULL",
        ],
        ["nullif(trim(f.household_id), '')", "f.address_key || '|' || upper(coalesce(trim(f.country), ''))"],
    ),
}
CONTACT_FIELDS = {
    "email": ["email"],
    "sms": ["phone"],
    "phone": ["phone"],
    "mail": ["street", "postal_code", "city", "country"],
}
# Suppression: every customer record of a person that a suppression row covering the channel names by
# any key it has (customer_id, or the normalised e-mail, phone or address), whatever its added_at: the
# records the row names, then every record that shares a key with one of them (the same person's
# duplicates). Keys are (key_kind, key_value) pairs, so that one equi-join matches every kind.
_CUSTOMER_KEYS = """(
SELECT customer_id, 'id' AS key_kind, customer_id AS key_value FROM customers
UNION ALL SELECT customer_id, 'email', email_key FROM customers WHERE email_key IS NOT NULL
UNION ALL SELECT customer_id, 'phone', phone_key FROM customers WHERE phone_key IS NOT NULL
UNION ALL SELECT customer_id, 'address', address_key FROM customers WHERE address_key IS NOT NULL
)"""
_SUPPRESSION_KEYS = """(
SELECT key_kind, key_value FROM (
SELECT 'id' AS key_kind, customer_id AS key_value, channel FROM suppressions
UNION ALL SELECT 'email', email_key, channel FROM suppressions
UNION ALL SELECT 'phone', phone_key, channel FROM suppressions
UNION ALL SELECT 'address', address_key, channel FROM suppressions
) AS sk WHERE key_value IS NOT NULL AND channel IN ('all', $channel)
)"""
_SUPPRESSED = f"""
SELECT shared.customer_id FROM {_CUSTOMER_KEYS} AS shared JOIN (
SELECT own.key_kind, own.key_value FROM {_CUSTOMER_KEYS} AS own JOIN (
SELECT named.customer_id FROM {_CUSTOMER_KEYS} AS named JOIN {_SUPPRESSION_KEYS} AS s
ON s.key_kind = named.key_kind AND s.key_value = named.key_value
) AS person ON person.customer_id = own.customer_id
) AS person_keys ON person_keys.key_kind = shared.key_kind AND person_keys.key_value = shared.key_value
"""
_CAPPED = """
SELECT ch.customer_id FROM contact_history AS ch CROSS JOIN run_params AS rp
WHERE NOT ch.is_control AND ch.as_of <= rp.as_of AND ch.as_of > rp.as_of - CAST($cap_days AS INTEGER)
  AND ch.run_id IS DISTINCT FROM $exclude_run
GROUP BY ch.customer_id HAVING count(*) >= $cap_max
"""
# h mod 10000 where h is the first 16 hex digits of sha256(salt:customer_id) as an unsigned 64-bit integer;
# `salt` and `customer_id` stand for the expressions _bucket() puts in their place.
_BUCKET = "CAST(CAST(('0x' || substr(sha256(salt || ':' || customer_id), 1, 16)) AS UBIGINT) % 10000 AS INTEGER)"


@dataclass
class Compiled:
    """The campaign's query, which reads the facts from the relation `facts` (and views), and what its
    rows mean: one row per customer, (customer_id, stage, cell, rank)."""

    query: exp.Query
    params: dict[str, Any]
    steps: list[str]  # waterfall step names: stage code i+1 is steps[i]; the last one is the control split
    facts: str = FACTS_TABLE  # the relation the query reads the facts from
    views: list[str] = field(default_factory=list)
    facts_columns: set[str] = field(default_factory=set)  # the facts columns the query reads

    @property
    def sql(self) -> str:
        """The query in DuckDB SQL (engines transpile it from there)."""
        return self.query.sql(dialect=DIALECT)

    @property
    def dedupe_stage(self) -> int:
        return len(self.steps) - 2

    @property
    def cells_stage(self) -> int:
        return len(self.steps) - 1

    @property
    def control_stage(self) -> int:
        return len(self.steps)


def global_control(ws: Workspace) -> tuple[int, str] | None:
    """crmlist.toml [control] global_percent and global_salt, as (percent x 100, salt)."""
    section = ws.section("control")
    if "global_percent" not in section:
        return None
    try:
        exact = Decimal(str(section["global_percent"]))
    except InvalidOperation:
        exact = Decimal(-1)
    if not (0 <= exact <= 100) or exact != exact.quantize(Decimal("0.01")):
        raise BadInputError("crmlist.toml", "control.global_percent: must be 0 to 100 with at most two decimals", None)
    return int(exact * 100), str(section.get("global_salt", "global"))


def compile_campaign(
    campaign: Campaign, catalog: Catalog, ws: Workspace, exclude_run: str | None = None, facts: str = FACTS_TABLE
) -> Compiled:
    """Compile every waterfall step, cells and the control split into one query over the facts in `facts`."""
    rules = _Rules(campaign, catalog, ws)
    params: dict[str, Any] = {"channel": campaign.channel, "exclude_run": exclude_run or ""}
    glob = global_control(ws)
    if glob:
        params.update(global_pct=glob[0], global_salt=glob[1])
    stages = _stages(campaign, glob is not None, rules, params)
    cells = _cells(campaign, rules, params)
    params.update(salt=campaign.control_salt, control_pct=campaign.control_percent_x100)
    query = _assemble(
        _Facts(facts, [_parse(key) for key in CONTACT[campaign.channel][2]], sorted(rules.views)),
        _stage_case(stages, held_out=glob is not None),
        len(stages),
        cells,
        control=campaign.control_percent_x100 > 0,
    )
    used = {p.name for p in query.find_all(exp.Placeholder)}
    return Compiled(
        query=query,
        params={k: v for k, v in params.items() if k in used} | rules.expander.params,
        steps=[name for name, _ in stages] + [f"dedupe ({campaign.channel})", "cells", "control"],
        facts=facts,
        views=sorted(rules.views),
        facts_columns={c.name for c in query.find_all(exp.Column) if c.table == FACTS_ALIAS},
    )


class _Rules:
    """A campaign's rule expressions resolved against the catalog, helpers expanded into bound parameters."""

    def __init__(self, campaign: Campaign, catalog: Catalog, ws: Workspace) -> None:
        self.where = campaign.rule_file
        self.catalog = catalog
        self.expander = HelperExpander(ws.root)
        self.views: set[str] = set()  # the views the expressions read, joined on customer_id

    def condition(self, text: str, key: str) -> exp.Expr:
        tree = resolve_columns(parse_condition(text, self.where, key), self.catalog, self.where, key, self.views)
        return self.expander.expand(tree, self.where, key)

    def order_by(self, text: str, key: str) -> list[tuple[exp.Expr, bool]]:
        """(sort key, descending) of each term of an order_by."""
        terms = parse_order_by(text, self.where, key)
        resolved = (resolve_columns(t.this, self.catalog, self.where, key, self.views) for t in terms)
        return [(column, bool(t.args.get("desc"))) for column, t in zip(resolved, terms, strict=True)]


def _stages(campaign: Campaign, held_out: bool, rules: _Rules, params: dict[str, Any]) -> list[tuple[str, exp.Expr]]:
    """The waterfall's steps before dedupe, in order: (step name, condition that REMOVES the customer);
    `held_out`: the global control comes first (by $global_salt and $global_pct)."""
    consent, usable, _ = CONTACT[campaign.channel]
    stages: list[tuple[str, exp.Expr]] = []
    if held_out:
        held = exp.LT(this=_bucket(_param("global_salt"), _FACT_ID), expression=_param("global_pct"))
        stages.append(("global control", held))
    reachable = exp.and_(_coalesce(exp.column(consent, FACTS_ALIAS)), *(_parse(c) for c in usable))
    stages.append((f"consent and contact ({campaign.channel})", exp.Not(this=exp.Paren(this=reachable))))
    stages.append((f"suppressions ({campaign.channel})", _in_query(_FACT_ID, _SUPPRESSED)))
    for i, text in enumerate(campaign.where):
        stages.append((f"where: {text}", exp.Not(this=_true(rules.condition(text, f"audience.where[{i}]")))))
    for i, text in enumerate(campaign.exclude):
        stages.append((f"exclude: {text}", _true(rules.condition(text, f"audience.exclude[{i}]"))))
    if campaign.contact_cap:
        cap = campaign.contact_cap
        params.update(cap_days=cap.days, cap_max=cap.max)
        stages.append((f"contact cap ({cap.max} in {cap.days} days)", _in_query(_FACT_ID, _CAPPED)))
    return stages


@dataclass
class _Cells:
    """The cells as expressions: which cell (first match), each cell's sort keys and limit."""

    case: exp.Case  # the first matching cell's number, else NULL
    order_columns: list[exp.Expr] = field(default_factory=list)  # _oJ_K: cell J's K-th sort key, in cell J only
    order_terms: list[exp.Ordered] = field(default_factory=list)
    limits: list[exp.If] = field(default_factory=list)  # cell J's $limit_J, for the cells that have one


def _cells(campaign: Campaign, rules: _Rules, params: dict[str, Any]) -> _Cells:
    cells = _Cells(exp.Case())
    for j, cell in enumerate(campaign.cells, start=1):
        key = f"cells[{j - 1}]"
        cells.case.append("ifs", exp.If(this=_true(rules.condition(cell.where, f"{key}.where")), true=_number(j)))
        for k, (sort_key, desc) in enumerate(rules.order_by(cell.order_by, f"{key}.order_by") if cell.order_by else []):
            alias = f"_o{j}_{k}"
            cells.order_columns.append(exp.alias_(exp.Case(ifs=[exp.If(this=_in_cell(j), true=sort_key)]), alias))
            cells.order_terms.append(exp.Ordered(this=exp.column(alias), desc=desc, nulls_first=False))
        if cell.limit is not None:
            params[f"limit_{j}"] = cell.limit
            cells.limits.append(exp.If(this=_in_cell(j), true=_param(f"limit_{j}")))
    return cells


@dataclass(frozen=True)
class _Facts:
    """What the query reads: the facts relation, the channel's dedupe keys over it, the views joined to it."""

    relation: str
    dedupe_keys: list[exp.Expr]
    views: list[str]


def _parse(sql: str) -> exp.Expr:
    """One of the compiler's own SQL snippets (constants, never a rule's text) as a tree."""
    return sqlglot.parse_one(sql, read=DIALECT)


_FACT_ID = exp.column("customer_id", FACTS_ALIAS)


def _param(name: str) -> exp.Placeholder:
    return exp.Placeholder(this=name)


def _number(value: int) -> exp.Expr:
    return exp.Literal.number(value)


def _coalesce(cond: exp.Expr) -> exp.Expr:
    return exp.func("coalesce", cond, exp.false())


def _true(cond: exp.Expr) -> exp.Expr:
    """TRUE when the condition is TRUE; NULL counts as not matching."""
    return _coalesce(exp.Paren(this=cond))


def _in_query(value: exp.Expr, query: str) -> exp.Expr:
    return exp.In(this=value.copy(), query=exp.Subquery(this=_parse(query)))


def _in_cell(j: int) -> exp.Expr:
    return exp.EQ(this=exp.column("_cell"), expression=_number(j))


def _is_null(value: exp.Expr) -> exp.Expr:
    return exp.Is(this=value, expression=exp.null())


def _bucket(salt: exp.Expr, customer_id: exp.Expr) -> exp.Expr:
    """_BUCKET of `salt` and `customer_id`: the control split's hash bucket, 0 to 9999."""
    parts = {"salt": salt, "customer_id": customer_id}
    return _parse(_BUCKET).transform(
        lambda node: parts[node.name].copy() if isinstance(node, exp.Column) and node.name in parts else node
    )


def _rows(relation: str, condition: exp.Expr) -> exp.Subquery:
    """(SELECT * FROM relation WHERE condition): the customers still in after a layer."""
    return exp.Subquery(this=exp.select(exp.Star()).from_(relation).where(condition))


def _row_number(partition: exp.Expr, order: list[exp.Ordered]) -> exp.Window:
    by_id = exp.Ordered(this=exp.column("customer_id"), nulls_first=False)
    return exp.Window(this=exp.RowNumber(), partition_by=[partition], order=exp.Order(expressions=[*order, by_id]))


def _assemble(facts: _Facts, stage_case: exp.Case, n: int, cells: _Cells, control: bool) -> exp.Query:
    """Per customer (customer_id, stage, cell, rank). Stage: 0 for targets, else the code of the step that
    removed him: 1 to n for the `n` steps before dedupe, n + 1 dedupe, n + 2 cells, n + 3 control."""
    # Dedupe and ranking run over the customers still in only: windows over every customer would sort
    # them all. Each dedupe key keeps one customer per value among those still in: highest monetary,
    # smallest id; the ones it drops leave at the dedupe step.
    layers: list[tuple[str, exp.Query]] = [("s", _base(facts, stage_case, cells))]
    removed = [
        exp.select(
            "customer_id",
            exp.alias_(exp.column("_stage"), "stage"),
            exp.alias_(exp.column("_cell"), "cell"),
            exp.alias_(exp.cast(exp.null(), "BIGINT"), "rank"),
        )
        .from_("s")
        .where(exp.NEQ(this=exp.column("_stage"), expression=_number(0)))
    ]
    previous = _rows("s", exp.EQ(this=exp.column("_stage"), expression=_number(0)))
    for i in range(len(facts.dedupe_keys)):
        key, kept = exp.column(f"_k{i}"), exp.column(f"_r{i}")
        by_monetary = exp.Ordered(this=exp.column("_monetary"), desc=True, nulls_first=False)
        first = exp.Case(ifs=[exp.If(this=_is_null(key), true=_number(1))]).else_(_row_number(key, [by_monetary]))
        layers.append((f"d{i}", exp.select(exp.Star(), exp.alias_(first, f"_r{i}")).from_(previous)))
        removed.append(
            exp.select("customer_id", _number(n + 1), "_cell", exp.null())
            .from_(f"d{i}")
            .where(exp.GT(this=kept, expression=_number(1)))
        )
        previous = _rows(f"d{i}", exp.EQ(this=kept.copy(), expression=_number(1)))
    cell = exp.column("_cell")
    rank = exp.Case(ifs=[exp.If(this=exp.Not(this=_is_null(cell)), true=_row_number(cell, cells.order_terms))])
    layers.append(("r", exp.select(exp.Star(), exp.alias_(rank, "_rank")).from_(previous)))
    final = exp.select("customer_id", _outcome(n, cells, control), "_cell", "_rank").from_("r")
    query: exp.Query = exp.union(*removed, final, distinct=False)
    for name, layer in layers:
        query = query.with_(name, as_=layer)
    return query


def _stage_case(stages: list[tuple[str, exp.Expr]], held_out: bool) -> exp.Case:
    """The first step that removes the customer (its code, from 1), else 0; `held_out`: the first step is
    the global control."""
    ifs = [exp.If(this=c, true=_number(i + 1)) for i, (_, c) in enumerate(stages)]
    if held_out:
        # A global control member who passes every later step (before dedupe) is recorded as GLOBAL_STAGE:
        # the waterfall counts him among the global control, contact history keeps him as its member.
        later = exp.or_(*(c for _, c in stages[1:]))
        eligible = exp.and_(stages[0][1], exp.Not(this=_coalesce(exp.Paren(this=later))))
        ifs.insert(0, exp.If(this=eligible, true=_number(GLOBAL_STAGE)))
    return exp.Case(ifs=ifs).else_(_number(0))


def _base(facts: _Facts, stage_case: exp.Case, cells: _Cells) -> exp.Select:
    """Every customer's stage, cell and sort keys, over the facts and the views the rules read."""
    keys = [exp.alias_(key.copy(), f"_k{i}") for i, key in enumerate(facts.dedupe_keys)]
    base = exp.select(
        _FACT_ID.copy(),
        exp.alias_(exp.column("monetary", FACTS_ALIAS), "_monetary"),
        *keys,
        exp.alias_(stage_case, "_stage"),
        exp.alias_(cells.case, "_cell"),
        *cells.order_columns,
    ).from_(exp.alias_(exp.Table(this=exp.to_identifier(facts.relation)), FACTS_ALIAS, table=True))
    for view in facts.views:
        relation = exp.to_identifier(view, quoted=True)
        on = exp.EQ(this=exp.Column(this=exp.to_identifier("customer_id"), table=relation), expression=_FACT_ID.copy())
        base = base.join(exp.Table(this=relation.copy()), on=on, join_type="left")
    return base


def _outcome(n: int, cells: _Cells, control: bool) -> exp.Case:
    """A customer past the dedupe: out at the cells step (no cell, or past its cell's limit), control, or 0."""
    limit = exp.Case(ifs=cells.limits) if cells.limits else exp.null()
    rank = exp.column("_rank")
    past = exp.or_(
        _is_null(exp.column("_cell")), exp.GT(this=rank, expression=exp.func("coalesce", limit, rank.copy()))
    )
    held = (
        exp.LT(this=_bucket(_param("salt"), exp.column("customer_id")), expression=_param("control_pct"))
        if control
        else exp.false()
    )
    return exp.Case(ifs=[exp.If(this=past, true=_number(n + 2)), exp.If(this=held, true=_number(n + 3))]).else_(
        _number(0)
    )
