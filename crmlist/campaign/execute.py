"""Where a compiled campaign runs: DuckDB in the workspace session, or Spark; the engine is chosen here alone.

The campaign side compiles (rule file, views, facts, the waterfall query) and hands the engine its
queries; the engine only executes them. Both leave the selected rows in the workspace session, where the
Selection names them, so lists, letters and contact history are written the same way whichever engine ran.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from crmlist import store
from crmlist.campaign.evaluate import (
    CellCount,
    Relations,
    Selection,
    Step,
    evaluate,
    list_query,
    selected_sql,
    tally,
)
from crmlist.campaign.model import Campaign
from crmlist.campaign.views import discover_views, prepare_session
from crmlist.engines import engine_settings
from crmlist.errors import CrmlistError
from crmlist.workspace import Workspace

if TYPE_CHECKING:
    from crmlist.engines.session import Listing
    from crmlist.engines.spark import SparkRun


def evaluate_on(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    campaign: Campaign,
    as_of: dt.date,
    exclude_run: str | None = None,
    columns: Iterable[str] | None = None,
    engine: str | None = None,
    once: bool = False,
) -> Selection:
    """Evaluate a campaign on the chosen engine, leaving the selected rows in `con` either way (see evaluate).

    Spark reads the Parquet sources, but contact history (caps, not_contacted(), responded()) always
    from `con`: the workspace database holds every contact recorded, the lake only those of its export.
    """
    if engine_settings(ws, engine).name != "spark":
        return evaluate(con, ws, campaign, as_of, exclude_run, columns, once)
    prepare_session(con, ws, as_of, exclude_run)  # letters' recommendations read run_params
    history = con.sql("SELECT * FROM contact_history").to_arrow_table()
    found = spark_evaluate(ws, campaign, as_of, exclude_run, columns=columns, history=history)
    return found.into(con)


@dataclass
class SparkSelection:
    """A campaign evaluated on Spark: the DuckDB engine's Selection, with the rows it selected as Arrow.

    `targets` and `control` have the columns, types and order of `list_query`; `selected` holds the
    selected rows (every fact of targets and controls) for letters and contact history; `sources`
    lists the Parquet files read, for the run id.
    """

    selection: Selection
    targets: pa.Table
    control: pa.Table
    selected: pa.Table
    sources: Listing

    @property
    def waterfall(self) -> list[Step]:
        return self.selection.waterfall

    @property
    def cells(self) -> list[CellCount]:
        return self.selection.cells

    def counts(self) -> dict[str, Any]:
        return self.selection.counts()

    def into(self, con: duckdb.DuckDBPyConnection) -> Selection:
        """The selected rows in `con` as evaluate() leaves them: lists, letters and history then work unchanged.

        Only those: the facts and the result stayed in Spark."""
        with store.registered(con, "crm_spark_selected", self.selected) as rows:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {self.selection.rows} AS SELECT * FROM {rows}")
        return self.selection


def spark_evaluate(
    ws: Workspace,
    campaign: Campaign,
    as_of: dt.date,
    exclude_run: str | None = None,
    *,
    columns: Iterable[str] | None = None,
    history: pa.Table | None = None,
) -> SparkSelection:
    """Evaluate a campaign on Spark over crmlist.toml [engine.sources]; same answers as `evaluate`.

    `columns`: facts needed beyond the list's, as for `evaluate` (None: every fact, as letters need).
    `history`: the contact_history rows; by default read from the workspace database, where every run
    records them.
    """
    from crmlist.engines.spark import spark_run

    if history is None:
        history = _workspace_history(ws)
    with spark_run(ws, campaign.rule_file, history) as run:
        # The DuckDB engine itself over empty tables of the same types gives the views, catalog, compiled
        # query, facts columns and errors exactly as DuckDB has them; Spark then runs them on the data.
        shape = evaluate(run.scratch, ws, campaign, as_of, exclude_run, columns)
        relations = shape.relations
        run.refresh_schema()
        _prepare(run, ws, relations)
        result = run.query(shape.compiled.sql, shape.compiled.params)
        run.keep(relations.facts, run.query(_facts_sql(run, relations.facts)))
        run.keep(relations.result, result)
        result_rows = store.quoted(relations.result)
        counts = run.fetch(run.query(f"SELECT stage, cell, count(*) AS n FROM {result_rows} GROUP BY stage, cell"))
        waterfall, cells = tally(shape.compiled, campaign, _count_rows(counts))
        selection = dataclasses.replace(shape, waterfall=waterfall, cells=cells, engine="spark")
        selected = _selected(run, selection)
        targets, control = (_list(run.scratch, selection, control) for control in (False, True))
        return SparkSelection(selection, targets, control, selected, run.listing())


def _workspace_history(ws: Workspace) -> pa.Table | None:
    if not ws.db_path.exists():
        return None
    with store.reader(ws.db_path, "spark") as con:
        return con.sql("SELECT * FROM contact_history").to_arrow_table()


def _prepare(run: SparkRun, ws: Workspace, relations: Relations) -> None:
    """run_params, the cells, every view of queries/, and the facts as a view of those the campaign reads."""
    run.share("run_params")
    for view in discover_views(ws):
        run.view(view.name, view.sql, f"queries/{view.path.name}")
    run.view(relations.facts, _facts_sql(run, relations.facts))
    run.share(relations.cells)


def _facts_sql(run: SparkRun, facts: str) -> str:
    """The facts columns the scratch evaluation computed, from Spark's customer_facts."""
    columns = ", ".join(store.quoted(c) for c in run.columns(facts))
    return f"SELECT {columns} FROM customer_facts"


def _count_rows(counts: pa.Table) -> list[tuple[int, int | None, int]]:
    return [(r["stage"], r["cell"], r["n"]) for r in counts.to_pylist()]


def _selected(run: SparkRun, selection: Selection) -> pa.Table:
    """The selected rows as the DuckDB engine builds them, filled from Spark's rows."""
    rows = run.fetch(run.query(selected_sql(selection)))
    expected = run.columns(selection.relations.selected)
    if rows.column_names != expected:
        raise CrmlistError(run.where, "the Spark engine's selected columns differ from DuckDB's", None)
    order = "crm_cell_idx, crm_rank, customer_id"
    with store.registered(run.scratch, "crm_spark_selected", rows) as spark_rows:
        run.scratch.execute(f"INSERT INTO {selection.rows} SELECT * FROM {spark_rows} ORDER BY {order}")
    return run.scratch.sql(f"SELECT * FROM {selection.rows}").to_arrow_table()


def _list(scratch: duckdb.DuckDBPyConnection, selection: Selection, control: bool) -> pa.Table:
    sql, params = list_query(selection, control)
    return scratch.sql(sql, params=params).to_arrow_table()
