"""The Parquet lake a Spark run reads: canonical tables exported from DuckDB, one folder per table."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb

from crmlist.engines.settings import SOURCE_TABLES
from crmlist.errors import OutputError
from crmlist.store import table_columns

# Spark reads a folder of part files in parallel; DuckDB starts a new file past this size.
PART_SIZE = "128MB"


def export_parquet(
    con: duckdb.DuckDBPyConnection, folder: str | Path, tables: tuple[str, ...] = SOURCE_TABLES
) -> dict[str, int]:
    """Write each canonical table to `folder/TABLE/part-N.parquet`; returns the rows written per table.

    Each table is written into a hidden temporary folder and renamed into place, so a reader never
    sees half a table and a failed export leaves the previous one as it was.
    """
    root = Path(folder)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(str(root), f"cannot create folder: {exc.strerror}", "check the path") from None
    written = {}
    for table in tables:
        if not table_columns(con, table):
            continue
        written[table] = _export_table(con, table, root)
    return written


def _export_table(con: duckdb.DuckDBPyConnection, table: str, root: Path) -> int:
    final = root / table
    tmp = root / f".{table}.tmp-{os.getpid()}"
    aside = root / f".{table}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    target = str(tmp).replace("'", "''")
    try:
        rows = con.execute(
            f"COPY \"{table}\" TO '{target}' "
            f"(FORMAT parquet, FILE_SIZE_BYTES '{PART_SIZE}', FILENAME_PATTERN 'part-{{i}}')"
        ).fetchone()
    except duckdb.Error:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(str(final), "cannot write the Parquet folder", "check the folder is writable") from None
    try:
        if final.exists():
            os.replace(final, aside)
        os.replace(tmp, final)
    except OSError as exc:
        if aside.exists() and not final.exists():
            os.replace(aside, final)  # put the previous export back rather than leave none
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(str(final), f"cannot move the export into place: {exc.strerror}", None) from None
    shutil.rmtree(aside, ignore_errors=True)
    return int(rows[0]) if rows else 0
