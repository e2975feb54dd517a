"""crmlist.ingest: load_files against a real DuckDB file, with inline inputs."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import itertools
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import xlsxwriter

from crmlist import store
from crmlist.errors import BadInputError, CrmlistError, MissingInputError, UsageError
from crmlist.ingest import LoadOptions, LoadResult, keys, load_files
from crmlist.workspace import open_workspace

SKIP_HINT = "or pass --on-error skip to load the good rows and keep the bad ones in load_rejects"


class Env:
    """A workspace in tmp_path (the current folder), its database, and helpers to write and load files."""

    def __init__(self, root: Path, config: str = "") -> None:
        self.root = root
        (root / "crmlist.toml").write_text(textwrap.dedent(config), encoding="utf-8")
        self.ws = open_workspace(root)
        self.db = root / "crm.duckdb"
        with store.writer(self.db, "test"):
            pass  # the schema, so that tables can be compared before the first load

    def file(self, name: str, text: str, encoding: str = "utf-8") -> str:
        (self.root / name).write_bytes(textwrap.dedent(text).encode(encoding))
        return name

    def load(self, table: str, *files: str, stdin: Any = None, **options: Any) -> LoadResult:
        with store.writer(self.db, "load") as con:
            return load_files(con, self.ws, table, list(files), LoadOptions(**options), stdin)

    def fails(self, table: str, *files: str, error: type[CrmlistError] = BadInputError, **options: Any) -> CrmlistError:
        with pytest.raises(error) as caught:
            self.load(table, *files, **options)
        return caught.value

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.db), read_only=True) as con:
            return con.execute(sql).fetchall()

    def snapshot(self) -> list[list[tuple[Any, ...]]]:
        """Every table's rows and columns, to show that a failed load changed nothing."""
        tables = ["customers", "purchases", "suppressions", "contact_history", "runs", "loads", "load_rejects"]
        shot = [self.rows(f"SELECT * FROM {t} ORDER BY ALL") for t in tables]
        return [*shot, self.rows("SELECT table_name, column_name FROM information_schema.columns ORDER BY ALL")]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    monkeypatch.chdir(tmp_path)
    return Env(tmp_path, 'timezone = "Europe/Warsaw"\nphone_region = "PL"\n')


CUSTOMERS = """\
    customer_id,first_name,email,phone,street,postal_code,city,gender,country,language,email_opt_in,loyalty
    007,Anna, Anna.Nowak@Example.PL ,601 234 567,"Długa  5","00-950 ",WARSZAWA,f,pl,PL,tak,gold
    008,Jan,jan@x.pl,+48 (601) 234-568,,,,M,CZ,cs,no,
    009,Ola,,0048 601 234 569,,,,x,,,1,silver
    """


def test_customers_load_typed_values_keys_and_extra_columns(env: Env) -> None:
    result = env.load("customers", env.file("customers.csv", CUSTOMERS))
    assert [(f.file, f.rows_loaded, f.rows_rejected, f.skipped) for f in result.files] == [
        ("customers.csv", 3, 0, False)
    ]
    assert env.rows(
        "SELECT customer_id, email, gender, country, language, email_opt_in, email_key, phone_key, address_key,"
        " loyalty FROM customers ORDER BY customer_id"
    ) == [
        ("007", "Anna.Nowak@Example.PL", "F", "PL", "pl", True, "anna.nowak@example.pl", "48601234567",
         "długa 5|00-950|warszawa", "gold"),
        ("008", "jan@x.pl", "M", "CZ", "cs", False, "jan@x.pl", "48601234568", None, None),
        ("009", None, "X", None, None, True, None, "48601234569", None, "silver"),
    ]  # fmt: skip
    assert env.rows("SELECT data_type FROM information_schema.columns WHERE column_name = 'loyalty'") == [("VARCHAR",)]


def test_customers_upsert_replaces_whole_rows_across_loads(env: Env) -> None:
    env.load("customers", env.file("a.csv", "customer_id,first_name,city\n1,Ann,Kraków\n2,Bob,Gdańsk\n"))
    env.load("customers", env.file("b.csv", "customer_id,first_name\n2,Robert\n3,Cy\n"))
    assert env.rows("SELECT customer_id, first_name, city FROM customers ORDER BY 1") == [
        ("1", "Ann", "Kraków"),
        ("2", "Robert", None),
        ("3", "Cy", None),
    ]


def test_products_upsert_and_complement_lists(env: Env) -> None:
    env.load("products", env.file("p.csv", "product_id,name,price,complements\nP1,Case,99.90,P2| P3\nP2,Folder,9,\n"))
    env.load("products", env.file("q.json", '[{"product_id": "P2", "price": 9.5, "complements": ["P1", "P3"]}]'))
    assert env.rows("SELECT product_id, name, price, complements FROM products ORDER BY 1") == [
        ("P1", "Case", Decimal("99.90"), ["P2", "P3"]),
        ("P2", None, Decimal("9.50"), ["P1", "P3"]),
    ]


PURCHASES = """\
    order_id,customer_id,order_date,amount
    A1,007,2024-01-05,12.50
    A2,008,2024-01-06T23:30:00Z,0.10
    """


def test_purchases_append_skip_same_file_force_and_replace(env: Env) -> None:
    env.load("purchases", env.file("p.csv", PURCHASES))
    again = env.load("purchases", "p.csv")
    assert again.files[0].skipped is True
    assert again.notices[0].startswith("p.csv: already loaded (sha256 ")
    assert again.notices[0].endswith("); skipped. Pass --force to load it again")
    assert env.rows("SELECT order_id, order_date, amount FROM purchases ORDER BY 1") == [
        ("A1", dt.date(2024, 1, 5), Decimal("12.50")),
        ("A2", dt.date(2024, 1, 7), Decimal("0.10")),  # 23:30 UTC is past midnight in Warsaw
    ]
    env.load("purchases", "p.csv", force=True)
    assert env.rows("SELECT count(*), sum(amount) FROM purchases") == [(4, Decimal("25.20"))]
    assert env.rows("SELECT file, rows_loaded FROM loads ORDER BY loaded_at") == [
        ("p.csv", 2),
        ("p.csv", 0),
        ("p.csv", 2),
    ]
    env.load("purchases", env.file("new.csv", "customer_id,order_date,amount\n1,2024-02-01,5\n"), replace=True)
    assert env.rows("SELECT customer_id, amount FROM purchases") == [("1", Decimal("5.00"))]
    assert env.rows("SELECT file, rows_loaded, rows_rejected FROM loads WHERE table_name = 'purchases'") == [
        ("new.csv", 1, 0)
    ]


def test_purchases_amount_from_quantity_and_unit_price_and_generated_order_ids(env: Env) -> None:
    text = """\
        customer_id,order_date,quantity,unit_price,amount
        1,2024-01-01,3,3.335,
        2,2024-01-01,,-0.125,
        3,2024-01-01,2,1,7
        """
    result = env.load("purchases", env.file("p.csv", text))
    prefix = result.files[0].sha256[:16]
    assert env.rows("SELECT order_id, customer_id, quantity, amount FROM purchases ORDER BY 2") == [
        (f"{prefix}-1", "1", Decimal("3.000"), Decimal("10.01")),  # 10.005 rounds half away from zero
        (f"{prefix}-2", "2", Decimal("1.000"), Decimal("-0.13")),
        (f"{prefix}-3", "3", Decimal("2.000"), Decimal("7.00")),  # a given amount wins
    ]


def test_responses_append(env: Env) -> None:
    env.load("responses", env.file("r.csv", "customer_id,responded_at,campaign,revenue\n1,2024-03-01,win,10.5\n"))
    env.load("responses", env.file("r2.csv", "customer_id,responded_at\n1,2024-03-02\n"))
    assert env.rows("SELECT customer_id, responded_at, campaign, revenue FROM responses ORDER BY 2") == [
        ("1", dt.date(2024, 3, 1), "win", Decimal("10.50")),
        ("1", dt.date(2024, 3, 2), None, None),
    ]


def test_suppressions_normalise_and_deduplicate_on_key_and_channel(env: Env) -> None:
    env.load("suppressions", env.file("s.csv", "email,phone,channel\n A@X.PL ,,\na@x.pl,,ALL\n,601 234 567,SMS\n"))
    result = env.load("suppressions", env.file("t.csv", "email,channel\na@x.pl,all\na@x.pl,email\n"))
    assert result.notices == ["1 suppression row repeat a key and channel already suppressed; not added"]
    assert env.rows("SELECT email_key, phone_key, channel FROM suppressions ORDER BY ALL") == [
        ("a@x.pl", None, "all"),
        ("a@x.pl", None, "email"),
        (None, "48601234567", "sms"),
    ]
    error = env.fails("suppressions", env.file("u.csv", "email,channel\nb@x.pl,fax\n"))
    assert error.message == "u.csv:2: channel: 'fax' is not a channel"
    assert error.hint == f"write all, email, sms, mail or phone (blank means all); {SKIP_HINT}"


def test_contacts_go_to_history_with_runs_and_notices(env: Env) -> None:
    env.load("customers", env.file("c.csv", "customer_id\n1\n2\n"))
    text = """\
        run_id,campaign,customer_id,is_control,as_of,cell
        r1,win,1,false,2024-01-01,a
        r1,win,1,no,2024-01-01,a
        r1,win,9,TRUE,2024-01-01,b
        r2,spring,2,0,2024-02-01,
        """
    result = env.load("contacts", env.file("h.csv", text))
    assert result.notices == [
        "1 contact row repeat a run_id and customer_id already recorded; not added",
        "2 new runs recorded from loaded contacts",
        "1 contacted customer id not in customers (their contacts are kept)",
    ]
    assert env.rows("SELECT run_id, customer_id, cell, is_control, as_of FROM contact_history ORDER BY 1, 2") == [
        ("r1", "1", "a", False, dt.date(2024, 1, 1)),
        ("r1", "9", "b", True, dt.date(2024, 1, 1)),
        ("r2", "2", None, False, dt.date(2024, 2, 1)),
    ]
    assert env.rows("SELECT run_id, campaign, as_of, status, source FROM runs ORDER BY 1") == [
        ("r1", "win", dt.date(2024, 1, 1), "loaded", "loaded"),
        ("r2", "spring", dt.date(2024, 2, 1), "loaded", "loaded"),
    ]
    assert env.load("contacts", "h.csv").files[0].skipped is True
    assert env.rows("SELECT count(*) FROM contact_history") == [(3,)]
    with store.writer(env.db, "test") as con:  # a run of crmlist itself survives --replace of loaded contacts
        con.execute("INSERT INTO runs (run_id, campaign, source) VALUES ('own', 'win', 'crmlist')")
        con.execute("INSERT INTO contact_history (run_id, campaign, customer_id) VALUES ('own', 'win', '1')")
    env.load(
        "contacts",
        env.file("h2.csv", "run_id,campaign,customer_id,is_control,as_of\nr3,x,2,f,2024-03-01\n"),
        replace=True,
    )
    assert env.rows("SELECT run_id, customer_id FROM contact_history ORDER BY 1") == [("own", "1"), ("r3", "2")]
    assert env.rows("SELECT run_id, source FROM runs ORDER BY 1") == [("own", "crmlist"), ("r3", "loaded")]


def test_good_file_then_bad_file_rolls_everything_back(env: Env) -> None:
    env.load("customers", env.file("c.csv", "customer_id,first_name\n1,Ann\n"))
    before = env.snapshot()
    good = env.file("good.csv", "customer_id,first_name,tier\n2,Bob,gold\n")
    bad = env.file("bad.csv", "customer_id,birth_date\n3,1990-02-30\n")
    error = env.fails("customers", good, bad)
    assert error.message == "bad.csv:2: birth_date: the value is not a date"
    assert env.snapshot() == before
    purchases = env.file("p.csv", "order_id,customer_id,order_date,amount\nA,1,2024-01-01,1\n")
    env.fails("purchases", purchases, env.file("q.csv", "order_id,customer_id,order_date,amount\nB,1,2024-01-01,x\n"))
    assert env.snapshot() == before


def test_zero_padded_ids_stay_text_from_csv_parquet_and_json(env: Env) -> None:
    with duckdb.connect() as con:
        con.execute(
            "COPY (SELECT '007' AS customer_id, 7 AS score, TIMESTAMPTZ '2024-01-05 23:30:00+00' AS order_date, "
            "12.5::DOUBLE AS amount) TO 'p.parquet'"
        )
    env.load("purchases", "p.parquet")
    env.load("purchases", env.file("p.csv", "customer_id,order_date,amount\n0008,2024-01-01,1\n"))
    env.load("purchases", env.file("p.jsonl", '{"customer_id": "009", "order_date": "2024-01-01", "amount": 0.1}\n'
                                    '{"customer_id": 10, "order_date": "2024-01-02", "amount": "2"}\n'))  # fmt: skip
    assert env.rows("SELECT customer_id, order_date, amount, score FROM purchases ORDER BY 1") == [
        ("0008", dt.date(2024, 1, 1), Decimal("1.00"), None),
        ("007", dt.date(2024, 1, 6), Decimal("12.50"), 7),
        ("009", dt.date(2024, 1, 1), Decimal("0.10"), None),
        ("10", dt.date(2024, 1, 2), Decimal("2.00"), None),
    ]
    assert env.rows("SELECT data_type FROM information_schema.columns WHERE column_name = 'score'") == [("INTEGER",)]


@pytest.mark.parametrize(
    ("encoding", "name", "city", "hint"),
    [
        ("cp1250", "Łukasz Żółć", "Łódź", "it looks like Windows-1250 (Polish, Czech): pass --encoding cp1250"),
        ("cp1250", "Jiří Růžička", "Plzeň", "it looks like Windows-1250 (Polish, Czech): pass --encoding cp1250"),
        ("cp1251", "Дмитрий", "Москва", "it looks like Windows-1251 (Cyrillic): pass --encoding cp1251"),
    ],
)
def test_legacy_encodings_convert_exactly_and_are_refused_without_encoding(
    env: Env, encoding: str, name: str, city: str, hint: str
) -> None:
    path = env.file("legacy.csv", f"customer_id;first_name;city\n1;Ann;X\n2;{name};{city}\n", encoding)
    error = env.fails("customers", path, delimiter=";")
    assert (error.message, error.hint) == ("legacy.csv:3: not valid UTF-8 text", hint)
    assert env.rows("SELECT count(*) FROM customers") == [(0,)]
    env.load("customers", path, delimiter=";", encoding=encoding)
    assert env.rows("SELECT first_name, city FROM customers WHERE customer_id = '2'") == [(name, city)]


def test_utf8_file_with_legacy_encoding_is_refused_not_mangled(env: Env) -> None:
    error = env.fails("customers", env.file("u.csv", "customer_id,city\n1,Kraków\n"), encoding="latin-1")
    assert (error.message, error.hint) == (
        "u.csv: this is UTF-8 text, not latin-1",
        "drop --encoding: UTF-8 is the default",
    )


def test_bom_is_stripped_and_blank_lines_before_the_header_skipped(env: Env) -> None:
    env.load("customers", env.file("bom.csv", "\ufeffcustomer_id,first_name\n1,Ann\n"))
    env.load("customers", env.file("lead.csv", "\n\ncustomer_id,first_name\n2,Bob\n"))
    assert env.rows("SELECT customer_id, first_name FROM customers ORDER BY 1") == [("1", "Ann"), ("2", "Bob")]
    error = env.fails("customers", env.file("bad.csv", "\ufeff\n\ncustomer_id,signup_date\n3,2024-02-30\n"))
    assert error.message == "bad.csv:4: signup_date: '2024-02-30' is not a date"


def test_polish_excel_semicolons_decimal_comma_and_date_format(env: Env) -> None:
    text = 'order_id;customer_id;order_date;amount\nA;1;05.01.2024;"1 234,50"\nB;2;06.01.2024 13:45;-0,5\n'
    env.load("purchases", env.file("pl.csv", text), delimiter=";", decimal_comma=True, date_format="%d.%m.%Y")
    assert env.rows("SELECT order_id, order_date, amount FROM purchases ORDER BY 1") == [
        ("A", dt.date(2024, 1, 5), Decimal("1234.50")),
        ("B", dt.date(2024, 1, 6), Decimal("-0.50")),
    ]
    error = env.fails("purchases", env.file("pl2.csv", "customer_id;order_date;amount\n1;05.01.2024;1.234,50\n"),
                      delimiter=";", decimal_comma=True, date_format="%d.%m.%Y")  # fmt: skip
    assert error.message == "pl2.csv:2: amount: '1.234,50' is not a number"


def test_config_section_gives_defaults_and_map(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = Env(tmp_path, """\
        [load.purchases]
        delimiter = ";"
        decimal_comma = true
        date_format = "%d.%m.%Y"
        [load.purchases.map]
        customer_id = "Klient"
        """)  # fmt: skip
    env.load("purchases", env.file("p.csv", "KLIENT ;order_date;amount\n7;31.12.2024;2,5\n"))
    assert env.rows("SELECT customer_id, order_date, amount FROM purchases") == [
        ("7", dt.date(2024, 12, 31), Decimal("2.50"))
    ]


BAD_PURCHASES = """\
    order_id,customer_id,order_date,amount
    A,1,2024-01-05,12.50

    B,2,"2024-13-01",1
    C,3,2024-01-07,"abc"
    "D
    E",4,2024-01-08,"1,5"
    F,5,2024-01-09,7
    """


def test_bad_values_strict_name_the_first_line_and_count_the_rest(env: Env) -> None:
    error = env.fails("purchases", env.file("bad.csv", BAD_PURCHASES))
    assert error.message == "bad.csv:4: order_date: '2024-13-01' is not a date; 2 more bad rows in this file"
    assert error.hint == f"write dates as YYYY-MM-DD, or pass --date-format (e.g. '%d.%m.%Y'); {SKIP_HINT}"
    assert env.rows("SELECT count(*) FROM purchases") == [(0,)]


def test_bad_values_skip_keeps_rejects_with_exact_lines(env: Env) -> None:
    result = env.load("purchases", env.file("bad.csv", BAD_PURCHASES), on_error="skip")
    assert (result.files[0].rows_loaded, result.files[0].rows_rejected) == (2, 3)
    assert result.notices == [
        "bad.csv: 3 bad rows not loaded, kept in load_rejects "
        "(the first, line 4: order_date: '2024-13-01' is not a date)"
    ]
    assert env.rows("SELECT file, line, column_name, reason, raw_line FROM load_rejects ORDER BY line") == [
        ("bad.csv", 4, "order_date", "order_date: '2024-13-01' is not a date", 'B,2,"2024-13-01",1'),
        ("bad.csv", 5, "amount", "amount: 'abc' is not a number", 'C,3,2024-01-07,"abc"'),
        # A quoted id over two lines: its line break is the row's first problem (it would end a list line).
        (
            "bad.csv",
            6,
            "order_id",
            "order_id: the value holds a line break or NUL character",
            '"D\nE",4,2024-01-08,"1,5"',
        ),
    ]
    assert env.rows("SELECT order_id FROM purchases ORDER BY 1") == [("A",), ("F",)]
    assert env.rows("SELECT rows_loaded, rows_rejected FROM loads") == [(2, 3)]


def test_max_rejects_turns_skip_into_an_error(env: Env) -> None:
    error = env.fails("purchases", env.file("bad.csv", BAD_PURCHASES), on_error="skip", max_rejects=2)
    assert error.message == (
        "bad.csv: 3 bad rows, more than --max-rejects 2 (the first, line 4: order_date: '2024-13-01' is not a date)"
    )
    assert env.rows("SELECT count(*) FROM load_rejects") == [(0,)]


def test_ragged_rows_strict_and_skip(env: Env) -> None:
    text = """\
        order_id,customer_id,order_date,amount
        A,1,2024-01-01,1
        B,2,2024-01-01

        C,3,2024-01-02,3,4
        D,4,2024-01-03,x
        """
    error = env.fails("purchases", env.file("rag.csv", text))
    assert error.message == "rag.csv:3: expected 4 fields, found 3; 1 more bad row in this file"
    result = env.load("purchases", "rag.csv", on_error="skip")
    assert (result.files[0].rows_loaded, result.files[0].rows_rejected) == (1, 3)
    assert env.rows("SELECT line, column_name, reason, raw_line FROM load_rejects ORDER BY line") == [
        (3, None, "expected 4 fields, found 3", "B,2,2024-01-01"),
        (5, None, "expected 4 fields, found 5", "C,3,2024-01-02,3,4"),
        (6, "amount", "amount: 'x' is not a number", "D,4,2024-01-03,x"),
    ]


def test_unclosed_quote_and_nul_byte_are_clean_errors_with_lines(env: Env) -> None:
    unclosed = env.file("q.csv", 'customer_id,first_name\n1,"Ann\n\n2,Bob\n')
    error = env.fails("customers", unclosed, on_error="skip")
    assert error.message == "q.csv:2: a quoted value is never closed"
    (env.root / "nul.csv").write_bytes(b"customer_id,first_name\n1,Ann\n2,B\x00b\n")
    error = env.fails("customers", "nul.csv")
    assert error.message == "nul.csv:3: NUL byte in the text"


def test_duplicate_ids_within_a_load(env: Env) -> None:
    one = env.file("c1.csv", "customer_id,email\n001,a@x.pl\n002,b@x.pl\n\n001,c@x.pl\n")
    error = env.fails("customers", one)
    assert error.message == "c1.csv:5: customer_id: duplicate of line 2 ('001')"
    two = env.file("c2.csv", "customer_id,email\n003,z@x.pl\n002,y@x.pl\n")
    error = env.fails("customers", env.file("c0.csv", "customer_id\n002\n"), two)
    assert error.message == "c2.csv:3: customer_id: duplicate of c0.csv:2 ('002')"
    result = env.load("customers", one, on_error="skip")
    assert (result.files[0].rows_loaded, result.files[0].rows_rejected) == (2, 1)
    assert env.rows("SELECT customer_id, email FROM customers ORDER BY 1") == [("001", "a@x.pl"), ("002", "b@x.pl")]
    assert env.rows("SELECT line, reason FROM load_rejects") == [(5, "customer_id: duplicate of line 2 ('001')")]


def test_missing_empty_and_header_only_inputs(env: Env) -> None:
    before = env.snapshot()
    error = env.fails("customers", "nope.csv", error=MissingInputError)
    assert error.message == "nope.csv: no such file"
    error = env.fails("customers", env.file("empty.csv", ""), error=MissingInputError)
    assert error.message == "empty.csv: the file is empty"
    error = env.fails("customers", env.file("head.csv", "customer_id,email\n\n"), error=MissingInputError)
    assert error.message == "head.csv: no data rows"
    error = env.fails("customers", env.file("ok.csv", "customer_id\n1\n"), "head.csv", error=MissingInputError)
    assert env.snapshot() == before


def test_stdin_is_read_and_empty_stdin_refused(env: Env) -> None:
    result = env.load("purchases", "-", stdin=io.BytesIO(b"customer_id,order_date,amount\n013,2024-03-01,5\n"))
    assert (result.files[0].file, result.files[0].rows_loaded) == ("-", 1)
    assert env.rows("SELECT customer_id, amount FROM purchases") == [("013", Decimal("5.00"))]
    with pytest.raises(MissingInputError) as caught:
        env.load("purchases", "-", stdin=io.BytesIO(b""))
    assert (caught.value.message, caught.value.hint) == (
        "stdin: no data on stdin",
        "pipe a file in: crmlist load TABLE - < FILE",
    )


def test_missing_column_hints_closest_name_and_delimiter(env: Env) -> None:
    error = env.fails("customers", env.file("typo.csv", "cust_id,first_name\n1,A\n"))
    assert error.message == "typo.csv: missing required column 'customer_id' (found: cust_id, first_name)"
    assert error.hint == "closest is 'cust_id': pass --map customer_id=cust_id"
    error = env.fails("customers", env.file("semi.csv", "customer_id;first_name\n1;A\n"))
    assert error.message == "semi.csv: only one column found, and its header contains ';'"
    assert error.hint == "the file is separated by ';': pass --delimiter ';'"
    env.load("customers", "typo.csv", mapping={"customer_id": "CUST_ID"})
    assert env.rows("SELECT customer_id, first_name FROM customers") == [("1", "A")]


def test_messages_never_show_personal_values_or_duckdb_text(env: Env) -> None:
    text = "customer_id,first_name,email,birth_date,secret\n1,Zofia,zofia@x.pl,1990-02-30,hush\n2,Ann,ann@x.pl,zz,x\n"
    error = env.fails("customers", env.file("c.csv", text))
    shown = f"{error.message} {error.hint}"
    assert error.message == "c.csv:2: birth_date: the value is not a date; 1 more bad row in this file"
    for personal in ("Zofia", "zofia@x.pl", "1990-02-30", "hush", "zz"):
        assert personal not in shown
    error = env.fails("customers", env.file("r.csv", "customer_id,first_name\n1,Zofia,Kowalska\n"))
    assert "Zofia" not in error.message and "Original Line" not in error.message


def test_gzip_tsv_and_excel_inputs(env: Env) -> None:
    (env.root / "g.csv.gz").write_bytes(gzip.compress(b"order_id,customer_id,order_date,amount\nG,1,2024-01-01,1\n"))
    env.load("purchases", "g.csv.gz")
    with pa.CompressedOutputStream(str(env.root / "z.tsv.zst"), "zstd") as out:
        out.write(b"order_id\tcustomer_id\torder_date\tamount\nZ\t2\t2024-01-01\t3\n")
    env.load("purchases", "z.tsv.zst")
    env.load("purchases", env.file("t.tsv", "order_id\tcustomer_id\torder_date\tamount\nT\t007\t2024-01-01\t2\n"))
    book = xlsxwriter.Workbook(str(env.root / "x.xlsx"))
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["order_id", "customer_id", "order_date", "amount"])
    sheet.write_row(1, 0, ["X1", "007", "2024-01-01", 12.5])
    sheet.write_row(3, 0, ["X2", 8, "bad", 1])  # row 3 of the sheet is left blank
    book.close()
    error = env.fails("purchases", "x.xlsx")
    assert error.message == "x.xlsx:4: order_date: 'bad' is not a date"
    env.load("purchases", "x.xlsx", on_error="skip")
    assert env.rows("SELECT order_id, customer_id, amount FROM purchases ORDER BY 1") == [
        ("G", "1", Decimal("1.00")),
        ("T", "007", Decimal("2.00")),
        ("X1", "007", Decimal("12.50")),
        ("Z", "2", Decimal("3.00")),
    ]
    assert env.rows("SELECT line, raw_line FROM load_rejects") == [
        (4, '{"order_id":"X2","customer_id":"8","order_date":"bad","amount":"1"}')
    ]


def test_json_array_errors_give_the_line_of_the_element(env: Env) -> None:
    text = """\
        [
         {"customer_id": "1", "order_date": "2024-02-01", "amount": 1},
         {"customer_id": 2,
          "order_date": "x", "amount": 2}
        ]
        """
    error = env.fails("purchases", env.file("j.json", text))
    assert error.message == "j.json:3: order_date: 'x' is not a date"


def test_bad_options_are_usage_errors(env: Env) -> None:
    path = env.file("c.csv", "customer_id\n1\n")
    assert env.fails("customers", path, error=UsageError, on_error="lenient").message == (
        "--on-error: unknown mode 'lenient'"
    )
    assert env.fails("customers", path, error=UsageError, mapping={"emial": "x"}).hint == "did you mean email?"
    assert env.fails("nothing", path, error=UsageError).message == "load: unknown table 'nothing'"


MESSY_PURCHASES = """\
    order_id,customer_id,order_date,quantity,unit_price,amount,category
    A, 007 ,2024-01-05 , ,2.5,,\u00a0tv
    B,008,2024-03-31T22:30:00+00:00,2, 1.005 ,,"   "
    C,009, 2024-01-07 10:00 ,1,,"  3.10 ",a b
    """


def test_fast_and_staged_paths_type_values_alike(env: Env) -> None:
    env.load("purchases", env.file("fast.csv", MESSY_PURCHASES))  # clean, so loaded in one statement
    staged = MESSY_PURCHASES + "    D,010,not a date,1,,1,\n"
    env.load("purchases", env.file("staged.csv", staged), on_error="skip")  # a bad row: through staging
    expected = [
        ("007", dt.date(2024, 1, 5), Decimal("1.000"), Decimal("2.5000"), Decimal("2.50"), "tv"),
        ("008", dt.date(2024, 4, 1), Decimal("2.000"), Decimal("1.0050"), Decimal("2.01"), None),
        ("009", dt.date(2024, 1, 7), Decimal("1.000"), None, Decimal("3.10"), "a b"),
    ]
    query = "SELECT customer_id, order_date, quantity, unit_price, amount, category FROM purchases"
    assert env.rows(f"{query} WHERE order_id IN ('A', 'B', 'C') ORDER BY 1") == sorted(expected * 2)
    assert env.rows("SELECT file, rows_loaded, rows_rejected FROM loads ORDER BY 1") == [
        ("fast.csv", 3, 0),
        ("staged.csv", 3, 1),
    ]


def test_blank_required_values_and_headerless_files(env: Env) -> None:
    error = env.fails("customers", env.file("c.csv", "customer_id,first_name\n1,Ann\n   ,Bob\n"))
    assert error.message == "c.csv:3: customer_id: missing (required)"
    env.load("customers", env.file("n.csv", "1,Ann\n\n2,Bob\n"), no_header=True, columns=["customer_id", "first_name"])
    assert env.rows("SELECT customer_id, first_name FROM customers ORDER BY 1") == [("1", "Ann"), ("2", "Bob")]
    error = env.fails(
        "customers", env.file("m.csv", "3,Cy\n4,Di,x\n"), no_header=True, columns=["customer_id", "first_name"]
    )
    assert error.message == "m.csv:2: expected 2 fields, found 3"


UPSERT_BASE = "customer_id,first_name,email\n1,Ann,ann@x.pl\n2,Bob,bob@x.pl\n3,Cy,\n"
UPSERT_UPDATE = """\
    customer_id,first_name,email,phone,gender
    2,Robert, Robert@X.PL ,+48 (602) 222-222,m
    4,Di,,603 333 333,
    """


def test_upserts_into_a_loaded_table_replace_rows_alike_on_the_fast_and_staged_paths(env: Env) -> None:
    env.load("customers", env.file("base.csv", UPSERT_BASE))
    env.load("customers", env.file("update.csv", UPSERT_UPDATE))  # clean: straight into the table
    query = "SELECT customer_id, first_name, email, gender, email_key, phone_key FROM customers ORDER BY 1"
    fast = env.rows(query)
    env.load("customers", "base.csv", replace=True)
    staged = env.file("staged.csv", UPSERT_UPDATE + "    5,Ed,,,Q\n")  # a bad gender: through staging
    env.load("customers", staged, on_error="skip")
    assert fast == env.rows(query)
    assert fast == [
        ("1", "Ann", "ann@x.pl", None, "ann@x.pl", None),
        ("2", "Robert", "Robert@X.PL", "M", "robert@x.pl", "48602222222"),
        ("3", "Cy", None, None, None, None),
        ("4", "Di", None, None, None, "48603333333"),
    ]
    assert env.rows("SELECT file, rows_loaded, rows_rejected FROM loads ORDER BY loaded_at") == [
        ("base.csv", 3, 0),
        ("staged.csv", 2, 1),
    ]


def test_a_key_twice_in_a_load_into_a_loaded_table_changes_nothing(env: Env) -> None:
    env.load("customers", env.file("a.csv", "customer_id,first_name\n1,Ann\n2,Bob\n"))
    before = env.snapshot()
    error = env.fails("customers", env.file("b.csv", "customer_id,first_name\n2,Robert\n3,Cy\n2,Rob\n"))
    assert error.message == "b.csv:4: customer_id: duplicate of line 2 ('2')"
    assert env.snapshot() == before


def test_keys_of_unusual_values_follow_the_rules(env: Env) -> None:
    text = (
        "customer_id,email,phone,street,postal_code,city,country\n"
        '1,"\u2003Anna@X.PL\f",(0) 601-234-567,"Długa\u00a0 5",00 950,Kraków,\n'
        "2,jan@x.pl ,+48.601.234.568,Nowy  Świat 1,00-001,WARSZAWA,\n"
        "3,E\u0301VA@X.CZ,(+420) 601 234 569,Na Příkopě 5,110 00,Praha\t,CZ\n"
    )
    (env.root / "keys.csv").write_text(text, encoding="utf-8")
    env.load("customers", "keys.csv")
    assert env.rows("SELECT customer_id, email_key, phone_key, address_key FROM customers ORDER BY 1") == [
        # PL has no trunk prefix: phonenumbers keeps the 0 of "(0) 601..." (a ten-digit number)
        ("1", "anna@x.pl", "480601234567", "długa 5|00-950|kraków"),
        ("2", "jan@x.pl", "48601234568", "nowy świat 1|00-001|warszawa"),
        ("3", "éva@x.cz", "420601234569", "na příkopě 5|110 00|praha"),
    ]


@pytest.mark.parametrize("preserve", [True, False])
def test_a_load_leaves_the_connections_row_order_setting_as_it_was(env: Env, preserve: bool) -> None:
    env.file("bad.csv", BAD_PURCHASES)
    with store.writer(env.db, "load") as con:
        con.execute(f"SET preserve_insertion_order = {preserve}")
        load_files(con, env.ws, "purchases", ["bad.csv"], LoadOptions(on_error="skip"))
        assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchone() == (preserve,)
    assert env.rows("SELECT line FROM load_rejects ORDER BY line") == [(4,), (5,), (6,)]


def test_key_shortcuts_give_the_full_rules_results_for_every_value() -> None:
    # Every string of up to three pieces of a tricky alphabet (blanks of every kind, marks, digits,
    # letters with and without combining accents), in every position, and padded with visible text.
    pieces = [" ", "  ", "\t", "\n", "\r", "\f", "\v", "\u00a0", "\u202f", "\u2003", "\u0085", "(", ")", "+", "-"]
    pieces += [".", "|", "0", "00", "7", "a", "Z", "Ł", "e\u0301", "É", "ß", "@"]
    short = ["".join(p) for n in range(4) for p in itertools.product(pieces, repeat=n)]
    values = [None, *short, *(f"Ab {v} 9" for v in short), *(f"{v}x1" for v in short), *(f"+{v}" for v in short)]
    checks = {"email": (keys.email_key_sql("a"), keys.email_key_sql("a", shortcut=False))}
    with duckdb.connect() as con:
        con.execute(
            "CREATE TABLE v AS SELECT unnest($a) AS a, unnest($b) AS b, unnest($c) AS c",
            {"a": values, "b": values[1:] + values[:1], "c": values[7:] + values[:7]},
        )
        differ = {
            name: con.execute(f"SELECT count(*) FROM v WHERE ({fast}) IS DISTINCT FROM ({full})").fetchall()
            for name, (fast, full) in checks.items()
        }
        total = con.execute("SELECT count(*) FROM v").fetchall()
    assert (differ, total) == ({"email": [(0,)]}, [(len(values),)])  # phone keys: tests/test_keys.py
