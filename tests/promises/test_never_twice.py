"""Promise: a job that runs twice contacts nobody twice, whatever was loaded in between.

Driven as cron drives it: `crmlist init` into tmp_path, files written by the test, the real command in
a subprocess with no terminal, the database read back read-only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import outsider
import pytest
from outsider import crmlist, ok

AS_OF = "2026-11-01"
CUSTOMERS = """\
customer_id,first_name,last_name,email,email_opt_in,language,signup_date
C01,Anna,Kowalska,anna@example.pl,true,pl,2020-01-01
C02,Jan,Nowak,jan@example.pl,true,pl,2020-01-01
C03,Petr,Novak,petr@example.cz,true,cs,2021-05-05
C04,Olga,Petrova,olga@example.ru,true,ru,2022-02-02
C05,John,Smith,john@example.com,true,en,2023-03-03
C06,Mary,Jones,mary@example.com,true,en,2026-10-30
C07,Late,Comer,late@example.com,true,en,2026-11-05
C08,Eva,Svoboda,eva@example.cz,true,cs,
"""
PURCHASES = """\
order_id,customer_id,order_date,product_id,category,amount
O1,C01,2026-03-01,P1,tv,1200.00
O2,C01,2026-04-01,P2,audio,100.00
O3,C02,2026-02-01,P2,audio,50.00
O4,C02,2026-03-01,P2,audio,50.00
O5,C03,2026-01-01,P2,audio,30.00
O6,C03,2026-02-01,P2,audio,30.00
O7,C04,2026-04-10,P2,audio,20.00
O8,C04,2026-04-20,P2,audio,20.00
O9,C05,2026-03-03,P1,tv,900.00
O10,C05,2026-03-04,P2,audio,10.00
O11,C06,2026-10-31,P2,audio,10.00
O12,C06,2026-10-31,P2,audio,10.00
O13,C07,2026-03-01,P2,audio,10.00
O14,C07,2026-03-02,P2,audio,10.00
O15,C08,2026-03-05,P2,audio,40.00
O16,C08,2026-03-06,P2,audio,40.00
"""
# Purchases a later nightly file brings: after the as-of date, so the wave of AS_OF reads none of them.
LATER_PURCHASES = """\
order_id,customer_id,order_date,product_id,category,amount
O20,C01,2026-11-03,P2,audio,15.00
O21,C09,2026-11-04,P2,audio,15.00
"""
PRODUCTS = "product_id,name,category,price\nP1,TV,tv,1000.00\nP2,Speaker,audio,50.00\n"
SUPPRESSIONS = "email,channel,reason\nnobody@example.org,all,request\n"
RESPONSES = "customer_id,responded_at,campaign,revenue\nC01,2026-11-10,lapsed,10.00\n"
LAPSED = """\
description = "Repeat buyers"
channel = "email"
[audience]
where = ["frequency >= 2"]
[contact_cap]
max = 1
days = 30
[[cells]]
name = "all"
where = "TRUE"
offer = "L10"
[control]
percent = 25
salt = "lapsed"
"""
TV = """\
description = "TV buyers"
channel = "email"
[audience]
where = ["bought(category => 'tv')"]
[contact_cap]
max = 1
days = 30
[[cells]]
name = "all"
where = "TRUE"
offer = "TV5"
"""


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    ws = tmp_path / "shop"
    ok("init", str(ws), cwd=tmp_path)
    for path in (ws / "queries").glob("*.toml"):
        path.unlink()
    for path in (ws / "templates").iterdir():
        path.unlink()
    (ws / "queries" / "lapsed.toml").write_text(LAPSED, encoding="utf-8")
    (ws / "queries" / "tv.toml").write_text(TV, encoding="utf-8")
    (ws / "templates" / "lapsed.txt.j2").write_text("{{ customer.first_name }} {{ offer }}\n", encoding="utf-8")
    files = {
        "customers": CUSTOMERS,
        "purchases": PURCHASES,
        "products": PRODUCTS,
        "suppressions": SUPPRESSIONS,
        "responses": RESPONSES,
        "later": LATER_PURCHASES,
    }
    for name, text in files.items():
        (ws / "in").mkdir(exist_ok=True)
        (ws / "in" / f"{name}.csv").write_text(text, encoding="utf-8")
    return ws


NIGHTLY = """\
#!/bin/sh
set -e
crm() {{ "{python}" -m crmlist "$@"; }}
crm load customers in/customers.csv --quiet
crm load products in/products.csv --quiet
crm load purchases in/purchases.csv --quiet
crm load suppressions in/suppressions.csv --quiet
crm run {campaigns} --out out --as-of {as_of} --quiet
"""


def nightly(ws: Path, campaigns: str = "lapsed") -> subprocess.CompletedProcess[str]:
    script = ws / "nightly.sh"
    script.write_text(NIGHTLY.format(python=sys.executable, campaigns=campaigns, as_of=AS_OF), encoding="utf-8")
    return subprocess.run(
        ["sh", str(script)], cwd=ws, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300
    )


def query(ws: Path, sql: str) -> list[tuple[object, ...]]:
    return outsider.query(ws / "crmlist.duckdb", sql)


def contacted_twice(ws: Path) -> list[tuple[object, ...]]:
    return query(
        ws,
        "SELECT campaign, as_of, customer_id, count(*) FROM contact_history "
        "GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL",
    )


# Hand-computed: frequency >= 2 as of 2026-11-01 and signed up by then (C07 signed up on 2026-11-05);
# control = first 16 hex digits of sha256("lapsed:" || id) mod 10000 < 2500.
LAPSED_AUDIENCE = ["C01", "C02", "C03", "C04", "C05", "C06", "C08"]


def _bucket(salt: str, customer_id: str) -> int:
    return int(hashlib.sha256(f"{salt}:{customer_id}".encode()).hexdigest()[:16], 16) % 10000


LAPSED_CONTROL = sorted(c for c in LAPSED_AUDIENCE if _bucket("lapsed", c) < 2500)
LAPSED_TARGETS = sorted(c for c in LAPSED_AUDIENCE if c not in LAPSED_CONTROL)


def test_the_nightly_script_twice_contacts_nobody_twice(shop: Path) -> None:
    first = nightly(shop)
    assert first.returncode == 0, first.stderr
    assert first.stdout == first.stderr == ""
    second = nightly(shop)
    assert second.returncode == 0, second.stderr
    assert second.stdout == second.stderr == ""
    assert query(shop, "SELECT count(*) FROM runs WHERE source = 'crmlist'") == [(1,)]
    assert contacted_twice(shop) == []
    rows = query(shop, "SELECT customer_id, is_control FROM contact_history ORDER BY customer_id")
    assert rows == sorted([(c, False) for c in LAPSED_TARGETS] + [(c, True) for c in LAPSED_CONTROL])
    # An export for the recorded wave gives the wave's list: its own contacts do not count in the cap.
    export = ok("export", "lapsed", "-o", "-", "--as-of", AS_OF, cwd=shop)
    assert sorted(line.split(",")[0] for line in export.stdout.splitlines()[1:]) == LAPSED_TARGETS


def test_loads_in_between_that_change_nothing_it_reads_keep_the_run(shop: Path) -> None:
    assert nightly(shop).returncode == 0
    (run_id,) = query(shop, "SELECT run_id FROM runs")[0]
    ok("load", "responses", "in/responses.csv", cwd=shop)  # the campaign reads no responses
    ok("load", "purchases", "in/later.csv", cwd=shop)  # purchases after the as-of date
    ok("load", "customers", "in/customers.csv", cwd=shop)  # the same rows upserted again
    again = ok("run", "lapsed", "--out", "out", "--as-of", AS_OF, cwd=shop)
    assert f"lapsed: run {run_id} is already recorded" in again.stderr
    assert query(shop, "SELECT count(*) FROM runs WHERE source = 'crmlist'") == [(1,)]
    assert contacted_twice(shop) == []


def test_two_campaigns_sharing_a_cap_run_twice_are_both_recorded(shop: Path) -> None:
    assert nightly(shop, "tv lapsed").returncode == 0
    before = query(shop, "SELECT * FROM contact_history ORDER BY ALL")
    second = nightly(shop, "tv lapsed")
    assert second.returncode == 0, second.stderr
    assert query(shop, "SELECT * FROM contact_history ORDER BY ALL") == before
    assert query(shop, "SELECT campaign, count(*) FROM runs GROUP BY ALL ORDER BY ALL") == [("lapsed", 1), ("tv", 1)]
    # Nobody is a target of both the same day: the shared cap (1 in 30 days) holds.
    both = query(
        shop,
        "SELECT customer_id FROM contact_history WHERE NOT is_control GROUP BY customer_id HAVING count(*) > 1",
    )
    assert both == []


def test_a_changed_input_is_refused_naming_the_run_and_what_changed(shop: Path) -> None:
    assert nightly(shop).returncode == 0
    (run_id,) = query(shop, "SELECT run_id FROM runs")[0]
    history = query(shop, "SELECT * FROM contact_history ORDER BY ALL")
    (shop / "in" / "customers.csv").write_text(CUSTOMERS + "C10,New,Person,new@example.com,true,en,2020-01-01\n")
    ok("load", "customers", "in/customers.csv", cwd=shop)
    ok("load", "purchases", "in/later.csv", cwd=shop)
    refused = crmlist("run", "lapsed", "--out", "out", "--as-of", AS_OF, cwd=shop)
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        f"crmlist: error: queries/lapsed.toml: lapsed as of {AS_OF} already ran as {run_id}; "
        "since then customers changed",
        f"hint: running it again would contact its customers twice: pass --rerun to replace run {run_id} "
        "(its contacts and folder), or --wave 2 to contact the new audience as another wave",
    ]
    assert query(shop, "SELECT * FROM contact_history ORDER BY ALL") == history
    rule = shop / "queries" / "lapsed.toml"
    rule.write_text(LAPSED.replace('offer = "L10"', 'offer = "L15"'), encoding="utf-8")
    refused = crmlist("run", "lapsed", "--out", "out", "--as-of", AS_OF, "--json", cwd=shop)
    assert refused.returncode == 1
    assert "since then the rule file changed, customers changed" in json.loads(refused.stdout)["error"]


def test_rerun_replaces_the_waves_run_contacts_and_folder(shop: Path) -> None:
    assert nightly(shop).returncode == 0
    (old_id, old_dir) = query(shop, "SELECT run_id, out_dir FROM runs")[0]
    (shop / "in" / "customers.csv").write_text(
        CUSTOMERS.replace("C02,Jan,Nowak,jan@example.pl,true", "C02,Jan,Nowak,jan@example.pl,false")
    )
    ok("load", "customers", "in/customers.csv", cwd=shop)
    done = ok("run", "lapsed", "--out", "out", "--as-of", AS_OF, "--rerun", "--json", cwd=shop)
    new_id = json.loads(done.stdout)["run_id"]
    assert new_id != old_id
    assert query(shop, "SELECT run_id FROM runs") == [(new_id,)]
    assert not Path(str(old_dir)).exists()
    assert sorted(p.name for p in (shop / "out" / "lapsed").iterdir()) == [new_id]
    audience = [c for c in LAPSED_AUDIENCE if c != "C02"]  # C02 withdrew his consent
    rows = query(shop, "SELECT customer_id, is_control, run_id FROM contact_history ORDER BY customer_id")
    assert rows == sorted((c, c in LAPSED_CONTROL, new_id) for c in audience)
    assert contacted_twice(shop) == []


def test_an_explicit_second_wave_is_a_run_of_its_own(shop: Path) -> None:
    assert nightly(shop).returncode == 0
    (shop / "queries" / "lapsed.toml").write_text(LAPSED.replace("max = 1", "max = 2"), encoding="utf-8")
    done = ok("run", "lapsed", "--out", "out", "--as-of", AS_OF, "--wave", "2", "--json", cwd=shop)
    run_id = json.loads(done.stdout)["run_id"]
    assert run_id.startswith(f"lapsed-{AS_OF}-w2-")
    assert query(shop, "SELECT run_id, wave FROM runs ORDER BY wave")[1] == (run_id, 2)
    again = ok("run", "lapsed", "--out", "out", "--as-of", AS_OF, "--wave", "2", cwd=shop)
    assert f"run {run_id} is already recorded" in again.stderr
    wave_rows = query(shop, f"SELECT customer_id FROM contact_history WHERE run_id = '{run_id}' ORDER BY 1")
    assert wave_rows == [(c,) for c in LAPSED_AUDIENCE]
    # Each customer once per wave: twice for the campaign and date, once in each of its two runs.
    per_run = query(shop, "SELECT run_id, customer_id FROM contact_history GROUP BY ALL HAVING count(*) > 1")
    assert per_run == []
    assert contacted_twice(shop) == [("lapsed", dt.date(2026, 11, 1), c, 2) for c in LAPSED_AUDIENCE]


def test_preview_says_what_run_would_do_against_the_same_wave(shop: Path) -> None:
    for table in ("customers", "products", "purchases", "suppressions"):
        ok("load", table, f"in/{table}.csv", cwd=shop)
    before = json.loads(ok("preview", "lapsed", "--as-of", AS_OF, "--json", cwd=shop).stdout)
    assert before["plan"] is None and before["run"]["action"] == "new"
    assert nightly(shop).returncode == 0
    (run_id,) = query(shop, "SELECT run_id FROM runs")[0]
    assert before["run"]["run_id"] == run_id
    same = json.loads(ok("preview", "lapsed", "--as-of", AS_OF, "--json", cwd=shop).stdout)
    assert same["run"] == {"action": "reuse", "run_id": run_id, "recorded": run_id, "changes": []}
    assert (same["plan"]["run_id"], same["plan"]["entering"], same["plan"]["leaving"]) == (run_id, 0, 0)
    assert same["counts"]["targets"] == len(LAPSED_TARGETS)
    text = ok("preview", "lapsed", "--as-of", AS_OF, cwd=shop).stdout
    assert f"against run {run_id}: 0 customers enter, 0 leave" in text
    assert f"run would report the recorded run {run_id}: nothing it reads has changed" in text
    ok("load", "purchases", "in/later.csv", cwd=shop)
    rule = shop / "queries" / "lapsed.toml"
    rule.write_text(LAPSED.replace('"frequency >= 2"', '"frequency >= 2", "monetary >= 60"'), encoding="utf-8")
    changed = json.loads(ok("preview", "lapsed", "--as-of", AS_OF, "--json", cwd=shop).stdout)
    assert changed["run"]["action"] == "refuse" and changed["run"]["changes"] == ["the rule file changed"]
    # monetary >= 60: C01 1300, C02 100, C03 60, C05 910, C08 80 stay; C04 (40) and C06 (20) leave.
    left = [c for c in ("C04", "C06") if c in LAPSED_TARGETS]
    assert (changed["plan"]["entering"], changed["plan"]["leaving"]) == (0, len(left))


def test_a_backfill_sees_only_what_existed_then(shop: Path) -> None:
    ok("load", "customers", "in/customers.csv", cwd=shop)
    ok("load", "purchases", "in/purchases.csv", cwd=shop)
    ok("load", "purchases", "in/later.csv", cwd=shop)
    # As of 2026-03-02: signed up by then (C06 2026-10-30 and C07 2026-11-05 had not), two orders by then:
    # C01 (03-01 only: 1), C02 (02-01, 03-01: 2), C03 (01-01, 02-01: 2), C04 (none), C05 (none), C08 (none).
    done = ok("export", "lapsed", "-o", "-", "--as-of", "2026-03-02", "--control", cwd=shop)
    ids = sorted(line.split(",")[0] for line in done.stdout.splitlines()[1:])
    targets = ok("export", "lapsed", "-o", "-", "--as-of", "2026-03-02", cwd=shop).stdout.splitlines()[1:]
    assert sorted(ids + [t.split(",")[0] for t in targets]) == ["C02", "C03"]
    preview = json.loads(ok("preview", "lapsed", "--as-of", "2026-03-02", "--json", cwd=shop).stdout)
    assert preview["counts"]["waterfall"][0] == ["all customers", 6, 0]  # C01-C05 and C08 (no signup date)


def test_load_contacts_replace_twice_says_nothing_changed(shop: Path) -> None:
    contacts = "run_id,campaign,customer_id,is_control,as_of\next-1,postcard,C01,false,2026-10-01\n"
    (shop / "in" / "contacts.csv").write_text(contacts, encoding="utf-8")
    first = ok("load", "contacts", "in/contacts.csv", "--replace", cwd=shop)
    assert "1 new run recorded from loaded contacts" in first.stderr
    second = ok("load", "contacts", "in/contacts.csv", "--replace", cwd=shop)
    assert "new run" not in second.stderr
    assert "contacts: the files hold exactly the rows the table had; nothing changed" in second.stderr
    assert query(shop, "SELECT run_id, campaign FROM runs") == [("ext-1", "postcard")]
    (shop / "in" / "contacts.csv").write_text(contacts.replace("ext-1", "ext-2"), encoding="utf-8")
    third = ok("load", "contacts", "in/contacts.csv", "--replace", cwd=shop)
    assert "1 new run recorded from loaded contacts" in third.stderr
    assert "1 loaded run no longer in the files: removed" in third.stderr
    assert query(shop, "SELECT run_id FROM runs") == [("ext-2",)]


GLOBAL = """
[control]
global_percent = 30
global_salt = "2026"
"""


def test_global_control_members_are_recorded_with_their_group(shop: Path) -> None:
    with (shop / "crmlist.toml").open("a", encoding="utf-8") as fh:
        fh.write(textwrap.dedent(GLOBAL))
    assert nightly(shop).returncode == 0
    held = sorted(c for c in LAPSED_AUDIENCE if _bucket("2026", c) < 3000)
    assert held, "the test needs at least one global control member in the audience"
    rest = [c for c in LAPSED_AUDIENCE if c not in held]
    rows = query(
        shop,
        "SELECT customer_id, is_control, control_group FROM contact_history ORDER BY customer_id",
    )
    expected = [(c, True, "global") for c in held]
    expected += [(c, True, "campaign") if c in LAPSED_CONTROL else (c, False, None) for c in rest]
    assert rows == sorted(expected)
    folder = next(p for p in (shop / "out" / "lapsed").iterdir())
    listed = (folder / "targets.csv").read_text().splitlines()[1:] + (folder / "control.csv").read_text().splitlines()[
        1:
    ]
    assert sorted(line.split(",")[0] for line in listed) == sorted(rest)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"]["global_control"] == len(held)


def test_report_global_measures_everyone_contacted_against_the_global_control(shop: Path) -> None:
    with (shop / "crmlist.toml").open("a", encoding="utf-8") as fh:
        fh.write(textwrap.dedent(GLOBAL))
    assert nightly(shop).returncode == 0
    ok("load", "purchases", "in/later.csv", cwd=shop)  # C01 buys on 2026-11-03: a response in the window
    held = sorted(c for c in LAPSED_AUDIENCE if _bucket("2026", c) < 3000)
    targets = [c for c in LAPSED_TARGETS if c not in held]
    document = json.loads(ok("report", "--global", "--from", AS_OF, "--to", AS_OF, "--json", cwd=shop).stdout)
    overall = next(row for row in document["rows"] if row["scope"] == "overall")
    assert (overall["n_targets"], overall["n_control"]) == (len(targets), len(held))
    assert (overall["responders_t"], overall["responders_c"]) == (int("C01" in targets), int("C01" in held))
    # The campaign's own report leaves the global members out of its control group.
    own = json.loads(ok("report", "lapsed", "--json", cwd=shop).stdout)
    mine = next(row for row in own["rows"] if row["scope"] == "overall")
    assert mine["n_control"] == len([c for c in LAPSED_CONTROL if c not in held])
    empty = crmlist("report", "--global", "--from", "2027-01-01", cwd=shop)
    assert empty.returncode == 1
    assert "no global control members recorded as of 2027-01-01 or later" in empty.stderr
    assert crmlist("report", "lapsed", "--global", cwd=shop).returncode == 2


SPARK_CONFIG = """
[engine]
master = "local[1]"
lake = "lake"
[engine.conf]
"spark.sql.shuffle.partitions" = "2"
"spark.ui.enabled" = "false"
"""


@pytest.mark.spark
def test_an_engine_switch_does_not_run_a_recorded_wave_again(shop: Path) -> None:
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java")
    with (shop / "crmlist.toml").open("a", encoding="utf-8") as fh:
        fh.write(SPARK_CONFIG)
    assert nightly(shop).returncode == 0
    (run_id,) = query(shop, "SELECT run_id FROM runs")[0]
    ok("export-parquet", "lake", cwd=shop)
    refused = crmlist("run", "lapsed", "--out", "out", "--as-of", AS_OF, "--engine", "spark", cwd=shop)
    assert refused.returncode == 1, refused.stderr
    assert (
        f"lapsed as of {AS_OF} already ran as {run_id}; since then the engine changed (duckdb then, spark now)"
        in refused.stderr
    )
    assert query(shop, "SELECT count(*) FROM runs") == [(1,)]
    assert contacted_twice(shop) == []


@pytest.mark.parametrize("point", ["run:after-manifest", "run:after-commit"])
def test_a_rerun_killed_while_replacing_a_run_leaves_exactly_one_recorded_folder(shop: Path, point: str) -> None:
    assert nightly(shop).returncode == 0
    (old_id,) = query(shop, "SELECT run_id FROM runs")[0]
    changed = CUSTOMERS.replace("C02,Jan,Nowak,jan@example.pl,true", "C02,Jan,Nowak,jan@example.pl,false")
    (shop / "in" / "customers.csv").write_text(changed, encoding="utf-8")
    ok("load", "customers", "in/customers.csv", cwd=shop)
    proc = outsider.start_paused(point, "run", "lapsed", "--out", "out", "--as-of", AS_OF, "--rerun", cwd=shop)
    proc.kill()
    proc.communicate(timeout=60)
    ok("load", "products", "in/products.csv", cwd=shop)  # the next writer recovers
    (recorded,) = query(shop, "SELECT run_id FROM runs")[0]
    assert (recorded == old_id) == (point == "run:after-manifest")  # killed before or after the commit
    assert sorted(p.name for p in (shop / "out" / "lapsed").iterdir()) == [recorded]
    assert json.loads((shop / "out" / "lapsed" / recorded / "manifest.json").read_text())["run_id"] == recorded
    assert query(shop, "SELECT DISTINCT run_id FROM contact_history") == [(recorded,)]


@pytest.mark.spark
def test_spark_records_the_same_targets_controls_and_global_members_as_duckdb(shop: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java")
    with (shop / "crmlist.toml").open("a", encoding="utf-8") as fh:
        fh.write(textwrap.dedent(GLOBAL) + SPARK_CONFIG)
    for table in ("customers", "products", "purchases", "suppressions"):
        ok("load", table, f"in/{table}.csv", cwd=shop)
    ok("export-parquet", "lake", cwd=shop)
    twin = tmp_path / "twin"
    shutil.copytree(shop, twin)
    ok("run", "lapsed", "--out", "out", "--as-of", AS_OF, cwd=shop)
    ok("run", "lapsed", "--out", "out", "--as-of", AS_OF, "--engine", "spark", cwd=twin)
    rows = "SELECT customer_id, cell, offer, is_control, control_group FROM contact_history ORDER BY ALL"
    assert query(twin, rows) == query(shop, rows)
    assert ("global",) in query(shop, "SELECT DISTINCT control_group FROM contact_history WHERE is_control")
