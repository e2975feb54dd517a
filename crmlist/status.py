"""`crmlist status` and `crmlist sql`: what the database holds, and read-only queries."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import duckdb

from crmlist import store
from crmlist.errors import BadInputError
from crmlist.store import CANONICAL
from crmlist.workspace import Workspace

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


# What `crmlist sql` runs: one statement of DuckDB's SELECT kind, which covers WITH, VALUES, FROM-first
# queries, DESCRIBE, SHOW and SUMMARIZE, and nothing that writes.
QUERY_KINDS = "SELECT, WITH, VALUES, FROM, DESCRIBE, SHOW or SUMMARIZE"


def read_only_query(
    con: duckdb.DuckDBPyConnection, ws: Workspace, text: str, as_of: dt.date
) -> duckdb.DuckDBPyConnection:
    """Run one read-only query with customer_facts and the views; returns the result to fetch from.

    The connection is sandboxed first (no file system, settings locked) and the database is open
    read-only, so the statement check below is for a clear message, not the safety itself. DuckDB's own
    parser splits the text, so nothing runs unless all of it parses.
    """
    from crmlist.campaign.views import prepare_session

    store.sandbox(con, lock_configuration=True)
    statement = single_query(con, text)
    prepare_session(con, ws, as_of)
    try:
        return con.execute(statement)
    except duckdb.PermissionException:
        raise BadInputError(
            "sql",
            "the query reaches outside the database (a file, a folder or an extension)",
            "crmlist sql reads only the database: its tables, customer_facts and the views of queries/",
        ) from None
    except duckdb.Error as exc:
        raise BadInputError("sql", store.duckdb_reason(exc), "fix the query") from None


def single_query(con: duckdb.DuckDBPyConnection, text: str) -> duckdb.Statement:
    """The one statement of `text`, refused unless it is a query; parsing runs nothing."""
    try:
        statements = con.extract_statements(text)
        kinds = [s.type for s in statements]
    except duckdb.Error as exc:
        raise BadInputError(
            "sql", f"not valid SQL: {store.duckdb_reason(exc)}", "fix the query; nothing was run"
        ) from None
    except ValueError:  # a statement kind the Python client has no name for (UPDATE EXTENSIONS)
        kinds = [duckdb.StatementType.INVALID]
    if len(kinds) > 1:
        raise BadInputError(
            "sql",
            f"{len(kinds)} statements given; crmlist sql runs exactly one query",
            "run each query with its own crmlist sql; nothing was run",
        )
    if kinds != [duckdb.StatementType.SELECT]:
        kind = "of a kind unknown to crmlist" if kinds and kinds[0] == duckdb.StatementType.INVALID else "empty"
        kind = f"a {kinds[0].name} statement" if kinds and kinds[0] != duckdb.StatementType.INVALID else kind
        raise BadInputError(
            "sql",
            f"only a read-only query is allowed; this is {kind}",
            f"use {QUERY_KINDS}; crmlist sql never changes the database or touches files",
        )
    return statements[0]
