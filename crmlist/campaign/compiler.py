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

# Channel -> (consent flag, usable-contact condition, dedupe keys in the order they are applied).
CONTACT = {
    "email": ("email_opt_in", "nullif(trim(f.email), '') IS NOT NULL", ["f.email_key"]),
    "sms": ("sms_opt_in", "nullif(trim(f.phone), '') IS NOT NULL", ["f.phone_key"]),
    "phone": ("phone_opt_in", "nullif(trim(f.phone), '') IS NOT NULL", ["f.phone_key"]),
    "mail": (
        "mail_opt_in",
        "nullif(trim(f.street), '') IS NOT NULL AND nullif(trim(f.postal_code), '') IS NOT NULL"
        " AND nullif(trim(f.city), '') IS NOT NULL",
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
# h mod 10000 where h is the first 16 hex digits of sha256(salt:customer_id) as an unsigned 64-bit integer.
_BUCKET = "CAST(CAST(('0x' || substr(sha256({salt} || ':' || f.customer_id), 1, 16)) AS UBIGINT) % 10000 AS INTEGER)"


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
    where = campaign.rule_file
    expander = HelperExpander(ws.root)
    views: set[str] = set()

    def condition(text: str, key: str) -> exp.Expr:
        tree = resolve_columns(parse_condition(text, where, key), catalog, where, key, views)
        return expander.expand(tree, where, key)

    consent, usable, dedupe_keys = CONTACT[campaign.channel]
    stages: list[tuple[str, exp.Expr]] = []  # (step name, condition that REMOVES the customer)
    params: dict[str, Any] = {"channel": campaign.channel, "exclude_run": exclude_run or ""}
    glob = global_control(ws)
    if glob:
        params.update(global_pct=glob[0], global_salt=glob[1])
        stages.append(("global control", _parse(_BUCKET.format(salt="$global_salt") + " < $global_pct")))
    stages.append(
        (
            f"consent and contact ({campaign.channel})",
            _parse(f"NOT (coalesce(f.{consent}, FALSE) AND {usable})"),
        )
    )
    stages.append((f"suppressions ({campaign.channel})", _parse(f"f.customer_id IN ({_SUPPRESSED})")))
    for i, text in enumerate(campaign.where):
        cond = condition(text, f"audience.where[{i}]")
        stages.append((f"where: {text}", exp.Not(this=_true(cond))))
    for i, text in enumerate(campaign.exclude):
        cond = condition(text, f"audience.exclude[{i}]")
        stages.append((f"exclude: {text}", _true(cond)))
    if campaign.contact_cap:
        cap = campaign.contact_cap
        params.update(cap_days=cap.days, cap_max=cap.max)
        stages.append((f"contact cap ({cap.max} in {cap.days} days)", _parse(f"f.customer_id IN ({_CAPPED})")))
    ifs = [exp.If(this=c, true=exp.Literal.number(i + 1)) for i, (_, c) in enumerate(stages)]
    if glob:
        # A global control member who passes every later step (before dedupe) is recorded as GLOBAL_STAGE:
        # the waterfall counts him among the global control, contact history keeps him as its member.
        later = exp.or_(*(c for _, c in stages[1:]))
        eligible = exp.and_(stages[0][1], exp.Not(this=exp.func("coalesce", exp.Paren(this=later), exp.false())))
        ifs.insert(0, exp.If(this=eligible, true=exp.Literal.number(GLOBAL_STAGE)))
    stage_case = exp.Case(ifs=ifs).else_(exp.Literal.number(0))

    cell_ifs, order_cols, order_terms = [], [], []
    for j, cell in enumerate(campaign.cells, start=1):
        cell_ifs.append(exp.If(this=_true(condition(cell.where, f"cells[{j - 1}].where")), true=exp.Literal.number(j)))
        for k, term in enumerate(
            parse_order_by(cell.order_by, where, f"cells[{j - 1}].order_by") if cell.order_by else []
        ):
            key_expr = resolve_columns(term.this, catalog, where, f"cells[{j - 1}].order_by", views)
            alias = f"_o{j}_{k}"
            order_cols.append(exp.alias_(exp.Case(ifs=[exp.If(this=_parse(f"_cell = {j}"), true=key_expr)]), alias))
            order_terms.append(exp.Ordered(this=exp.column(alias), desc=bool(term.args.get("desc")), nulls_first=False))
        if cell.limit is not None:
            params[f"limit_{j}"] = cell.limit
    cell_case = exp.Case(ifs=cell_ifs)
    limit_case = exp.Case(
        ifs=[
            exp.If(this=_parse(f"_cell = {j}"), true=_parse(f"$limit_{j}"))
            for j, cell in enumerate(campaign.cells, start=1)
            if cell.limit is not None
        ]
    )
    params.update(salt=campaign.control_salt, control_pct=campaign.control_percent_x100)
    steps = [name for name, _ in stages] + [f"dedupe ({campaign.channel})", "cells", "control"]
    query = _assemble(
        facts=facts,
        stages=len(stages),
        stage_case=stage_case,
        cell_case=cell_case,
        order_cols=order_cols,
        order_terms=order_terms,
        limit_case=limit_case,
        dedupe_keys=dedupe_keys,
        views=sorted(views),
        control=campaign.control_percent_x100 > 0,
    )
    sql = query.sql(dialect=DIALECT)
    used = [k for k in params if f"${k}" in sql]
    read = {c.name for c in query.find_all(exp.Column) if c.table == FACTS_ALIAS}
    return Compiled(
        query=query,
        params={k: params[k] for k in used} | expander.params,
        steps=steps,
        facts=facts,
        views=sorted(views),
        facts_columns=read,
    )


def _parse(sql: str) -> exp.Expr:
    return sqlglot.parse_one(sql, read=DIALECT)


def _true(cond: exp.Expr) -> exp.Expr:
    """TRUE when the condition is TRUE; NULL counts as not matching."""
    return exp.func("coalesce", exp.Paren(this=cond), exp.false())


def _assemble(**parts: Any) -> exp.Query:
    joins = "".join(
        f' LEFT JOIN "{view}" ON "{view}".customer_id = {FACTS_ALIAS}.customer_id' for view in parts["views"]
    )
    keys = parts["dedupe_keys"]
    key_cols = ", ".join(f"{key} AS _k{i}" for i, key in enumerate(keys))
    base = _parse(f"SELECT f.customer_id, f.monetary AS _monetary, {key_cols} FROM {parts['facts']} AS f{joins}")
    assert isinstance(base, exp.Select)
    base = base.select(
        exp.alias_(parts["stage_case"], "_stage"),
        exp.alias_(parts["cell_case"], "_cell"),
        *parts["order_cols"],
    )
    n = parts["stages"]
    # Dedupe and ranking run over the customers still in only: windows over every customer would sort
    # them all. Each dedupe key keeps one customer per value among those still in: highest monetary,
    # smallest id; the ones it drops leave at the dedupe step.
    layers = [f"s AS ({base.sql(dialect=DIALECT)})"]
    removed = [
        "SELECT customer_id, _stage AS stage, _cell AS cell, CAST(NULL AS BIGINT) AS rank FROM s WHERE _stage <> 0"
    ]
    previous = "(SELECT * FROM s WHERE _stage = 0)"
    for i in range(len(keys)):
        layers.append(
            f"d{i} AS (SELECT *, CASE WHEN _k{i} IS NULL THEN 1 ELSE row_number() OVER (PARTITION BY _k{i} "
            f"ORDER BY _monetary DESC NULLS LAST, customer_id) END AS _r{i} FROM {previous})"
        )
        removed.append(f"SELECT customer_id, {n + 1}, _cell, NULL FROM d{i} WHERE _r{i} > 1")
        previous = f"(SELECT * FROM d{i} WHERE _r{i} = 1)"
    order = ", ".join(t.sql(dialect=DIALECT) for t in parts["order_terms"])
    order = f"{order}, customer_id" if order else "customer_id"
    layers.append(
        f"r AS (SELECT *, CASE WHEN _cell IS NOT NULL THEN row_number() OVER (PARTITION BY _cell "
        f"ORDER BY {order}) END AS _rank FROM {previous})"
    )
    limit = parts["limit_case"].sql(dialect=DIALECT) if parts["limit_case"].args.get("ifs") else "NULL"
    bucket = _BUCKET.replace("f.customer_id", "customer_id").format(salt="$salt")
    control = f"{bucket} < $control_pct" if parts["control"] else "FALSE"
    final = (
        f"SELECT customer_id, CASE WHEN _cell IS NULL OR _rank > coalesce({limit}, _rank) THEN {n + 2} "
        f"WHEN {control} THEN {n + 3} ELSE 0 END, _cell, _rank FROM r"
    )
    query = f"WITH {', '.join(layers)} {' UNION ALL '.join([*removed, final])}"
    # Round-trip through sqlglot: the whole query is one validated AST, rendered for the engine's dialect.
    tree = _parse(query)
    assert isinstance(tree, exp.Query)
    return tree
