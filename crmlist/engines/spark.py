"""The Spark engine: the same rule files over Parquet sources, giving the same lists as the DuckDB engine."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from crmlist import store
from crmlist.campaign.compiler import FACTS_TABLE, RESULT_TABLE, Compiled
from crmlist.campaign.evaluate import (
    CELLS_TABLE,
    SELECTED_TABLE,
    CellCount,
    Selection,
    Step,
    evaluate,
    list_query,
    selected_sql,
    tally,
)
from crmlist.campaign.model import Campaign
from crmlist.campaign.views import discover_views
from crmlist.engines import EngineSettings, engine_settings
from crmlist.engines.session import (
    Listing,
    args_for,
    duckdb_type,
    from_arrow,
    guarded,
    quiet_pyspark,
    register_sources,
    source_listing,
    spark_session,
    to_arrow,
)
from crmlist.engines.sparksql import parse_duckdb, to_spark
from crmlist.errors import CrmlistError
from crmlist.workspace import Workspace

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# Columns of every relation of the scratch database, by relation: typing for the Spark translation.
Schema = dict[str, dict[str, str]]


@dataclass
class SparkSelection:
    """A campaign evaluated on Spark: the DuckDB engine's Selection, with the rows it selected as Arrow.

    `targets` and `control` have the columns, types and order of `list_query`; `selected` holds the
    crm_selected rows (every fact of targets and controls) for letters and contact history; `sources`
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
        """crm_selected in `con` as evaluate() leaves it: list_query, letters and history then work unchanged."""
        con.register("crm_spark_selected", self.selected)
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {SELECTED_TABLE} AS SELECT * FROM crm_spark_selected")
        finally:
            con.unregister("crm_spark_selected")
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
    `history`: contact_history rows when [engine.sources] does not name it; by default they are read
    from the workspace database, where every run records them.
    """
    settings = engine_settings(ws, "spark")
    if history is None and "contact_history" not in settings.sources:
        history = _workspace_history(ws)
    with quiet_pyspark():
        return _evaluate(
            spark_session(settings, ws.timezone), settings, ws, campaign, as_of, exclude_run, columns, history
        )


def spark_source_listing(ws: Workspace) -> Listing:
    """The Parquet files a Spark run of this workspace reads (path, size, mtime), for its run id."""
    settings = engine_settings(ws, "spark")
    with quiet_pyspark():
        return source_listing(spark_session(settings, ws.timezone), settings)


def _evaluate(
    spark: SparkSession,
    settings: EngineSettings,
    ws: Workspace,
    campaign: Campaign,
    as_of: dt.date,
    exclude_run: str | None,
    columns: Iterable[str] | None,
    history: pa.Table | None,
) -> SparkSelection:
    frames = register_sources(spark, settings, history)
    scratch = duckdb.connect()
    run = _SparkRun(spark, scratch, f"queries/{campaign.path.name}")
    try:
        _mirror_tables(scratch, frames)
        # The DuckDB engine itself over empty tables of the same types gives the views, catalog, compiled
        # query, facts columns and errors exactly as DuckDB has them; Spark then runs them on the data.
        shape = evaluate(scratch, ws, campaign, as_of, exclude_run, columns)
        run.schema = _schema(scratch)
        run.prepare(ws)
        run.result(shape.compiled)
        waterfall, cells = tally(shape.compiled, campaign, run.counts())
        selection = dataclasses.replace(shape, waterfall=waterfall, cells=cells)
        selected = run.selected(selection)
        targets, control = (_list(scratch, selection, control) for control in (False, True))
        return SparkSelection(selection, targets, control, selected, source_listing(spark, settings))
    finally:
        run.close()
        scratch.close()


def _workspace_history(ws: Workspace) -> pa.Table | None:
    if not ws.db_path.exists():
        return None
    with store.reader(ws.db_path, "spark") as con:
        return con.sql("SELECT * FROM contact_history").to_arrow_table()


def _mirror_tables(scratch: duckdb.DuckDBPyConnection, frames: dict[str, DataFrame]) -> None:
    """Empty DuckDB tables with the sources' columns and types."""
    for table, frame in frames.items():
        cols = ", ".join(f"{_ident(f.name)} {duckdb_type(f.dataType.simpleString())}" for f in frame.schema.fields)
        scratch.execute(f"CREATE TABLE {_ident(table)} ({cols})")


def _schema(scratch: duckdb.DuckDBPyConnection) -> Schema:
    rows = scratch.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "ORDER BY table_name, ordinal_position"
    ).fetchall()
    schema: Schema = {}
    for table, column, ctype in rows:
        schema.setdefault(table, {})[column] = ctype
    return schema


def _ident(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect="duckdb")


def _spark_ident(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect="spark")


class _SparkRun:
    """One evaluation's Spark state: temp views in its own session, cached frames to release."""

    def __init__(self, spark: SparkSession, scratch: duckdb.DuckDBPyConnection, where: str) -> None:
        self.spark = spark
        self.scratch = scratch
        self.where = where
        self.schema: Schema = {}
        self.cached: list[DataFrame] = []
        self.facts_sql = ""

    def prepare(self, ws: Workspace) -> None:
        """run_params, the cells, every view of queries/, and crm_facts as a view of the facts the campaign reads."""
        params = self.scratch.sql("SELECT * FROM run_params").to_arrow_table()
        from_arrow(self.spark, params).createOrReplaceTempView("run_params")
        for view in discover_views(ws):
            self._view(view.name, view.sql, f"queries/{view.path.name}")
        columns = ", ".join(_spark_ident(c) for c in store.table_columns(self.scratch, FACTS_TABLE))
        self.facts_sql = f"SELECT {columns} FROM customer_facts"
        guarded(self.where, lambda: self.spark.sql(self.facts_sql)).createOrReplaceTempView(FACTS_TABLE)
        cells = self.scratch.sql(f"SELECT * FROM {CELLS_TABLE}").to_arrow_table()
        from_arrow(self.spark, cells).createOrReplaceTempView(CELLS_TABLE)

    def _view(self, name: str, sql: str, where: str) -> None:
        statement = (
            f"CREATE OR REPLACE TEMP VIEW {_spark_ident(name)} AS {to_spark(parse_duckdb(sql), self.schema, where)}"
        )
        guarded(where, lambda: self.spark.sql(statement))

    def result(self, compiled: Compiled) -> None:
        """The compiled query's crm_result (customer_id, stage, cell, rank), kept for the counts and rows.

        The query is analysed before any data is read, so a rule Spark cannot run fails at once; then the
        facts and the result are each computed once.
        """
        create = parse_duckdb(compiled.sql)
        query = create.expression if isinstance(create, exp.Create) else create
        self._in_lists(query, compiled.params)
        text = to_spark(query, self.schema, self.where)
        args = args_for(query, compiled.params)
        guarded(self.where, lambda: self.spark.sql(text, args=args))
        self._keep(FACTS_TABLE, lambda: self.spark.sql(self.facts_sql))
        self._keep(RESULT_TABLE, lambda: self.spark.sql(text, args=args))

    def _in_lists(self, query: exp.Expr, params: dict[str, Any]) -> None:
        """in_list() files are on this machine: DuckDB reads them as the DuckDB engine does, Spark gets the ids."""
        for index, reader in enumerate(list(query.find_all(exp.ReadCSV))):
            select = reader.find_ancestor(exp.Select)
            assert select is not None
            ids = self.scratch.sql(select.sql(dialect="duckdb"), params=args_for(select, params)).to_arrow_table()
            name = f"crm_in_list_{index}"
            from_arrow(self.spark, ids.rename_columns(["id"])).createOrReplaceTempView(name)
            self.schema[name] = {"id": "VARCHAR"}
            select.replace(parse_duckdb(f"SELECT id FROM {name}"))

    def counts(self) -> list[tuple[int, int | None, int]]:
        frame = self.spark.sql(f"SELECT stage, cell, count(*) AS n FROM {RESULT_TABLE} GROUP BY stage, cell")
        return [(r["stage"], r["cell"], r["n"]) for r in guarded(self.where, frame.collect)]

    def selected(self, selection: Selection) -> pa.Table:
        """crm_selected as the DuckDB engine builds it, filled from Spark's rows."""
        text = to_spark(parse_duckdb(selected_sql(selection)), self.schema, self.where)
        rows = guarded(self.where, lambda: to_arrow(self.spark.sql(text)))
        expected = store.table_columns(self.scratch, SELECTED_TABLE)
        if rows.column_names != expected:
            raise CrmlistError(self.where, "the Spark engine's selected columns differ from DuckDB's", None)
        self.scratch.register("crm_spark_selected", rows)
        order = "crm_cell_idx, crm_rank, customer_id"
        self.scratch.execute(f"INSERT INTO {SELECTED_TABLE} SELECT * FROM crm_spark_selected ORDER BY {order}")
        self.scratch.unregister("crm_spark_selected")
        return self.scratch.sql(f"SELECT * FROM {SELECTED_TABLE}").to_arrow_table()

    def _keep(self, name: str, build: Any) -> None:
        """Compute once and keep as a view: a persist()ed plan is not matched again through views with CTEs."""
        frame = guarded(self.where, lambda: build().localCheckpoint(eager=True))
        frame.createOrReplaceTempView(name)
        self.cached.append(frame)

    def close(self) -> None:
        for frame in self.cached:
            frame.unpersist()


def _list(scratch: duckdb.DuckDBPyConnection, selection: Selection, control: bool) -> pa.Table:
    sql, params = list_query(selection, control)
    return scratch.sql(sql, params=params).to_arrow_table()
