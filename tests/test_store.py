"""The database: schema, the one-writer lock and read-only readers, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from crmlist import store
from crmlist.errors import BusyError, MissingInputError

HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from crmlist import store
    with store.writer(Path(sys.argv[1]), "load customers"):
        print("holding", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def hold(db: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(db), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "holding\n"
    return proc


def test_schema_has_every_canonical_table(tmp_path: Path) -> None:
    with store.writer(tmp_path / "crm.duckdb", "test") as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert set(store.CANONICAL) | {"loads", "load_rejects", "runs", "crmlist_meta"} <= tables
        assert store.table_columns(con, "purchases")[:3] == ["order_id", "customer_id", "order_date"]


def test_second_writer_is_refused_at_once_naming_the_holder(tmp_path: Path) -> None:
    db = tmp_path / "crm.duckdb"
    holder = hold(db, 30)
    try:
        started = time.monotonic()
        with pytest.raises(BusyError) as err, store.writer(db, "run winback"):
            pass
        assert time.monotonic() - started < 2
        assert f"held by PID {holder.pid} (load customers)" in err.value.what
        assert f"this is PID {os.getpid()} (run winback)" in err.value.what
        with pytest.raises(BusyError), store.reader(db, "status"):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_releases_the_lock(tmp_path: Path) -> None:
    db = tmp_path / "crm.duckdb"
    holder = hold(db, 30)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with store.writer(db, "load") as con:
        assert con.execute("SELECT 1").fetchone() == (1,)


def test_wait_waits_for_the_holder(tmp_path: Path) -> None:
    db = tmp_path / "crm.duckdb"
    holder = hold(db, 1.0)
    started = time.monotonic()
    with store.writer(db, "load", wait=10) as con:
        assert con.execute("SELECT 1").fetchone() == (1,)
    assert time.monotonic() - started >= 0.5
    holder.wait()


def test_reader_is_read_only_and_needs_a_database(tmp_path: Path) -> None:
    db = tmp_path / "crm.duckdb"
    with pytest.raises(MissingInputError), store.reader(db, "status"):
        pass
    with store.writer(db, "init"):
        pass
    with store.reader(db, "status") as con, pytest.raises(duckdb.Error):
        con.execute("CREATE TABLE x (a INTEGER)")
