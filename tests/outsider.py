"""The command as an outsider runs it, shared by the CLI, promise and security tests.

`crmlist(...)` runs one command with no terminal, stdin empty, no colours and none of the caller's CRMLIST_
settings, in the folder given, as cron or a user's script would start it, and answers as subprocess.run
does. It runs in this process (crmlist.cli.run, the script's body, under Typer's CliRunner isolation of
stdin, stdout, stderr and the environment) because starting Python, DuckDB and sqlglot anew costs a second
a command and proves nothing a test here asks. What does need a process of its own goes through
`subprocess_crmlist` or `start_paused`: pipes, locks held by another process, signals, kills, a test pause.
CRMLIST_TEST_SUBPROCESS=1 runs every command as a subprocess, to check that both ways agree.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
from typer.testing import CliRunner

_INSTALLED = Path(sys.executable).parent / "crmlist"
COMMAND = [str(_INSTALLED)] if _INSTALLED.exists() else [sys.executable, "-m", "crmlist"]
IN_PROCESS = os.environ.get("CRMLIST_TEST_SUBPROCESS") != "1"


Env = Mapping[str, str | None]  # variables to set, None for those to unset


def outsider_env(extra: Env | None = None) -> dict[str, str]:
    """The environment without CRMLIST_ variables, colours off, plus `extra`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CRMLIST_")}
    merged = {**clean, "NO_COLOR": "1", **(extra or {})}
    return {k: v for k, v in merged.items() if v is not None}


def crmlist(
    *args: str, cwd: Path, env: Env | None = None, stdin: str | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """One command and what it said; in this process unless it must pause (CRMLIST_TEST_PAUSE)."""
    if IN_PROCESS and "CRMLIST_TEST_PAUSE" not in (env or {}):
        return in_process(*args, cwd=cwd, env=env, stdin=stdin)
    return subprocess_crmlist(*args, cwd=cwd, env=env, stdin=stdin, timeout=timeout)


def subprocess_crmlist(
    *args: str, cwd: Path, env: Env | None = None, stdin: str | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """The installed script in a process of its own, for what only a process shows."""
    return subprocess.run(
        [*COMMAND, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        env=outsider_env(env),
        timeout=timeout,
    )


def in_process(
    *args: str, cwd: Path, env: Env | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """crmlist.cli.run in this process with the outsider's environment, folder and streams, all restored."""
    from crmlist.cli import run

    wanted = outsider_env(env)
    overrides: dict[str, str | None] = {k: None for k in os.environ if k not in wanted}
    overrides.update(wanted)
    folder, umask, tmp = os.getcwd(), os.umask(0o022), tempfile.tempdir
    os.umask(umask)
    with CliRunner().isolation(input=stdin, env=overrides) as (out, err, _):
        os.chdir(cwd)
        tempfile.tempdir = None  # found again from this environment's TMPDIR, as a new process would
        try:
            code = run(list(args))
            sys.stdout.flush()
            sys.stderr.flush()
            said = _as_read(out), _as_read(err)
        finally:
            os.chdir(folder)
            os.umask(umask)
            tempfile.tempdir = tmp
    return subprocess.CompletedProcess([*COMMAND, *args], code, *said)


def _as_read(stream: io.BytesIO) -> str:
    """The bytes as subprocess.run(text=True) hands them over: decoded, newlines universal."""
    return io.TextIOWrapper(io.BytesIO(stream.getvalue()), newline=None).read()


def ok(*args: str, cwd: Path, env: Env | None = None) -> subprocess.CompletedProcess[str]:
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
