"""`crmlist preview`: the waterfall, cells, sample rows and the plan against the last recorded run."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import duckdb

from crmlist.campaign.evaluate import Selection, list_columns, resolve_as_of, scoped
from crmlist.campaign.execute import evaluate_on
from crmlist.campaign.identity import changes, recorded_wave, run_id_for, run_inputs
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


@dataclass(frozen=True)
class Verdict:
    """What `crmlist run` would do with the same options: reuse, refuse or record a run."""

    action: str  # reuse | refuse | new
    run_id: str  # the run id `run` would compute
    recorded: str | None  # the wave's recorded run, if any
    changes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.action == "reuse":
            return f"run would report the recorded run {self.recorded}: nothing it reads has changed"
        if self.action == "refuse":
            return (
                f"run would refuse: {self.recorded} already ran for this as-of and wave; since then "
                f"{', '.join(self.changes)} (--rerun replaces it with the counts above)"
            )
        return f"run would record a new run {self.run_id}"


@dataclass
class Preview:
    """Everything `preview` shows; nothing in the database or on disk changes."""

    selection: Selection
    sample_columns: list[str]
    sample: list[tuple[Any, ...]]
    plan: Plan | None = None
    verdict: Verdict | None = None
    notes: list[str] = field(default_factory=list)


def preview_campaign(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    name: str,
    as_of: dt.date | None,
    sample_size: int = 5,
    show_personal: bool = False,
    engine: str | None = None,
    wave: int = 1,
) -> Preview:
    """Evaluate the campaign in this (read-only) session as `run` would, and compare it with the run
    recorded for the same as-of and wave (else the campaign's latest run), whose own contacts do not count."""
    campaign = load_campaign(ws, name)
    as_of_date = resolve_as_of(campaign, as_of)
    earlier = recorded_wave(con, name, as_of_date, wave)
    inputs = run_inputs(con, ws, campaign, as_of_date, wave, engine, earlier.recorded_at if earlier else None)
    run_id = run_id_for(campaign, as_of_date, wave, inputs)
    if earlier is None:
        verdict = Verdict("new", run_id, None)
    elif earlier.run_id == run_id:
        verdict = Verdict("reuse", run_id, earlier.run_id)
    else:
        verdict = Verdict("refuse", run_id, earlier.run_id, changes(earlier.inputs, inputs))
    exclude = earlier.run_id if earlier else None
    selection = evaluate_on(con, ws, campaign, as_of_date, exclude_run=exclude, columns=SAMPLE_COLUMNS, engine=engine)
    with scoped(con, selection):
        sample_columns, sample = _sample(con, selection, sample_size, show_personal)
        return Preview(selection, sample_columns, sample, _plan(con, selection, exclude), verdict)


def _sample(
    con: duckdb.DuckDBPyConnection, selection: Selection, size: int, show_personal: bool
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The first targets in list order: their columns (without the crm_ prefix) and rows."""
    if show_personal:
        columns = [c for c in list_columns(selection) if c not in {"campaign", "channel", "cell", "offer"}]
        columns = ["customer_id", "crm_cell", "crm_offer", *[c for c in columns if c != "customer_id"]]
    else:
        columns = SAMPLE_COLUMNS
    select = ", ".join(f'"{c}"' for c in columns)
    sample = con.execute(
        f"SELECT {select} FROM {selection.rows} WHERE crm_is_target "
        "ORDER BY crm_cell_idx, crm_rank, customer_id LIMIT ?",
        [size],
    ).fetchall()
    return [c.removeprefix("crm_") for c in columns], sample


def _plan(con: duckdb.DuckDBPyConnection, selection: Selection, against: str | None) -> Plan | None:
    """The change against run `against` (the wave's recorded run), else the campaign's latest run."""
    last = con.execute(
        "SELECT run_id, as_of, counts FROM runs WHERE campaign = ? AND source = 'crmlist' "
        "AND (CAST(? AS VARCHAR) IS NULL OR run_id = ?) ORDER BY started_at DESC, run_id DESC LIMIT 1",
        [selection.campaign.name, against, against],
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
        WITH now AS (SELECT customer_id FROM {selection.rows} WHERE crm_is_target),
        was AS (SELECT customer_id FROM contact_history WHERE run_id = ? AND NOT is_control)
        SELECT (SELECT count(*) FROM now WHERE customer_id NOT IN (SELECT customer_id FROM was)),
               (SELECT count(*) FROM was WHERE customer_id NOT IN (SELECT customer_id FROM now))
        """,
        [run_id],
    ).fetchone()
    entering, leaving = moved if moved else (0, 0)
    return Plan(run_id, as_of, steps, cells, int(entering), int(leaving))
