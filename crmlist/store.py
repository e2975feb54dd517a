"""The DuckDB database: schema of canonical and bookkeeping tables, connections, the writer lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from crmlist.errors import BusyError, CrmlistError, MissingInputError, OutputError
from crmlist.testing_hooks import pause_point

SCHEMA_VERSION = 1

# Canonical columns and their types. Extra source columns are kept beside them (ingest adds them).
# The *_key columns are normalised contact keys written by ingest and used for matching only.
CANONICAL: dict[str, dict[str, str]] = {
    "customers": {
        "customer_id": "VARCHAR",
        "first_name": "VARCHAR",
        "last_name": "VARCHAR",
        "gender": "VARCHAR",
        "birth_date": "DATE",
        "email": "VARCHAR",
        "phone": "VARCHAR",
        "street": "VARCHAR",
        "city": "VARCHAR",
        "postal_code": "VARCHAR",
        "country": "VARCHAR",
        "language": "VARCHAR",
        "household_id": "VARCHAR",
        "signup_date": "DATE",
        "email_opt_in": "BOOLEAN",
        "sms_opt_in": "BOOLEAN",
        "mail_opt_in": "BOOLEAN",
        "phone_opt_in": "BOOLEAN",
        "email_key": "VARCHAR",
        "phone_key": "VARCHAR",
        "address_key": "VARCHAR",
    },
    "purchases": {
        "order_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "order_date": "DATE",
        "product_id": "VARCHAR",
        "category": "VARCHAR",
        "quantity": "DECIMAL(18,3)",
        "unit_price": "DECIMAL(18,4)",
        "amount": "DECIMAL(18,2)",
        "currency": "VARCHAR",
    },
    "products": {
        "product_id": "VARCHAR",
        "name": "VARCHAR",
        "category": "VARCHAR",
        "color": "VARCHAR",
        "price": "DECIMAL(18,2)",
        "complements": "VARCHAR[]",
        "in_stock": "BOOLEAN",  # false: never recommended; blank counts as in stock
    },
    "suppressions": {
        "customer_id": "VARCHAR",
        "email": "VARCHAR",
        "phone": "VARCHAR",
        "street": "VARCHAR",
        "postal_code": "VARCHAR",
        "city": "VARCHAR",
        "country": "VARCHAR",
        "channel": "VARCHAR",
        "reason": "VARCHAR",
        "added_at": "TIMESTAMP",
        "email_key": "VARCHAR",
        "phone_key": "VARCHAR",
        "address_key": "VARCHAR",
    },
    "responses": {
        "customer_id": "VARCHAR",
        "responded_at": "DATE",
        "campaign": "VARCHAR",
        "offer_code": "VARCHAR",
        "revenue": "DECIMAL(18,2)",
    },
    "contact_history": {
        "run_id": "VARCHAR",
        "campaign": "VARCHAR",
        "cell": "VARCHAR",
        "customer_id": "VARCHAR",
        "channel": "VARCHAR",
        "offer": "VARCHAR",
        "is_control": "BOOLEAN",
        "as_of": "DATE",
        # NULL for targets; 'campaign' for the campaign's control group, 'global' for the global control.
        "control_group": "VARCHAR",
    },
}

BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS crmlist_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS loads (
    load_id VARCHAR, table_name VARCHAR, file VARCHAR, sha256 VARCHAR,
    rows_loaded BIGINT, rows_rejected BIGINT, loaded_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS load_rejects (
    load_id VARCHAR, table_name VARCHAR, file VARCHAR, line BIGINT, column_name VARCHAR,
    reason VARCHAR, raw_line VARCHAR
);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR, campaign VARCHAR, as_of DATE, status VARCHAR, source VARCHAR,
    out_dir VARCHAR, rules_sha256 VARCHAR, counts VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP,
    wave INTEGER, inputs VARCHAR
);
"""
# Columns added after a table was first created, so older databases get them too.
ADDED_COLUMNS = {
    "runs": {"wave": "INTEGER", "inputs": "VARCHAR"},
    "contact_history": {"control_group": "VARCHAR"},
    "products": {"in_stock": "BOOLEAN"},
}

# Tables a user loads with `crmlist load TABLE`; `contacts` lands in contact_history.
LOADABLE = ("customers", "purchases", "products", "suppressions", "responses", "contacts")


def table_for(loadable: str) -> str:
    """The database table a `crmlist load TABLE` writes to."""
    return "contact_history" if loadable == "contacts" else loadable


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every canonical and bookkeeping table that is missing (idempotent)."""
    con.execute(BOOKKEEPING)
    for table, columns in CANONICAL.items():
        cols = ", ".join(f'"{name}" {ctype}' for name, ctype in columns.items())
        con.execute(f'CREATE TABLE IF NOT EXISTS "{table}" ({cols})')
    for table, added in ADDED_COLUMNS.items():
        for name, ctype in added.items():
            con.execute(f'ALTER TABLE "{table}" ADD COLUMN IF NOT EXISTS "{name}" {ctype}')
    con.execute("INSERT OR REPLACE INTO crmlist_meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])


@contextlib.contextmanager
def setting(con: duckdb.DuckDBPyConnection, name: str, value: str | int | bool, when: bool = True) -> Iterator[None]:
    """A DuckDB setting changed for the block (when `when`), and restored to what it was afterwards."""
    with restored(con, name):
        if when:
            con.execute(f"SET {name} = ?", [value])
        yield


@contextlib.contextmanager
def restored(con: duckdb.DuckDBPyConnection, name: str) -> Iterator[None]:
    """A DuckDB setting put back, when the block ends however it ends, to what it was when it began,
    whatever the block (or a thread it started) set it to."""
    ((before,),) = con.execute("SELECT current_setting(?)", [name]).fetchall()
    try:
        yield
    finally:
        with contextlib.suppress(duckdb.Error):  # a stopped command may have lost its connection
            con.execute(f"SET {name} = ?", [before if before is not None else ""])


def quoted(name: str) -> str:
    """A table, view or column name as a SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def drop_temp(con: duckdb.DuckDBPyConnection, name: str, view: bool = False) -> None:
    """Drop a temp table (or view) of the session if it is there."""
    con.execute(f"DROP {'VIEW' if view else 'TABLE'} IF EXISTS temp.{quoted(name)}")


@contextlib.contextmanager
def dropped(con: duckdb.DuckDBPyConnection, *tables: str) -> Iterator[None]:
    """Temp tables the block creates, dropped when it ends however it ends."""
    try:
        yield
    finally:
        with contextlib.suppress(duckdb.Error):  # a stopped command may have lost its connection
            for table in tables:
                drop_temp(con, table)


@contextlib.contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, rows: Any) -> Iterator[str]:
    """Python rows (an Arrow table) readable as `name` by the block's SQL; unregistered afterwards."""
    con.register(name, rows)
    try:
        yield quoted(name)
    finally:
        con.unregister(name)


def table_digest(
    con: duckdb.DuckDBPyConnection, table: str, where: str = "TRUE", params: dict[str, Any] | None = None
) -> tuple[int, int]:
    """Row count and sum of DuckDB's row hashes of a table's rows that `where` keeps: the same for the same
    rows in any order, duplicates counted (a sum, not a xor). A DuckDB upgrade may change the hashes."""
    row = con.execute(
        f'SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM "{table}" AS t WHERE {where}', params or {}
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def duckdb_reason(exc: Exception) -> str:
    """DuckDB's first error line, which names the problem without the data rows its later lines quote."""
    return str(exc).strip().splitlines()[0][:300]


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """Column names of a table or view in the order the database keeps them."""
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [r[0] for r in rows]


def sandbox(con: duckdb.DuckDBPyConnection, lock_configuration: bool = False) -> None:
    """Cut the connection's database off the file system before it runs SQL a user wrote.

    With external access off DuckDB refuses file readers (read_csv, read_text, glob, 'file.csv'), COPY,
    EXPORT/IMPORT DATABASE, ATTACH, INSTALL and LOAD, and it cannot be turned back on while the database
    is open (the setting is the whole database's, so every connection to it is sandboxed too): crmlist
    writes its own files through another connection (outputs.py) and reads in_list() files in Python.
    `lock_configuration` also freezes every other setting, for `crmlist sql`, whose whole text is the user's.
    """
    current = con.execute("SELECT current_setting('enable_external_access')").fetchone()
    if current is None or current[0]:
        con.execute("SET enable_external_access = false")
    if lock_configuration:
        con.execute("SET lock_configuration = true")


# Connections open in this process, so a signal can interrupt a running query (see interrupt_queries).
_OPEN: set[duckdb.DuckDBPyConnection] = set()


def interrupt_queries() -> None:
    """Interrupt the queries running on this process's connections; safe to call from another thread.

    DuckDB runs a query without returning to Python, so a SIGTERM handler would otherwise wait for it.
    """
    for con in list(_OPEN):
        with contextlib.suppress(duckdb.Error):
            con.interrupt()


def lock_path(db_path: Path) -> Path:
    """The writer lock file beside the database: `<db>.lock`."""
    return db_path.with_name(db_path.name + ".lock")


def lock_holder(db_path: Path) -> str | None:
    """Who holds the writer lock now ("PID n (command)"), or None when nobody does."""
    lock_file = lock_path(db_path)
    if not lock_file.exists():
        return None
    fd = os.open(lock_file, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return _holder(lock_file)
    finally:
        os.close(fd)


def _holder(lock_file: Path) -> str:
    try:
        text = lock_file.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return "another crmlist process"
    return text or "another crmlist process"


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    text = str(exc)
    return "lock" in text.lower() and ("conflict" in text.lower() or "could not set" in text.lower())


@contextlib.contextmanager
def writer(db_path: Path, command: str, wait: float = 0.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """Hold the exclusive writer lock on `<db>.lock` and a read-write connection with the schema."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    lock_file = lock_path(db_path)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, fcntl.LOCK_EX, lock_file, command, wait)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"PID {os.getpid()} ({command})\n".encode(), 0)
        con = _connect_retrying(db_path, read_only=False, command=command, wait=max(wait, 10.0))
        try:
            ensure_schema(con)
            pause_point("writer:locked")
            with disk_full_as_output_error(db_path):
                yield con
        finally:
            _close(con)
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the flock


@contextlib.contextmanager
def reader(db_path: Path, command: str, wait: float = 0.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, refused with exit 75 while a writer holds the database."""
    if not db_path.exists():
        raise MissingInputError(str(db_path), "no database yet", "load data first: crmlist load customers FILE")
    lock_file = lock_path(db_path)
    if lock_file.exists():
        fd = os.open(lock_file, os.O_RDONLY)
        try:
            _acquire(fd, fcntl.LOCK_SH, lock_file, command, wait)
            con = _connect_retrying(db_path, read_only=True, command=command, wait=wait)
        finally:
            os.close(fd)
    else:
        con = _connect_retrying(db_path, read_only=True, command=command, wait=wait)
    try:
        with disk_full_as_output_error(db_path):
            yield con
    finally:
        _close(con)


@contextlib.contextmanager
def disk_full_as_output_error(db_path: Path) -> Iterator[None]:
    """DuckDB failing for want of disk space (the database, its WAL, its spill files) is exit 73, not a bug."""
    try:
        yield
    except duckdb.Error as exc:
        if "no space left on device" not in str(exc).lower():
            raise
        raise OutputError(
            str(db_path),
            "no space left on the disk holding the database (or its .wal and .tmp spill files); "
            "the command's changes were rolled back",
            "free space on that disk, or move the database with --db, then run the command again",
        ) from None


def _close(con: duckdb.DuckDBPyConnection) -> None:
    _OPEN.discard(con)
    con.close()


def _acquire(fd: int, mode: int, lock_file: Path, command: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise BusyError(
                    str(lock_file.with_suffix("")),
                    f"database busy: held by {_holder(lock_file)}; this is PID {os.getpid()} ({command})",
                    "retry later, or pass --wait SECONDS to wait for it",
                ) from None
            time.sleep(0.1)


def _connect_retrying(db_path: Path, read_only: bool, command: str, wait: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + wait
    while True:
        try:
            # DuckDB tracks each query's progress (commands may show it) but never prints its own bar: what
            # reaches stderr is crmlist's.
            con = duckdb.connect(str(db_path), read_only=read_only)
            con.execute("SET enable_progress_bar_print = false")
            con.execute("SET enable_progress_bar = true")
            _OPEN.add(con)
            return con
        except duckdb.Error as exc:
            if not _is_lock_conflict(exc):
                raise CrmlistError(
                    str(db_path),
                    f"cannot open the database ({type(exc).__name__})",
                    "check that --db names a crmlist database; crmlist doctor says more",
                ) from None
            if time.monotonic() >= deadline:
                raise BusyError(
                    str(db_path),
                    f"database busy: another process has it open; this is PID {os.getpid()} ({command})",
                    "retry later, or pass --wait SECONDS to wait for it",
                ) from None
            time.sleep(0.1)


def command_line() -> str:
    """The current command line without options' values, for lock holder messages."""
    return " ".join(["crmlist", *sys.argv[1:3]])
