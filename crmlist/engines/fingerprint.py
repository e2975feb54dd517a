"""What a run id hashes of the data an engine reads."""

from __future__ import annotations

from typing import Any

import duckdb

from crmlist.engines.settings import engine_settings
from crmlist.workspace import Workspace


def data_fingerprint(con: duckdb.DuckDBPyConnection, ws: Workspace, engine: str | None = None) -> list[tuple[Any, ...]]:
    """What a run id hashes of the data: the loads (DuckDB) or the Parquet sources' listing (Spark)."""
    if engine_settings(ws, engine).name == "spark":
        from crmlist.engines.spark import spark_source_listing  # only Spark runs pay for it

        return [tuple(row) for row in spark_source_listing(ws)]
    # Loads of no rows (a skipped reload) do not change the data, so they do not change the run id.
    loads = "SELECT table_name, sha256, rows_loaded FROM loads WHERE rows_loaded > 0 OR rows_rejected > 0"
    return con.execute(f"{loads} ORDER BY ALL").fetchall()
