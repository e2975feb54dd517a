"""SQL views kept in queries/*.sql: discovery, dependency order, and the per-session set-up."""

from __future__ import annotations

import datetime as dt
import graphlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from crmlist.campaign.expressions import VIEW_KEYS, check_functions
from crmlist.errors import BadInputError
from crmlist.store import duckdb_reason, sandbox
from crmlist.workspace import Workspace

FACTS = "customer_facts"
PACKAGED_QUERIES = Path(__file__).resolve().parent.parent / "skeleton" / "queries"
_DESCRIPTION = re.compile(r"^\s*--\s*description:\s*(.*)$", re.IGNORECASE)
# A table name DuckDB would read as a file (a replacement scan): a path, an extension, a glob or a URL.
_FILE_LIKE = re.compile(r"[./\\:*?~]")


@dataclass(frozen=True)
class View:
    """A queries/NAME.sql file: a view named by its stem."""

    name: str
    path: Path
    sql: str
    description: str
    depends_on: frozenset[str]


def discover_views(ws: Workspace) -> list[View]:
    """Every view of the workspace in dependency order; customer_facts falls back to the packaged one."""
    paths = {p.stem: p for p in sorted(ws.queries_dir.glob("[!.#~]*.sql"))} if ws.queries_dir.is_dir() else {}
    paths.setdefault(FACTS, PACKAGED_QUERIES / f"{FACTS}.sql")
    lowered: dict[str, Path] = {}
    for name, path in paths.items():
        if name.lower() in lowered:
            raise BadInputError(
                f"queries/{path.name}",
                f"view name clashes with queries/{lowered[name.lower()].name}",
                "rename one of the two files: view names are case-insensitive",
            )
        lowered[name.lower()] = path
    views = {name: _read_view(name, path, set(paths)) for name, path in paths.items()}
    sorter = graphlib.TopologicalSorter({name: view.depends_on for name, view in views.items()})
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = [f"queries/{views[n].path.name}" for n in exc.args[1]]
        raise BadInputError(
            cycle[0],
            f"views depend on each other in a cycle: {' -> '.join(cycle)}",
            "break the cycle: a view may not use itself through others",
        ) from None
    return [views[name] for name in order]


def _read_view(name: str, path: Path, names: set[str]) -> View:
    where = f"queries/{path.name}"
    try:
        sql = path.read_text(encoding="utf-8").strip().rstrip(";")
    except UnicodeDecodeError:
        raise BadInputError(where, "not UTF-8 text", "save the view as UTF-8") from None
    description = ""
    for line in sql.splitlines():
        match = _DESCRIPTION.match(line)
        if match:
            description = match.group(1).strip()
            break
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise BadInputError(where, f"not valid SQL: {_first_error(exc)}", "fix the query") from None
    if not isinstance(tree, exp.Query):
        raise BadInputError(where, "a view must be one SELECT query", "remove other statements")
    check_functions(tree, VIEW_KEYS, where, "", "views")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        _require_table_name(table, where)
    tables = {t.name for t in tree.find_all(exp.Table)} - ctes
    return View(name, path, sql, description, frozenset((tables & names) - {name}))


def _require_table_name(table: exp.Table, where: str) -> None:
    """A view reads tables and views of the database by name: never a file ('x.csv'), nor another database."""
    name = table.this
    if not isinstance(name, exp.Identifier):
        return  # a table function, which check_functions has allowed (unnest)
    if table.args.get("db") or table.args.get("catalog") or _FILE_LIKE.search(name.name):
        raise BadInputError(
            where,
            f"reads {'.'.join(part.name for part in table.parts)!r}, which is not a table or view of the database",
            "views read only the workspace's tables and views by name, never files or other databases",
        )


def _first_error(exc: sqlglot.errors.ParseError) -> str:
    if exc.errors:
        err = exc.errors[0]
        return f"{err.get('description')} at line {err.get('line')}, column {err.get('col')}"
    return str(exc).splitlines()[0]


def prepare_session(
    con: duckdb.DuckDBPyConnection, ws: Workspace, as_of: dt.date, exclude_run: str | None = None
) -> list[View]:
    """Create run_params and every view as TEMP objects, so read-only connections can use them too.

    The connection is sandboxed first (store.sandbox): views and the rules run on it afterwards can read
    the database only, never a file, whatever their SQL says.
    """
    sandbox(con)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE run_params AS SELECT CAST($as_of AS DATE) AS as_of, "
        "CAST($exclude_run AS VARCHAR) AS exclude_run",
        {"as_of": as_of, "exclude_run": exclude_run or ""},
    )
    views = discover_views(ws)
    for view in views:
        try:
            con.execute(f'CREATE OR REPLACE TEMP VIEW "{view.name}" AS {view.sql}')
        except duckdb.Error as exc:
            raise BadInputError(
                f"queries/{view.path.name}", f"the view does not run: {duckdb_reason(exc)}", "fix the query"
            ) from None
    return views


def facts_query(con: duckdb.DuckDBPyConnection, views: list[View], columns: list[str]) -> str:
    """SELECT columns FROM customer_facts, with the facts nobody reads left out of the view's SQL.

    DuckDB computes every aggregate of a view even when the query reads none of it (a count(DISTINCT)
    nobody uses still costs seconds over 10 M purchases), so the view is inlined and pruned with
    sqlglot's optimizer: unused projections pushed down, unused joins and CTEs dropped. The pruned
    query is used only when DuckDB describes it with the same column names and types as the plain one;
    a view the optimizer cannot qualify keeps the plain query.
    """
    select = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
    plain = f"SELECT {select} FROM {FACTS}"
    view = next((v for v in views if v.name == FACTS), None)
    if view is None:
        return plain
    try:
        pruned = _pruned(con, view.sql, select)
        if _described(con, pruned) == _described(con, plain):
            return pruned
    except (sqlglot.errors.SqlglotError, duckdb.Error):
        pass
    return plain


def _pruned(con: duckdb.DuckDBPyConnection, view_sql: str, select: str) -> str:
    from sqlglot.optimizer.eliminate_ctes import eliminate_ctes
    from sqlglot.optimizer.eliminate_joins import eliminate_joins
    from sqlglot.optimizer.pushdown_projections import pushdown_projections
    from sqlglot.optimizer.qualify import qualify

    tables: dict[str, Any] = {}
    # Only the names matter to qualify (stars and unqualified columns); the types are not read.
    for table, column in con.execute(
        "SELECT table_name, column_name FROM information_schema.columns ORDER BY table_name, ordinal_position"
    ).fetchall():
        tables.setdefault(table, {})[column] = "TEXT"
    tree = sqlglot.parse_one(f"SELECT {select} FROM ({view_sql}) AS {FACTS}", read="duckdb")
    tree = qualify(tree, schema=tables, dialect="duckdb")
    tree = eliminate_ctes(eliminate_joins(pushdown_projections(tree)))
    return tree.sql("duckdb")


def _described(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[str, str]]:
    """Column names and types of a query, from planning it (nothing runs)."""
    description = con.execute(f"SELECT * FROM ({sql}) LIMIT 0").description or []
    return [(d[0], str(d[1])) for d in description]
