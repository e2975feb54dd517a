"""The command as an outsider runs it, shared by the promise and security tests.

A subprocess of the installed `crmlist` (else `python -m crmlist`) with no terminal, stdin closed, no
colours and none of the caller's CRMLIST_ settings, as cron or a user's script would start it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb

_INSTALLED = Path(sys.executable).parent / "crmlist"
COMMAND = [str(_INSTALLED)] if _INSTALLED.exists() else [sys.executable, "-m", "crmlist"]


def outsider_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without CRMLIST_ variables, colours off, plus `extra`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CRMLIST_")}
    return {**clean, "NO_COLOR": "1", **(extra or {})}


def crmlist(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=outsider_env(env),
        timeout=timeout,
    )


def ok(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """crmlist that must succeed: exit 0 and no traceback."""
    done = crmlist(*args, cwd=cwd, env=env)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done


def start_paused(point: str, *args: str, cwd: Path, seconds: int = 60) -> subprocess.Popen[str]:
    """crmlist stopped at a test pause point (crmlist/testing_hooks.py), once it has said so on stderr."""
    extra = {"CRMLIST_TEST_PAUSE": point, "CRMLIST_TEST_PAUSE_SECONDS": str(seconds)}
    proc = subprocess.Popen(
        [*COMMAND, *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=outsider_env(extra),
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert line == f"crmlist: test pause at {point} (PID {proc.pid})\n", line + proc.stderr.read()
    return proc


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a read-only query on the database file, [] when there is no database yet."""
    if not db.exists():
        return []
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()
