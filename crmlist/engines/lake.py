"""The Parquet lake a Spark run reads: canonical tables exported from DuckDB, one folder per table."""

from __future__ import annotations

from pathlib import Path

import duckdb

from crmlist.engines.settings import SOURCE_TABLES
from crmlist.errors import OutputError
from crmlist.newfiles import fsync_tree, recover_stopped, remove, replace_folder, temporary_path, write_error
from crmlist.store import table_columns

# Spark reads a folder of part files in parallel; DuckDB starts a new file past this size.
PART_SIZE = "128MB"


def export_parquet(
    con: duckdb.DuckDBPyConnection, folder: str | Path, tables: tuple[str, ...] = SOURCE_TABLES
) -> dict[str, int]:
    """Write each canonical table to `folder/TABLE/part-N.parquet`; returns the rows written per table.

    Each table is written into a hidden temporary folder and put in place whole (newfiles.replace_folder),
    so a reader never sees half a table and a failed export leaves the previous one as it was.
    """
    root = Path(folder)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(str(root), f"cannot create folder: {exc.strerror}", "check the path") from None
    recover_stopped(root)  # a stopped export's temporary tables are removed, an old table it moved aside put back
    written = {}
    for table in tables:
        if not table_columns(con, table):
            continue
        written[table] = _export_table(con, table, root)
    return written


def _export_table(con: duckdb.DuckDBPyConnection, table: str, root: Path) -> int:
    final = root / table
    tmp = temporary_path(final)
    remove(tmp)  # a stale one of this PID: DuckDB's COPY makes the folder itself
    target = str(tmp).replace("'", "''")
    try:
        try:
            rows = con.execute(
                f"COPY \"{table}\" TO '{target}' "
                f"(FORMAT parquet, FILE_SIZE_BYTES '{PART_SIZE}', FILENAME_PATTERN 'part-{{i}}')"
            ).fetchone()
        except duckdb.Error:
            raise OutputError(str(final), "cannot write the Parquet folder", "check the folder is writable") from None
        try:
            fsync_tree(tmp)
        except OSError as exc:
            raise write_error(final, exc) from None
        replace_folder(tmp, final)
    except BaseException:  # a failure, SIGTERM or Ctrl-C: the previous export stays as it was
        remove(tmp)
        raise
    return int(rows[0]) if rows else 0
