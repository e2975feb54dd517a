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

import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest
from outsider import crmlist, ok, query

from crmlist.letters.job import LetterJob, RenderedLetter
from crmlist.letters.render import Renderer
from crmlist.workspace import open_workspace

AS_OF = "2026-11-01"
SAMPLES = ("customers", "products", "purchases", "suppressions")
UNKNOWN_COLUMN_HINT = 'hint: see the available columns with: crmlist sql "DESCRIBE customer_facts"'
LOOP_HINT = (
    "hint: a template cannot include, extend or import itself, directly or through others: "
    "remove that tag, or move the shared part into a template of its own"
)


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


def self_including(ws: Path) -> None:
    """`loop` includes itself; `ring` extends a layout that imports ring back; `computed` includes
    itself by a name it computes (no tag names it as text, so only rendering shows the loop)."""
    for name in ("loop", "ring", "computed"):
        write(ws, f"queries/{name}.toml", f'channel = "email"\ntemplate = "{name}"\n[audience]\nwhere = ["TRUE"]\n')
    write(ws, "templates/loop.txt.j2", "{{ customer|salutation }},\n\n{% include 'loop.txt.j2' %}\n")
    write(ws, "templates/ring.txt.j2", "{% extends 'layout.txt.j2' %}\n{% block body %}Hi{% endblock %}\n")
    write(ws, "templates/layout.txt.j2", "{% import 'ring.txt.j2' as again %}\n{% block body %}{% endblock %}\n")
    write(ws, "templates/computed.txt.j2", "Hi\n{% include 'computed' ~ '.txt.j2' %}\n")


def test_check_reports_a_template_that_includes_itself(ws: Path) -> None:
    self_including(ws)
    done = crmlist("check", "loop", "ring", "computed", cwd=ws)
    assert done.returncode == 65, done.stderr
    assert done.stderr.splitlines() == [
        "crmlist: error: templates/loop.txt.j2:3: includes itself",
        LOOP_HINT,
        "crmlist: error: templates/layout.txt.j2:1: imports ring.txt.j2, which leads back here: "
        "ring.txt.j2 -> layout.txt.j2 -> ring.txt.j2",
        LOOP_HINT,
        "crmlist: error: templates/computed.txt.j2:2: the sample letter recurses without end",
        "hint: a macro calling itself needs a condition that stops it; an include must not lead back to its template",
    ]


def test_run_refuses_a_self_including_template_before_any_letter(shop: Path) -> None:
    self_including(shop)
    done = crmlist("run", "loop", "--out", "out", "--as-of", AS_OF, cwd=shop)
    assert done.returncode == 65, done.stderr
    assert done.stderr.splitlines() == ["crmlist: error: templates/loop.txt.j2:3: includes itself", LOOP_HINT]
    assert query(shop / "crmlist.duckdb", "SELECT count(*) FROM contact_history") == [(0,)]
    assert query(shop / "crmlist.duckdb", "SELECT count(*) FROM runs") == [(0,)]
    assert [p.name for p in (shop / "out").rglob("*")] in ([], ["loop"])  # no run folder, finished or not


def _render_one(ws: Path, value: object) -> RenderedLetter:
    """The letter of one customer whose row holds `value`, a callable its template calls on line 2."""
    write(ws, "templates/probe.txt.j2", "Hello\n{{ customer.hook() }}\n")
    renderer = Renderer(open_workspace(ws), LetterJob("probe", dt.date(2026, 11, 1), jobs=1))
    renderer.prepare(["probe"])
    customer = {"customer_id": "C-1", "language": "en", "email": "c1@example.com", "hook": value}
    return renderer.render_one(customer, ("probe", "all", "HI", "email", "probe"), [])


def test_a_letter_fails_for_what_its_data_raises(ws: Path) -> None:
    def bad_value() -> str:
        return "{:d}".format("not a number")

    letter = _render_one(ws, bad_value)
    assert letter.text is None and letter.failure is not None
    failure = letter.failure
    assert (failure.customer_id, failure.template, failure.line, failure.error) == (
        "C-1",
        "probe.txt.j2",
        2,
        "ValueError: Unknown format code 'd' for object of type 'str'",
    )


def test_a_bug_in_crmlist_is_not_a_failed_letter(ws: Path) -> None:
    class Bug(RuntimeError):
        pass

    def bug() -> str:
        raise Bug("a bug, not the letter's fault")

    with pytest.raises(Bug, match="a bug, not the letter's fault"):
        _render_one(ws, bug)


# --- issue 17, item 2: a campaign's own [offers], checked like the rest of its rule file ---------------------


def check_with_offers(shop: Path, rules: str, offers: str) -> list[str]:
    """`crmlist check winback` with this [offers] table added to its rules: exit 65, stderr's lines."""
    write(shop, "queries/winback.toml", rules + offers)
    done = crmlist("check", "winback", cwd=shop)
    assert done.returncode == 65, done.stderr
    return done.stderr.splitlines()


def test_check_names_unknown_offers_keys_bad_values_and_unknown_categories_with_the_closest(shop: Path) -> None:
    rules = (shop / "queries" / "winback.toml").read_text(encoding="utf-8")
    offers = '[offers]\nrecomend = 2\ncategory_days = -1\nexclude_categories = ["Folders", "digital_tv"]\n'
    assert check_with_offers(shop, rules, offers) == [
        "crmlist: error: queries/winback.toml: offers.recomend: unknown key",
        "hint: did you mean `recommend`?",
        "crmlist: error: queries/winback.toml: offers.category_days: must be a whole number of days >= 0",
        "hint: e.g. category_days = 365",
    ]
    offers = '[offers]\nrecommend = 2\nexclude_categories = ["Folders", "tvs"]\n'
    assert check_with_offers(shop, rules, offers) == [
        "crmlist: error: queries/winback.toml: offers.exclude_categories: no product has category 'Folders'",
        "hint: did you mean 'folder'?",
        "crmlist: error: queries/winback.toml: offers.exclude_categories: no product has category 'tvs'",
        "hint: did you mean 'tv'?",
    ]
    assert crmlist("run", "winback", "--out", "out", "--as-of", AS_OF, cwd=shop).returncode == 0  # run ignores names


def test_a_campaigns_offers_override_crmlist_toml_key_by_key(shop: Path) -> None:
    """crmlist.toml recommends 3 and excludes nothing; the campaign's [offers] recommends 1 and
    excludes folders: its letters offer one product each, never a folder. Another campaign keeps 3."""
    write(shop, "templates/probe.txt.j2", "{% for r in recommendations %}{{ r.category }};{% endfor %}\n")
    rules = (shop / "queries" / "briefcase_crosssell.toml").read_text(encoding="utf-8")
    probe = rules.replace('template = "briefcase_crosssell"', 'template = "probe"')
    write(shop, "queries/one.toml", probe + '[offers]\nrecommend = 1\nexclude_categories = ["folder"]\n')
    write(shop, "queries/three.toml", probe)
    assert crmlist("check", "one", "three", cwd=shop).returncode == 0
    texts = {}
    for name in ("one", "three"):
        ok("letters", name, "--out", f"proofs/{name}", "--as-of", AS_OF, "--letters-format", "jsonl", cwd=shop)
        lines = (shop / "proofs" / name / "letters.jsonl").read_text(encoding="utf-8").splitlines()
        texts[name] = [json.loads(line)["text"].strip().split(";")[:-1] for line in lines]
    assert texts["one"] and all(len(t) <= 1 and "folder" not in t for t in texts["one"])
    assert max(map(len, texts["three"])) == 3 and any("folder" in t for t in texts["three"])


# --- issue 17, item 4: a missing value is never printed as "None" --------------------------------------------


def test_the_stock_winback_letters_of_cells_without_an_offer_name_no_code_and_no_none(shop: Path) -> None:
    rules = (shop / "queries" / "winback.toml").read_text(encoding="utf-8")
    no_offers = "\n".join(line for line in rules.splitlines() if not line.startswith("offer ="))
    assert no_offers.count("[[cells]]") == 2 and "offer =" not in no_offers
    write(shop, "queries/winback.toml", no_offers + "\n")
    ok("letters", "winback", "--out", "proofs", "--as-of", AS_OF, "--letters-format", "jsonl", cwd=shop)
    letters = [json.loads(line) for line in (shop / "proofs" / "letters.jsonl").read_text().splitlines()]
    assert {r["language"] for r in letters} >= {"pl", "cs", "ru", "en"} and {r["cell"] for r in letters} == {
        "vip",
        "standard",
    }
    for letter in letters:
        words = letter["text"].lower().split()
        assert "none" not in words and not {"code", "kod", "kód", "код"} & set(words), letter["text"]
        assert "\n\n\n" not in letter["text"]


def test_a_template_printing_a_missing_value_fails_that_letter_naming_the_line(shop: Path) -> None:
    rules = (shop / "queries" / "winback.toml").read_text(encoding="utf-8")
    write(shop, "queries/winback.toml", rules.replace('offer = "STD10"', "", 1))
    write(shop, "templates/winback.txt.j2", "Hello,\nyour code is {{ offer }}.\n")
    for language in ("pl", "cs", "ru"):
        (shop / "templates" / f"winback.{language}.txt.j2").unlink()
    done = crmlist("run", "winback", "--out", "out", "--as-of", AS_OF, cwd=shop)
    assert done.returncode == 3, done.stderr
    folder = next((shop / "out" / "winback").iterdir())
    failed = (folder / "failed.csv").read_text(encoding="utf-8").splitlines()
    assert failed[0] == "customer_id,template,line,error"
    reason = (
        "UndefinedError: a value printed is missing (NULL): print it inside {% if value %}...{% endif %}, "
        "or give it a default with |default('...', true)"
    )
    assert failed[1:] and all(row.endswith(f',winback.txt.j2,2,"{reason}"') for row in failed[1:]), failed[:3]
    sql = "SELECT count(*) FROM contact_history WHERE cell = 'standard' AND control_group IS NULL"
    assert query(shop / "crmlist.duckdb", sql) == [(0,)]  # none of the failed letters is recorded as sent
