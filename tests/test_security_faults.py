"""Faults an attacker or a bad day brings: a full disk under the database, a symlinked database path.

Each test drives the real command in a subprocess on a workspace made by `crmlist init`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from outsider import crmlist, start_paused

BUSY_HINT = "hint: retry later, or pass --wait SECONDS to wait for it\n"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs: a disk that fills up (needs root, as CI and the developers' machines have)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_under_the_database_is_exit_73_naming_it_and_changes_nothing(
    small_disk: Path, tmp_path: Path
) -> None:
    ws = small_disk / "ws"
    assert crmlist("init", str(ws), cwd=tmp_path).returncode == 0
    assert crmlist("load", "customers", "sample_data/customers.csv", cwd=ws).returncode == 0
    big = tmp_path / "big.csv"  # outside the small disk: only the database fills it
    rows = "".join(f"B{i:06d},Name{i},n{i}@example.com,true\n" for i in range(80_000))
    big.write_text("customer_id,first_name,email,email_opt_in\n" + rows, encoding="utf-8")
    db = ws / "crmlist.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        before = con.execute("SELECT count(*), sum(hash(c)::HUGEINT) FROM customers AS c").fetchone()
    done = crmlist("load", "customers", str(big), cwd=ws)
    assert done.returncode == 73, done.stderr
    assert done.stderr == (
        f"crmlist: error: {db}: no space left on the disk holding the database (or its .wal and .tmp spill "
        "files); the command's changes were rolled back\n"
        "hint: free space on that disk, or move the database with --db, then run the command again\n"
    )
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*), sum(hash(c)::HUGEINT) FROM customers AS c").fetchone() == before


def test_a_symlinked_database_path_takes_the_same_lock(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert crmlist("init", str(ws), cwd=tmp_path).returncode == 0
    assert crmlist("load", "customers", "sample_data/customers.csv", cwd=ws).returncode == 0
    db = ws / "crmlist.duckdb"
    (tmp_path / "elsewhere").mkdir()
    link = tmp_path / "elsewhere" / "link.duckdb"
    link.symlink_to(db)
    holder = start_paused("writer:locked", "load", "products", "sample_data/products.csv", cwd=ws)
    try:
        second = crmlist("load", "purchases", "sample_data/purchases.csv", "--db", str(link), cwd=ws)
        assert second.returncode == 75, second.stderr
        assert second.stderr.startswith(f"crmlist: error: {db}: database busy: held by PID {holder.pid} ")
        assert second.stderr.endswith(BUSY_HINT)
        assert not (tmp_path / "elsewhere" / "link.duckdb.lock").exists()
    finally:
        holder.kill()
        holder.communicate(timeout=60)
