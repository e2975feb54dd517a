"""Stages hand each other values: a compiled query, a Selection naming its relations, the letter targets'
table; what a stage creates in the session it drops, and the settings it changes come back."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest
from sqlglot import exp

from crmlist import store
from crmlist.campaign.compiler import compile_campaign
from crmlist.campaign.evaluate import build_catalog, evaluate, letter_targets, list_query, scoped
from crmlist.campaign.model import load_campaign
from crmlist.campaign.runner import run_campaign
from crmlist.campaign.views import prepare_session
from crmlist.letters import LetterJob, render_letters
from crmlist.workspace import Workspace

AS_OF = dt.date(2026, 11, 1)
RULES = """
    channel = "email"
    [audience]
    where = ["frequency >= 1"]
    [[cells]]
    name = "big"
    where = "monetary >= 100"
    offer = "B1"
    [[cells]]
    name = "rest"
    where = "TRUE"
    offer = "R1"
    [control]
    percent = 20
"""
TEMPLATE = "{{ customer.customer_id }} {{ offer }}{% for r in recommendations %} {{ r.product_id }}{% endfor %}\n"
TEMP_RELATIONS = "SELECT table_name FROM duckdb_tables() WHERE temporary UNION ALL " + (
    "SELECT view_name FROM duckdb_views() WHERE temporary AND NOT internal ORDER BY 1"
)


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with store.writer(tmp_path / "crm.duckdb", "test") as connection:
        connection.executemany(
            "INSERT INTO customers (customer_id, email, email_opt_in, email_key) VALUES (?, ?, TRUE, ?)",
            [(f"C{i}", f"c{i}@x.pl", f"c{i}@x.pl") for i in range(1, 9)],
        )
        connection.executemany(
            "INSERT INTO purchases (order_id, customer_id, order_date, product_id, amount) VALUES (?, ?, ?, ?, ?)",
            [(f"O{i}", f"C{i}", dt.date(2026, 1, i), "P1" if i % 2 else "P2", 40 * i) for i in range(1, 9)],
        )
        connection.execute("INSERT INTO products (product_id, name, complements) VALUES ('P1', 'One', ['P2'])")
        connection.execute("INSERT INTO products (product_id, name, complements) VALUES ('P2', 'Two', ['P1'])")
        yield connection


@pytest.fixture
def ws(make_ws: Callable[..., Workspace]) -> Workspace:
    return make_ws(queries={"c.toml": RULES}, templates={"c.txt.j2": TEMPLATE})


def temp_relations(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [row[0] for row in con.execute(TEMP_RELATIONS).fetchall()]


def test_the_compiled_query_is_a_select_over_the_facts_relation_it_names(
    con: duckdb.DuckDBPyConnection, ws: Workspace
) -> None:
    views = prepare_session(con, ws, AS_OF)
    catalog = build_catalog(con, [v.name for v in views])
    compiled = compile_campaign(load_campaign(ws, "c"), catalog, ws, facts="customer_facts")
    assert isinstance(compiled.query, exp.Query) and compiled.facts == "customer_facts"
    assert compiled.sql == compiled.query.sql(dialect="duckdb")
    assert not compiled.query.find(exp.Create)
    assert {t.name for t in compiled.query.find_all(exp.Table)} >= {"customer_facts", "suppressions"}
    # Over the facts view itself it gives the rows evaluate() keeps of its own materialised facts.
    rows = sorted(con.execute(compiled.sql, compiled.params).fetchall())
    selection = evaluate(con, ws, load_campaign(ws, "c"), AS_OF)
    kept = con.execute(f"SELECT customer_id, stage, cell, rank FROM {selection.relations.result}").fetchall()
    assert rows == sorted(kept)


def test_an_evaluation_scoped_to_a_block_leaves_nothing_in_the_session(
    con: duckdb.DuckDBPyConnection, ws: Workspace
) -> None:
    with scoped(con, evaluate(con, ws, load_campaign(ws, "c"), AS_OF)) as selection:
        relations = selection.relations
        assert set(temp_relations(con)) >= {relations.facts, relations.result, relations.cells, relations.selected}
        assert selection.rows == f'"{relations.selected}"'
        sql, params = list_query(selection)
        listed = [(r[0], r[2], r[3]) for r in con.execute(sql, params).fetchall()]
        assert listed == [("C3", "big", "B1"), ("C4", "big", "B1"), ("C6", "big", "B1"), ("C7", "big", "B1"),
                          ("C1", "rest", "R1")]  # fmt: skip
        with letter_targets(con, selection) as targets:
            assert con.execute(f"SELECT count(*) FROM {targets}").fetchall() == [(len(listed),)]
        assert targets not in temp_relations(con)
    assert temp_relations(con) == ["customer_facts", "run_params"]  # the session's views and parameters


def test_a_view_read_once_is_dropped_as_a_view(con: duckdb.DuckDBPyConnection, ws: Workspace) -> None:
    with scoped(con, evaluate(con, ws, load_campaign(ws, "c"), AS_OF, columns=(), once=True)) as selection:
        assert selection.relations.selected_is_view
        assert con.execute(f"SELECT count(*) FROM {selection.rows}").fetchall() == [(8,)]
    assert temp_relations(con) == ["customer_facts", "run_params"]


def test_a_run_leaves_only_the_session_views_and_its_records(
    con: duckdb.DuckDBPyConnection, ws: Workspace, tmp_path: Path
) -> None:
    con.execute("SET threads = 3")
    result = run_campaign(con, ws, "c", AS_OF, out_root=tmp_path / "out", jobs=1)
    assert result.status == "complete"
    assert temp_relations(con) == ["customer_facts", "run_params"]
    assert con.execute(
        "SELECT current_setting('threads'), current_setting('enable_progress_bar_print')"
    ).fetchall() == [(3, False)]
    history = con.execute("SELECT customer_id, offer FROM contact_history WHERE NOT is_control ORDER BY 1").fetchall()
    letters = sorted(p.read_text(encoding="utf-8") for p in (result.folder / "letters").iterdir())
    assert letters == sorted(f"{cid} {offer} {'P2' if int(cid[1:]) % 2 else 'P1'}" for cid, offer in history)
    assert json.loads((result.folder / "manifest.json").read_text())["status"] == "complete"


def test_letters_put_duckdb_settings_back_and_drop_the_lift(
    con: duckdb.DuckDBPyConnection, ws: Workspace, tmp_path: Path
) -> None:
    con.execute("SET threads = 3")
    con.execute("SET enable_progress_bar_print = true")
    selection = evaluate(con, ws, load_campaign(ws, "c"), AS_OF)
    with letter_targets(con, selection) as targets:
        result = render_letters(con, ws, LetterJob("c", AS_OF, "jsonl", jobs=1), tmp_path / "out", targets)
        assert len(result.written) == selection.targets
        with pytest.raises(duckdb.Error):  # a failed run puts them back too
            render_letters(con, ws, LetterJob("c", AS_OF, "jsonl", jobs=1), tmp_path / "out2", "no_such_table")
    assert con.execute(
        "SELECT current_setting('threads'), current_setting('enable_progress_bar_print')"
    ).fetchall() == [(3, True)]
    assert not [t for t in temp_relations(con) if t.startswith("letter_")]


def test_a_setting_comes_back_when_the_block_fails() -> None:
    con = duckdb.connect()
    con.execute("SET threads = 2")
    with pytest.raises(RuntimeError), store.setting(con, "threads", 1):
        assert con.execute("SELECT current_setting('threads')").fetchall() == [(1,)]
        raise RuntimeError
    assert con.execute("SELECT current_setting('threads')").fetchall() == [(2,)]
