"""Exact data at the door: no line breaks in one-line fields, no silent rounding, plausible dates, bounded width.

Each test loads files the test writes into a workspace made by `crmlist init`, through the real command.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from outsider import crmlist, query


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    assert crmlist("init", str(root), cwd=tmp_path).returncode == 0
    return root


def rows(ws: Path, sql: str) -> list[tuple[object, ...]]:
    return query(ws / "crmlist.duckdb", sql)


def test_line_breaks_and_nul_in_one_line_fields_are_rejected_per_row(ws: Path) -> None:
    (ws / "c.csv").write_bytes(
        b"customer_id,first_name,email,email_opt_in\n"
        b'E1,"Eve\r\nBcc: attacker@evil.example",eve@example.org,true\n'
        b'E2,Ann,"ann@example.org\r\nBcc: attacker@evil.example",true\n'
        b"E4,Bob,bob@example.org,true\n"
    )
    strict = crmlist("load", "customers", "c.csv", cwd=ws)
    assert strict.returncode == 65
    assert strict.stderr.splitlines()[0] == (
        "crmlist: error: c.csv:2: first_name: the value holds a line break or NUL character; "
        "1 more bad row in this file"
    )
    assert "attacker" not in strict.stderr and "Eve" not in strict.stderr
    assert rows(ws, "SELECT count(*) FROM customers") in ([], [(0,)])
    skip = crmlist("load", "customers", "c.csv", "--on-error", "skip", cwd=ws)
    assert skip.returncode == 0, skip.stderr
    assert rows(ws, "SELECT customer_id FROM customers") == [("E4",)]
    assert rows(ws, "SELECT line, column_name FROM load_rejects ORDER BY line") == [
        (2, "first_name"),
        (4, "email"),
    ]
    (ws / "n.csv").write_bytes(b"customer_id,first_name\nE5,Nu\x00l\n")  # a NUL byte refuses the whole file
    nul = crmlist("load", "customers", "n.csv", cwd=ws)
    assert (nul.returncode, nul.stderr.splitlines()[0]) == (65, "crmlist: error: n.csv:2: NUL byte in the text")


@pytest.mark.parametrize(
    ("name", "text", "shown"),
    [
        ("p.csv", "order_id,customer_id,order_date,amount\nO1,C1,2026-01-01,10.123456789\n", "'10.123456789'"),
        ("p.jsonl", '{"order_id":"O1","customer_id":"C1","order_date":"2026-01-01","amount":10.005}\n', "'10.005'"),
        ("q.csv", "order_id,customer_id,order_date,quantity,unit_price\nO1,C1,2026-01-01,1.0005,2\n", "'1.0005'"),
    ],
)
def test_more_decimals_than_a_column_keeps_is_a_reject_never_a_rounding(
    ws: Path, name: str, text: str, shown: str
) -> None:
    (ws / name).write_text(text, encoding="utf-8")
    done = crmlist("load", "purchases", name, cwd=ws)
    assert done.returncode == 65, done.stderr
    column = "quantity" if name == "q.csv" else "amount"
    scale = 3 if name == "q.csv" else 2
    assert done.stderr == (
        f"crmlist: error: {name}:{1 if name.endswith('jsonl') else 2}: {column}: {shown} has more decimals than "
        f"the column keeps ({scale})\n"
        f"hint: round the values in the file to {scale} decimals: crmlist never rounds them silently; or pass "
        "--on-error skip to load the good rows and keep the bad ones in load_rejects\n"
    )
    assert rows(ws, "SELECT count(*) FROM purchases") in ([], [(0,)])


def test_exact_values_with_trailing_zeros_and_the_documented_rounding_still_load(ws: Path) -> None:
    (ws / "p.csv").write_text(
        "order_id,customer_id,order_date,amount,quantity,unit_price\n"
        "O1,C1,2026-01-01,10.100,,\n"
        "O2,C1,2026-01-02,,3,0.3333\n"  # amount = quantity x unit_price, rounded half away from zero (README)
        "O3,C1,2026-01-03,1e2,,\n",
        encoding="utf-8",
    )
    done = crmlist("load", "purchases", "p.csv", "--json", cwd=ws)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"] == {"loaded": 3, "rejected": 0}
    assert rows(ws, "SELECT order_id, CAST(amount AS VARCHAR) FROM purchases ORDER BY 1") == [
        ("O1", "10.10"),
        ("O2", "1.00"),
        ("O3", "100.00"),
    ]


def test_implausible_dates_are_rejects_and_the_range_is_configurable(ws: Path) -> None:
    (ws / "c.csv").write_text(
        "customer_id,birth_date,signup_date\n"
        "D1,-0001-01-01,2020-01-01\n"
        "D2,9999-12-31,2020-01-01\n"
        "D3,1980-02-02,0001-01-01\n"
        "D4,2999-01-01,2020-01-01\n"
        "D5,1899-12-31,2020-01-01\n"
        "D6,1950-06-06,2020-06-06\n",
        encoding="utf-8",
    )
    done = crmlist("load", "customers", "c.csv", "--on-error", "skip", cwd=ws)
    assert done.returncode == 0, done.stderr
    assert rows(ws, "SELECT customer_id FROM customers") == [("D6",)]
    reasons = rows(ws, "SELECT line, reason FROM load_rejects ORDER BY line")
    assert reasons == [
        (2, "birth_date: the date is outside the plausible dates ([dates] earliest to the day of the load)"),
        (3, "birth_date: the date is outside the plausible dates ([dates] earliest to the day of the load)"),
        (4, "signup_date: '0001-01-01' is outside the plausible dates ([dates] earliest to [dates] latest)"),
        (5, "birth_date: the date is outside the plausible dates ([dates] earliest to the day of the load)"),
        (6, "birth_date: the date is outside the plausible dates ([dates] earliest to the day of the load)"),
    ]
    with (ws / "crmlist.toml").open("a", encoding="utf-8") as fh:
        fh.write('\n[dates]\nearliest = "1800-01-01"\n')
    (ws / "old.csv").write_text("customer_id,birth_date\nD5,1899-12-31\n", encoding="utf-8")
    assert crmlist("load", "customers", "old.csv", cwd=ws).returncode == 0
    with (ws / "crmlist.toml").open("a", encoding="utf-8") as fh:
        fh.write('latest = "someday"\n')
    bad = crmlist("load", "customers", "old.csv", cwd=ws)
    assert bad.returncode == 65
    assert bad.stderr.splitlines()[0] == "crmlist: error: crmlist.toml: dates.latest: 'someday' is not a date"


def test_a_file_wider_than_the_limit_is_refused_at_once(ws: Path) -> None:
    header = "customer_id," + ",".join(f"x{i}" for i in range(10_000))
    (ws / "wide.csv").write_text(header + "\nW1," + ",".join("v" for _ in range(10_000)) + "\n", encoding="utf-8")
    done = crmlist("load", "customers", "wide.csv", cwd=ws)
    assert done.returncode == 65
    assert done.stderr == (
        "crmlist: error: wide.csv: 10,001 columns, more than crmlist loads from one file (1,000)\n"
        "hint: keep the columns the campaigns need (at most 1,000), or split the file by columns and load the "
        "parts one after the other\n"
    )


def test_a_file_of_a_thousand_columns_loads_every_column(ws: Path) -> None:
    header = "customer_id," + ",".join(f"x{i}" for i in range(999))
    (ws / "wide.csv").write_text(header + "\nW1," + ",".join(str(i) for i in range(999)) + "\n", encoding="utf-8")
    done = crmlist("load", "customers", "wide.csv", cwd=ws)
    assert done.returncode == 0, done.stderr
    assert rows(ws, "SELECT x0, x998 FROM customers") == [("0", "998")]
    again = crmlist("load", "customers", "wide.csv", cwd=ws)  # the table has rows now: columns are kept
    assert again.returncode == 0, again.stderr
    assert rows(ws, "SELECT count(*), min(x500) FROM customers") == [(1, "500")]
