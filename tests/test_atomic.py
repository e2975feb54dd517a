"""Outputs put in place whole (crmlist/newfiles.py): one name scheme, files, folders, and every step killed.

The library tests check the pieces in this process. The others stop a real `crmlist export`, `run --rerun`
or `export-parquet` at each step of the new module (crmlist/testing_hooks.py pause points), kill it there,
and check that the old or the new complete file or folder is left (never half of one), that `crmlist
doctor` names every temporary, and that the next command finishes or removes them.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from outsider import crmlist, ok, query, start_paused

from crmlist.errors import OutputError
from crmlist.newfiles import (
    ASIDE,
    TEMPORARY,
    Leftover,
    NewFile,
    aside_path,
    leftover,
    replace_folder,
    temporary_path,
    write_file,
)

AS_OF = "2026-11-01"
CUSTOMERS = """\
customer_id,first_name,last_name,email,email_opt_in,language
C01,Anna,Kowalska,anna@example.pl,true,pl
C02,Jan,Nowak,jan@example.pl,true,pl
C03,Petr,Novak,petr@example.cz,true,cs
"""
MORE_CUSTOMERS = CUSTOMERS.splitlines()[0] + "\nC04,Eva,Svoboda,eva@example.cz,true,cs\n"
PURCHASES = """\
order_id,customer_id,order_date,amount
O1,C01,2026-03-01,120.00
O2,C01,2026-04-01,100.00
O3,C02,2026-02-01,50.00
O4,C02,2026-03-01,50.00
O5,C03,2026-01-01,30.00
"""
RULE = 'description = "Repeat buyers"\nchannel = "email"\n[audience]\nwhere = ["frequency >= 2"]\n'
OLD = b"the previous list\n"
NO_PID = 999_999_999  # above any pid_max: a writer that is gone


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A workspace from `crmlist init` with three customers and a list-only campaign `repeat` (C01, C02)."""
    root = tmp_path / "shop"
    ok("init", str(root), "--quiet", cwd=tmp_path)
    (root / "queries" / "repeat.toml").write_text(RULE, encoding="utf-8")
    (root / "c.csv").write_text(CUSTOMERS, encoding="utf-8")
    (root / "c2.csv").write_text(MORE_CUSTOMERS, encoding="utf-8")
    (root / "p.csv").write_text(PURCHASES, encoding="utf-8")
    ok("load", "customers", "c.csv", "--quiet", cwd=root)
    ok("load", "purchases", "p.csv", "--quiet", cwd=root)
    return root


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs: a disk that fills up (needs root, as CI and the developers' machines have)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def entries(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def stopped_at(point: str, *args: str, cwd: Path, sig: signal.Signals = signal.SIGKILL) -> subprocess.Popen[str]:
    """crmlist paused at `point`, then sent `sig` and waited for (so its PID is gone)."""
    proc = start_paused(point, *args, cwd=cwd, seconds=120)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    return proc


def doctor_leftovers(shop: Path) -> list[tuple[str, str]]:
    """(path, what) of every finding of `crmlist doctor --json` about a temporary or an old folder."""
    done = crmlist("doctor", "--json", cwd=shop)
    found = json.loads(done.stdout)["findings"]
    return sorted((f["where"], f["what"]) for f in found if leftover(Path(f["where"])) is not None)


# --- The pieces ------------------------------------------------------------------------------------------------


def test_one_name_scheme_and_one_function_that_recognises_it(tmp_path: Path) -> None:
    target = tmp_path / "list.csv"
    assert temporary_path(target).name == f".list.csv.tmp-{os.getpid()}"
    assert aside_path(target).name == f".list.csv.old-{os.getpid()}"
    for path, kind in [(temporary_path(target), TEMPORARY), (aside_path(target), ASIDE)]:
        assert leftover(path) == Leftover(path, target, kind, os.getpid())
    run = tmp_path / ".repeat-2026-11-01-0123abcd.old-42"
    assert leftover(run) == Leftover(run, tmp_path / "repeat-2026-11-01-0123abcd", ASIDE, 42)
    for name in ["list.csv", ".list.csv", ".list.csv.tmp-", ".list.csv.tmp-12x", "list.csv.tmp-12", ".tmp-12"]:
        assert leftover(tmp_path / name) is None, name


def test_a_new_file_goes_in_whole_over_a_link_and_clears_only_dead_writers_temporaries(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious\n")
    target = tmp_path / "out" / "list.csv"
    target.parent.mkdir()
    target.symlink_to(victim)
    dead = target.with_name(f".list.csv.tmp-{NO_PID}")
    dead.write_bytes(b"half a li")
    alive = target.with_name(f".list.csv.tmp-{os.getppid()}")  # a writer still at work
    alive.write_bytes(b"half a li")
    with pytest.raises(RuntimeError), NewFile(target) as new:
        new.file.write(b"half")
        raise RuntimeError("the writer failed")
    assert target.is_symlink() and victim.read_bytes() == b"precious\n"
    assert entries(target.parent) == sorted([alive.name, "list.csv"])
    write_file(target, b"new\n")
    assert not target.is_symlink() and target.read_bytes() == b"new\n"
    assert victim.read_bytes() == b"precious\n"
    assert entries(target.parent) == sorted([alive.name, "list.csv"])


def test_a_folder_that_cannot_go_in_leaves_the_old_one_in_place(tmp_path: Path) -> None:
    final = tmp_path / "customers"
    final.mkdir()
    (final / "part-0.parquet").write_bytes(b"old")
    new = temporary_path(final)  # not made: its rename fails for real (ENOENT)
    with pytest.raises(OutputError) as caught:
        replace_folder(new, final)
    assert caught.value.what == (
        "cannot move the new folder into place: No such file or directory; the previous one is back in place"
    )
    assert entries(tmp_path) == ["customers"] and (final / "part-0.parquet").read_bytes() == b"old"
    new.mkdir()
    (new / "part-0.parquet").write_bytes(b"new")
    replace_folder(new, final)
    assert entries(tmp_path) == ["customers"] and entries(final) == ["part-0.parquet"]
    assert (final / "part-0.parquet").read_bytes() == b"new"
    fresh = tmp_path / "products"
    temporary_path(fresh).mkdir()
    replace_folder(temporary_path(fresh), fresh)  # nothing there before: nothing moved aside
    assert entries(tmp_path) == ["customers", "products"]


# --- Files: an export stopped at each step --------------------------------------------------------------------

FILE_STEPS = [("output:created", False), ("output:before-rename", False), ("output:after-rename", True)]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
@pytest.mark.parametrize(("point", "renamed"), FILE_STEPS)
def test_an_export_stopped_at_each_step_leaves_the_old_or_the_new_file_whole(
    shop: Path, point: str, renamed: bool, sig: signal.Signals
) -> None:
    ok("export", "repeat", "-o", "expected.csv", "--as-of", AS_OF, cwd=shop)
    new = (shop / "expected.csv").read_bytes()
    target = shop / "out" / "lists" / "repeat.csv"  # in the output folder, where doctor looks
    target.parent.mkdir(parents=True)
    target.write_bytes(OLD)
    proc = stopped_at(point, "export", "repeat", "-o", str(target), "--as-of", AS_OF, cwd=shop, sig=sig)
    assert target.read_bytes() == (new if renamed else OLD)
    temporary = target.with_name(f".repeat.csv.tmp-{proc.pid}")
    if sig == signal.SIGTERM or renamed:  # a stopped export removes its temporary file; a renamed one is gone
        assert proc.returncode == (143 if sig == signal.SIGTERM else -signal.SIGKILL)
        assert entries(target.parent) == ["repeat.csv"]
        assert doctor_leftovers(shop) == []
    else:
        assert entries(target.parent) == [temporary.name, "repeat.csv"]
        assert leftover(temporary) == Leftover(temporary, target, TEMPORARY, proc.pid)
        assert doctor_leftovers(shop) == [(str(temporary), "temporary file of a stopped command")]
    ok("export", "repeat", "-o", str(target), "--as-of", AS_OF, cwd=shop)  # the next export of that file
    assert target.read_bytes() == new
    assert entries(target.parent) == ["repeat.csv"]
    assert doctor_leftovers(shop) == []


# --- Folders: a run folder replaced by --rerun, stopped at each step -------------------------------------------


def whole_run(folder: Path, run_id: str, targets: bytes, old: bool) -> bool:
    """The folder is a complete run folder: its manifest, its list, and the mark of the old one or not."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return (
        manifest["run_id"] == run_id
        and (folder / "targets.csv").read_bytes() == targets
        and (folder / "old.txt").exists() == old
    )


def first_run(shop: Path) -> tuple[str, Path, bytes]:
    """Run `repeat` once and mark its folder as the old one; returns run id, folder and targets.csv."""
    run_id = json.loads(ok("run", "repeat", "--as-of", AS_OF, "--json", cwd=shop).stdout)["run_id"]
    final = shop / "out" / "repeat" / run_id
    (final / "old.txt").write_text("the folder before the rerun\n", encoding="utf-8")
    return run_id, final, (final / "targets.csv").read_bytes()


RERUN = ("run", "repeat", "--as-of", AS_OF, "--rerun")


@pytest.mark.parametrize("point", ["folder:after-aside", "folder:after-rename"])
def test_a_rerun_killed_while_replacing_its_folder_leaves_both_whole_and_the_next_writer_settles_it(
    shop: Path, point: str
) -> None:
    """Killed between the two renames, the run's own name is empty for that moment: the old folder is whole
    as .RUN_ID.old-PID and the committed new one as .RUN_ID.tmp-PID, and the next writer rolls forward."""
    run_id, final, targets = first_run(shop)
    campaign = final.parent
    proc = stopped_at(point, *RERUN, cwd=shop)
    aside, new = campaign / f".{run_id}.old-{proc.pid}", campaign / f".{run_id}.tmp-{proc.pid}"
    if point == "folder:after-aside":
        assert entries(campaign) == sorted([aside.name, new.name])
        assert whole_run(aside, run_id, targets, old=True) and whole_run(new, run_id, targets, old=False)
        expected = [(str(aside), "folder a rerun moved aside and did not remove")]
        expected.append((str(new), "temporary folder of a stopped run"))
    else:
        assert entries(campaign) == sorted([aside.name, run_id])
        assert whole_run(aside, run_id, targets, old=True) and whole_run(final, run_id, targets, old=False)
        expected = [(str(aside), "folder a rerun moved aside and did not remove")]
    assert doctor_leftovers(shop) == sorted(expected)
    recovery = ok("load", "purchases", "p.csv", cwd=shop)  # already loaded: the next writer only recovers
    if point == "folder:after-aside":
        assert f"recovered a stopped run: rolled forward {final}\n" in recovery.stderr
    assert entries(campaign) == [run_id]
    assert whole_run(final, run_id, targets, old=False)
    assert doctor_leftovers(shop) == []
    assert query(shop / "crmlist.duckdb", "SELECT run_id FROM runs") == [(run_id,)]


def test_a_rerun_stopped_by_sigterm_between_the_renames_puts_the_old_folder_back_at_once(shop: Path) -> None:
    run_id, final, targets = first_run(shop)
    proc = stopped_at("folder:after-aside", *RERUN, cwd=shop, sig=signal.SIGTERM)
    assert proc.returncode == 143
    new = final.with_name(f".{run_id}.tmp-{proc.pid}")  # committed: the next writer rolls it forward
    assert entries(final.parent) == sorted([new.name, run_id])
    assert whole_run(final, run_id, targets, old=True) and whole_run(new, run_id, targets, old=False)
    recovery = ok("load", "purchases", "p.csv", cwd=shop)
    assert f"recovered a stopped run: rolled forward {final}\n" in recovery.stderr
    assert entries(final.parent) == [run_id] and whole_run(final, run_id, targets, old=False)


def mount_over(folder: Path) -> bool:
    return subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(folder)], capture_output=True).returncode == 0


@pytest.mark.parametrize("sabotage", ["moved away", "a mount point"])
def test_a_rerun_whose_new_folder_cannot_go_in_puts_the_old_folder_back(
    shop: Path, tmp_path: Path, sabotage: str
) -> None:
    """The second rename fails for real: the new folder is moved out of the campaign folder, or made a
    mount point (EBUSY), while the rerun waits between its two renames."""
    run_id, final, targets = first_run(shop)
    proc = start_paused("folder:after-aside", *RERUN, cwd=shop, seconds=3)
    new = final.with_name(f".{run_id}.tmp-{proc.pid}")
    held = tmp_path / "held"
    if sabotage == "moved away":
        new.rename(held)
        strerror = os.strerror(errno.ENOENT)
    elif not mount_over(new):
        proc.kill()
        proc.communicate(timeout=60)
        pytest.skip("cannot mount a tmpfs here (needs root)")
    else:
        strerror = os.strerror(errno.EBUSY)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if sabotage == "a mount point":
            subprocess.run(["umount", str(new)], capture_output=True)
    assert proc.returncode == 73, err
    assert final.is_dir() and whole_run(final, run_id, targets, old=True), err  # the old folder is back, whole
    assert err == (
        f"crmlist: error: {final}: cannot move the new folder into place: {strerror}; "
        "the previous one is back in place\nhint: check the folder is writable\n"
    )
    if sabotage == "moved away":
        held.rename(new)
    assert entries(final.parent) == sorted([new.name, run_id])
    recovery = ok("load", "purchases", "p.csv", cwd=shop)  # the history is committed: its folder goes in
    assert f"recovered a stopped run: rolled forward {final}\n" in recovery.stderr
    assert entries(final.parent) == [run_id] and whole_run(final, run_id, targets, old=False)


# --- Folders: a Parquet lake table, stopped at each step -------------------------------------------------------


def parquet_rows(folder: Path) -> int:
    with duckdb.connect() as con:
        row = con.execute(f"SELECT count(*) FROM read_parquet('{folder}/*.parquet')").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("point", ["folder:after-aside", "folder:after-rename"])
def test_a_lake_export_killed_at_each_step_leaves_each_table_whole_and_the_next_export_settles_it(
    shop: Path, point: str
) -> None:
    lake = shop / "out" / "lake"
    ok("export-parquet", "out/lake", "--quiet", cwd=shop)
    ok("load", "customers", "c2.csv", "--quiet", cwd=shop)  # the next export has 4 customers, not 3
    proc = stopped_at(point, "export-parquet", "out/lake", cwd=shop)  # customers is the first table
    customers = lake / "customers"
    aside, new = lake / f".customers.old-{proc.pid}", lake / f".customers.tmp-{proc.pid}"
    assert parquet_rows(aside) == 3
    if point == "folder:after-aside":
        assert not customers.exists() and parquet_rows(new) == 4
        expected = [str(aside), str(new)]
    else:
        assert not new.exists() and parquet_rows(customers) == 4
        expected = [str(aside)]
    assert [where for where, _ in doctor_leftovers(shop)] == sorted(expected)
    ok("export-parquet", "out/lake", "--quiet", cwd=shop)
    assert [p for p in entries(lake) if p.startswith(".")] == []
    assert parquet_rows(customers) == 4
    assert doctor_leftovers(shop) == []


def test_a_lake_export_stopped_by_sigterm_between_the_renames_keeps_the_old_table(shop: Path) -> None:
    lake = shop / "out" / "lake"
    ok("export-parquet", "out/lake", "--quiet", cwd=shop)
    ok("load", "customers", "c2.csv", "--quiet", cwd=shop)
    proc = stopped_at("folder:after-aside", "export-parquet", "out/lake", cwd=shop, sig=signal.SIGTERM)
    assert proc.returncode == 143
    assert [p for p in entries(lake) if p.startswith(".")] == []
    assert parquet_rows(lake / "customers") == 3


# --- A full disk -----------------------------------------------------------------------------------------------


def fill(disk: Path) -> None:
    with open(disk / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_a_full_disk_is_exit_73_and_leaves_the_old_files_and_no_temporary(shop: Path, small_disk: Path) -> None:
    (shop / "templates" / "repeat.txt.j2").write_text("Hello {{ customer.first_name }}\n", encoding="utf-8")
    target, proofs = small_disk / "lists" / "repeat.csv", small_disk / "proofs"
    ok("export", "repeat", "-o", str(target), "--as-of", AS_OF, cwd=shop)
    letters = ("letters", "repeat", "--out", str(proofs), "--letters-format", "jsonl", "--as-of", AS_OF)
    ok(*letters, cwd=shop)
    before = {p: p.read_bytes() for p in (target, proofs / "letters.jsonl")}
    fill(small_disk)
    for args in [("export", "repeat", "-o", str(target), "--as-of", AS_OF), letters]:
        done = crmlist(*args, cwd=shop)
        assert done.returncode == 73, done.stderr
        assert done.stderr.startswith("crmlist: error: ") and "Traceback" not in done.stderr
    run = crmlist("run", "repeat", "--out", str(small_disk / "out"), "--as-of", AS_OF, cwd=shop)
    assert run.returncode == 73, run.stderr
    assert {p: p.read_bytes() for p in before} == before
    assert entries(target.parent) == ["repeat.csv"] and entries(proofs) == ["letters.jsonl"]
    assert [p.name for p in (small_disk / "out").rglob("*")] in ([], ["repeat"])
    assert query(shop / "crmlist.duckdb", "SELECT count(*) FROM runs") == [(0,)]
