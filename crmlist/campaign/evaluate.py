"""Evaluate a campaign in a DuckDB session: the waterfall, the cells and the selected customers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from crmlist.campaign.compiler import (
    CONTACT_FIELDS,
    FACTS_TABLE,
    GLOBAL_STAGE,
    RESULT_TABLE,
    Compiled,
    compile_campaign,
)
from crmlist.campaign.expressions import Catalog
from crmlist.campaign.model import Campaign
from crmlist.campaign.views import FACTS, facts_query, prepare_session
from crmlist.errors import BadInputError
from crmlist.store import duckdb_reason, table_columns
from crmlist.workspace import Workspace

SELECTED_TABLE = "crm_selected"
CELLS_TABLE = "crm_cells"
LIST_HEAD = ["customer_id", "campaign", "cell", "offer", "channel"]
LIST_NAMES = ["first_name", "last_name", "language"]


@dataclass(frozen=True)
class Step:
    """One row of the waterfall."""

    step: str
    remaining: int
    removed: int


@dataclass(frozen=True)
class CellCount:
    """Targets and controls of one cell."""

    name: str
    offer: str | None
    targets: int
    control: int


@dataclass
class Selection:
    """A campaign evaluated as of a date: the session holds crm_result and crm_selected."""

    campaign: Campaign
    as_of: dt.date
    compiled: Compiled
    waterfall: list[Step]
    cells: list[CellCount]
    catalog: Catalog
    extra_relations: dict[str, str] = field(default_factory=dict)
    engine: str = "duckdb"  # the engine that evaluated it: duckdb or spark

    @property
    def targets(self) -> int:
        return sum(c.targets for c in self.cells)

    @property
    def controls(self) -> int:
        return sum(c.control for c in self.cells)

    def counts(self) -> dict[str, Any]:
        return {
            "targets": self.targets,
            "control": self.controls,
            "cells": {c.name: {"targets": c.targets, "control": c.control} for c in self.cells},
            "waterfall": [[s.step, s.remaining, s.removed] for s in self.waterfall],
        }


def resolve_as_of(campaign: Campaign, given: dt.date | None) -> dt.date:
    """The rule file's as_of, else --as-of, else today (local time)."""
    return campaign.as_of or given or dt.date.today()


def build_catalog(con: duckdb.DuckDBPyConnection, view_names: list[str]) -> Catalog:
    """Columns of the facts and of every view that can be joined on customer_id."""
    facts = tuple(table_columns(con, FACTS))
    views = {}
    for name in view_names:
        if name == FACTS:
            continue
        columns = tuple(table_columns(con, name))
        if "customer_id" in columns:
            views[name] = columns
    return Catalog(facts=facts, views=views)


def evaluate(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    campaign: Campaign,
    as_of: dt.date,
    exclude_run: str | None = None,
    columns: Iterable[str] | None = None,
    once: bool = False,
) -> Selection:
    """Run the compiled campaign once and derive the waterfall, cell counts and the selected rows.

    `columns`: the facts the caller needs beyond the list's (None: every fact, as letters need).
    Only the facts needed are computed, once, into crm_facts. `once`: the caller reads the selected
    rows a single time (an export), so crm_selected is a view rather than a table of its own.
    """
    views = prepare_session(con, ws, as_of, exclude_run)
    catalog = build_catalog(con, [v.name for v in views])
    compiled = compile_campaign(campaign, catalog, ws, exclude_run=exclude_run)
    if columns is None:
        needed = list(catalog.facts)
    else:
        # What the query reads, and what the list shows: the channel's contact fields, names, extra columns.
        shown = {"customer_id", *CONTACT_FIELDS[campaign.channel], *LIST_NAMES, *campaign.columns}
        wanted = compiled.facts_columns | shown | set(columns)
        needed = [c for c in catalog.facts if c in wanted]
    con.execute(f"CREATE OR REPLACE TEMP TABLE {FACTS_TABLE} AS {facts_query(con, views, needed)}")
    _execute(con, campaign, compiled.sql, compiled.params)
    rows = con.execute(f"SELECT stage, cell, count(*) FROM {RESULT_TABLE} GROUP BY ALL").fetchall()
    waterfall, cells = tally(compiled, campaign, rows)
    selection = Selection(campaign, as_of, compiled, waterfall, cells, catalog)
    _select(con, selection, "VIEW" if once else "TABLE")
    return selection


def _execute(con: duckdb.DuckDBPyConnection, campaign: Campaign, sql: str, params: dict[str, Any]) -> None:
    try:
        con.execute(sql, params)
    except duckdb.Error as exc:
        reason = duckdb_reason(exc)
        raise BadInputError(
            campaign.rule_file,
            f"the campaign does not run: {reason}",
            f"check the expressions with: crmlist check {campaign.name}",
        ) from None


def tally(
    compiled: Compiled, campaign: Campaign, rows: list[tuple[int, int | None, int]]
) -> tuple[list[Step], list[CellCount]]:
    """Waterfall and cell counts from the result's (stage, cell, count) rows; every engine derives them so."""
    by_stage: dict[int, int] = {}
    by_cell: dict[tuple[int, int], int] = {}
    for stage, cell, n in rows:
        if stage == GLOBAL_STAGE:  # global control members who would have passed: still the global step's
            stage, cell = 1, None
        by_stage[stage] = by_stage.get(stage, 0) + n
        if cell is not None:
            by_cell[(stage, cell)] = by_cell.get((stage, cell), 0) + n
    remaining = sum(by_stage.values())
    waterfall = [Step("all customers", remaining, 0)]
    for code, name in enumerate(compiled.steps, start=1):
        removed = by_stage.get(code, 0)
        remaining -= removed
        waterfall.append(Step(name, remaining, removed))
    cells = [
        CellCount(cell.name, cell.offer, by_cell.get((0, j), 0), by_cell.get((compiled.control_stage, j), 0))
        for j, cell in enumerate(campaign.cells, start=1)
    ]
    return waterfall, cells


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def selected_sql(selection: Selection) -> str:
    """The facts rows of targets and controls with their cell, offer and rank (DuckDB SQL, no order)."""
    relations = sorted(set(selection.extra_relations.values()))
    joins = "".join(f" LEFT JOIN {_quoted(v)} ON {_quoted(v)}.customer_id = f.customer_id" for v in relations)
    extras = "".join(
        f", {_quoted(v)}.{_quoted(c)} AS {_quoted('x_' + c)}" for c, v in selection.extra_relations.items()
    )
    return (
        f"SELECT r.stage = 0 AS crm_is_target, CASE r.stage WHEN 0 THEN 'target' WHEN {GLOBAL_STAGE} THEN 'global' "
        "ELSE 'control' END AS crm_group, c.name AS crm_cell, c.offer AS crm_offer, "
        "c.template AS crm_cell_template, r.cell AS crm_cell_idx, r.rank AS crm_rank, "
        f"f.*{extras} FROM {RESULT_TABLE} AS r JOIN {CELLS_TABLE} AS c ON c.idx = r.cell "
        f"JOIN {FACTS_TABLE} AS f ON f.customer_id = r.customer_id{joins} "
        f"WHERE r.stage IN (0, {GLOBAL_STAGE}, {selection.compiled.control_stage})"
    )


def _select(con: duckdb.DuckDBPyConnection, selection: Selection, kind: str) -> None:
    """The facts rows of targets and controls as crm_selected: a TABLE read by lists and letters, or a VIEW."""
    cells = [(j, c.name, c.offer, c.template) for j, c in enumerate(selection.campaign.cells, start=1)]
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {CELLS_TABLE} (idx INTEGER, name VARCHAR, offer VARCHAR, template VARCHAR)"
    )
    if cells:
        con.executemany(f"INSERT INTO {CELLS_TABLE} VALUES (?, ?, ?, ?)", cells)
    extras = [c for c in selection.campaign.columns if c not in selection.catalog.facts]
    for name in extras:
        holders = [v for v, cols in selection.catalog.views.items() if name in cols]
        if not holders:
            raise BadInputError(
                selection.campaign.rule_file,
                f"columns: unknown column {name!r}",
                "list columns of customer_facts or of a view",
            )
        selection.extra_relations[name] = holders[0]
    order = " ORDER BY r.cell, r.rank, f.customer_id" if kind == "TABLE" else ""
    con.execute(f"CREATE OR REPLACE TEMP {kind} {SELECTED_TABLE} AS {selected_sql(selection)}{order}")


def list_columns(selection: Selection) -> list[str]:
    """Target list columns: ids, campaign, cell, offer, channel, contact fields, names, language, extras."""
    contact = CONTACT_FIELDS[selection.campaign.channel]
    return LIST_HEAD + contact + LIST_NAMES + list(selection.campaign.columns)


def list_query(selection: Selection, control: bool = False) -> tuple[str, dict[str, Any]]:
    """The SELECT producing targets.csv (or control.csv) rows in their fixed order."""
    campaign = selection.campaign
    select = [
        "customer_id",
        "$campaign AS campaign",
        "crm_cell AS cell",
        "crm_offer AS offer",
        "$channel AS channel",
    ]
    select += [f'"{c}"' for c in CONTACT_FIELDS[campaign.channel] + LIST_NAMES]
    for column in campaign.columns:
        source = f"x_{column}" if column in selection.extra_relations else column
        select.append(f'"{source}" AS "{column}"')
    sql = (
        f"SELECT {', '.join(select)} FROM {SELECTED_TABLE} WHERE crm_group = '{'control' if control else 'target'}' "
        "ORDER BY crm_cell_idx, crm_rank, customer_id"
    )
    return sql, {"campaign": campaign.name, "channel": campaign.channel}
