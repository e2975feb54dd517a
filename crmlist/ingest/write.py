"""How checked rows land in each table: upsert by key, append, deduplicated appends, contact history.

All statements run inside the load's transaction. A clean file goes straight in (insert_checked, then
replace_older for upserts); the rest read the staging table __crm_stage (one row per record of every
file of the load, typed, with __crm_bad NULL for good rows).
"""

from __future__ import annotations

from typing import Any

import duckdb

from crmlist.ingest.keys import address_key_sql, email_key_sql
from crmlist.ingest.source import bind
from crmlist.ingest.validate import Validated, quote

STAGE = "__crm_stage"
GOOD = "__crm_bad IS NULL"
UPSERT_KEYS = {"customers": "customer_id", "products": "product_id"}
META = ("__crm_file", "__crm_line", "__crm_bad", "__crm_value")


def keep_row_order(con: duckdb.DuckDBPyConnection, keep: bool) -> None:
    """Whether the next statements keep the source's row order. The staging table must: a record's rowid
    gives its line. The tables need not (nothing reads their order), and without it DuckDB writes rows out
    as they come and the commit's checkpoint does not rewrite them (a third of a large load)."""
    con.execute(f"SET preserve_insertion_order = {keep}")


def create_stage(con: duckdb.DuckDBPyConnection, columns: dict[str, str]) -> None:
    """The temporary staging table with the union of every file's typed columns."""
    typed = "".join(f", {quote(name)} {ctype}" for name, ctype in columns.items())
    con.execute(
        f"CREATE TEMP TABLE {STAGE} (__crm_file INTEGER, __crm_line BIGINT, __crm_bad VARCHAR, "
        f"__crm_value VARCHAR{typed})"
    )


def insert_stage_sql(validated: Validated) -> str:
    columns = ", ".join(quote(c) for c in (*META, *validated.columns))
    return f"INSERT INTO {STAGE} ({columns}) {validated.sql}"


def drop_stage(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"DROP TABLE IF EXISTS temp.{STAGE}")


def stage_stats(con: duckdb.DuckDBPyConnection) -> dict[int, tuple[int, int, int]]:
    """Per file: (first rowid, rows, bad rows). A file's rows are contiguous and in file order, so a
    record's index in its file is its rowid minus the first."""
    rows = con.execute(
        f"SELECT __crm_file, min(rowid), count(*), count(__crm_bad) FROM {STAGE} GROUP BY __crm_file"
    ).fetchall()
    return {int(f): (int(base), int(n), int(bad)) for f, base, n, bad in rows}


def _key_columns(target: str, columns: list[str]) -> dict[str, str]:
    """Normalised key expressions for customers and suppressions (see ingest.keys); the phone key comes
    staged, computed with the row's checks (ingest.validate)."""
    if target not in ("customers", "suppressions"):
        return {}
    has = set(columns)
    null = "CAST(NULL AS VARCHAR)"
    country = 'coalesce("country", $phone_region)' if "country" in has else "$phone_region"
    address = (
        address_key_sql('"street"', '"postal_code"', '"city"', country)
        if {"street", "postal_code", "city"} <= has
        else null
    )
    return {
        "email_key": email_key_sql('"email"') if "email" in has else null,
        "phone_key": '"phone_key"' if "phone_key" in has else null,
        "address_key": address,
    }


def _projection(target: str, columns: list[str], overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Target column -> expression over the stage: the staged columns plus derived keys."""
    exprs = {c: quote(c) for c in columns}
    exprs.update(_key_columns(target, columns))
    exprs.update(overrides or {})
    return exprs


def _insert(target: str, exprs: dict[str, str], where: str) -> str:
    names = ", ".join(quote(c) for c in exprs)
    return f"INSERT INTO {quote(target)} ({names}) SELECT {', '.join(exprs.values())} FROM {STAGE} WHERE {where}"


def next_rowid(con: duckdb.DuckDBPyConnection, target: str) -> int:
    """A rowid above every row of the table: rows inserted from now on in this transaction get higher ones."""
    ((first,),) = con.execute(f"SELECT coalesce(max(rowid) + 1, 0) FROM {quote(target)}").fetchall()
    return int(first)


def replace_older(con: duckdb.DuckDBPyConnection, target: str, first_new: int, added: int) -> bool:
    """Upsert after inserting the load's `added` rows (rowids from `first_new`): delete the older rows with
    their keys. False, and nothing deleted, when a key repeats among the new rows, or when their rowids do
    not set them apart (then the staged path does the upsert)."""
    key, table = quote(UPSERT_KEYS[target]), quote(target)
    new = f"FROM {table} WHERE rowid >= $first"
    rows = con.execute(f"SELECT count(*), count(DISTINCT {key}) {new}", {"first": first_new}).fetchall()
    if rows != [(added, added)]:
        return False
    if first_new:
        con.execute(f"DELETE FROM {table} WHERE rowid < $first AND {key} IN (SELECT {key} {new})", {"first": first_new})
    return True


def insert_checked(con: duckdb.DuckDBPyConnection, target: str, validated: Validated, params: dict[str, Any]) -> int:
    """Insert a file's rows straight from its checked SELECT (which stops at the first bad row), keys and
    all; the number of rows."""
    exprs = _projection(target, list(validated.columns))
    names = ", ".join(quote(c) for c in exprs)
    return run(
        con,
        f"INSERT INTO {quote(target)} ({names}) SELECT {', '.join(exprs.values())} FROM ({validated.fast_sql})",
        params,
    )


def run(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> int:
    """Execute with the named parameters the statement uses; the row count it reports."""
    row = con.execute(sql, bind(sql, params)).fetchone()
    return int(row[0]) if row else 0


def append(
    con: duckdb.DuckDBPyConnection, target: str, columns: list[str], file_index: int, params: dict[str, Any]
) -> int:
    """Append one file's good rows; purchases without an order_id get '<sha256[:16]>-<record number>'."""
    overrides = {}
    if target == "purchases":
        generated = "$id_prefix || '-' || CAST(rowid - $id_base + 1 AS VARCHAR)"
        overrides["order_id"] = f'coalesce("order_id", {generated})' if "order_id" in columns else generated
    sql = _insert(target, _projection(target, columns, overrides), f"__crm_file = $file AND {GOOD}")
    return run(con, sql, {**params, "file": file_index})


def upsert(con: duckdb.DuckDBPyConnection, target: str, columns: list[str], params: dict[str, Any]) -> int:
    """Replace every row whose key the load gives, then insert the load's rows."""
    key = quote(UPSERT_KEYS[target])
    con.execute(f"DELETE FROM {quote(target)} WHERE {key} IN (SELECT {key} FROM {STAGE} WHERE {GOOD})")
    return run(con, _insert(target, _projection(target, columns), GOOD), params)


def duplicate_sql(target: str) -> str:
    """Rows whose key an earlier row of the load already has: (file, rowid, first file, first rowid)."""
    key = quote(UPSERT_KEYS[target])
    return (
        f"SELECT __crm_file, __crm_row, first_file, first_row FROM (SELECT __crm_file, rowid AS __crm_row, "
        f"row_number() OVER w AS n, first_value(__crm_file) OVER w AS first_file, "
        f"first_value(rowid) OVER w AS first_row FROM {STAGE} WHERE {GOOD} "
        f"WINDOW w AS (PARTITION BY {key} ORDER BY __crm_file, rowid)) WHERE n > 1 ORDER BY __crm_file, __crm_row"
    )


def has_duplicates(con: duckdb.DuckDBPyConnection, target: str) -> bool:
    key = quote(UPSERT_KEYS[target])
    sql = f"SELECT 1 FROM {STAGE} WHERE {GOOD} GROUP BY {key} HAVING count(*) > 1 LIMIT 1"
    return con.execute(sql).fetchone() is not None


def mark_duplicates(con: duckdb.DuckDBPyConnection, target: str) -> None:
    """Skip mode: later rows with a key seen before become bad ('dup:FILE:ROWID' of the first)."""
    con.execute(
        f"UPDATE {STAGE} SET __crm_bad = 'dup:' || d.first_file || ':' || d.first_row, "
        f"__crm_value = CAST({STAGE}.{quote(UPSERT_KEYS[target])} AS VARCHAR) "
        f"FROM ({duplicate_sql(target)}) AS d WHERE {STAGE}.rowid = d.__crm_row"
    )


def add_suppressions(con: duckdb.DuckDBPyConnection, columns: list[str], params: dict[str, Any]) -> int:
    """Insert suppressions not already present with the same keys and channel; the count added."""
    exprs = _projection("suppressions", columns)
    exprs.setdefault("customer_id", "CAST(NULL AS VARCHAR)")
    names = ", ".join(quote(c) for c in exprs)
    items = ", ".join(f"{e} AS {quote(n)}" for n, e in exprs.items())
    keys = ("customer_id", "email_key", "phone_key", "address_key", "channel")
    same = " AND ".join(f"o.{k} IS NOT DISTINCT FROM n.{k}" for k in keys)
    sql = (
        f"INSERT INTO suppressions ({names}) SELECT {names} FROM ("
        f"SELECT *, row_number() OVER (PARTITION BY {', '.join(keys)} ORDER BY __crm_file, __crm_row) AS __crm_n "
        f"FROM (SELECT {items}, __crm_file, rowid AS __crm_row FROM {STAGE} WHERE {GOOD})) AS n "
        f"WHERE __crm_n = 1 AND NOT EXISTS (SELECT 1 FROM suppressions AS o WHERE {same})"
    )
    return run(con, sql, params)


def add_contacts(con: duckdb.DuckDBPyConnection, columns: list[str]) -> tuple[int, int, int]:
    """Append contact history deduplicated on (run_id, customer_id); add a `runs` row per new run_id.

    Returns (rows added, runs added, distinct customers not in customers)."""
    names = ", ".join(quote(c) for c in columns)
    added = run(
        con,
        f"INSERT INTO contact_history ({names}) SELECT {names} FROM ("
        f"SELECT *, row_number() OVER (PARTITION BY run_id, customer_id ORDER BY __crm_file, rowid) AS __crm_n "
        f"FROM {STAGE} WHERE {GOOD}) AS n WHERE __crm_n = 1 AND NOT EXISTS ("
        f"SELECT 1 FROM contact_history AS h WHERE h.run_id = n.run_id AND h.customer_id = n.customer_id)",
        {},
    )
    runs = run(
        con,
        f"INSERT INTO runs (run_id, campaign, as_of, status, source, started_at, finished_at) "
        f"SELECT run_id, min(campaign), min(as_of), 'loaded', 'loaded', now()::TIMESTAMP, now()::TIMESTAMP "
        f"FROM {STAGE} AS s WHERE {GOOD} "
        f"AND NOT EXISTS (SELECT 1 FROM runs AS r WHERE r.run_id = s.run_id) GROUP BY run_id",
        {},
    )
    unknown = con.execute(
        f"SELECT count(DISTINCT customer_id) FROM {STAGE} AS s WHERE {GOOD} "
        f"AND NOT EXISTS (SELECT 1 FROM customers AS c WHERE c.customer_id = s.customer_id)"
    ).fetchone()
    return added, runs, int(unknown[0]) if unknown else 0
