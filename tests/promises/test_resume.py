"""Promise: `crmlist letters --resume RUN_ID` finishes the run that was started, or refuses and says why.

A resume renders the letters a run could not write and records them. It finishes that run: the rules
it ran (the run folder's rules.toml, whatever queries/ holds now), the facts as of its as-of date, the
targets, cells and offers its targets.csv recorded. When what the run read has changed since (data,
views, or contacts recorded since that now cap its targets), it refuses with exit 1 and names what
changed, leaving the run as it was. Only the fix itself, the templates, may change.

The sample workspace `crmlist init` writes, its sample data loaded, the real command in a subprocess.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import outsider
import pytest
from outsider import crmlist, ok

AS_OF = "2026-11-01"
SAMPLES = ("customers", "products", "purchases", "suppressions", "responses")
BROKEN = "{{ customer.first_name }} {{ nonexistent.value }}\n"  # fails for every Czech customer's letter


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    ok("init", "shop", cwd=tmp_path)
    ws = tmp_path / "shop"
    for table in SAMPLES:
        ok("load", table, f"sample_data/{table}.csv", cwd=ws)
    return ws


def partial_run(ws: Path, fmt: str = "files") -> Path:
    """winback run with its Czech template broken: exit 3, the folder of a partial run."""
    czech = ws / "templates" / "winback.cs.txt.j2"
    fixed = czech.read_text(encoding="utf-8")
    czech.write_text(BROKEN, encoding="utf-8")
    done = crmlist("run", "winback", "--as-of", AS_OF, "--letters-format", fmt, "--json", cwd=ws)
    assert done.returncode == 3, done.stderr
    czech.write_text(fixed, encoding="utf-8")  # the fix a resume is for
    return Path(json.loads(done.stdout)["paths"]["winback"])


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def query(ws: Path, sql: str) -> list[tuple[object, ...]]:
    return outsider.query(ws / "crmlist.duckdb", sql)


def change_offers(ws: Path) -> None:
    """The rule file after the run: other offers, and a cell boundary that moves customers between cells."""
    rules = ws / "queries" / "winback.toml"
    text = rules.read_text(encoding="utf-8")
    changed = text.replace('"VIP20"', '"VIP99"').replace('"STD10"', '"STD99"')
    changed = changed.replace('where = "monetary >= 1000"', 'where = "monetary >= 500"')
    assert '"VIP99"' in changed and '"STD99"' in changed and "monetary >= 500" in changed
    rules.write_text(changed, encoding="utf-8")


def recorded_targets(folder: Path) -> list[tuple[str, str, str]]:
    return sorted((r["customer_id"], r["cell"], r["offer"]) for r in rows(folder / "targets.csv"))


def history_targets(ws: Path, run_id: str) -> list[tuple[object, ...]]:
    return query(
        ws,
        f"SELECT customer_id, cell, offer FROM contact_history WHERE run_id = '{run_id}' AND NOT is_control "
        "ORDER BY customer_id",
    )


@pytest.mark.parametrize("fmt", ["files", "jsonl"])
def test_a_resume_after_the_rule_file_changed_carries_the_recorded_offers(shop: Path, fmt: str) -> None:
    folder = partial_run(shop, fmt)
    run_id = folder.name
    targets = recorded_targets(folder)
    failed = {r["customer_id"] for r in rows(folder / "failed.csv")}
    assert len(targets) == 138 and len(failed) == 42
    targets_csv = (folder / "targets.csv").read_bytes()
    change_offers(shop)

    done = crmlist("letters", "winback", "--resume", run_id, cwd=shop)

    assert done.returncode == 0, done.stderr
    assert done.stderr == f"winback: run {run_id}: 138 targets, 15 control, 138 letters -> {folder}\n"
    assert (folder / "targets.csv").read_bytes() == targets_csv
    assert history_targets(shop, run_id) == targets  # every target, with the cell and offer recorded
    assert query(shop, "SELECT count(*) FROM contact_history WHERE offer LIKE '%99'") == [(0,)]
    offers = {customer: offer for customer, _, offer in targets}
    if fmt == "files":
        letters = {p.stem: p.read_text(encoding="utf-8") for p in (folder / "letters").iterdir()}
    else:
        lines = (folder / "letters.jsonl").read_text(encoding="utf-8").splitlines()
        letters = {doc["customer_id"]: doc["text"] for doc in map(json.loads, lines)}
        assert {doc["offer"] for doc in map(json.loads, lines)} == {"VIP20", "STD10"}
    assert sorted(letters) == sorted(offers)
    for customer, text in letters.items():
        assert offers[customer] in text, customer
        assert "VIP99" not in text and "STD99" not in text, customer
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert (manifest["status"], manifest["counts"]["letters"]) == ("complete", 138)
    assert not (folder / "failed.csv").exists()


def refused(ws: Path, folder: Path) -> str:
    """A resume that must be refused: exit 1, the run left as it was; its stderr."""
    before = (query(ws, "SELECT * FROM contact_history ORDER BY ALL"), query(ws, "SELECT * FROM runs"))
    files = sorted((p.relative_to(folder), p.read_bytes()) for p in folder.rglob("*") if p.is_file())
    done = crmlist("letters", "winback", "--resume", folder.name, cwd=ws)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert (query(ws, "SELECT * FROM contact_history ORDER BY ALL"), query(ws, "SELECT * FROM runs")) == before
    assert sorted((p.relative_to(folder), p.read_bytes()) for p in folder.rglob("*") if p.is_file()) == files
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # no temporary folder left
    return done.stderr


def test_a_resume_after_purchases_before_the_as_of_were_loaded_is_refused(shop: Path) -> None:
    folder = partial_run(shop)
    late = shop / "late.csv"
    late.write_text("order_id,customer_id,order_date,product_id,amount\nLATE-1,000002,2026-10-30,P-TV-32,10.00\n")
    ok("load", "purchases", "late.csv", cwd=shop)

    assert refused(shop, folder) == (
        f"crmlist: error: {folder.name}: cannot resume: since the run, purchases changed\n"
        "hint: a resume finishes a run on what it read; recompute it instead: "
        f"crmlist run winback --as-of {AS_OF} --rerun\n"
    )


def test_a_resume_after_the_views_changed_is_refused(shop: Path) -> None:
    folder = partial_run(shop)
    facts = shop / "queries" / "customer_facts.sql"
    facts.write_text(
        (Path(outsider.__file__).parents[1] / "crmlist" / "skeleton" / "queries" / "customer_facts.sql")
        .read_text(encoding="utf-8")
        .replace("AS frequency,", "AS frequency, 1 AS loyalty,", 1),
        encoding="utf-8",
    )

    assert refused(shop, folder) == (
        f"crmlist: error: {folder.name}: cannot resume: since the run, the views (queries/*.sql) changed\n"
        "hint: a resume finishes a run on what it read; recompute it instead: "
        f"crmlist run winback --as-of {AS_OF} --rerun\n"
    )


def test_a_resume_whose_targets_another_campaign_contacted_since_is_refused(shop: Path) -> None:
    folder = partial_run(shop)
    ok("run", "digital_tv", "--as-of", AS_OF, cwd=shop)  # the shared contact cap: 1 in 30 days
    failed = sorted(r["customer_id"] for r in rows(folder / "failed.csv"))
    ids = ", ".join(f"'{c}'" for c in failed)
    ((capped,),) = query(
        shop, f"SELECT count(*) FROM contact_history WHERE campaign = 'digital_tv' AND customer_id IN ({ids})"
    )
    assert capped == 4  # letters the resume would write to customers digital_tv has contacted since

    assert refused(shop, folder) == (
        f"crmlist: error: {folder.name}: cannot resume: {capped} of its 138 targets would no longer get "
        "the cell and offer targets.csv records: contacts recorded since the run count against them\n"
        "hint: a resume finishes a run on what it read; recompute it instead: "
        f"crmlist run winback --as-of {AS_OF} --rerun\n"
    )


def test_a_resume_with_nothing_changed_but_the_template_finishes_the_run(shop: Path) -> None:
    folder = partial_run(shop)
    targets = recorded_targets(folder)

    done = crmlist("letters", "winback", "--resume", folder.name, "--json", cwd=shop)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True
    assert history_targets(shop, folder.name) == targets
    assert len(list((folder / "letters").iterdir())) == 138
