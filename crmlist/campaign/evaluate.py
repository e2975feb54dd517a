"""Evaluate a campaign in a DuckDB session: the waterfall, the cells and the selected customers.

An evaluation keeps its rows in temp relations of the session, which this module alone creates: a
Selection names them (Relations), what reads them takes the Selection, and `scoped` drops them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb

from crmlist.campaign.compiler import CONTACT_FIELDS, GLOBAL_STAGE, Compiled, compile_campaign
from crmlist.campaign.expressions import Catalog
from crmlist.campaign.model import Campaign
from crmlist.campaign.views import FACTS, facts_query, prepare_session
from crmlist.errors import BadInputError
from crmlist.store import drop_temp, duckdb_reason, quoted, table_columns
from crmlist.workspace import Workspace

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


@dataclass(frozen=True)
class Relations:
    """The temp relations an evaluation keeps in its session, by what they hold."""

    facts: str  # the facts the compiled query reads, computed once (Compiled.facts)
    result: str = "crm_result"  # the compiled query's rows: customer_id, stage, cell, rank
    cells: str = "crm_cells"  # idx, name, offer and template of each cell
    selected: str = "crm_selected"  # the facts of targets and controls with their group, cell, offer, rank
    selected_is_view: bool = False  # a view, when the caller reads the selected rows once

    def drop(self, con: duckdb.DuckDBPyConnection) -> None:
        """Drop those of them the session holds."""
        drop_temp(con, self.selected, view=self.selected_is_view)
        for name in (self.cells, self.result, self.facts):
            drop_temp(con, name)


@dataclass
class Selection:
    """A campaign evaluated as of a date; its rows are in the session's `relations` (`rows`: the selected)."""

    campaign: Campaign
    as_of: dt.date
    compiled: Compiled
    waterfall: list[Step]
    cells: list[CellCount]
    catalog: Catalog
    relations: Relations
    extra_relations: dict[str, str] = field(default_factory=dict)
    engine: str = "duckdb"  # the engine that evaluated it: duckdb or spark

    @property
    def rows(self) -> str:
        """The relation of the selected rows, as SQL names it: what lists, letters and history read."""
        return quoted(self.relations.selected)

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
    Only the facts needed are computed, once, into a table. `once`: the caller reads the selected
    rows a single time (an export), so they are a view rather than a table of their own.
    The selection's relations stay in the session until dropped: `with scoped(con, evaluate(...))`.
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
    relations = Relations(facts=compiled.facts, selected_is_view=once)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {quoted(relations.facts)} AS {facts_query(con, views, needed)}")
    _execute(
        con, campaign, f"CREATE OR REPLACE TEMP TABLE {quoted(relations.result)} AS {compiled.sql}", compiled.params
    )
    rows = con.execute(f"SELECT stage, cell, count(*) FROM {quoted(relations.result)} GROUP BY ALL").fetchall()
    waterfall, cells = tally(compiled, campaign, rows)
    selection = Selection(campaign, as_of, compiled, waterfall, cells, catalog, relations)
    _select(con, selection)
    return selection


@contextlib.contextmanager
def scoped(con: duckdb.DuckDBPyConnection, selection: Selection) -> Iterator[Selection]:
    """The selection for the block; its relations are dropped from the session when the block ends."""
    try:
        yield selection
    finally:
        with contextlib.suppress(duckdb.Error):  # a stopped command may have lost its connection
            selection.relations.drop(con)


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


def selected_sql(selection: Selection) -> str:
    """The facts rows of targets and controls with their cell, offer and rank (DuckDB SQL, no order)."""
    views = sorted(set(selection.extra_relations.values()))
    joins = "".join(f" LEFT JOIN {quoted(v)} ON {quoted(v)}.customer_id = f.customer_id" for v in views)
    extras = "".join(f", {quoted(v)}.{quoted(c)} AS {quoted('x_' + c)}" for c, v in selection.extra_relations.items())
    relations = selection.relations
    return (
        f"SELECT r.stage = 0 AS crm_is_target, CASE r.stage WHEN 0 THEN 'target' WHEN {GLOBAL_STAGE} THEN 'global' "
        "ELSE 'control' END AS crm_group, c.name AS crm_cell, c.offer AS crm_offer, "
        "c.template AS crm_cell_template, r.cell AS crm_cell_idx, r.rank AS crm_rank, "
        f"f.*{extras} FROM {quoted(relations.result)} AS r JOIN {quoted(relations.cells)} AS c ON c.idx = r.cell "
        f"JOIN {quoted(relations.facts)} AS f ON f.customer_id = r.customer_id{joins} "
        f"WHERE r.stage IN (0, {GLOBAL_STAGE}, {selection.compiled.control_stage})"
    )


def _select(con: duckdb.DuckDBPyConnection, selection: Selection) -> None:
    """The facts rows of targets and controls: a table read by lists and letters, or a view read once."""
    cells = [(j, c.name, c.offer, c.template) for j, c in enumerate(selection.campaign.cells, start=1)]
    table = quoted(selection.relations.cells)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} (idx INTEGER, name VARCHAR, offer VARCHAR, template VARCHAR)")
    if cells:
        con.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?)", cells)
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
    kind, order = (
        ("VIEW", "") if selection.relations.selected_is_view else ("TABLE", " ORDER BY r.cell, r.rank, f.customer_id")
    )
    con.execute(f"CREATE OR REPLACE TEMP {kind} {selection.rows} AS {selected_sql(selection)}{order}")


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
        f"SELECT {', '.join(select)} FROM {selection.rows} WHERE crm_group = '{'control' if control else 'target'}' "
        "ORDER BY crm_cell_idx, crm_rank, customer_id"
    )
    return sql, {"campaign": campaign.name, "channel": campaign.channel}


def global_control_members(con: duckdb.DuckDBPyConnection, selection: Selection) -> int:
    """Global control members who would have been targets (recorded in contact history as such)."""
    row = con.execute(f"SELECT count(*) FROM {selection.rows} WHERE crm_group = 'global'").fetchone()
    return int(row[0]) if row else 0


def create_letter_targets(con: duckdb.DuckDBPyConnection, selection: Selection, name: str = "letter_targets") -> str:
    """The table the renderer reads (facts of each target, with campaign, cell, offer, template); its name."""
    campaign = selection.campaign
    extras = "".join(f", {quoted('x_' + c)}" for c in selection.extra_relations)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {quoted(name)} AS SELECT * EXCLUDE (crm_is_target, crm_group, crm_cell_idx, "
        f"crm_rank, crm_cell_template{extras}), $campaign AS crm_campaign, $channel AS crm_channel, "
        f"coalesce(crm_cell_template, $template) AS crm_template FROM {selection.rows} "
        "WHERE crm_is_target ORDER BY customer_id",
        {"campaign": campaign.name, "channel": campaign.channel, "template": campaign.template},
    )
    return name


@contextlib.contextmanager
def letter_targets(con: duckdb.DuckDBPyConnection, selection: Selection) -> Iterator[str]:
    """create_letter_targets for the block, dropped when it ends; yields the table's name."""
    name = create_letter_targets(con, selection)
    try:
        yield name
    finally:
        with contextlib.suppress(duckdb.Error):  # a stopped command may have lost its connection
            drop_temp(con, name)
