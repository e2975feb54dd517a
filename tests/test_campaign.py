"""The campaign engine on small hand-built data: every waterfall step against hand-computed answers."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Callable

import duckdb
import pytest

from crmlist import store
from crmlist.campaign.evaluate import Selection, evaluate, list_query
from crmlist.campaign.model import load_campaign
from crmlist.errors import BadInputError, MultipleErrors
from crmlist.workspace import Workspace

AS_OF = dt.date(2026, 11, 1)


def customers(con: duckdb.DuckDBPyConnection, rows: list[tuple[object, ...]]) -> None:
    """(customer_id, email, email_opt_in) rows; email_key as ingest would normalise it."""
    con.executemany(
        "INSERT INTO customers (customer_id, email, email_opt_in, email_key) "
        "VALUES (?, ?, ?, lower(trim(nfc_normalize(?))))",
        [(cid, email, opt, email) for cid, email, opt in rows],
    )


def purchases(con: duckdb.DuckDBPyConnection, rows: list[tuple[object, ...]]) -> None:
    """(order_id, customer_id, order_date, amount, category) rows."""
    con.executemany(
        "INSERT INTO purchases (order_id, customer_id, order_date, amount, category) VALUES (?, ?, ?, ?, ?)", rows
    )


def run(con: duckdb.DuckDBPyConnection, ws: Workspace, name: str = "c", as_of: dt.date = AS_OF) -> Selection:
    return evaluate(con, ws, load_campaign(ws, name), as_of)


def targets(con: duckdb.DuckDBPyConnection, selection: Selection, control: bool = False) -> list[tuple[str, str]]:
    sql, params = list_query(selection, control)
    return [(r[0], r[2]) for r in con.execute(sql, params).fetchall()]


@pytest.fixture
def con(tmp_path):  # type: ignore[no-untyped-def]
    with store.writer(tmp_path / "crm.duckdb", "test") as connection:
        yield connection


def test_consent_blank_and_missing_contact_are_removed(make_ws: Callable[..., Workspace], con) -> None:  # type: ignore[no-untyped-def]
    ws = make_ws(queries={"c.toml": 'channel = "email"\n'})
    customers(
        con,
        [("1", "a@x.pl", True), ("2", "b@x.pl", None), ("3", "c@x.pl", False), ("4", "  ", True), ("5", None, True)],
    )
    selection = run(con, ws)
    assert targets(con, selection) == [("1", "all")]
    assert [(s.step, s.remaining, s.removed) for s in selection.waterfall] == [
        ("all customers", 5, 0),
        ("consent and contact (email)", 1, 4),
        ("suppressions (email)", 1, 0),
        ("dedupe (email)", 1, 0),
        ("cells", 1, 0),
        ("control", 1, 0),
    ]


def test_where_null_removes_and_exclude_null_keeps(make_ws: Callable[..., Workspace], con) -> None:  # type: ignore[no-untyped-def]
    ws = make_ws(
        queries={
            "c.toml": """
        [audience]
        where = ["frequency >= 0", "recency_days < 100 OR frequency = 0"]
        exclude = ["recency_days > 10"]
    """
        }
    )
    customers(con, [("1", "a@x", True), ("2", "b@x", True), ("3", "c@x", True)])
    purchases(con, [("o1", "1", "2026-10-30", 5, "tv"), ("o2", "2", "2026-09-01", 5, "tv")])
    selection = run(con, ws)
    # 1: recency 2 -> kept; 2: recency 61 -> excluded; 3: no purchases, recency NULL: exclude NULL keeps.
    assert targets(con, selection) == [("1", "all"), ("3", "all")]
    assert [s.removed for s in selection.waterfall][3:6] == [0, 0, 1]


def test_bought_window_excludes_the_boundary_day(make_ws: Callable[..., Workspace], con) -> None:  # type: ignore[no-untyped-def]
    ws = make_ws(
        queries={
            "c.toml": """
        [audience]
        where = ["bought(category => 'tv', within_days => 30)"]
    """
        }
    )
    customers(con, [("1", "a@x", True), ("2", "b@x", True), ("3", "c@x", True), ("4", "d@x", True)])
    purchases(
        con,
        [
            ("o1", "1", "2026-10-02", 5, "tv"),  # 30 days back: outside
            ("o2", "2", "2026-10-03", 5, "tv"),  # 29 days back: inside
            ("o3", "3", "2026-11-02", 5, "tv"),  # after as-of: unseen
            ("o4", "4", "2026-10-20", 5, "audio"),
        ],
    )
    assert targets(con, run(con, ws)) == [("2", "all")]


def test_bought_category_falls_back_to_the_product(make_ws: Callable[..., Workspace], con) -> None:  # type: ignore[no-untyped-def]
    ws = make_ws(queries={"c.toml": "[audience]\nwhere = [\"bought(category => 'briefcase')\"]\n"})
    customers(con, [("1", "a@x", True), ("2", "b@x", True)])
    con.execute("INSERT INTO products (product_id, category) VALUES ('P1', 'briefcase')")
    con.execute(
        "INSERT INTO purchases (order_id, customer_id, order_date, product_id, amount) "
        "VALUES ('o1', '2', '2026-01-01', 'P1', 10)"
    )
    assert targets(con, run(con, ws)) == [("2", "all")]


def test_first_match_cells_limit_and_ties(make_ws: Callable[..., Workspace], con) -> None:  # type: ignore[no-untyped-def]
    ws = make_ws(
        queries={
            "c.toml": """
        [[cells]]
        name = "vip"
        where = "monetary >= 100"
        offer = "VIP"
        limit = 2
        order_by = "monetary DESC"

        [[cells]]
        name = "rest"
        where = "TRUE"
        offer = "STD"
    """
        }
    )
    customers(con, [(str(i), f"{i}@x", True) for i in range(1, 6)])
    purchases(
        con,
        [
            ("a", "1", "2026-01-01", 100, None),
            ("b", "2", "2026-01-01", 300, None),
            ("c", "3", "2026-01-01", 100, None),
            ("d", "4", "2026-01-01", 50, None),
        ],
    )
    selection = run(con, ws)
    # vip: 2 (300), then 1 and 3 tie at 100: customer_id breaks the tie, 3 is cut and dropped, not passed on.
    assert targets(con, selection) == [("2", "vip"), ("1", "vip"), ("4", "rest"), ("5", "rest")]
    assert [(c.name, c.targets) for c in selection.cells] == [("vip", 2), ("rest", 2)]
    assert selection.waterfall[-2].step == "cells" and selection.waterfall[-2].removed == 1


def test_order_by_puts_nulls_last_in_both_directions(make_ws: Callable[..., Workspace], con) -> None:  # type: ignore[no-untyped-def]
    rule = '[[cells]]\nname = "x"\nwhere = "TRUE"\nlimit = 2\norder_by = "recency_days {}"\n'
    ws = make_ws(queries={"asc.toml": rule.format("ASC"), "desc.toml": rule.format("DESC")})
    customers(con, [("1", "1@x", True), ("2", "2@x", True), ("3", "3@x", True)])
    purchases(con, [("a", "2", "2026-10-01", 1, None), ("b", "3", "2026-10-21", 1, None)])
    assert targets(con, run(con, ws, "asc")) == [("3", "x"), ("2", "x")]
    assert targets(con, run(con, ws, "desc")) == [("2", "x"), ("3", "x")]


def _bucket(salt: str, customer_id: str) -> int:
    return int(hashlib.sha256(f"{salt}:{customer_id}".encode()).hexdigest()[:16], 16) % 10000


def test_control_split_is_the_documented_hash_and_stable(make_ws: Callable[..., Workspace], tmp_path) -> None:  # type: ignore[no-untyped-def]
    ws = make_ws(
        queries={
            "c.toml": '[control]\npercent = 12.5\nsalt = "s1"\n',
            "d.toml": '[control]\npercent = 12.5\nsalt = "s2"\n',
        }
    )
    ids = [f"{i:05d}" for i in range(400)]
    expected = sorted(i for i in ids if _bucket("s1", i) < 1250)
    results = []
    for seed in (1, 2):
        shuffled = ids[:]
        random.Random(seed).shuffle(shuffled)
        with store.writer(tmp_path / f"crm{seed}.duckdb", "test") as con:
            customers(con, [(i, f"{i}@x", True) for i in shuffled])
            selection = run(con, ws)
            results.append(sorted(c for c, _ in targets(con, selection, control=True)))
            other = sorted(c for c, _ in targets(con, run(con, ws, "d"), control=True))
    assert results[0] == results[1] == expected
    assert other == sorted(i for i in ids if _bucket("s2", i) < 1250) != expected
    assert 20 < len(expected) < 80


def test_contact_cap_counts_other_campaigns_in_window(make_ws: Callable[..., Workspace], con) -> None:  # type: ignore[no-untyped-def]
    ws = make_ws(queries={"c.toml": "[contact_cap]\nmax = 2\ndays = 30\n"})
    customers(con, [("1", "a@x", True), ("2", "b@x", True), ("3", "c@x", True)])
    history = [
        ("r1", "other", "1", False, "2026-10-22"),
        ("r2", "more", "1", False, "2026-10-02"),  # day 10 + day 30
        ("r1", "other", "2", False, "2026-10-22"),
        ("r3", "more", "2", False, "2026-10-03"),  # day 10 + day 29
        ("r1", "other", "3", True, "2026-10-22"),
        ("r3", "more", "3", False, "2026-10-30"),  # control does not count
    ]
    con.executemany(
        "INSERT INTO contact_history (run_id, campaign, customer_id, is_control, as_of) VALUES (?, ?, ?, ?, ?)",
        history,
    )
    selection = run(con, ws)
    assert targets(con, selection) == [("1", "all"), ("3", "all")]
    assert selection.waterfall[3].step == "contact cap (2 in 30 days)" and selection.waterfall[3].removed == 1


def test_dedupe_keeps_highest_monetary_then_smallest_id(make_ws: Callable[..., Workspace], con) -> None:  # type: ignore[no-untyped-def]
    ws = make_ws(queries={"c.toml": ""})
    customers(
        con,
        [
            ("1", "Ann@X.pl", True),
            ("2", " ann@x.pl ", True),
            ("3", "ANN@x.PL", True),
            ("4", "bob@x", True),
            ("5", "BOB@x", True),
        ],
    )
    purchases(con, [("a", "3", "2026-01-01", 10, None)])
    selection = run(con, ws)
    assert targets(con, selection) == [("3", "all"), ("4", "all")]
    assert selection.waterfall[3].step == "dedupe (email)" and selection.waterfall[3].removed == 3


def test_suppression_channels(make_ws: Callable[..., Workspace], con) -> None:  # type: ignore[no-untyped-def]
    ws = make_ws(queries={"c.toml": ""})
    customers(con, [("1", "a@x", True), ("2", "b@x", True), ("3", "c@x", True), ("4", "d@x", True)])
    con.executemany(
        "INSERT INTO suppressions (customer_id, email_key, channel) VALUES (?, ?, ?)",
        [(None, "a@x", "all"), ("2", None, "email"), ("3", None, "mail"), (None, "zz@x", "all")],
    )
    selection = run(con, ws)
    assert targets(con, selection) == [("3", "all"), ("4", "all")]


def test_unknown_column_names_the_closest(make_ws: Callable[..., Workspace], con) -> None:  # type: ignore[no-untyped-def]
    ws = make_ws(queries={"c.toml": '[audience]\nwhere = ["frequncy >= 2"]\n'})
    with pytest.raises(BadInputError) as err:
        run(con, ws)
    assert err.value.message == "queries/c.toml: audience.where[0]: unknown column 'frequncy'"
    assert err.value.hint == "did you mean `frequency` or `frequency_365`?"


def test_rule_file_key_and_type_errors_are_all_reported(make_ws: Callable[..., Workspace]) -> None:
    ws = make_ws(
        queries={
            "c.toml": """
        channel = "emial"
        [audiance]
        where = "TRUE"
        [[cells]]
        name = "a"
        limit = "ten"
    """
        }
    )
    with pytest.raises(MultipleErrors) as err:
        load_campaign(ws, "c")
    messages = [(e.message, e.hint) for e in err.value.errors]
    assert messages == [
        ("queries/c.toml: audiance: unknown key", "did you mean `audience`?"),
        ("queries/c.toml: channel: unknown channel 'emial'", "did you mean 'email'?"),
        ("queries/c.toml: cells[0].limit: expected an integer, got a string", "write it as an integer"),
        ("queries/c.toml: cells[0].where: missing", 'every cell needs where (where = "TRUE" for all)'),
    ]


def test_statements_and_subqueries_are_refused(make_ws: Callable[..., Workspace], con) -> None:  # type: ignore[no-untyped-def]
    ws = make_ws(
        queries={
            "a.toml": '[audience]\nwhere = ["customer_id IN (SELECT customer_id FROM loads)"]\n',
            "b.toml": '[audience]\nwhere = ["TRUE; DROP TABLE customers"]\n',
            "h.toml": '[audience]\nwhere = ["hash(customer_id) > 5"]\n',
        }
    )
    with pytest.raises(BadInputError, match="only an expression is allowed"):
        run(con, ws, "a")
    with pytest.raises(BadInputError, match="more than one statement"):
        run(con, ws, "b")
    with pytest.raises(BadInputError, match=r"function hash\(\) is not allowed"):
        run(con, ws, "h")


def test_in_list_reads_ids_as_text(make_ws: Callable[..., Workspace], con, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ws = make_ws(queries={"c.toml": "[audience]\nwhere = [\"in_list('seeds.csv')\"]\n"})
    (tmp_path / "seeds.csv").write_text("customer_id,note\n007,x\n9,y\n", encoding="utf-8")
    customers(con, [("007", "a@x", True), ("7", "b@x", True), ("9", "c@x", True)])
    assert targets(con, run(con, ws)) == [("007", "all"), ("9", "all")]


def test_in_list_missing_file_names_it(make_ws: Callable[..., Workspace], con) -> None:  # type: ignore[no-untyped-def]
    ws = make_ws(queries={"c.toml": "[audience]\nwhere = [\"in_list('nope.csv')\"]\n"})
    with pytest.raises(BadInputError) as err:
        run(con, ws)
    assert err.value.message == "queries/c.toml: audience.where[0]: in_list() cannot read nope.csv"


def test_not_contacted_and_min_amount(make_ws: Callable[..., Workspace], con) -> None:  # type: ignore[no-untyped-def]
    ws = make_ws(
        queries={
            "c.toml": """
        [audience]
        where = ["not_contacted(days => 30)", "bought(category => 'tv', min_amount => 100)"]
    """
        }
    )
    customers(con, [("1", "a@x", True), ("2", "b@x", True), ("3", "c@x", True)])
    purchases(
        con,
        [
            ("a", "1", "2026-01-01", 60, "tv"),
            ("b", "1", "2026-02-01", 40, "tv"),
            ("c", "2", "2026-01-01", 99.99, "tv"),
            ("d", "3", "2026-01-01", 500, "tv"),
        ],
    )
    con.execute(
        "INSERT INTO contact_history (run_id, campaign, customer_id, is_control, as_of) "
        "VALUES ('r', 'x', '3', FALSE, '2026-10-15')"
    )
    assert targets(con, run(con, ws)) == [("1", "all")]


def test_global_control_removes_the_same_share_from_every_campaign(make_ws: Callable[..., Workspace], con) -> None:  # type: ignore[no-untyped-def]
    ws = make_ws(config='[control]\nglobal_percent = 20\nglobal_salt = "g"\n', queries={"c.toml": ""})
    ids = [f"{i:04d}" for i in range(200)]
    customers(con, [(i, f"{i}@x", True) for i in ids])
    selection = run(con, ws)
    held = {i for i in ids if _bucket("g", i) < 2000}
    assert sorted(c for c, _ in targets(con, selection)) == sorted(set(ids) - held)
    assert selection.waterfall[1].step == "global control" and selection.waterfall[1].removed == len(held)


def test_views_are_joined_on_customer_id(make_ws: Callable[..., Workspace], con) -> None:  # type: ignore[no-untyped-def]
    ws = make_ws(
        queries={
            "rfm.sql": "-- description: a score\nSELECT customer_id, frequency * 10 AS score FROM customer_facts\n",
            "c.toml": 'columns = ["score"]\n[audience]\nwhere = ["score >= 10"]\n',
        }
    )
    customers(con, [("1", "a@x", True), ("2", "b@x", True)])
    purchases(con, [("a", "1", "2026-01-01", 5, None)])
    selection = run(con, ws)
    sql, params = list_query(selection)
    assert con.execute(sql, params).fetchall() == [("1", "c", "all", None, "email", "a@x", None, None, None, 10)]


def test_contact_facts_count_non_control_contacts_up_to_as_of(make_ws: Callable[..., Workspace], con) -> None:  # type: ignore[no-untyped-def]
    ws = make_ws(queries={"c.toml": '[audience]\nwhere = ["contacts_90 >= 2 OR last_contacted_at IS NULL"]\n'})
    customers(con, [("1", "a@x", True), ("2", "b@x", True), ("3", "c@x", True)])
    con.executemany(
        "INSERT INTO contact_history (run_id, campaign, customer_id, is_control, as_of) VALUES (?, ?, ?, ?, ?)",
        [
            ("r1", "x", "1", False, "2026-10-01"),
            ("r2", "y", "1", False, "2026-08-04"),  # 89 days back: inside
            ("r1", "x", "2", False, "2026-10-01"),
            ("r3", "y", "2", False, "2026-08-03"),  # 90 days back: outside
            ("r1", "x", "3", True, "2026-10-01"),
            ("r4", "z", "3", False, "2026-11-02"),
        ],  # control; after as-of
    )
    assert targets(con, run(con, ws)) == [("1", "all"), ("3", "all")]
    facts = con.execute("SELECT customer_id, last_contacted_at, contacts_90 FROM crm_facts ORDER BY 1").fetchall()
    assert facts == [("1", dt.date(2026, 10, 1), 2), ("2", dt.date(2026, 10, 1), 1), ("3", None, 0)]


def test_responded_counts_own_and_blank_campaign_responses(make_ws: Callable[..., Workspace], con) -> None:  # type: ignore[no-untyped-def]
    ws = make_ws(queries={"c.toml": "[audience]\nwhere = [\"responded(campaign => 'wb', days => 60)\"]\n"})
    customers(con, [("1", "a@x", True), ("2", "b@x", True), ("3", "c@x", True), ("4", "d@x", True)])
    con.executemany(
        "INSERT INTO contact_history (run_id, campaign, customer_id, is_control, as_of) VALUES (?, ?, ?, ?, ?)",
        [("r", "wb", "2", False, "2026-10-01"), ("r", "wb", "3", True, "2026-10-01")],
    )
    con.executemany(
        "INSERT INTO responses (customer_id, responded_at, campaign) VALUES (?, ?, ?)",
        [
            ("1", "2026-10-10", "wb"),
            ("2", "2026-10-10", None),
            ("3", "2026-10-10", ""),
            ("4", "2026-10-10", "other"),
            ("1", "2026-08-01", "wb"),
        ],
    )
    # 1: its own response; 2: blank campaign, a target of wb; 3: blank but a control; 4: another campaign's.
    assert targets(con, run(con, ws)) == [("1", "all"), ("2", "all")]


def _facts_data(con: duckdb.DuckDBPyConnection) -> None:
    customers(con, [("1", "a@x", True), ("2", "b@x", True), ("3", "c@x", None)])
    purchases(
        con,
        [
            ("o1", "1", "2026-10-30", 10, "tv"),
            ("o1", "1", "2026-10-30", 2.5, "audio"),
            ("o2", "1", "2025-01-01", 4, "tv"),
            ("o3", "2", "2026-11-02", 9, "tv"),  # after as-of: not counted
        ],
    )
    con.execute(
        "INSERT INTO contact_history (run_id, campaign, customer_id, is_control, as_of) "
        "VALUES ('r', 'x', '2', FALSE, '2026-10-01')"
    )


def test_facts_query_computes_only_the_facts_read(make_ws: Callable[..., Workspace], con) -> None:  # type: ignore[no-untyped-def]
    from crmlist.campaign.views import facts_query, prepare_session

    ws = make_ws()
    _facts_data(con)
    views = prepare_session(con, ws, AS_OF)
    every = store.table_columns(con, "customer_facts")
    for columns in (every, ["customer_id", "frequency"], ["customer_id", "categories", "contacts_90", "age"]):
        plain = con.execute(f"SELECT {', '.join(columns)} FROM customer_facts ORDER BY customer_id").fetchall()
        pruned = con.execute(f"SELECT * FROM ({facts_query(con, views, columns)}) ORDER BY customer_id").fetchall()
        assert pruned == plain
    sql = facts_query(con, views, ["customer_id", "frequency"])
    # frequency_365's count(DISTINCT) and the contact history are gone; frequency's stays.
    assert sql.count("COUNT(DISTINCT") == 1 and "contact_history" not in sql
    assert con.execute(f"SELECT * FROM ({sql}) ORDER BY 1").fetchall() == [("1", 2), ("2", 0), ("3", 0)]


def test_facts_query_keeps_a_view_sqlglot_cannot_qualify(make_ws: Callable[..., Workspace], con) -> None:  # type: ignore[no-untyped-def]
    from crmlist.campaign.views import facts_query, prepare_session

    ws = make_ws(queries={"customer_facts.sql": "SELECT customer_id, COLUMNS('^email$') FROM customers\n"})
    customers(con, [("1", "a@x", True)])
    views = prepare_session(con, ws, AS_OF)
    sql = facts_query(con, views, ["customer_id", "email"])
    assert sql == 'SELECT "customer_id", "email" FROM customer_facts'
    assert con.execute(sql).fetchall() == [("1", "a@x")]
