"""The whole job through the real `crmlist` command: init, load, check, preview, run, export, letters."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import duckdb
import outsider
import pytest

CUSTOMERS = """\
customer_id,first_name,last_name,gender,email,email_opt_in,language,city,loyalty_tier
0001,Anna,Kowalska,F,anna@example.pl,true,pl,Kraków,gold
0002,Jan,Nowak,M,  JAN@Example.PL ,yes,pl,Warszawa,silver
0003,Petr,Novák,M,petr@example.cz,true,cs,Praha,
0004,Olga,Petrova,F,olga@example.ru,,ru,Moskva,
0005,John,Smith,M,john@example.com,true,en,London,gold
0006,Mary,Jones,F,mary@example.com,true,de,Berlin,
0007,Duplicate,Smith,M,John@Example.com ,true,en,London,
"""
PURCHASES = """\
order_id,customer_id,order_date,product_id,category,amount
A1,0001,2026-06-01,P1,tv,1200.00
A2,0001,2026-07-01,P2,audio,99.99
B1,0002,2026-05-01,P1,tv,1500.50
B2,0002,2026-05-02,P3,audio,10.00
C1,0003,2026-03-01,P3,audio,300.00
C2,0003,2026-04-01,P3,audio,300.00
D1,0004,2026-05-01,P3,audio,50.00
D2,0004,2026-05-05,P3,audio,50.00
E1,0005,2026-01-15,P3,audio,20.00
E2,0005,2026-02-15,P3,audio,20.00
F1,0006,2026-05-01,P3,audio,70.00
F2,0006,2026-05-09,P3,audio,70.00
G1,0007,2026-05-01,P3,audio,5.00
G2,0007,2026-05-09,P3,audio,5.00
"""
SUPPRESSIONS = """\
email,channel,reason
"  MARY@example.COM ",email,complaint
"""
RULE = """\
description = "Lapsed repeat buyers"
channel = "email"

[audience]
where = ["frequency >= 2", "recency_days BETWEEN 90 AND 365"]

[[cells]]
name = "vip"
where = "monetary >= 1000"
offer = "VIP20"

[[cells]]
name = "standard"
where = "TRUE"
offer = "STD10"
"""
TEMPLATE = "{{ customer.first_name }} {{ customer.customer_id }} {{ cell }} {{ offer }} {{ as_of }}\n"


def crmlist(
    *args: str, cwd: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return outsider.crmlist(*args, cwd=cwd, stdin=stdin, env=env)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "queries").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "queries" / "lapsed.toml").write_text(RULE, encoding="utf-8")
    (tmp_path / "templates" / "lapsed.txt.j2").write_text(TEMPLATE, encoding="utf-8")
    for name, text in {
        "customers.csv": CUSTOMERS,
        "purchases.csv": PURCHASES,
        "suppressions.csv": SUPPRESSIONS,
    }.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    for table in ("customers", "purchases", "suppressions"):
        done = crmlist("load", table, f"{table}.csv", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    return tmp_path


def test_run_writes_the_hand_computed_list_waterfall_and_letters(shop: Path) -> None:
    done = crmlist("run", "lapsed", "--out", "out", "--as-of", "2026-11-01", "--json", cwd=shop)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    run_id = summary["run_id"]
    folder = shop / "out" / "lapsed" / run_id
    assert summary["paths"]["lapsed"] == str(folder)
    # 0004 has a blank consent; 0006 is suppressed (case and spaces differ); 0005's last purchase is 259 days
    # back but 0007 shares his email: 0005 has the higher monetary and stays.
    assert (folder / "targets.csv").read_text() == textwrap.dedent("""\
        customer_id,campaign,cell,offer,channel,email,first_name,last_name,language
        0001,lapsed,vip,VIP20,email,anna@example.pl,Anna,Kowalska,pl
        0002,lapsed,vip,VIP20,email,JAN@Example.PL,Jan,Nowak,pl
        0003,lapsed,standard,STD10,email,petr@example.cz,Petr,Novák,cs
        0005,lapsed,standard,STD10,email,john@example.com,John,Smith,en
        """)
    assert (folder / "control.csv").read_text() == (
        "customer_id,campaign,cell,offer,channel,email,first_name,last_name,language\n"
    )
    assert (folder / "waterfall.csv").read_text() == textwrap.dedent("""\
        step,remaining,removed
        all customers,7,0
        consent and contact (email),6,1
        suppressions (email),5,1
        where: frequency >= 2,5,0
        where: recency_days BETWEEN 90 AND 365,5,0
        dedupe (email),4,1
        cells,4,0
        control,4,0
        """)
    letters = sorted(p.name for p in (folder / "letters").iterdir())
    assert letters == ["0001.txt", "0002.txt", "0003.txt", "0005.txt"]
    assert (folder / "letters" / "0003.txt").read_text() == "Petr 0003 standard STD10 2026-11-01"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["counts"]["targets"] == 4
    with duckdb.connect(str(shop / "crmlist.duckdb"), read_only=True) as con:
        history = con.execute(
            "SELECT customer_id, cell, offer, is_control, CAST(as_of AS VARCHAR) FROM contact_history ORDER BY 1"
        ).fetchall()
        runs = con.execute("SELECT run_id, status FROM runs").fetchall()
    assert history == [
        ("0001", "vip", "VIP20", False, "2026-11-01"),
        ("0002", "vip", "VIP20", False, "2026-11-01"),
        ("0003", "standard", "STD10", False, "2026-11-01"),
        ("0005", "standard", "STD10", False, "2026-11-01"),
    ]
    assert runs == [(run_id, "complete")]


def test_second_run_reports_the_recorded_run_and_rerun_replaces_it(shop: Path) -> None:
    first = crmlist("run", "lapsed", "--out", "out", "--as-of", "2026-11-01", cwd=shop)
    assert first.returncode == 0, first.stderr
    folder = next((shop / "out" / "lapsed").iterdir())
    before = (folder / "targets.csv").read_bytes()
    again = crmlist("run", "lapsed", "--out", "out", "--as-of", "2026-11-01", cwd=shop)
    assert again.returncode == 0
    assert f"run {folder.name} is already recorded: {folder}" in again.stderr
    rerun = crmlist("run", "lapsed", "--out", "out", "--as-of", "2026-11-01", "--rerun", cwd=shop)
    assert rerun.returncode == 0, rerun.stderr
    assert (folder / "targets.csv").read_bytes() == before
    assert sorted(p.name for p in (shop / "out" / "lapsed").iterdir()) == [folder.name]
    with duckdb.connect(str(shop / "crmlist.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM contact_history").fetchone() == (4,)
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (1,)


def test_same_inputs_give_byte_identical_folders(shop: Path, tmp_path: Path) -> None:
    assert crmlist("run", "lapsed", "--out", "a", "--as-of", "2026-11-01", cwd=shop).returncode == 0
    assert crmlist("run", "lapsed", "--out", "b", "--as-of", "2026-11-01", "--rerun", cwd=shop).returncode == 0
    a = next((shop / "a" / "lapsed").iterdir())
    b = next((shop / "b" / "lapsed").iterdir())
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_preview_and_export_write_nothing(shop: Path) -> None:
    db = shop / "crmlist.duckdb"
    before = db.read_bytes()
    preview = crmlist("preview", "lapsed", "--as-of", "2026-11-01", "--json", cwd=shop)
    assert preview.returncode == 0, preview.stderr
    doc = json.loads(preview.stdout)
    assert doc["counts"]["targets"] == 4 and doc["plan"] is None
    assert doc["sample"]["columns"] == [
        "customer_id",
        "cell",
        "offer",
        "language",
        "recency_days",
        "frequency",
        "monetary",
    ]
    exported = crmlist("export", "lapsed", "-o", "-", "--as-of", "2026-11-01", cwd=shop)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.splitlines()[1] == "0001,lapsed,vip,VIP20,email,anna@example.pl,Anna,Kowalska,pl"
    assert db.read_bytes() == before
    assert not (shop / "out").exists()


def test_check_reports_every_problem_with_exit_65(shop: Path) -> None:
    (shop / "queries" / "broken.toml").write_text('[audiance]\nwhere = "TRUE"\n', encoding="utf-8")
    (shop / "queries" / "typo.toml").write_text('[audience]\nwhere = ["frequncy > 1"]\n', encoding="utf-8")
    done = crmlist("check", cwd=shop)
    assert done.returncode == 65
    assert done.stderr.splitlines()[:4] == [
        "crmlist: error: queries/broken.toml: audiance: unknown key",
        "hint: did you mean `audience`?",
        "crmlist: error: queries/typo.toml: audience.where[0]: unknown column 'frequncy'",
        "hint: did you mean `frequency` or `frequency_365`?",
    ]
    assert "Traceback" not in done.stderr


def test_unknown_campaign_is_exit_1_with_the_names(shop: Path) -> None:
    done = crmlist("run", "lapsd", "--out", "out", cwd=shop)
    assert done.returncode == 1
    assert done.stderr == (
        "crmlist: error: queries/lapsd.toml: no campaign named 'lapsd'\nhint: did you mean lapsed?\n"
    )


def test_json_error_document(shop: Path) -> None:
    done = crmlist("preview", "nope", "--json", cwd=shop)
    assert done.returncode == 1
    assert json.loads(done.stdout) == {
        "ok": False,
        "exit_code": 1,
        "error": "queries/nope.toml: no campaign named 'nope'",
    }


def _history(shop: Path) -> list[str]:
    with duckdb.connect(str(shop / "crmlist.duckdb"), read_only=True) as con:
        return [r[0] for r in con.execute("SELECT customer_id FROM contact_history ORDER BY 1").fetchall()]


def test_partial_run_exits_3_and_resume_completes_it(shop: Path) -> None:
    czech = shop / "templates" / "lapsed.cs.txt.j2"
    czech.write_text("{{ customer.first_name }} {{ nonexistent.value }}\n", encoding="utf-8")
    done = crmlist("run", "lapsed", "--out", "out", "--as-of", "2026-11-01", "--json", cwd=shop)
    assert done.returncode == 3, done.stderr
    doc = json.loads(done.stdout)
    assert (doc["ok"], doc["status"]) == (False, {"lapsed": "partial"})
    folder = Path(doc["paths"]["lapsed"])
    assert (folder / "failed.csv").read_text() == (
        "customer_id,template,line,error\n0003,lapsed.cs.txt.j2,1,UndefinedError: 'nonexistent' is undefined\n"
    )
    assert json.loads((folder / "manifest.json").read_text())["status"] == "partial"
    assert _history(shop) == ["0001", "0002", "0005"]
    czech.write_text("Dobrý den {{ customer.first_name }}\n", encoding="utf-8")
    resumed = crmlist("letters", "lapsed", "--resume", folder.name, "--json", cwd=shop)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["ok"] is True
    assert (folder / "letters" / "0003.txt").read_text() == "Dobrý den Petr"
    assert not (folder / "failed.csv").exists()
    assert json.loads((folder / "manifest.json").read_text())["status"] == "complete"
    assert _history(shop) == ["0001", "0002", "0003", "0005"]


def test_every_letter_failing_records_nothing_and_exits_1(shop: Path) -> None:
    (shop / "templates" / "lapsed.txt.j2").write_text(
        "Dear {{ customer.first_name }},\n{{ nonexistent.value }}", encoding="utf-8"
    )
    done = crmlist("run", "lapsed", "--out", "out", "--as-of", "2026-11-01", cwd=shop)
    assert done.returncode == 1
    assert done.stderr == (
        "crmlist: error: queries/lapsed.toml: every letter failed (4); nothing was recorded\n"
        "hint: the first, of customer 0001, in templates/lapsed.txt.j2, line 2: "
        "UndefinedError: 'nonexistent' is undefined\n"
    )
    assert "Anna" not in done.stderr  # the first name the letter would have printed
    assert list((shop / "out" / "lapsed").iterdir()) == []
    assert _history(shop) == []


def test_rejects_lists_and_exports_bad_rows(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text(
        "customer_id,birth_date,email_opt_in\n007,1980-02-30,tak\n008,1975-01-01,maybe\n009,1990-01-01,nie\n",
        encoding="utf-8",
    )
    loaded = crmlist("load", "customers", "c.csv", "--on-error", "skip", cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    listed = crmlist("rejects", cwd=tmp_path)
    assert listed.stdout == (
        "table,file,line,column,reason\n"
        "customers,c.csv,2,birth_date,birth_date: the value is not a date\n"
        "customers,c.csv,3,email_opt_in,email_opt_in: 'maybe' is not a yes/no value\n"
    )
    exported = crmlist("rejects", "--table", "customers", "-o", "fix.csv", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "fix.csv").read_text(encoding="utf-8").splitlines()[1] == (
        'customers,c.csv,2,birth_date,birth_date: the value is not a date,"007,1980-02-30,tak"'
    )


def test_a_campaign_without_templates_writes_lists_and_records_everyone(shop: Path) -> None:
    (shop / "templates" / "lapsed.txt.j2").unlink()
    done = crmlist("run", "lapsed", "--out", "out", "--as-of", "2026-11-01", "--json", cwd=shop)
    assert done.returncode == 0, done.stderr
    folder = Path(json.loads(done.stdout)["paths"]["lapsed"])
    assert not (folder / "letters").exists()
    assert len((folder / "targets.csv").read_text().splitlines()) == 5
    assert _history(shop) == ["0001", "0002", "0003", "0005"]
    (shop / "queries" / "lapsed.toml").write_text('template = "missing"\n' + RULE, encoding="utf-8")
    named = crmlist("run", "lapsed", "--out", "out", "--as-of", "2026-11-01", cwd=shop)
    assert named.returncode == 1
    assert named.stderr == (
        "crmlist: error: templates/missing: no template of this name\n"
        "hint: create templates/missing.txt.j2 (or .md, .html, .eml)\n"
    )
