"""Safety of the real `crmlist` command: the writer lock, signals and kills, pipes, exit codes, the log.

Processes are stopped at named points with the test-only CRMLIST_TEST_PAUSE hook (crmlist/testing_hooks.py),
then signalled or killed there; a load is killed once DuckDB has started writing its rows into the database
file and before the commit (no WAL yet).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import outsider
import pytest

AS_OF = "2026-11-01"
CUSTOMERS = """\
customer_id,first_name,last_name,gender,email,email_opt_in,language
0001,Anna,Kowalska,F,anna@example.pl,true,pl
0002,Jan,Nowak,M,jan@example.pl,true,pl
0003,Petr,Novák,M,petr@example.cz,true,cs
0004,John,Smith,M,john@example.com,true,en
"""
PURCHASES = """\
order_id,customer_id,order_date,product_id,category,amount
A1,0001,2026-06-01,P1,tv,1200.00
A2,0001,2026-07-01,P2,audio,99.99
B1,0002,2026-05-01,P3,audio,10.00
B2,0002,2026-05-02,P3,audio,10.00
C1,0003,2026-03-01,P3,audio,300.00
C2,0003,2026-04-01,P3,audio,300.00
D1,0004,2026-01-15,P3,audio,20.00
D2,0004,2026-02-15,P3,audio,20.00
"""
RULE = """\
description = "Lapsed repeat buyers"
channel = "email"

[audience]
where = ["frequency >= 2"]

[[cells]]
name = "vip"
where = "monetary >= 1000"
offer = "VIP20"

[[cells]]
name = "standard"
where = "TRUE"
offer = "STD10"
"""
TARGETS = """\
customer_id,campaign,cell,offer,channel,email,first_name,last_name,language
0001,lapsed,vip,VIP20,email,anna@example.pl,Anna,Kowalska,pl
0002,lapsed,standard,STD10,email,jan@example.pl,Jan,Nowak,pl
0003,lapsed,standard,STD10,email,petr@example.cz,Petr,Novák,cs
0004,lapsed,standard,STD10,email,john@example.com,John,Smith,en
"""
BUSY_HINT = "hint: retry later, or pass --wait SECONDS to wait for it\n"
RUN = ("run", "lapsed", "--out", "out", "--as-of", AS_OF)


def env_with(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMLIST_")}
    return {**env, **(extra or {})}


def crmlist(
    *args: str, cwd: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return outsider.crmlist(*args, cwd=cwd, stdin=stdin, env=env)


def start(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "crmlist", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_with(env),
    )


def start_paused(point: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """A crmlist process stopped at a test pause point (it sleeps there for a minute)."""
    proc = start(*args, cwd=cwd, env={"CRMLIST_TEST_PAUSE": point, **(env or {})})
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert line == f"crmlist: test pause at {point} (PID {proc.pid})\n", line + proc.stderr.read()
    return proc


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template")
    (root / "queries").mkdir()
    (root / "templates").mkdir()
    (root / "queries" / "lapsed.toml").write_text(RULE, encoding="utf-8")
    (root / "templates" / "lapsed.txt.j2").write_text("Hello {{ customer.first_name }} {{ offer }}\n", "utf-8")
    (root / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    (root / "purchases.csv").write_text(PURCHASES, encoding="utf-8")
    for table in ("customers", "purchases"):
        done = crmlist("load", table, f"{table}.csv", cwd=root)
        assert done.returncode == 0, done.stderr
    return root


@pytest.fixture
def shop(template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "shop"))


# 1. One writer at a time ------------------------------------------------------------------------------


def test_a_second_writer_and_every_reader_exit_75_naming_both_and_wait_waits(shop: Path) -> None:
    db = shop / "crmlist.duckdb"
    started = time.monotonic()
    assert crmlist("sql", "SELECT 1", "--db", "nowhere.duckdb", cwd=shop).returncode == 66
    startup = time.monotonic() - started  # what starting Python and crmlist costs on this machine right now
    holder = start_paused("writer:locked", "load", "purchases", "purchases.csv", cwd=shop)
    try:
        started = time.monotonic()
        second = start("load", "customers", "customers.csv", cwd=shop)
        code, out, err = finish(second)
        elapsed = time.monotonic() - started
        assert (code, out) == (75, "")
        assert err == (
            f"crmlist: error: {db}: database busy: held by PID {holder.pid} (load purchases); "
            f"this is PID {second.pid} (load customers)\n{BUSY_HINT}"
        )
        assert elapsed < max(2.0, startup + 0.5), (elapsed, startup)  # refused at once, not after a wait
        others = {
            "run lapsed": start(*RUN, cwd=shop),
            "status": start("status", cwd=shop),
            "sql": start("sql", "SELECT 1", cwd=shop),
            "preview": start("preview", "lapsed", "--as-of", AS_OF, cwd=shop),
            "export": start("export", "lapsed", "-o", "list.csv", "--as-of", AS_OF, cwd=shop),
            "check": start("check", cwd=shop),
            "report": start("report", "lapsed", cwd=shop),
        }
        for command, proc in others.items():
            code, out, err = finish(proc)
            assert (command, code, out) == (command, 75, "")
            assert err == (
                f"crmlist: error: {db}: database busy: held by PID {holder.pid} (load purchases); "
                f"this is PID {proc.pid} ({command})\n{BUSY_HINT}"
            )
        waiting_writer = start("load", "customers", "customers.csv", "--wait", "30", cwd=shop)
        waiting_reader = start("status", "--wait", "30", "--json", cwd=shop)
        time.sleep(1.5)  # both are up and waiting
        assert waiting_writer.poll() is None and waiting_reader.poll() is None
        holder.send_signal(signal.SIGTERM)
        assert finish(holder) == (143, "", "crmlist: stopped by SIGTERM\n")
        assert finish(waiting_writer)[0] == 0
        code, out, _ = finish(waiting_reader)
        assert code == 0 and json.loads(out)["counts"]["customers"] == 4
    finally:
        holder.kill()
        holder.wait()
    assert not (shop / "list.csv").exists()


def test_every_reader_and_writer_takes_wait_and_every_command_a_log_file() -> None:
    import typer

    from crmlist.cli import admin, campaigns, data, report  # noqa: F401  (commands register on import)
    from crmlist.cli.app import app
    from crmlist.cli.options import add_log_file_option

    group: Any = typer.main.get_command(app)
    add_log_file_option(group)
    options = {name: {o for p in command.params for o in p.opts} for name, command in group.commands.items()}
    readers_and_writers = {"load", "run", "letters", "status", "sql", "campaigns", "check", "preview", "export"}
    assert {name for name in readers_and_writers | {"report", "doctor"} if "--wait" not in options[name]} == set()
    assert {name for name, opts in options.items() if "--log-file" not in opts} == set()
    assert "--log-file" in {o for p in group.params for o in p.opts}


# 2. Crash safety ---------------------------------------------------------------------------------------


def test_a_killed_run_records_nothing_and_the_next_writer_rolls_back_or_forward(shop: Path) -> None:
    db, runs = shop / "crmlist.duckdb", shop / "out" / "lapsed"
    for point, manifest in [("run:before-manifest", False), ("run:after-manifest", True)]:
        proc = start_paused(point, *RUN, cwd=shop)  # its start also rolled back the run killed before
        proc.kill()
        proc.wait()
        assert query(db, "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM contact_history)") == [(0, 0)]
        [tmp] = entries(runs)
        run_id = tmp[1:].rsplit(".tmp-", 1)[0]
        assert tmp == f".{run_id}.tmp-{proc.pid}"
        assert (runs / tmp / "manifest.json").exists() == manifest
        assert (runs / tmp / "targets.csv").read_text(encoding="utf-8") == TARGETS
    recovery = crmlist("load", "purchases", "purchases.csv", cwd=shop)  # already loaded: skipped, run id kept
    assert recovery.returncode == 0, recovery.stderr
    assert f"recovered a stopped run: rolled back {runs / tmp}\n" in recovery.stderr
    assert entries(runs) == []

    proc = start_paused("run:after-commit", *RUN, cwd=shop)
    proc.kill()
    proc.wait()
    assert query(db, "SELECT run_id, status FROM runs") == [(run_id, "complete")]
    assert query(db, "SELECT count(*) FROM contact_history") == [(4,)]
    assert entries(runs) == [f".{run_id}.tmp-{proc.pid}"]
    recovery = crmlist("load", "purchases", "purchases.csv", cwd=shop)
    assert f"recovered a stopped run: rolled forward {runs / run_id}\n" in recovery.stderr
    assert entries(runs) == [run_id]
    assert (runs / run_id / "targets.csv").read_text(encoding="utf-8") == TARGETS
    assert json.loads((runs / run_id / "manifest.json").read_text())["status"] == "complete"


def test_sigterm_and_sigint_stop_a_run_with_143_and_130_and_remove_its_temporary_folder(shop: Path) -> None:
    db, runs, log = shop / "crmlist.duckdb", shop / "out" / "lapsed", shop / "crmlist.log"
    for point, sig, code in [
        ("run:before-manifest", signal.SIGTERM, 143),
        ("run:after-manifest", signal.SIGINT, 130),
    ]:
        proc = start_paused(point, *RUN, "--log-file", str(log), cwd=shop)
        proc.send_signal(sig)
        assert finish(proc) == (code, "", f"crmlist: stopped by {sig.name}\n")
        assert entries(runs) == []
        assert query(db, "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM contact_history)") == [(0, 0)]
    # Once the history is committed, a SIGTERM still lands the folder: history and folder go together.
    proc = start_paused("run:after-commit", *RUN, "--json", cwd=shop)
    proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc)
    assert (code, err) == (143, "crmlist: stopped by SIGTERM\n")
    assert json.loads(out) == {"ok": False, "exit_code": 143, "error": "stopped by SIGTERM"}
    [(run_id,)] = query(db, "SELECT run_id FROM runs")
    assert isinstance(run_id, str) and entries(runs) == [run_id]
    assert (runs / run_id / "targets.csv").read_text(encoding="utf-8") == TARGETS
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["command"], r["exit_code"], r["error"]) for r in lines] == [
        ("run", 143, "stopped by SIGTERM"),
        ("run", 130, "stopped by SIGINT"),
    ]


def big_purchases(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as fh:
        fh.write("order_id,customer_id,order_date,product_id,category,amount\n")
        fh.writelines(
            f"Z{i},000{1 + i % 4},2026-05-{1 + i % 28:02d},P{i % 50},audio,{i % 900}.{i % 100:02d}\n"
            for i in range(rows)
        )


def signal_mid_load(shop: Path, sig: signal.Signals, tmpdir: Path) -> subprocess.Popen[str]:
    """Start loading big.csv and signal the load once DuckDB writes its rows into the file, before the commit."""
    db, wal = shop / "crmlist.duckdb", shop / "crmlist.duckdb.wal"
    size = db.stat().st_size
    proc = start("load", "purchases", "big.csv", cwd=shop, env={"TMPDIR": str(tmpdir)})
    while db.stat().st_size == size:
        assert proc.poll() is None, "the load ended before it wrote into the database"
        time.sleep(0.002)
    proc.send_signal(sig)
    assert not wal.exists()  # the commit writes the WAL: there was none yet
    return proc


def test_a_load_killed_or_stopped_mid_transaction_loads_nothing(shop: Path, tmp_path: Path) -> None:
    db = shop / "crmlist.duckdb"
    big_purchases(shop / "big.csv", 300_000)
    counts = "SELECT (SELECT count(*) FROM purchases), (SELECT count(*) FROM loads)"
    assert query(db, counts) == [(8, 2)]
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = signal_mid_load(shop, signal.SIGKILL, tmpdir)
    assert finish(proc)[0] == -signal.SIGKILL
    assert query(db, counts) == [(8, 2)]
    shutil.rmtree(tmpdir)
    tmpdir.mkdir()
    proc = signal_mid_load(shop, signal.SIGTERM, tmpdir)
    assert finish(proc) == (143, "", "crmlist: stopped by SIGTERM\n")
    assert query(db, counts) == [(8, 2)]
    assert entries(tmpdir) == []  # the load's temporary folder went with it
    done = crmlist("load", "purchases", "big.csv", "--json", cwd=shop)
    assert done.returncode == 0, done.stderr
    assert query(db, counts) == [(300_008, 3)]


def test_a_killed_or_stopped_export_leaves_the_old_file_and_no_visible_temp_file(shop: Path, tmp_path: Path) -> None:
    target = shop / "lists" / "lapsed.csv"
    target.parent.mkdir()
    target.write_bytes(b"the previous list\n")
    export = ("export", "lapsed", "-o", "lists/lapsed.csv", "--as-of", AS_OF)
    proc = start_paused("output:before-rename", *export, cwd=shop)
    proc.kill()
    proc.wait()
    assert target.read_bytes() == b"the previous list\n"
    assert entries(target.parent) == [f".lapsed.csv.tmp-{proc.pid}", "lapsed.csv"]  # hidden from *.csv globs
    (target.parent / f".lapsed.csv.tmp-{proc.pid}").unlink()
    proc = start_paused("output:before-rename", *export, cwd=shop)
    proc.send_signal(signal.SIGTERM)
    assert finish(proc) == (143, "", "crmlist: stopped by SIGTERM\n")
    assert target.read_bytes() == b"the previous list\n"
    assert entries(target.parent) == ["lapsed.csv"]
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = start_paused("output:before-rename", *export[:3], "-", *export[4:], cwd=shop, env={"TMPDIR": str(tmpdir)})
    proc.send_signal(signal.SIGTERM)
    assert finish(proc) == (143, "", "crmlist: stopped by SIGTERM\n")
    assert entries(tmpdir) == []
    done = crmlist(*export, cwd=shop)
    assert (done.returncode, done.stderr) == (0, "lapsed: 4 rows written to lists/lapsed.csv\n")
    assert target.read_text(encoding="utf-8") == TARGETS


# 3. Pipelines ------------------------------------------------------------------------------------------


def test_stdin_stdout_and_a_closed_pipe(shop: Path) -> None:
    loaded = crmlist("load", "customers", "-", cwd=shop, stdin="customer_id,first_name\n0005,Eva\n")
    assert (loaded.returncode, loaded.stdout) == (0, "")
    assert loaded.stderr == "customers: 1 rows loaded, 0 rejected, from 1 file(s)\n"
    empty = crmlist("load", "purchases", "-", cwd=shop, stdin="")
    assert (empty.returncode, empty.stdout) == (66, "")
    assert (
        empty.stderr == "crmlist: error: stdin: no data on stdin\nhint: pipe a file in: crmlist load TABLE - < FILE\n"
    )
    exported = crmlist("export", "lapsed", "-o", "-", "--as-of", AS_OF, cwd=shop)
    assert (exported.returncode, exported.stdout, exported.stderr) == (0, TARGETS, "")
    # | head -1 on a large output: the write hits EPIPE; crmlist ends quietly with 0
    proc = start("sql", "SELECT range AS n FROM range(2000000)", cwd=shop)
    assert proc.stdout is not None and proc.stdout.readline() == "n\n"
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0
    assert proc.stderr is not None and proc.stderr.read() == ""


def test_quiet_prints_nothing_and_json_prints_one_document_with_timings(shop: Path) -> None:
    def json_doc(name: str, code: int, out: str, err: str) -> dict[str, Any]:
        assert (name, code, err, out.count("\n")) == (name, 0, "", 1)
        doc: dict[str, Any] = json.loads(out)
        return doc

    writers = [
        ("load", "customers", "customers.csv", "--quiet"),
        (*RUN, "--quiet"),
        ("letters", "lapsed", "--out", "proofs", "--as-of", AS_OF, "--quiet"),
        ("init", "fresh", "--quiet"),
    ]
    for args in writers:  # one after the other
        done = crmlist(*args, cwd=shop)
        assert (args[0], done.returncode, done.stdout, done.stderr) == (args[0], 0, "", "")
    timings = {"load": {"open", "load", "total"}, "run": {"open", "run lapsed", "total"}}
    for args in [("load", "purchases", "purchases.csv", "--force", "--json"), (*RUN, "--rerun", "--json")]:
        doc = json_doc(args[0], *finish(start(*args, cwd=shop)))
        assert (doc["command"], doc["ok"], set(doc["timings"])) == (args[0], True, timings[args[0]])
    quiet = [
        ("status", "-q"),
        ("campaigns", "-q"),
        ("check", "-q"),
        ("preview", "lapsed", "--as-of", AS_OF, "-q"),
        ("export", "lapsed", "-o", "list.csv", "--as-of", AS_OF, "-q"),
        ("report", "lapsed", "-q"),
        ("doctor", "-q"),
    ]
    as_json = {
        ("export", "lapsed", "-o", "list.csv", "--as-of", AS_OF, "--json"): {"open", "evaluate", "write", "total"},
        ("preview", "lapsed", "--as-of", AS_OF, "--json"): {"open", "preview", "total"},
    }
    readers = [(args, start(*args, cwd=shop)) for args in [*quiet, *as_json]]  # readers side by side
    usage = crmlist("load", "customers", "customers.csv", "--on-error", "sometimes", "--json", cwd=shop)
    for args, proc in readers:
        if args in as_json:
            doc = json_doc(args[0], *finish(proc))
            assert (doc["command"], doc["ok"], set(doc["timings"])) == (args[0], True, as_json[args])
            assert all(isinstance(v, float) and v >= 0 for v in doc["timings"].values())
        else:
            assert (args[0], *finish(proc)) == (args[0], 0, "", "")
    assert usage.returncode == 2
    assert json.loads(usage.stdout) == {"ok": False, "exit_code": 2, "error": "--on-error: unknown mode 'sometimes'"}


def test_no_ansi_escapes_off_a_terminal(shop: Path) -> None:
    env = {"TERM": "xterm-256color"}
    procs = [start("preview", "lapsed", "--as-of", AS_OF, cwd=shop, env=env), start("doctor", cwd=shop, env=env)]
    for proc in procs:
        code, out, err = finish(proc)
        assert code == 0 and out and "\x1b" not in out + err


# 4. Exit codes -----------------------------------------------------------------------------------------


WRITE_HINT = "hint: check the path, its permissions and free space\n"


def files_of(folder: Path, but: Path | None = None) -> dict[str, bytes]:
    """Every file under folder (but one) and its bytes: what a command that fails must leave as it was."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p != but}


def test_exit_codes_of_the_contract_each_logged_with_its_message_and_nothing_written(shop: Path) -> None:
    log = shop / "cron.log"
    (shop / "a-file").write_text("not a folder\n")
    (shop / "bad.csv").write_text("customer_id,birth_date\n0009,not-a-date\n")
    (shop / "templates" / "lapsed.cs.txt.j2").write_text("{{ customer.nonexistent }}\n", encoding="utf-8")
    # (exit code, arguments, stderr): where it went wrong, what is wrong, and the fix
    cases = [
        (0, ("status", "--quiet"), ""),
        (1, ("run", "lapsd", "--out", "out"),
         "crmlist: error: queries/lapsd.toml: no campaign named 'lapsd'\nhint: did you mean lapsed?\n"),
        (2, ("load", "customers", "customers.csv", "--bogus"),  # Typer's own usage error (click's close match)
         "Usage: crmlist load [OPTIONS] {table} {files}...\nTry 'crmlist load -h' for help.\n\n"
         "Error: No such option: --bogus (Possible options: --columns)\n"),
        (2, ("load", "customers", "customers.csv", "--on-error", "sometimes"),
         "crmlist: error: --on-error: unknown mode 'sometimes'\nhint: use strict or skip\n"),
        (65, ("load", "customers", "bad.csv"),
         "crmlist: error: bad.csv:2: birth_date: the value is not a date\nhint: write dates as YYYY-MM-DD, or pass "
         "--date-format (e.g. '%d.%m.%Y'); or pass --on-error skip to load the good rows and keep the bad ones in "
         "load_rejects\n"),
        (66, ("load", "customers", "missing.csv"), "crmlist: error: missing.csv: no such file\nhint: check the path\n"),
        (73, ("run", "lapsed", "--out", "a-file/out", "--as-of", AS_OF),
         f"crmlist: error: {shop}/a-file/out/lapsed: cannot create the run folder: Not a directory\n"
         "hint: check --out\n"),
        (73, ("export", "lapsed", "-o", "a-file/list.csv", "--as-of", AS_OF),
         f"crmlist: error: a-file/list.csv: cannot write: Not a directory\n{WRITE_HINT}"),
        (73, ("export", "lapsed", "-o", "/sys/list.csv", "--as-of", AS_OF),  # a folder nobody may write
         f"crmlist: error: /sys/list.csv: cannot write: Permission denied\n{WRITE_HINT}"),
    ]  # fmt: skip
    results = []
    for _, args, message in cases:
        before = files_of(shop, but=log)
        done = crmlist(*args, env={"CRMLIST_LOG_FILE": str(log)}, cwd=shop)
        results.append((args, done.returncode))
        assert done.stdout == ""
        assert done.stderr == message, args
        assert files_of(shop, but=log) == before, args  # nothing written, nothing changed, the database included
    assert results == [(args, code) for code, args, _ in cases]
    # exit 3: the run is recorded, the failed letter listed with its template and line
    before = files_of(shop, but=log)
    done = crmlist(*RUN, env={"CRMLIST_LOG_FILE": str(log)}, cwd=shop)
    run_id = entries(shop / "out" / "lapsed")[0]
    folder = shop / "out" / "lapsed" / run_id
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr == (
        f"lapsed: run {run_id}: 4 targets, 0 control, 3 letters -> {folder}\n"
        f"1 letters failed; see {folder / 'failed.csv'}\n"
    )
    assert (folder / "failed.csv").read_text(encoding="utf-8") == (
        "customer_id,template,line,error\n"
        "0003,lapsed.cs.txt.j2,1,UndefinedError: 'dict object' has no attribute 'nonexistent'\n"
    )
    assert sorted(p.name for p in (folder / "letters").iterdir()) == ["0001.txt", "0002.txt", "0004.txt"]
    assert {name for name in files_of(shop, but=log) if not name.startswith("out/")} == set(before)  # no stray file
    assert query(shop / "crmlist.duckdb", "SELECT customer_id FROM contact_history ORDER BY 1") == [
        ("0001",), ("0002",), ("0004",)
    ]  # fmt: skip
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["command"], r["exit_code"]) for r in records] == [
        *((args[0], code) for code, args, _ in cases),
        ("run", 3),
    ]
    assert records[-1]["run_id"] == run_id and run_id.startswith(f"lapsed-{AS_OF}-")
    assert records[-1]["counts"]["lapsed"]["letters"] == 3


def test_the_log_keeps_names_and_counts_but_no_personal_data(shop: Path) -> None:
    log = shop / "logs" / "crmlist.jsonl"
    done = crmlist("sql", "SELECT * FROM customers WHERE email = 'anna@example.pl'", "--log-file", str(log), cwd=shop)
    assert done.returncode == 0
    done = crmlist("--log-file", str(log), "run", "lapsed", "--out", "out", "--as-of", AS_OF, cwd=shop)
    assert done.returncode == 0
    text = log.read_text(encoding="utf-8")
    assert "anna" not in text.lower() and "Kowalska" not in text
    sql, run = (json.loads(line) for line in text.splitlines())
    assert set(sql) == {"timestamp", "command", "argv", "exit_code", "duration_s", "pid"}
    assert sql["argv"] == ["sql", "<query>", "--log-file", str(log)]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", sql["timestamp"])
    assert run["argv"] == ["--log-file", str(log), "run", "lapsed", "--out", "out", "--as-of", AS_OF]
    assert (run["command"], run["exit_code"], run["counts"]["lapsed"]["targets"]) == ("run", 0, 4)
    assert run["run_id"] == entries(shop / "out" / "lapsed")[0]
    unwritable = crmlist("status", "--log-file", "/sys/crmlist.log", cwd=shop)
    assert unwritable.returncode == 0  # the command's own outcome stands
    assert unwritable.stderr.endswith("crmlist: warning: cannot write the log /sys/crmlist.log: Permission denied\n")
