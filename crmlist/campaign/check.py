"""`crmlist check`: validate rule files, expressions and templates without writing anything."""

from __future__ import annotations

import datetime as dt
import difflib

import duckdb
import sqlglot
from sqlglot import exp

from crmlist.campaign.compiler import FACTS_TABLE, compile_campaign
from crmlist.campaign.evaluate import build_catalog
from crmlist.campaign.expressions import DIALECT, FACTS_ALIAS, Catalog, parse_condition, resolve_columns
from crmlist.campaign.helpers import HelperExpander
from crmlist.campaign.model import Campaign, campaign_names, load_campaign
from crmlist.campaign.runner import wants_letters
from crmlist.campaign.views import prepare_session
from crmlist.errors import BadInputError, CrmlistError, MultipleErrors
from crmlist.letters.offers import offers_problems
from crmlist.store import duckdb_reason
from crmlist.workspace import Workspace


def check_campaigns(
    con: duckdb.DuckDBPyConnection, ws: Workspace, names: list[str] | None = None, as_of: dt.date | None = None
) -> tuple[list[str], list[CrmlistError]]:
    """Check the named campaigns (all when empty); returns the names checked and every problem of each.

    A broken campaign never hides another's problems; a problem several campaigns share (crmlist.toml,
    one template) is reported once.
    """
    views = prepare_session(con, ws, as_of or dt.date.today())
    # The compiled query reads crm_facts; EXPLAIN only needs its columns, so a view will do.
    con.execute(f"CREATE OR REPLACE TEMP VIEW {FACTS_TABLE} AS SELECT * FROM customer_facts")
    catalog = build_catalog(con, [v.name for v in views])
    names = names or campaign_names(ws)
    problems: dict[str, CrmlistError] = {}  # by message: a crmlist.toml error once, not once per campaign
    for name in names:
        for problem in _check_campaign(con, ws, name, catalog):
            problems.setdefault(problem.message, problem)
    return names, list(problems.values())


def _check_campaign(con: duckdb.DuckDBPyConnection, ws: Workspace, name: str, catalog: Catalog) -> list[CrmlistError]:
    """Every problem of one campaign, whatever the other campaigns hold."""
    from crmlist.letters import check_templates  # only checks of templates pay for Jinja2

    try:
        campaign = load_campaign(ws, name)
    except MultipleErrors as exc:
        return list(exc.errors)
    except CrmlistError as exc:
        return [exc]
    problems = _check_expressions(con, campaign, catalog, ws) + _check_columns(campaign, catalog)
    if not problems:  # the whole query only when its parts are sound: else it fails on them again
        problems.extend(_check_compiled(con, ws, campaign, catalog))
    if wants_letters(ws, campaign):  # run's own rule: a list-only campaign has no template to check
        problems.extend(_check_offers(con, ws, campaign))
        templates = sorted({campaign.template, *(c.template for c in campaign.cells if c.template)})
        problems.extend(check_templates(ws, templates, extra_columns=catalog.facts))
    return problems


def _check_offers(con: duckdb.DuckDBPyConnection, ws: Workspace, campaign: Campaign) -> list[CrmlistError]:
    """crmlist.toml's [offers] and the campaign's: keys and values, and excluded categories that no product
    or purchase has (a typo would exclude nothing), with the closest category there is."""
    found: list[CrmlistError] = list(offers_problems("crmlist.toml", ws.section("offers")))
    tables = (("crmlist.toml", ws.section("offers")), (campaign.rule_file, campaign.offers))
    rows = con.execute(
        "SELECT DISTINCT lower(category) FROM products WHERE category IS NOT NULL "
        "UNION SELECT DISTINCT lower(category) FROM purchases WHERE category IS NOT NULL"
    ).fetchall()
    known = sorted(str(r[0]) for r in rows)
    if found or not known:  # nothing loaded yet: no category is unknown
        return found
    for where, table in tables:
        for name in table.get("exclude_categories", []):
            if name.strip().lower() not in known:
                close = difflib.get_close_matches(name.strip().lower(), known, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known categories: {', '.join(known[:10])}"
                found.append(BadInputError(where, f"offers.exclude_categories: no product has category {name!r}", hint))
    return found


def _check_compiled(
    con: duckdb.DuckDBPyConnection, ws: Workspace, campaign: Campaign, catalog: Catalog
) -> list[CrmlistError]:
    """The campaign's whole query, compiled and bound by DuckDB (order_by, limits, cells together)."""
    try:
        compiled = compile_campaign(campaign, catalog, ws)
        con.execute("EXPLAIN " + compiled.sql, compiled.params)
    except MultipleErrors as exc:
        return list(exc.errors)
    except CrmlistError as exc:
        return [exc]
    except duckdb.Error as exc:
        return [_db_problem(campaign, "", exc)]
    return []


def _expressions(campaign: Campaign) -> list[tuple[str, str]]:
    items = [(f"audience.where[{i}]", t) for i, t in enumerate(campaign.where)]
    items += [(f"audience.exclude[{i}]", t) for i, t in enumerate(campaign.exclude)]
    items += [(f"cells[{i}].where", c.where) for i, c in enumerate(campaign.cells)]
    return items


def _check_columns(campaign: Campaign, catalog: Catalog) -> list[CrmlistError]:
    """`columns` names columns of the facts or of a view, as the list writer reads them: names, not SQL."""
    where = f"queries/{campaign.path.name}"
    known = catalog.all_names()
    problems: list[CrmlistError] = []
    for index, name in enumerate(campaign.columns):
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = "did you mean " + " or ".join(f"`{c}`" for c in close) + "?" if close else None
            problems.append(
                BadInputError(
                    where,
                    f"columns[{index}]: unknown column {name!r}",
                    hint or "list names of columns of customer_facts or of a view, not expressions",
                )
            )
    return problems


def _check_expressions(
    con: duckdb.DuckDBPyConnection, campaign: Campaign, catalog: Catalog, ws: Workspace
) -> list[CrmlistError]:
    """Each expression alone, so a problem names its key: parse, columns, then DuckDB's binder."""
    where = f"queries/{campaign.path.name}"
    problems: list[CrmlistError] = []
    for key, text in _expressions(campaign):
        views: set[str] = set()
        expander = HelperExpander(ws.root)
        try:
            tree = resolve_columns(parse_condition(text, where, key), catalog, where, key, views)
            tree = expander.expand(tree, where, key)
        except CrmlistError as exc:
            problems.append(exc)
            continue
        query = sqlglot.select(exp.alias_(exp.Paren(this=tree), "ok")).from_(f"customer_facts AS {FACTS_ALIAS}")
        for view in sorted(views):
            query = query.join(
                exp.to_table(view, quoted=True),
                on=exp.column("customer_id", table=view, quoted=True).eq(exp.column("customer_id", FACTS_ALIAS)),
                join_type="left",
            )
        try:
            con.execute("EXPLAIN " + query.sql(dialect=DIALECT), expander.params)
        except duckdb.Error as exc:
            problems.append(_db_problem(campaign, key, exc))
    return problems


def _db_problem(campaign: Campaign, key: str, exc: duckdb.Error) -> BadInputError:
    reason = duckdb_reason(exc)
    reason = reason.split(": ", 1)[1] if ": " in reason else reason
    prefix = f"{key}: " if key else ""
    return BadInputError(f"queries/{campaign.path.name}", f"{prefix}{reason[:200]}", "fix the expression (DuckDB SQL)")
