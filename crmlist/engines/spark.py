"""The Spark engine: DuckDB-dialect queries run on Spark over the Parquet sources, Arrow in and out.

The engine knows nothing of campaigns: crmlist.campaign.execute hands it the compiled queries and reads
back the rows. Beside the Spark session it keeps a scratch DuckDB database holding empty tables of the
sources' columns and types, where the caller builds its views and queries exactly as DuckDB has them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
from sqlglot import exp

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
from crmlist.engines.settings import EngineSettings, engine_settings
from crmlist.engines.sparksql import parse_duckdb, to_spark
from crmlist.store import table_columns
from crmlist.workspace import Workspace

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# Columns of every relation of the scratch database, by relation: typing for the Spark translation.
Schema = dict[str, dict[str, str]]


@dataclass(frozen=True)
class SparkQuery:
    """A DuckDB query translated to Spark SQL and analysed by Spark, with its named parameters."""

    text: str
    args: dict[str, Any]


@contextlib.contextmanager
def spark_run(ws: Workspace, where: str, history: pa.Table | None) -> Iterator[SparkRun]:
    """A Spark session over crmlist.toml [engine.sources], contact_history from `history` (else empty).

    `where` names what runs (e.g. queries/winback.toml) in the errors Spark raises.
    """
    settings = engine_settings(ws, "spark")
    with quiet_pyspark():
        spark = spark_session(settings, ws.timezone)
        frames = register_sources(spark, settings, history)
        run = SparkRun(spark, settings, where)
        try:
            run.mirror(frames)
            yield run
        finally:
            run.close()


def spark_source_listing(ws: Workspace) -> Listing:
    """The Parquet files a Spark run of this workspace reads (path, size, mtime), for its run id."""
    settings = engine_settings(ws, "spark")
    with quiet_pyspark():
        return source_listing(spark_session(settings, ws.timezone), settings)


class SparkRun:
    """One evaluation's Spark state: temp views in its own session, cached frames to release, the scratch."""

    def __init__(self, spark: SparkSession, settings: EngineSettings, where: str) -> None:
        self.spark = spark
        self.settings = settings
        self.where = where
        self.scratch = duckdb.connect()
        self.schema: Schema = {}
        self.cached: list[DataFrame] = []

    def mirror(self, frames: dict[str, DataFrame]) -> None:
        """Empty scratch tables with the sources' columns and types."""
        for table, frame in frames.items():
            cols = ", ".join(f"{_ident(f.name)} {duckdb_type(f.dataType.simpleString())}" for f in frame.schema.fields)
            self.scratch.execute(f"CREATE TABLE {_ident(table)} ({cols})")

    def refresh_schema(self) -> None:
        """Read the scratch database's relations and columns again (after the caller created its own)."""
        rows = self.scratch.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "ORDER BY table_name, ordinal_position"
        ).fetchall()
        self.schema = {}
        for table, column, ctype in rows:
            self.schema.setdefault(table, {})[column] = ctype

    def share(self, name: str) -> None:
        """A (small) scratch relation's rows as a Spark temp view of the same name."""
        rows = self.scratch.sql(f"SELECT * FROM {_ident(name)}").to_arrow_table()
        from_arrow(self.spark, rows).createOrReplaceTempView(name)

    def view(self, name: str, sql: str, where: str | None = None) -> None:
        """A DuckDB query as a Spark temp view, computed whenever it is read."""
        here = where or self.where
        text = to_spark(parse_duckdb(sql), self.schema, here)
        statement = f"CREATE OR REPLACE TEMP VIEW {_spark_ident(name)} AS {text}"
        guarded(here, lambda: self.spark.sql(statement))

    def query(self, sql: str, params: dict[str, Any] | None = None) -> SparkQuery:
        """A DuckDB query (or CREATE ... AS query) for Spark, analysed now: a query Spark cannot run fails
        here, before any data is read. in_list() files are read on this machine, as DuckDB reads them."""
        tree = parse_duckdb(sql)
        tree = tree.expression if isinstance(tree, exp.Create) else tree
        values = params or {}
        self._in_lists(tree, values)
        text = to_spark(tree, self.schema, self.where)
        args = args_for(tree, values)
        guarded(self.where, lambda: self.spark.sql(text, args=args))
        return SparkQuery(text, args)

    def keep(self, name: str, query: SparkQuery) -> None:
        """Compute once and keep as a view: a persist()ed plan is not matched again through views with CTEs."""
        frame = guarded(self.where, lambda: self.spark.sql(query.text, args=query.args).localCheckpoint(eager=True))
        frame.createOrReplaceTempView(name)
        self.cached.append(frame)

    def fetch(self, query: SparkQuery) -> pa.Table:
        """The query's rows, collected to this machine as Arrow."""
        return guarded(self.where, lambda: to_arrow(self.spark.sql(query.text, args=query.args)))

    def listing(self) -> Listing:
        """The Parquet files this run read, for its run id."""
        return source_listing(self.spark, self.settings)

    def _in_lists(self, query: exp.Expr, params: dict[str, Any]) -> None:
        for index, reader in enumerate(list(query.find_all(exp.ReadCSV))):
            select = reader.find_ancestor(exp.Select)
            assert select is not None
            ids = self.scratch.sql(select.sql(dialect="duckdb"), params=args_for(select, params)).to_arrow_table()
            name = f"crm_in_list_{index}"
            from_arrow(self.spark, ids.rename_columns(["id"])).createOrReplaceTempView(name)
            self.schema[name] = {"id": "VARCHAR"}
            select.replace(parse_duckdb(f"SELECT id FROM {name}"))

    def columns(self, relation: str) -> list[str]:
        """A scratch relation's columns, in order."""
        return table_columns(self.scratch, relation)

    def close(self) -> None:
        for frame in self.cached:
            frame.unpersist()
        self.scratch.close()


def _ident(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect="duckdb")


def _spark_ident(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect="spark")
