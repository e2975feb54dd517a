"""Promise: `crmlist check` says what `crmlist run` would do, and a letter fails only for what a letter can do.

check reports every problem of every campaign, whatever sorts first; it accepts a list-only campaign
exactly when run does (one rule decides whether a campaign has letters); it refuses a template that
includes, extends or imports itself, as run does before any letter. A letter fails (failed.csv, exit 3)
for what its template and data can raise; anything else is a bug in crmlist and surfaces as one.
Driven as an outsider drives it: `crmlist init` into tmp_path, files written by the test, the installed
command in a subprocess; the last tests call the renderer, the one library function every letter goes
through, with a customer row holding a callable.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from outsider import crmlist, ok, query

AS_OF = "2026-11-01"
SAMPLES = ("customers", "products", "purchases", "suppressions")
UNKNOWN_COLUMN_HINT = 'hint: see the available columns with: crmlist sql "DESCRIBE customer_facts"'


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ok("init", "ws", cwd=tmp_path)
    return tmp_path / "ws"


@pytest.fixture
def shop(ws: Path) -> Path:
    """The sample workspace with its sample data loaded."""
    for table in SAMPLES:
        ok("load", table, f"sample_data/{table}.csv", "--quiet", cwd=ws)
    return ws


def write(ws: Path, relative: str, text: str) -> None:
    (ws / relative).write_text(textwrap.dedent(text), encoding="utf-8")


def list_only(ws: Path, name: str, extra: str = "") -> None:
    """A rule file naming no template, with no templates/NAME.*.j2: a list, no letters."""
    write(
        ws, f"queries/{name}.toml", f'description = "A list"\nchannel = "email"\n{extra}[audience]\nwhere = ["TRUE"]\n'
    )


def test_check_reports_the_problems_of_every_campaign_not_just_the_first(ws: Path) -> None:
    # aaa sorts first and is broken; zzz's problem only shows when its whole query is compiled
    write(ws, "queries/aaa_broken.toml", 'template = "winback"\n[audience]\nwhere = ["nosuchcol > 1"]\n')
    write(
        ws,
        "queries/zzz_order.toml",
        """\
        template = "winback"
        [audience]
        where = ["TRUE"]
        [[cells]]
        name = "first"
        where = "TRUE"
        order_by = "nosuch DESC"
        """,
    )
    done = crmlist("check", cwd=ws)
    assert done.returncode == 65, done.stderr
    assert done.stderr.splitlines() == [
        "crmlist: error: queries/aaa_broken.toml: audience.where[0]: unknown column 'nosuchcol'",
        UNKNOWN_COLUMN_HINT,
        "crmlist: error: queries/zzz_order.toml: cells[0].order_by: unknown column 'nosuch'",
        UNKNOWN_COLUMN_HINT,
    ]
    assert done.stdout == ""
    as_json = crmlist("check", "--json", cwd=ws)
    assert as_json.returncode == 65
    assert json.loads(as_json.stdout) == {
        "ok": False,
        "exit_code": 65,
        "error": "queries/aaa_broken.toml: audience.where[0]: unknown column 'nosuchcol'\n"
        "queries/zzz_order.toml: cells[0].order_by: unknown column 'nosuch'",
    }


def test_check_passes_a_list_only_campaign_that_run_runs(shop: Path) -> None:
    list_only(shop, "plain_list")
    done = ok("check", "plain_list", cwd=shop)
    assert (done.stdout, done.stderr) == ("", "ok: 1 campaign(s) checked: plain_list\n")
    ok("check", cwd=shop)  # with the sample campaigns too
    run = ok("run", "plain_list", "--out", "out", "--as-of", AS_OF, "--json", cwd=shop)
    doc = json.loads(run.stdout)
    counts = doc["counts"]["plain_list"]
    assert (doc["ok"], doc["status"], counts["letters"], counts["failed"]) == (True, {"plain_list": "complete"}, 0, 0)
    assert counts["targets"] > 0
    folder = Path(doc["paths"]["plain_list"])
    assert sorted(p.name for p in folder.iterdir()) == [
        "control.csv", "manifest.json", "rules.toml", "targets.csv", "waterfall.csv"
    ]  # fmt: skip


def test_check_and_run_agree_on_a_named_template_that_is_missing(shop: Path) -> None:
    list_only(shop, "named", 'template = "nosuch"\n')
    message = [
        "crmlist: error: templates/nosuch: no template of this name",
        "hint: create templates/nosuch.txt.j2 (or .md, .html, .eml)",
    ]
    checked = crmlist("check", "named", cwd=shop)
    assert (checked.returncode, checked.stderr.splitlines()) == (65, message)
    run = crmlist("run", "named", "--out", "out", "--as-of", AS_OF, cwd=shop)
    assert (run.returncode, run.stderr.splitlines()) == (1, message)
    assert query(shop / "crmlist.duckdb", "SELECT count(*) FROM contact_history") == [(0,)]
