"""Promise: `crmlist doctor` reports what a killed command left in any output folder a run wrote to.

Leftovers are made the way cron makes them: a real `crmlist run` or `crmlist export` killed with SIGKILL
at a pause point, in the workspace's own out/ and in an --out folder outside the workspace.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from outsider import crmlist, start_paused

AS_OF = "2026-11-01"
CUSTOMERS = """\
customer_id,first_name,last_name,email,email_opt_in,language
C01,Anna,Kowalska,anna@example.pl,true,pl
C02,Jan,Nowak,jan@example.pl,true,pl
C03,Petr,Novak,petr@example.cz,true,cs
"""
PURCHASES = """\
order_id,customer_id,order_date,amount
O1,C01,2026-03-01,120.00
O2,C01,2026-04-01,100.00
O3,C02,2026-02-01,50.00
O4,C02,2026-03-01,50.00
O5,C03,2026-01-01,30.00
"""
RULE = """\
description = "Repeat buyers"
channel = "email"
[audience]
where = ["frequency >= 2"]
"""
RUN_FIX = "the next writer (crmlist load, run) finishes or removes it; or delete it"


def killed_at(point: str, *args: str, cwd: Path) -> int:
    """Start crmlist, wait until it pauses at `point`, SIGKILL it; returns its PID."""
    proc = start_paused(point, *args, cwd=cwd, seconds=120)
    proc.kill()
    proc.communicate(timeout=60)
    return proc.pid


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    done = crmlist("init", str(root), "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (root / "queries" / "repeat.toml").write_text(RULE, encoding="utf-8")
    (root / "templates" / "repeat.txt.j2").write_text("Hello {{ customer.first_name }}\n", encoding="utf-8")
    (root / "c.csv").write_text(CUSTOMERS, encoding="utf-8")
    (root / "p.csv").write_text(PURCHASES, encoding="utf-8")
    for table, name in (("customers", "c.csv"), ("purchases", "p.csv")):
        done = crmlist("load", table, name, "--quiet", cwd=root)
        assert done.returncode == 0, done.stderr
    return root


def leftovers(shop: Path) -> tuple[subprocess.CompletedProcess[str], list[tuple[str, str, str, str | None]]]:
    done = crmlist("doctor", "--json", cwd=shop)
    doc = json.loads(done.stdout)
    found = [
        (f["level"], f["where"], f["what"], f["fix"])
        for f in doc["findings"]
        if ".tmp-" in f["where"] or ".old-" in f["where"]
    ]
    return done, found


def test_leftovers_of_killed_runs_and_exports_in_every_recorded_output_folder(shop: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "transfer" / "out"  # outside the workspace, as cron's --out often is
    first = crmlist("run", "repeat", "--out", str(elsewhere), "--as-of", AS_OF, "--json", cwd=shop)
    assert first.returncode == 0, first.stderr
    run_id = json.loads(first.stdout)["run_id"]
    assert (elsewhere / "repeat" / run_id / "manifest.json").is_file()
    _, found = leftovers(shop)
    assert found == []

    outside_run = killed_at("run:before-manifest", "run", "repeat", "--out", str(elsewhere), "--as-of", "2026-11-02",
                            cwd=shop)  # fmt: skip
    inside_run = killed_at("run:before-manifest", "run", "repeat", "--as-of", "2026-11-03", cwd=shop)
    export = killed_at("output:before-rename", "export", "repeat", "-o", str(elsewhere / "list.csv"), "--as-of",
                       AS_OF, cwd=shop)  # fmt: skip
    aside = elsewhere / "repeat" / f".{run_id}.old-999999991"  # a rerun killed between its two renames
    aside.mkdir()
    (aside / "targets.csv").write_text("customer_id\n", encoding="utf-8")

    [tmp_outside] = (elsewhere / "repeat").glob(f".repeat-2026-11-02-*.tmp-{outside_run}")
    [tmp_inside] = (shop / "out" / "repeat").glob(f".repeat-2026-11-03-*.tmp-{inside_run}")
    half_list = elsewhere / f".list.csv.tmp-{export}"
    assert half_list.is_file()
    outside_fix = f"the next crmlist run --out {elsewhere} finishes or removes it; or delete it"

    done, found = leftovers(shop)
    assert done.returncode == 0, done.stdout  # leftovers are warnings: nothing must be fixed
    assert sorted(found) == sorted(
        [
            ("warning", str(tmp_inside), "temporary folder of a stopped run", RUN_FIX),
            ("warning", str(half_list), "temporary file of a stopped command", "delete it"),
            ("warning", str(aside), "folder a rerun moved aside and did not remove", outside_fix),
            ("warning", str(tmp_outside), "temporary folder of a stopped run", outside_fix),
        ]
    )
    human = crmlist("doctor", cwd=shop)
    assert human.returncode == 0
    assert human.stderr.startswith("doctor: 0 to fix, 4 warnings, ")

    # What doctor promises: the next run into that folder finishes or removes them.
    again = crmlist("run", "repeat", "--out", str(elsewhere), "--as-of", AS_OF, "--quiet", cwd=shop)
    assert again.returncode == 0, again.stderr
    _, found = leftovers(shop)
    assert [f[1] for f in found] == [str(tmp_inside), str(half_list)]


def test_a_run_folder_full_of_letters_is_not_walked_through(shop: Path, tmp_path: Path) -> None:
    """Leftovers inside a finished run's letters/ cannot exist; doctor does not read a million letter files."""
    elsewhere = tmp_path / "out2"
    done = crmlist("run", "repeat", "--out", str(elsewhere), "--as-of", AS_OF, "--json", cwd=shop)
    assert done.returncode == 0, done.stderr
    folder = elsewhere / "repeat" / json.loads(done.stdout)["run_id"]
    letters = folder / "letters"
    letters.mkdir(exist_ok=True)
    (letters / ".decoy.tmp-999999992").write_text("x", encoding="utf-8")
    (folder / ".letters.zip.tmp-999999993").write_text("x", encoding="utf-8")  # a killed letters --resume
    _, found = leftovers(shop)
    assert [f[1] for f in found] == [str(folder / ".letters.zip.tmp-999999993")]
