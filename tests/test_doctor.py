"""`crmlist doctor` through the real command: what it finds, what it says to fix, its exit code."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
from pathlib import Path

import outsider
import pytest

RULE = """\
description = "Lapsed repeat buyers"
[audience]
where = ["frequency >= 2"]
"""
CONFIG = """\
locale = "en"
curency = "PLN"
[sender]
name = "Shop"
[load.customers]
delimter = ";"
[load.customers.map]
customer_id = "Nr klienta"
[load.custmers]
delimiter = ";"
"""


def crmlist(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return outsider.crmlist(*args, cwd=cwd, env={"NO_COLOR": None, **(env or {})})


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "queries").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "queries" / "lapsed.toml").write_text(RULE, encoding="utf-8")
    (tmp_path / "templates" / "lapsed.txt.j2").write_text("Hello {{ customer.first_name }}\n", encoding="utf-8")
    (tmp_path / "customers.csv").write_text("customer_id,first_name\n0001,Anna\n", encoding="utf-8")
    return tmp_path


def test_a_healthy_workspace_without_a_database_yet(shop: Path) -> None:
    done = crmlist("doctor", cwd=shop)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "ok       crmlist.toml: none: every setting has its default",
        f"ok       {shop}/crmlist.duckdb.lock: free: no writer is running",
        f"warning  {shop}/crmlist.duckdb: no database yet",
        "         fix: load data: crmlist load customers FILE",
        "ok       queries: views build: customer_facts",
        "ok       queries: campaigns pass check: lapsed",
    ]
    assert done.stderr == "doctor: 0 to fix, 1 warnings, 4 ok\n"


def test_problems_are_listed_with_their_fix_and_exit_1(shop: Path) -> None:
    assert crmlist("load", "customers", "customers.csv", cwd=shop).returncode == 0
    (shop / "crmlist.toml").write_text(CONFIG, encoding="utf-8")
    (shop / "queries" / "typo.toml").write_text(
        'template = "lapsed"\n[audience]\nwhere = ["frequncy > 1"]\n', encoding="utf-8"
    )
    stale = shop / "out" / "lapsed" / ".lapsed-2026-11-01-0123abcd.tmp-999999999"
    stale.mkdir(parents=True)
    (shop / "out" / ".list.csv.tmp-999999998").write_text("half a list")
    (shop / "crmlist.duckdb.lock").write_text("PID 999999997 (run lapsed)\n")  # its holder was killed
    done = crmlist("doctor", "--json", cwd=shop)
    assert done.returncode == 1
    assert done.stderr == ""
    doc = json.loads(done.stdout)
    assert (doc["ok"], doc["exit_code"], doc["error"]) == (False, 1, "doctor: 1 to fix, 5 warnings, 3 ok")
    assert [(f["level"], f["where"], f["what"], f["fix"]) for f in doc["findings"]] == [
        ("warning", "crmlist.toml", "curency: unknown key, ignored", "did you mean currency?"),
        (
            "warning",
            "crmlist.toml",
            "load.customers.delimter: unknown key, ignored",
            "did you mean load.customers.delimiter?",
        ),
        ("warning", "crmlist.toml", "load.custmers: unknown key, ignored", "did you mean load.customers?"),
        (
            "ok",
            f"{shop}/crmlist.duckdb.lock",
            "free; the last writer (PID 999999997 (run lapsed)) was stopped before it could clean up",
            None,
        ),
        ("warning", f"{shop}/out/.list.csv.tmp-999999998", "temporary file of a stopped command", "delete it"),
        (
            "warning",
            str(stale),
            "temporary folder of a stopped run",
            "the next writer (crmlist load, run) finishes or removes it; or delete it",
        ),
        ("ok", f"{shop}/crmlist.duckdb", "schema version 1; 10 tables readable", None),
        ("ok", "queries", "views build: customer_facts", None),
        (
            "error",
            "queries/typo.toml",
            "audience.where[0]: unknown column 'frequncy'",
            "did you mean `frequency` or `frequency_365`?",
        ),
    ]
    human = crmlist("doctor", "-q", cwd=shop)
    assert (human.returncode, human.stdout) == (1, "")
    assert human.stderr == (
        "crmlist: error: doctor: 1 to fix, 5 warnings, 3 ok\n"
        "hint: fix first: queries/typo.toml: audience.where[0]: unknown column 'frequncy'\n"
    )


def test_a_toml_error_is_reported_and_the_rest_still_checked(shop: Path) -> None:
    (shop / "crmlist.toml").write_text("locale = \n", encoding="utf-8")
    done = crmlist("doctor", cwd=shop)
    assert done.returncode == 1
    assert done.stdout.splitlines()[:4] == [
        f"error    {shop}/crmlist.toml: not valid TOML: Invalid value (at line 1, column 10)",
        "         fix: fix the syntax of crmlist.toml",
        "warning  queries: views and campaigns not checked",
        "         fix: fix crmlist.toml first",
    ]


def test_a_running_writer_is_named_and_is_not_a_problem(shop: Path) -> None:
    assert crmlist("load", "customers", "customers.csv", cwd=shop).returncode == 0
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CRMLIST_")}
    holder = subprocess.Popen(
        [sys.executable, "-m", "crmlist", "load", "customers", "customers.csv"],
        cwd=shop,
        stderr=subprocess.PIPE,
        text=True,
        env={**clean, "CRMLIST_TEST_PAUSE": "writer:locked"},
    )
    try:
        assert holder.stderr is not None
        assert holder.stderr.readline() == f"crmlist: test pause at writer:locked (PID {holder.pid})\n"
        done = crmlist("doctor", cwd=shop)
    finally:
        holder.send_signal(signal.SIGTERM)
        holder.wait()
    assert done.returncode == 0, done.stderr
    db = shop / "crmlist.duckdb"
    assert done.stdout.splitlines()[1:] == [
        f"ok       {db}.lock: held by PID {holder.pid} (load customers): a write is in progress",
        f"warning  {db}: database busy: held by PID {holder.pid} (load customers); this is PID "
        f"{_pid(done.stdout)} (doctor); database, views and campaigns not checked",
        "         fix: retry later, or pass --wait SECONDS to wait for it",
    ]


def _pid(text: str) -> str:
    match = re.search(r"this is PID (\d+) \(doctor\)", text)
    assert match
    return match.group(1)


def test_colour_only_on_a_terminal_and_never_with_no_color(shop: Path) -> None:
    def on_a_terminal(env: dict[str, str]) -> bytes:
        main, child = pty.openpty()
        clean = {k: v for k, v in os.environ.items() if not k.startswith("CRMLIST_") and k != "NO_COLOR"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "crmlist", "doctor"],
            cwd=shop,
            stdout=child,
            stderr=subprocess.DEVNULL,
            env={**clean, "TERM": "xterm-256color", **env},
        )
        os.close(child)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(main)
        assert proc.wait(timeout=60) == 0
        return b"".join(chunks)

    assert b"\x1b[32mok" in on_a_terminal({})
    plain = on_a_terminal({"NO_COLOR": "1"})
    assert b"ok       queries: campaigns pass check: lapsed" in plain and b"\x1b" not in plain
    piped = crmlist("doctor", cwd=shop, env={"TERM": "xterm-256color"})
    assert piped.returncode == 0 and "\x1b" not in piped.stdout + piped.stderr


def test_a_file_that_is_not_a_database(shop: Path) -> None:
    (shop / "crmlist.duckdb").write_text("not a database\n")
    done = crmlist("doctor", cwd=shop)
    assert done.returncode == 1
    assert (
        f"error    {shop}/crmlist.duckdb: cannot open the database (IOException)\n"
        "         fix: restore the database from a backup, or check --db\n"
    ) in done.stdout
    query = crmlist("sql", "SELECT 1", cwd=shop)
    assert (query.returncode, query.stdout) == (1, "")
    assert query.stderr == (
        f"crmlist: error: {shop}/crmlist.duckdb: cannot open the database (IOException)\n"
        "hint: check that --db names a crmlist database; crmlist doctor says more\n"
    )
