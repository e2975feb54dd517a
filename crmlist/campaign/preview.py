"""`crmlist preview`: the waterfall, cells, sample rows and the plan against the last recorded run."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import duckdb

from crmlist.campaign.evaluate import SELECTED_TABLE, Selection, list_columns, resolve_as_of
from crmlist.campaign.execute import evaluate_on
from crmlist.campaign.model import load_campaign
from crmlist.workspace import Workspace

SAMPLE_COLUMNS = ["customer_id", "crm_cell", "crm_offer", "language", "recency_days", "frequency", "monetary"]


@dataclass
class Plan:
    """Changes against the campaign's last recorded run."""

    run_id: str
    as_of: dt.date
    steps: list[tuple[str, int | None, int]]  # step, remaining then, remaining now
    cells: list[tuple[str, int | None, int]]
    entering: int
    leaving: int


@dataclass
class Preview:
    """Everything `preview` shows; nothing in the database or on disk changes."""

    selection: Selection
    sample_columns: list[str]
    sample: list[tuple[Any, ...]]
    plan: Plan | None = None
    notes: list[str] = field(default_factory=list)


def preview_campaign(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    name: str,
    as_of: dt.date | None,
    sample_size: int = 5,
    show_personal: bool = False,
    engine: str | None = None,
) -> Preview:
    """Evaluate the campaign in this (read-only) session and compare it with its last run."""
    campaign = load_campaign(ws, name)
    as_of_date = resolve_as_of(campaign, as_of)
    selection = evaluate_on(con, ws, campaign, as_of_date, columns=SAMPLE_COLUMNS, engine=engine)
    if show_personal:
        columns = [c for c in list_columns(selection) if c not in {"campaign", "channel", "cell", "offer"}]
        columns = ["customer_id", "crm_cell", "crm_offer", *[c for c in columns if c != "customer_id"]]
    else:
        columns = SAMPLE_COLUMNS
    select = ", ".join(f'"{c}"' for c in columns)
    sample = con.execute(
        f"SELECT {select} FROM {SELECTED_TABLE} WHERE crm_is_target "
        "ORDER BY crm_cell_idx, crm_rank, customer_id LIMIT ?",
        [sample_size],
    ).fetchall()
    shown = [c.removeprefix("crm_") for c in columns]
    return Preview(selection, shown, sample, _plan(con, selection))


def _plan(con: duckdb.DuckDBPyConnection, selection: Selection) -> Plan | None:
    last = con.execute(
        "SELECT run_id, as_of, counts FROM runs WHERE campaign = ? AND source = 'crmlist' "
        "ORDER BY finished_at DESC, run_id DESC LIMIT 1",
        [selection.campaign.name],
    ).fetchone()
    if last is None:
        return None
    run_id, as_of, counts_json = last
    counts = json.loads(counts_json or "{}")
    before = {row[0]: row[1] for row in counts.get("waterfall", [])}
    steps = [(s.step, before.get(s.step), s.remaining) for s in selection.waterfall]
    cells_before = counts.get("cells", {})
    cells = [(c.name, cells_before.get(c.name, {}).get("targets"), c.targets) for c in selection.cells]
    moved = con.execute(
        f"""
        WITH now AS (SELECT customer_id FROM {SELECTED_TABLE} WHERE crm_is_target),
        was AS (SELECT customer_id FROM contact_history WHERE run_id = ? AND NOT is_control)
        SELECT (SELECT count(*) FROM now WHERE customer_id NOT IN (SELECT customer_id FROM was)),
               (SELECT count(*) FROM was WHERE customer_id NOT IN (SELECT customer_id FROM now))
        """,
        [run_id],
    ).fetchone()
    entering, leaving = moved if moved else (0, 0)
    return Plan(run_id, as_of, steps, cells, int(entering), int(leaving))
