"""The rows loads rejected, read back from load_rejects: listed, or exported with their raw lines to fix."""

from __future__ import annotations

from typing import Any

import duckdb

from crmlist.outputs import format_from_path, write_output
from crmlist.workspace import Workspace, guard_output

COLUMNS = "table_name, file, line, column_name, reason"
HEADER = ("table", "file", "line", "column", "reason")  # the names list_rejects' columns are shown under


def list_rejects(con: duckdb.DuckDBPyConnection, tables: list[str]) -> list[tuple[Any, ...]]:
    """Every reject (of `tables`, or of all tables when empty) as (table, file, line, column, reason), sorted."""
    where, params = _only(tables)
    return con.execute(f"SELECT {COLUMNS} FROM load_rejects {where} ORDER BY ALL", params).fetchall()


def export_rejects(
    con: duckdb.DuckDBPyConnection, ws: Workspace, tables: list[str], output: str, file_format: str | None
) -> int:
    """Write every reject of `tables` (all when empty) with its raw line to `output` ("-": stdout); the count."""
    kind = format_from_path(output if output != "-" else "", file_format)
    if output != "-":
        guard_output(ws, output, "-o")
    where, params = _only(tables)
    sql = f"SELECT {COLUMNS}, raw_line FROM load_rejects {where} ORDER BY table_name, file, line, column_name"
    return write_output(con, sql, params, output, kind)


def _only(tables: list[str]) -> tuple[str, dict[str, Any]]:
    return ("WHERE list_contains($tables, table_name)", {"tables": list(tables)}) if tables else ("", {})
