"""`crmlist status` and `crmlist sql`: what the database holds, and read-only queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from crmlist.errors import BadInputError
from crmlist.store import CANONICAL

SHOWN_TABLES = [*CANONICAL, "loads", "load_rejects", "runs"]


@dataclass
class Status:
    """Row counts per table, the last loads and the reject count."""

    tables: dict[str, int] = field(default_factory=dict)
    last_loads: list[dict[str, Any]] = field(default_factory=list)
    rejects: int = 0


def database_status(con: duckdb.DuckDBPyConnection, last: int = 10) -> Status:
    status = Status()
    existing = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    for table in SHOWN_TABLES:
        if table in existing:
            row = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
            status.tables[table] = int(row[0]) if row else 0
    if "loads" in existing:
        rows = con.execute(
            "SELECT table_name, file, rows_loaded, rows_rejected, loaded_at, sha256 FROM loads "
            "ORDER BY loaded_at DESC, file LIMIT ?",
            [last],
        ).fetchall()
        keys = ["table", "file", "rows_loaded", "rows_rejected", "loaded_at", "sha256"]
        status.last_loads = [dict(zip(keys, r, strict=True)) for r in rows]
        status.rejects = status.tables.get("load_rejects", 0)
    return status


def check_read_only(query: str) -> None:
    """Refuse anything but a query: the database is opened read-only too, this gives a clearer message."""
    try:
        trees = sqlglot.parse(query, read="duckdb")
    except sqlglot.errors.ParseError:
        return  # DuckDB itself reports the syntax error with its position
    for tree in trees:
        if tree is not None and not isinstance(tree, (exp.Query, exp.Describe, exp.Show, exp.Pragma)):
            raise BadInputError("sql", "only read-only queries are allowed", "use SELECT, DESCRIBE or SHOW")
