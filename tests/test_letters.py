"""Letters: filters, salutations, template lookup, sandbox, recommendations, writers and golden letters."""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import filecmp
import hashlib
import json
import mailbox
import os
import random
import smtplib
import socket
import textwrap
import zipfile
from collections.abc import Mapping
from decimal import Decimal
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from babel.dates import format_date

from crmlist.errors import EXIT_DATAERR, BadInputError, NotFoundError, UsageError
from crmlist.letters import (
    LetterFailure,
    LetterJob,
    check_templates,
    compute_recommendations,
    find_template,
    render_letters,
    safe_file_name,
    template_ext,
)
from crmlist.letters.environment import build_environment, customer_columns, reads_variable
from crmlist.letters.filters import salutation
from crmlist.letters.recommend import range_bounds, range_starts
from crmlist.letters.render import Renderer, column_values, recommendation_lists
from crmlist.store import ensure_schema
from crmlist.workspace import Workspace, open_workspace

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden" / "letters"
AS_OF = dt.date(2026, 11, 1)
# Rewrites tests/golden/ instead of comparing with it: CRMLIST_REGENERATE_GOLDEN=1 pytest tests/test_letters.py
REGENERATE = os.environ.get("CRMLIST_REGENERATE_GOLDEN") == "1"

CUSTOMERS = """\
    customer_id,first_name,last_name,gender,language,email
    C1,Jan,Kowalski,M,pl,jan@example.com
    C2,Jana,Nováková,F,cs,jana@example.com
    C3,Иван,Петров,M,ru,ivan@example.com
    C4,Alex,Smith,X,en,alex@example.com
"""
PRODUCTS = """\
    product_id,name,category,color,price,complements
    BAG-BLK,Briefcase,bags,black,499.00,BAG-BRN|FLD-BRN|FLD-BLK|GIFT-1
    BAG-BRN,Briefcase,bags,brown,499.00,
    FLD-BLK,Folder,folders,black,49.00,
    FLD-BRN,Folder,folders,brown,45.50,
    GIFT-1,Gift card,gift-cards,,50.00,
    PEN-1,Pen,pens,black,20.00,
"""
PURCHASES = """\
    order_id,customer_id,order_date,product_id,amount
    O1,C1,2026-01-05,BAG-BLK,499.00
    O2,C2,2025-12-24,BAG-BLK,1234.50
    O3,C3,2026-03-01,PEN-1,20.00
    O4,C4,2026-10-30,FLD-BRN,45.50
"""


def make_ws(tmp_path: Path, templates: dict[str, str], config: str = "") -> Workspace:
    root = tmp_path / "ws"
    (root / "templates").mkdir(parents=True, exist_ok=True)
    (root / "crmlist.toml").write_text(textwrap.dedent(config), encoding="utf-8")
    for name, text in templates.items():
        (root / "templates" / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return open_workspace(root)


def _load(con: duckdb.DuckDBPyConnection, tmp_path: Path, table: str, csv_text: str, select: str = "*") -> None:
    path = tmp_path / f"{table}.csv"
    path.write_text(textwrap.dedent(csv_text), encoding="utf-8")
    con.execute(f"INSERT INTO {table} BY NAME SELECT {select} FROM read_csv(?, all_varchar = true)", [str(path)])


def make_db(
    tmp_path: Path,
    customers: str = CUSTOMERS,
    purchases: str = PURCHASES,
    products: str = PRODUCTS,
    template: str = "winback",
) -> duckdb.DuckDBPyConnection:
    """An in-memory database set up as the runner leaves it: facts view and letter_targets."""
    con = duckdb.connect()
    ensure_schema(con)
    _load(con, tmp_path, "customers", customers)
    _load(con, tmp_path, "purchases", purchases)
    complements = "* REPLACE (string_split(complements, '|') AS complements)"
    _load(con, tmp_path, "products", products, complements)
    con.execute("CREATE TEMP TABLE run_params AS SELECT CAST(? AS DATE) AS as_of, '' AS exclude_run", [AS_OF])
    facts = (REPO / "queries" / "customer_facts.sql").read_text(encoding="utf-8")
    con.execute(f"CREATE TEMP VIEW customer_facts AS {facts}")
    con.execute(
        """CREATE TEMP TABLE letter_targets AS
           SELECT f.*, 'winback' AS crm_campaign, 'std' AS crm_cell, 'STD10' AS crm_offer,
                  'email' AS crm_channel, ? AS crm_template
           FROM customer_facts AS f ORDER BY customer_id""",
        [template],
    )
    return con


def render(ws: Workspace, template: str, context: Mapping[str, object] | None = None) -> str:
    return build_environment(ws).from_string(template).render(context or {})


# --- filters -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "currency", "expected"),
    [
        ("pl", "PLN", "1\xa0234,50\xa0zł"),
        ("cs", "CZK", "1\xa0234,50\xa0Kč"),
        ("en", "USD", "$1,234.50"),
        ("ru", "RUB", "1\xa0234,50\xa0₽"),
    ],
)
def test_money_per_locale(tmp_path: Path, locale: str, currency: str, expected: str) -> None:
    ws = make_ws(tmp_path, {}, f'currency = "{currency}"\n')
    assert render(ws, "{{ amount|money }}", {"amount": Decimal("1234.50"), "locale": locale}) == expected


@pytest.mark.parametrize(
    ("locale", "currency", "expected"),
    [
        ("pl", "PLN", "1\xa0234\xa0567,90\xa0zł"),
        ("en", "USD", "$1,234,567.90"),
        ("hi_IN", "INR", "₹12,34,567.90"),
        ("de_CH", "CHF", "CHF\xa01234567.90"),
        ("ja", "JPY", "￥1,234,568"),
    ],
)
def test_money_groups_digits_as_babel_does(tmp_path: Path, locale: str, currency: str, expected: str) -> None:
    ws = make_ws(tmp_path, {})
    context = {"amount": Decimal("1234567.895"), "currency": currency, "locale": locale}
    assert render(ws, "{{ amount|money(currency) }}|{{ amount|money(currency) }}", context) == f"{expected}|{expected}"


def test_money_currency_argument_and_default_locale(tmp_path: Path) -> None:
    ws = make_ws(tmp_path, {}, 'locale = "pl"\ncurrency = "PLN"\n')
    assert render(ws, "{{ 5|money }}|{{ 5|money('EUR') }}") == "5,00\xa0zł|5,00\xa0€"


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("pl", "5 stycznia 2026|5.01.2026|1\xa0234,5|25%"),
        ("cs", "5. ledna 2026|05.01.26|1\xa0234,5|25\xa0%"),
        ("en", "January 5, 2026|1/5/26|1,234.5|25%"),
        ("ru", "5 января 2026\u202fг.|05.01.2026|1\xa0234,5|25\xa0%"),
    ],
)
def test_date_number_percent_per_locale(tmp_path: Path, locale: str, expected: str) -> None:
    ws = make_ws(tmp_path, {})
    template = "{{ d|date }}|{{ d|date('short') }}|{{ 1234.5|number }}|{{ 0.25|percent }}"
    assert render(ws, template, {"d": dt.date(2026, 1, 5), "locale": locale}) == expected


@pytest.mark.parametrize("locale", ["pl", "cs", "ru", "en", "de", "ja", "ar", "pt_BR"])
def test_dates_are_babels_in_every_format(tmp_path: Path, locale: str) -> None:
    """The filter keeps each format's parsed CLDR pattern: the text is format_date's all the same."""
    rnd = random.Random(locale)
    days = [dt.date(1950, 1, 1) + dt.timedelta(days=rnd.randint(0, 40000)) for _ in range(60)]
    formats = ["full", "long", "medium", "short", "EEE, d MMM yyyy"]
    template = "{% for d in days %}{% for f in formats %}{{ d|date(f) }};{% endfor %}{% endfor %}"
    expected = "".join(f"{format_date(d, f, locale=locale)};" for d in days for f in formats)
    assert render(make_ws(tmp_path, {}), template, {"days": days, "formats": formats, "locale": locale}) == expected


def test_date_accepts_datetime_and_iso_text(tmp_path: Path) -> None:
    ws = make_ws(tmp_path, {}, 'locale = "pl"\n')
    context = {"t": dt.datetime(2026, 1, 5, 23, 59)}
    assert render(ws, "{{ t|date }}|{{ '2026-01-05'|date }}|{{ '2026-01-05T10:00:00'|date }}", context) == (
        "5 stycznia 2026|5 stycznia 2026|5 stycznia 2026"
    )


@pytest.mark.parametrize(
    ("locale", "forms", "table"),
    [
        ("pl", "'punkt', 'punkty', 'punktów'", {1: "punkt", 2: "punkty", 5: "punktów", 22: "punkty", 12: "punktów"}),
        ("cs", "'bod', 'body', 'bodů'", {1: "bod", 2: "body", 5: "bodů", 22: "bodů"}),
        ("ru", "'балл', 'балла', 'баллов'", {1: "балл", 2: "балла", 5: "баллов", 21: "балл", 11: "баллов"}),
        ("en", "'point', 'points'", {1: "point", 2: "points", 0: "points"}),
    ],
)
def test_plural_positional(tmp_path: Path, locale: str, forms: str, table: dict[int, str]) -> None:
    ws = make_ws(tmp_path, {})
    for n, expected in table.items():
        assert render(ws, f"{{{{ n|plural({forms}) }}}}", {"n": n, "locale": locale}) == expected


def test_plural_keywords_and_fallbacks(tmp_path: Path) -> None:
    ws = make_ws(tmp_path, {})
    by_keyword = "{{ n|plural(one='punkt', few='punkty', many='punktów') }}"
    got = [render(ws, by_keyword, {"n": n, "locale": "pl"}) for n in (1, 2, 5, 22)]
    assert got == ["punkt", "punkty", "punktów", "punkty"]
    # cs 5 is `other`; missing `other` falls back to `many`
    assert render(ws, "{{ 5|plural(one='bod', few='body', many='bodů') }}", {"locale": "cs"}) == "bodů"
    # pl 5 is `many`; missing `many` falls back to `other`
    assert render(ws, "{{ 5|plural(one='a', other='b') }}", {"locale": "pl"}) == "b"
    # a whole decimal reads as the integer it shows
    assert render(ws, "{{ n|plural('punkt', 'punkty', 'punktów') }}", {"n": Decimal("2.00"), "locale": "pl"}) == (
        "punkty"
    )


def test_plural_wrong_number_of_forms_is_an_error(tmp_path: Path) -> None:
    ws = make_ws(tmp_path, {})
    with pytest.raises(ValueError, match=r"plural: pl takes 3 forms \(one, few, many\), got 2"):
        render(ws, "{{ 2|plural('punkt', 'punkty') }}", {"locale": "pl"})


@pytest.mark.parametrize(
    ("language", "gender", "first", "last", "expected"),
    [
        ("pl", "F", "Anna", "Kowalska", "Szanowna Pani Kowalska"),
        ("pl", "M", "Jan", "Kowalski", "Szanowny Panie Kowalski"),
        ("cs", "F", "Jana", "Nováková", "Vážená paní Nováková"),
        ("cs", "M", "Jan", "Novák", "Vážený pane Nováku"),
        ("cs", "M", "Petr", "Svoboda", "Vážený pane Svobodo"),
        ("ru", "F", "Анна", "Петрова", "Уважаемая Анна Петрова"),
        ("ru", "M", "Иван", "Петров", "Уважаемый Иван Петров"),
        ("en", "F", "Jane", "Smith", "Dear Ms Smith"),
        ("en", "M", "John", "Smith", "Dear Mr Smith"),
        ("en", "X", "Alex", "Smith", "Dear Alex Smith"),
        ("pl", "X", "Alex", "Kowalski", "Dzień dobry, Alex Kowalski"),
        ("cs", None, "Alex", "Novák", "Dobrý den, Alex Novák"),
        ("ru", "X", "Алекс", "Петров", "Здравствуйте, Алекс Петров"),
        ("de", "F", "Eva", "Braun", "Dear Ms Braun"),
        ("pl", "F", "Anna", None, "Szanowna Pani"),
        ("cs", "M", "Jan", "  ", "Vážený pane"),
        ("en", "M", "John", None, "Dear Sir"),
        ("ru", "F", "Анна", None, "Уважаемая Анна"),
        ("en", "X", None, None, "Hello"),
    ],
)
def test_salutation(language: str, gender: str | None, first: str | None, last: str | None, expected: str) -> None:
    customer = {"language": language, "gender": gender, "first_name": first, "last_name": last}
    assert salutation(customer) == expected


def test_salutation_without_language_uses_workspace_locale(tmp_path: Path) -> None:
    ws = make_ws(tmp_path, {}, 'locale = "pl"\n')
    customer = {"language": None, "gender": "F", "first_name": "Anna", "last_name": "Nowak"}
    assert render(ws, "{{ c|salutation }}", {"c": customer}) == "Szanowna Pani Nowak"


# --- templates ---------------------------------------------------------------------------------------


def test_template_falls_back_from_language_to_default(tmp_path: Path) -> None:
    ws = make_ws(tmp_path, {"winback.pl.txt.j2": "pl", "winback.txt.j2": "default"})
    templates = ws.templates_dir
    assert find_template(ws, "winback", "pl") == templates / "winback.pl.txt.j2"
    assert find_template(ws, "winback", "PL_pl") == templates / "winback.pl.txt.j2"
    assert find_template(ws, "winback", "cs") == templates / "winback.txt.j2"
    assert find_template(ws, "winback", None) == templates / "winback.txt.j2"
    assert find_template(ws, "winback", "../../etc") == templates / "winback.txt.j2"
    assert find_template(ws, "winback.txt", "pl") == templates / "winback.pl.txt.j2"
    assert template_ext(ws, "winback") == "txt"


def test_template_errors(tmp_path: Path) -> None:
    ws = make_ws(tmp_path, {"winback.txt.j2": "t", "winback.html.j2": "h", "promo.pl.md.j2": "m"})
    with pytest.raises(BadInputError) as ambiguous:
        find_template(ws, "winback", "pl")
    assert (
        ambiguous.value.message == "templates/winback: several formats exist (html, txt) and the rule file names none"
    )
    assert ambiguous.value.hint == 'name one in the rule file, e.g. template = "winback.html"'
    assert template_ext(ws, "winback.html") == "html"
    with pytest.raises(NotFoundError, match="no template of this name"):
        find_template(ws, "nothing", "pl")
    with pytest.raises(NotFoundError, match="no template for language 'cs' and no default"):
        find_template(ws, "promo", "cs")
    with pytest.raises(BadInputError, match="not a template name"):
        find_template(ws, "../winback", "pl")


def test_check_templates_reports_each_problem_with_its_line(tmp_path: Path) -> None:
    ws = make_ws(
        tmp_path,
        {
            "good.txt.j2": "{{ customer|salutation }} {{ customer.loyalty }}",
            "missing.pl.txt.j2": "line one\n{{ customer.no_such_fact }}\n",
            "missing.txt.j2": "{{ offer }}",
            "broken.txt.j2": "ok\n{% if %}\n",
            "both.txt.j2": "{{ nope }}",
            "both.eml.j2": "x",
        },
    )
    errors = check_templates(ws, ["good", "missing", "broken", "both", "absent"], extra_columns=["loyalty"])
    assert [(type(e).__name__, e.message) for e in errors] == [
        ("BadInputError", "templates/missing.pl.txt.j2:2: undefined variable: 'dict object' has no attribute "
         "'no_such_fact'"),
        ("BadInputError", "templates/broken.txt.j2:2: template syntax error: Expected an expression, got 'end of "
         "statement block'"),
        ("BadInputError", "templates/both: several formats exist (eml, txt) and the rule file names none"),
        ("BadInputError", "templates/both.txt.j2:1: undefined variable: 'nope' is undefined"),
        ("NotFoundError", "templates/absent: no template of this name"),
    ]  # fmt: skip
    assert all(e.exit_code in (EXIT_DATAERR, 1) for e in errors)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ customer|salutation }} {{ customer.monetary }} {{ customer['age'] }}",
         {"language", "gender", "first_name", "last_name", "monetary", "age"}),
        ("{{ customer.first_name.upper() }}{% set m = customer.monetary %}", {"first_name", "monetary"}),
        ("{% macro m() %}{{ customer.city }}{% endmacro %}{{ m() }}", {"city"}),
        ("{{ customer.get('age') }}", None),  # a method call may read any column
        ("{{ customer[customer.key] }}", None),
        ("{{ customer|tojson }}", None),
        ("{% for k in customer %}{% endfor %}", None),
        ("{% include 'other.txt.j2' %}", None),  # the included template sees the customer too
    ],
)  # fmt: skip
def test_customer_columns_a_template_reads(tmp_path: Path, source: str, expected: set[str] | None) -> None:
    assert customer_columns(build_environment(make_ws(tmp_path, {})), source) == expected


def test_only_the_columns_templates_read_are_streamed(tmp_path: Path) -> None:
    templates = {"winback.txt.j2": "{{ customer.monetary }}", "winback.pl.txt.j2": "{{ customer|salutation }}"}
    con = make_db(tmp_path)
    columns = con.table("letter_targets").columns
    renderer = Renderer(make_ws(tmp_path, templates), job())
    renderer.prepare(["winback"])
    assert renderer.columns(columns) == [
        "customer_id", "first_name", "last_name", "gender", "email", "language", "monetary",
        "crm_campaign", "crm_cell", "crm_offer", "crm_channel", "crm_template",
    ]  # fmt: skip
    everything = Renderer(make_ws(tmp_path / "all", {"winback.txt.j2": "{{ customer.keys()|list|join(',') }}"}), job())
    everything.prepare(["winback"])
    assert everything.columns(columns) == columns
    result = render_letters(con, everything.ws, job("jsonl"), tmp_path / "out")
    text = json.loads(result.paths[0].read_text().splitlines()[0])["text"]
    assert text == ",".join(c for c in columns if not c.startswith("crm_"))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ customer.first_name }}", False),
        ("{% for r in recommendations %}{{ r.name }}{% endfor %}", True),
        ("{% macro m() %}{{ recommendations|length }}{% endmacro %}", True),
        ("{% set recommendations = [] %}{{ recommendations }}", True),
        ("{% include 'other.txt.j2' %}", True),  # the included template may read them
        ("{% from 'm.txt.j2' import x %}", True),
    ],
)
def test_reads_recommendations(tmp_path: Path, source: str, expected: bool) -> None:
    assert reads_variable(build_environment(make_ws(tmp_path, {})), source, "recommendations") is expected


def test_recommendations_are_computed_only_when_a_template_reads_them(tmp_path: Path) -> None:
    templates = {"winback.txt.j2": "{{ customer.customer_id }}", "winback.pl.txt.j2": REC_TEMPLATE}
    ws = make_ws(tmp_path, {"winback.txt.j2": "{{ customer.customer_id }}: {{ offer }}"})
    con = make_db(tmp_path)
    result = render_letters(con, ws, job("jsonl"), tmp_path / "out")
    assert [json.loads(line)["text"] for line in result.paths[0].read_text().splitlines()] == [
        "C1: STD10",
        "C2: STD10",
        "C3: STD10",
        "C4: STD10",
    ]
    temp_tables = "SELECT table_name FROM duckdb_tables() WHERE temporary ORDER BY 1"
    assert con.execute(temp_tables).fetchall() == [("letter_targets",), ("run_params",)]  # no lift
    ws = make_ws(tmp_path / "pl", templates)  # one language's template reads them: every range has them
    result = render_letters(con, ws, job("jsonl"), tmp_path / "out-pl")
    texts = {r["customer_id"]: r["text"] for r in map(json.loads, result.paths[0].read_text().splitlines())}
    expected = "FLD-BLK:complement:49.00;FLD-BRN:complement:45.50;GIFT-1:complement:50.00;"
    assert texts == {"C1": expected, "C2": "C2", "C3": "C3", "C4": "C4"}


# --- rendering ---------------------------------------------------------------------------------------


def test_python_values_of_columns_are_those_arrow_gives() -> None:
    columns = [
        pa.array([Decimal("1234.50"), None, Decimal("0.00"), Decimal("-7.25")], pa.decimal128(18, 2)),
        pa.array([Decimal("12"), Decimal("-3")], pa.decimal128(9, 0)),
        pa.array([Decimal("0E-10"), Decimal("1.5000000000")], pa.decimal128(38, 10)),
        pa.array([dt.date(2026, 1, 5), None, dt.date(1969, 12, 31)], pa.date32()),
    ]
    for column in columns:
        expected = column.to_pylist()
        assert [repr(v) for v in column_values(column)] == [repr(v) for v in expected]


def test_recommendations_are_one_dict_per_product_and_reason() -> None:
    kind = pa.list_(pa.struct([("product_id", pa.string()), ("reason", pa.string()), ("price", pa.decimal128(9, 2))]))
    a, a_x = {"product_id": "A", "reason": "complement", "price": Decimal("1.00")}, {"product_id": "A", "reason": "x"}
    b_x = {"product_id": "B", "reason": "x", "price": Decimal("2.50")}
    a_x["price"] = None
    rows = [[a, b_x], [], [a, a_x]]
    known: dict[tuple[object, object], dict[str, object]] = {}
    lists = recommendation_lists(pa.array(rows, kind).slice(1), known)
    assert lists == [[], [a, a_x]] and set(known) == {("A", "complement"), ("A", "x")}
    again = recommendation_lists(pa.array(rows, kind), known)
    assert again == rows and again[0][0] is lists[1][0] is again[2][0]  # shared across rows and batches
    assert recommendation_lists(pa.array([[None, a]], kind), {}) == [[None, a]]  # a null rec stays None


def test_html_is_autoescaped_and_txt_is_not(tmp_path: Path) -> None:
    customers = """\
        customer_id,first_name,last_name,gender,language
        C1,Ann,O'Brien <b>&</b>,X,en
    """
    page = "<p>{{ customer.last_name }}</p>"
    ws = make_ws(tmp_path, {"note.html.j2": page, "plain.txt.j2": "{{ customer.last_name }}"})
    html = render_letters(make_db(tmp_path, customers, template="note"), ws, job(), tmp_path / "h")
    render_letters(make_db(tmp_path, customers, template="plain"), ws, job(), tmp_path / "t")
    assert html.paths == [tmp_path / "h" / "letters"]
    assert (tmp_path / "h" / "letters" / "C1.html").read_text(encoding="utf-8") == (
        "<p>O&#39;Brien &lt;b&gt;&amp;&lt;/b&gt;</p>"
    )
    assert (tmp_path / "t" / "letters" / "C1.txt").read_text(encoding="utf-8") == "O'Brien <b>&</b>"


def job(fmt: str = "files", only: set[str] | None = None) -> LetterJob:
    return LetterJob(campaign="winback", as_of=AS_OF, letters_format=fmt, only_ids=only)


def test_sandbox_escape_and_missing_variable_fail_one_letter_each(tmp_path: Path) -> None:
    template = """\
        {{ customer.first_name }}
        {% if customer.customer_id == 'C1' %}{{ ''.__class__.__mro__[1].__subclasses__() }}{% endif %}
        {% if customer.customer_id == 'C3' %}{{ customer.points }}{% endif %}
        {% if customer.customer_id == 'C4' %}{{ customer[customer.last_name] }}{% endif %}
    """
    ws = make_ws(tmp_path, {"winback.txt.j2": template})
    out = tmp_path / "out"
    result = render_letters(make_db(tmp_path), ws, job(), out)
    assert result.written == ["C2"]
    unsafe = "SecurityError: access to attribute '__class__' of 'str' object is unsafe."
    assert result.failed == [
        LetterFailure("C1", "winback.txt.j2", 2, unsafe),
        LetterFailure("C3", "winback.txt.j2", 3, "UndefinedError: 'dict object' has no attribute 'points'"),
        LetterFailure("C4", "winback.txt.j2", 4, "UndefinedError: 'dict object' has no attribute '***'"),
    ]  # fmt: skip
    assert result.paths == [out / "letters", out / "failed.csv"]
    assert [p.name for p in (out / "letters").iterdir()] == ["C2.txt"]
    assert (out / "failed.csv").read_text(encoding="utf-8") == textwrap.dedent("""\
        customer_id,template,line,error
        C1,winback.txt.j2,2,SecurityError: access to attribute '__class__' of 'str' object is unsafe.
        C3,winback.txt.j2,3,UndefinedError: 'dict object' has no attribute 'points'
        C4,winback.txt.j2,4,UndefinedError: 'dict object' has no attribute '***'
    """)


def test_syntax_error_stops_before_any_letter(tmp_path: Path) -> None:
    ws = make_ws(tmp_path, {"winback.txt.j2": "fine\n{{ customer.first_name }\n", "winback.pl.txt.j2": "ok"})
    with pytest.raises(BadInputError) as caught:
        render_letters(make_db(tmp_path), ws, job(), tmp_path / "out")
    assert caught.value.exit_code == EXIT_DATAERR
    assert caught.value.where == "templates/winback.txt.j2:2"
    assert not (tmp_path / "out").exists()


def test_a_language_without_template_or_default_fails_only_its_letters(tmp_path: Path) -> None:
    ws = make_ws(tmp_path, {"promo.pl.txt.j2": "{{ customer|salutation }}", "promo.cs.txt.j2": "cs"})
    result = render_letters(make_db(tmp_path, template="promo"), ws, job(), tmp_path / "out")
    assert result.written == ["C1", "C2"]
    error = "templates/promo.txt.j2: no template for language {!r} and no default; "
    error += "create templates/promo.txt.j2 as the fallback"
    assert result.failed == [
        LetterFailure("C3", "promo", None, error.format("ru")),
        LetterFailure("C4", "promo", None, error.format("en")),
    ]


def test_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    ws = make_ws(tmp_path, {"winback.txt.j2": "x"})
    with pytest.raises(UsageError, match="unknown format 'docx'"):
        render_letters(make_db(tmp_path), ws, job("docx"), tmp_path / "out")


@pytest.mark.parametrize(
    ("customer_id", "expected"),
    [
        ("C-001_a.b", "C-001_a.b"),
        ("../x", "_._x-d6b96a97"),
        ("a/b", "a_b-c14cddc0"),
        ("a_b", "a_b"),
        ("con", "_con-1143da2b"),
        ("LPT1.txt", "_LPT1.txt-38e9f3ec"),
        (".hidden", "_hidden-16924190"),
        ("", "_-e3b0c442"),
        ("Zażółć", "Za____-1b45560b"),
    ],
)
def test_safe_file_name(customer_id: str, expected: str) -> None:
    assert safe_file_name(customer_id) == expected


def test_safe_file_names_are_short_and_distinct() -> None:
    long_a, long_b = "x" * 300, "x" * 299 + "y"
    assert safe_file_name(long_a) != safe_file_name(long_b)
    assert len(safe_file_name(long_a)) == 209
    assert safe_file_name(long_a).startswith("x" * 200 + "-")
    ids = ["a/b", "a_b", "a:b", "a\\b", "../x", "_._x", "con", "_con", ".x", "_x"]
    assert len({safe_file_name(i) for i in ids}) == len(ids)


def test_only_ids_renders_just_those(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("crmlist.letters.recommend.RANGE_ROWS", 1)  # a query per target
    ws = make_ws(tmp_path, {"winback.txt.j2": "{{ customer.customer_id }}"})
    result = render_letters(make_db(tmp_path), ws, job(only={"C3", "C1", "nobody"}), tmp_path / "out")
    assert result.written == ["C1", "C3"]
    assert sorted(p.name for p in (tmp_path / "out" / "letters").iterdir()) == ["C1.txt", "C3.txt"]


# --- recommendations ---------------------------------------------------------------------------------

REC_TEMPLATE = "{% for r in recommendations %}{{ r.product_id }}:{{ r.reason }}:{{ r.price }};{% endfor %}"


def test_briefcase_gets_the_black_folder_first_and_never_a_bought_product(tmp_path: Path) -> None:
    ws = make_ws(tmp_path, {"winback.txt.j2": REC_TEMPLATE}, '[offers]\nexclude_categories = ["Gift-Cards"]\n')
    result = render_letters(make_db(tmp_path), ws, job("jsonl"), tmp_path / "out")
    texts = {r["customer_id"]: r["text"] for r in map(json.loads, result.paths[0].read_text().splitlines())}
    # C1, C2 bought the black briefcase: the brown one is the same category, the gift card is excluded
    assert texts["C1"] == "FLD-BLK:complement:49.00;FLD-BRN:complement:45.50;"
    assert texts["C2"] == texts["C1"]
    assert texts["C3"] == ""  # no complements, no co-purchase: no popularity fallback
    assert texts["C4"] == ""  # bought the brown folder, which complements nothing


WHY_TEMPLATE = "{% for r in recommendations %}{{ r.product_id }}<{{ r.because_id or '-' }}>{{ r.why }};{% endfor %}"


@pytest.mark.parametrize("unknown_anchor", [False, True])
def test_each_offer_says_which_bought_product_it_follows_from(tmp_path: Path, unknown_anchor: bool) -> None:
    """Letters of one batch share one dict per offer: the same product offered for two different bought
    products is two offers, each with its own why. A bought product missing from products (no name,
    no colour) still leads to co-purchases; then because_id and because are missing (None) and the why names none."""
    products = PRODUCTS.replace("PEN-1,Pen,pens,black,20.00,", "PEN-1,Pen,pens,black,20.00,FLD-BLK|FLD-BRN")
    purchases = PURCHASES
    if unknown_anchor:  # INK-9 is in no product row; six orders with FLD-BLK give it a lift of 36/6 = 6 > 1
        lines = [f"    K{i},Z,2026-02-01,{p},1.00" for i in range(6) for p in ("INK-9", "FLD-BLK")]
        lines += [f"    Y{i},Y,2026-02-01,PEN-1,1.00" for i in range(30)]
        purchases = PURCHASES.replace("O3,C3,2026-03-01,PEN-1,20.00", "O3,C3,2026-03-01,INK-9,20.00")
        purchases += "\n".join(lines) + "\n"
    ws = make_ws(tmp_path, {"winback.txt.j2": WHY_TEMPLATE}, "[offers]\nrecommend = 1\n")
    result = render_letters(
        make_db(tmp_path, purchases=purchases, products=products), ws, job("jsonl"), tmp_path / "out"
    )
    texts = {r["customer_id"]: r["text"] for r in map(json.loads, result.paths[0].read_text().splitlines())}
    assert texts["C1"] == "FLD-BLK<BAG-BLK>matches your Briefcase (black);"
    if unknown_anchor:
        assert texts["C3"] == "FLD-BLK<->often bought with what you bought;"
    else:
        assert texts["C3"] == "FLD-BLK<PEN-1>matches your Pen (black);"


def test_an_offer_two_bought_products_lead_to_equally_follows_from_the_first_by_product_id(tmp_path: Path) -> None:
    """A tie (the black folder is the first complement, same colour, of both the briefcase and the pen)
    names the bought product first in product_id order, on every run: letters are byte-identical."""
    products = PRODUCTS.replace(
        "BAG-BLK,Briefcase,bags,black,499.00,BAG-BRN|FLD-BRN|FLD-BLK|GIFT-1",
        "BAG-BLK,Briefcase,bags,black,499.00,FLD-BLK",
    )
    products = products.replace("PEN-1,Pen,pens,black,20.00,", "PEN-1,Pen,pens,black,20.00,FLD-BLK")
    purchases = PURCHASES + "    O9,C1,2026-02-01,PEN-1,20.00\n"
    ws = make_ws(tmp_path, {"winback.txt.j2": WHY_TEMPLATE}, "[offers]\nrecommend = 1\n")
    for attempt in range(3):
        con = make_db(tmp_path, purchases=purchases, products=products)
        con.execute(f"SET threads = {attempt + 1}")
        result = render_letters(con, ws, job("jsonl"), tmp_path / f"out{attempt}")
        texts = {r["customer_id"]: r["text"] for r in map(json.loads, result.paths[0].read_text().splitlines())}
        assert texts["C1"] == "FLD-BLK<BAG-BLK>matches your Briefcase (black);"
        assert texts["C3"] == "FLD-BLK<PEN-1>matches your Pen (black);"


@pytest.mark.parametrize(
    ("in_stock", "config", "expected"),
    [
        ("false", "", "FLD-BRN:complement:45.50;GIFT-1:complement:50.00;"),  # the black folder is sold out
        ("", "max_price = 46", "FLD-BRN:complement:45.50;"),  # a blank in_stock is in stock; 49.00 and 50.00 too dear
        ("true", "min_price = 46\nmax_price = 49", "FLD-BLK:complement:49.00;"),
    ],
)
def test_out_of_stock_and_outside_the_price_band_is_never_offered(
    tmp_path: Path, in_stock: str, config: str, expected: str
) -> None:
    lines = textwrap.dedent(PRODUCTS).splitlines()
    rows = [
        lines[0] + ",in_stock",
        *(f"{line},{in_stock if line.startswith('FLD-BLK') else 'true'}" for line in lines[1:]),
    ]
    ws = make_ws(tmp_path, {"winback.txt.j2": REC_TEMPLATE}, f"[offers]\n{config}\n")
    con = make_db(tmp_path, products="\n".join(rows) + "\n")
    result = render_letters(con, ws, job("jsonl"), tmp_path / "out")
    texts = {r["customer_id"]: r["text"] for r in map(json.loads, result.paths[0].read_text().splitlines())}
    assert texts["C1"] == expected


def test_recommend_count_and_exclusions(tmp_path: Path) -> None:
    purchases = PURCHASES + "    O5,C2,2026-02-01,FLD-BLK,49.00\n    O6,C1,2026-12-01,FLD-BLK,49.00\n"
    ws = make_ws(tmp_path, {"winback.txt.j2": REC_TEMPLATE}, "[offers]\nrecommend = 1\n")
    result = render_letters(make_db(tmp_path, purchases=purchases), ws, job("jsonl"), tmp_path / "out")
    texts = {r["customer_id"]: r["text"] for r in map(json.loads, result.paths[0].read_text().splitlines())}
    assert texts["C1"] == "FLD-BLK:complement:49.00;"  # O6 is after as-of: not bought yet
    assert texts["C2"] == "GIFT-1:complement:50.00;"  # bought a folder within 365 days: no folder at all
    ws = make_ws(tmp_path, {"winback.txt.j2": REC_TEMPLATE}, "[offers]\nrecommend = 1\ncategory_days = 0\n")
    result = render_letters(make_db(tmp_path, purchases=purchases), ws, job("jsonl"), tmp_path / "out2")
    texts = {r["customer_id"]: r["text"] for r in map(json.loads, result.paths[0].read_text().splitlines())}
    assert texts["C2"] == "FLD-BRN:complement:45.50;"  # category_days = 0: only the bought folder itself goes


@pytest.mark.parametrize("sliced", [False, True])
def test_co_purchase_by_lift_after_complements(tmp_path: Path, sliced: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if sliced:  # a statement per target and lift counted over slices of the orders: the same letters
        monkeypatch.setattr("crmlist.letters.recommend.RANGE_ROWS", 1)
        monkeypatch.setattr("crmlist.letters.recommend.LIFT_SLICE_ROWS", 7)
    # 36 orders. Five P orders hold PEN-1, FLD-BLK, FLD-BRN and BAG-BRN; two more hold FLD-BRN, 25 more
    # BAG-BRN. Lift with PEN-1 (6 orders, with C3's O3): FLD-BLK 5*36/(6*5) = 6, FLD-BRN 5*36/(6*7) = 4.29,
    # BAG-BRN 5*36/(6*30) = 1 exactly, which is not > 1. PEN-1 also lists FLD-BRN as a complement.
    lines = [f"    P{i},Z,2026-02-01,{p},1.00" for i in range(5) for p in ("PEN-1", "FLD-BLK", "FLD-BRN", "BAG-BRN")]
    lines += [f"    R{i},Z,2026-02-01,FLD-BRN,1.00" for i in range(2)]
    lines += [f"    Q{i},Z,2026-02-01,BAG-BRN,1.00" for i in range(25)]
    purchases = PURCHASES + "\n".join(lines) + "\n"
    products = PRODUCTS.replace("PEN-1,Pen,pens,black,20.00,", "PEN-1,Pen,pens,black,20.00,FLD-BRN")
    ws = make_ws(tmp_path, {"winback.txt.j2": REC_TEMPLATE})
    con = make_db(tmp_path, purchases=purchases, products=products)
    con.execute("SET threads = 13")  # the ranges run on the cores the workers leave; the setting comes back
    result = render_letters(con, ws, job("jsonl"), tmp_path / "out")
    texts = {r["customer_id"]: r["text"] for r in map(json.loads, result.paths[0].read_text().splitlines())}
    # the complement comes first and FLD-BRN appears once, at its best position
    assert texts["C3"] == "FLD-BRN:complement:45.50;FLD-BLK:co-purchase:49.00;"
    # C4 bought FLD-BRN: FLD-BLK is the same category, BAG-BRN has lift 5*36/(7*30) < 1
    assert texts["C4"] == "PEN-1:co-purchase:20.00;"
    assert texts["C1"] == "FLD-BLK:complement:49.00;FLD-BRN:complement:45.50;GIFT-1:complement:50.00;"
    assert con.execute("SELECT current_setting('threads')").fetchall() == [(13,)]
    assert "letter_recommendation_lift_baskets" not in {r[0] for r in con.execute("SHOW ALL TABLES").fetchall()}


def test_ranges_of_targets_with_a_short_first_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("crmlist.letters.recommend.RANGE_ROWS", 5)
    monkeypatch.setattr("crmlist.letters.recommend.FIRST_RANGE_ROWS", 2)
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT printf('C%02d', 12 - i) AS customer_id FROM range(12) AS r(i)")
    con.execute("INSERT INTO t VALUES (NULL)")
    assert range_bounds(range_starts(con, "t")) == [
        {"lo": "C01", "hi": "C03"}, {"lo": "C03", "hi": "C06"}, {"lo": "C06", "hi": "C11"}, {"lo": "C11"}
    ]  # fmt: skip
    monkeypatch.setattr("crmlist.letters.recommend.FIRST_RANGE_ROWS", 5)  # not shorter: no extra cut
    assert range_starts(con, "t") == ["C01", "C06", "C11"]


def test_compute_recommendations_ranks_every_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("crmlist.letters.recommend.RANGE_ROWS", 3)  # two statements for four targets
    ws = make_ws(tmp_path, {}, "[offers]\nrecommend = 2\n")
    con = make_db(tmp_path)
    table = compute_recommendations(con, ws)
    rows = con.execute(f"SELECT * FROM {table} ORDER BY customer_id, rank").fetchall()
    folders = {"FLD-BLK": ("black", Decimal("49.00")), "FLD-BRN": ("brown", Decimal("45.50"))}
    briefcase = ("BAG-BLK", "Briefcase", "black")  # the bought product each offer follows from, and its colour
    assert rows == [
        (customer, rank, folder, "Folder", "folders", *folders[folder], "complement", *briefcase)
        for customer in ("C1", "C2")
        for rank, folder in ((1, "FLD-BLK"), (2, "FLD-BRN"))
    ]
    con.execute("DELETE FROM letter_targets")
    assert con.execute(f"SELECT count(*) FROM {compute_recommendations(con, ws)}").fetchall() == [(0,)]


def test_recommend_zero_gives_no_recommendations(tmp_path: Path) -> None:
    ws = make_ws(tmp_path, {"winback.txt.j2": REC_TEMPLATE}, "[offers]\nrecommend = 0\n")
    result = render_letters(make_db(tmp_path), ws, job("jsonl"), tmp_path / "out")
    assert [json.loads(line)["text"] for line in result.paths[0].read_text().splitlines()] == ["", "", "", ""]


def _reference_recommendations(
    products: list[dict[str, Any]],
    purchases: list[tuple[str, str, dt.date, str]],
    n: int,
    exclude: set[str],
    days: int = 365,
) -> dict[str, list[tuple[str, str]]]:
    """The recommendation rules of README "Writing letters", one customer at a time, in plain Python."""
    by_id = {p["product_id"]: p for p in products}
    nums = {pid: i for i, pid in enumerate(sorted(by_id), start=1)}
    low = {pid: ((p["category"] or "").lower() or None, (p["color"] or "").lower() or None) for pid, p in by_id.items()}
    seen = [(o, c, pid) for o, c, day, pid in purchases if day <= AS_OF]
    baskets: dict[str, set[str]] = {}
    for order, _, pid in seen:
        baskets.setdefault(order, set()).add(pid)
    orders = len(baskets)
    holding = {pid: sum(pid in b for b in baskets.values()) for pid in {p for _, _, p in seen}}
    lift: dict[str, list[tuple[str, float]]] = {}
    for a in holding:
        for b in holding:
            both = sum(a in x and b in x for x in baskets.values())
            if a != b and both >= 5 and holding[a] >= 5 and holding[b] >= 5 and both * orders > holding[a] * holding[b]:
                lift.setdefault(a, []).append((b, float(both) * orders / (float(holding[a]) * holding[b])))
    offered = {pid for pid, (cat, _) in low.items() if cat not in exclude}
    result = {}
    for customer in sorted({c for _, c, _ in seen}):
        bought = {pid for _, c, pid in seen if c == customer}
        lately = {pid for _, c, day, pid in purchases if c == customer and AS_OF - dt.timedelta(days) < day <= AS_OF}
        blocked = {low[pid][0] for pid in lately if pid in low} - {None}
        best: dict[str, tuple[Any, ...]] = {}
        for a in bought:
            a_cat, a_color = low.get(a, (None, None))
            keys = [
                ((1, 0 if a_color is not None and low[o][1] == a_color else 1, pos), o)
                for pos, o in enumerate(by_id[a]["complements"] if a in by_id else [], start=1)
                if o in offered
            ] + [((2, 0, -value), o) for o, value in lift.get(a, []) if o in offered]
            for rank, o in keys:
                if (a_cat is not None and low[o][0] == a_cat) or low[o][0] in blocked:
                    continue
                key = (*rank, nums[o])
                best[o] = min(best.get(o, key), key)
        ranked = sorted((key, o) for o, key in best.items() if o not in bought)[:n]
        result[customer] = [(o, "complement" if key[0] == 1 else "co-purchase") for key, o in ranked]
    return {c: recs for c, recs in result.items() if recs}


@pytest.mark.parametrize(("seed", "n", "days"), [(1, 3, 365), (2, 1, 0), (3, 5, 120), (4, 2, 365), (5, 4, 30)])
def test_recommendations_match_the_rules_on_random_baskets(
    tmp_path: Path, seed: int, n: int, days: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random catalogues, complements and baskets (long co-purchase lists, customers who bought what
    their products lead to): the SQL gives exactly what the rules give, over several ranges."""
    monkeypatch.setattr("crmlist.letters.recommend.RANGE_ROWS", 7)
    monkeypatch.setattr("crmlist.letters.recommend.FIRST_RANGE_ROWS", 3)
    rnd = random.Random(seed)
    ids = [f"P{i:02d}" for i in range(24)]
    products = [
        {
            "product_id": pid,
            "category": rnd.choice(["Bags", "bags", "pens", "cards", "", "ink"]),
            "color": rnd.choice(["black", "Black", "brown", ""]),
            "complements": rnd.sample([*ids, "NOPE"], rnd.randint(0, 3)),
        }
        for pid in ids
    ]
    themes = [ids[0:4], ids[4:8], ids[8:12]]  # most orders keep to one: their pairs have lift > 1
    purchases = [
        (f"O{o}", f"C{rnd.randint(1, 150):03d}", AS_OF - dt.timedelta(days=rnd.randint(-20, 400)), pid)
        for o in range(400)
        for pid in rnd.sample(rnd.choice(themes) if rnd.random() < 0.8 else ids, rnd.randint(1, 4))
    ]
    product_csv = "product_id,name,category,color,price,complements\n" + "".join(
        f"{p['product_id']},Item,{p['category']},{p['color']},1.00,{'|'.join(p['complements'])}\n" for p in products
    )
    purchase_csv = "order_id,customer_id,order_date,product_id,amount\n" + "".join(
        f"{o},{c},{day},{pid},1.00\n" for o, c, day, pid in purchases
    )
    customer_csv = "customer_id,language\n" + "".join(f"C{i:03d},pl\n" for i in range(1, 151))
    config = f'[offers]\nrecommend = {n}\nexclude_categories = ["Cards"]\ncategory_days = {days}\n'
    ws = make_ws(tmp_path, {}, config)
    con = make_db(tmp_path, customers=customer_csv, purchases=purchase_csv, products=product_csv)
    table = compute_recommendations(con, ws)
    rows = con.execute(f"SELECT customer_id, product_id, reason FROM {table} ORDER BY customer_id, rank").fetchall()
    got: dict[str, list[tuple[str, str]]] = {}
    for customer, pid, reason in rows:
        got.setdefault(customer, []).append((pid, reason))
    expected = _reference_recommendations(products, purchases, n, {"cards"}, days)
    assert got == expected
    assert sum(len(v) for v in got.values()) > 20  # the random data does reach the rules
    assert any(reason == "co-purchase" for recs in got.values() for _, reason in recs)


# --- writers -----------------------------------------------------------------------------------------

EML = """\
    Subject: {{ offer }} für {{ customer.first_name }}
    From: {{ sender.email }}

    {{ customer|salutation }},
    From now on: {{ customer.monetary|money }}, {{ sender.name }}.
"""


def test_jsonl_bundle_content(tmp_path: Path) -> None:
    config = 'currency = "PLN"\n[sender]\nname = "Sklep & Syn"\nemail = "shop@example.com"\n'
    ws = make_ws(tmp_path, {"winback.eml.j2": EML, "winback.cs.eml.j2": "Subject: Sleva\n\nAhoj"}, config)
    result = render_letters(make_db(tmp_path, template="winback.eml"), ws, job("jsonl"), tmp_path / "out")
    assert result.paths == [tmp_path / "out" / "letters.jsonl"]
    records = [json.loads(line) for line in result.paths[0].read_text(encoding="utf-8").splitlines()]
    assert records[0] == {
        "customer_id": "C1",
        "campaign": "winback",
        "cell": "std",
        "offer": "STD10",
        "language": "pl",
        "template": "winback.eml.j2",
        "subject": "STD10 für Jan",
        "text": "Subject: STD10 für Jan\nFrom: shop@example.com\n\nSzanowny Panie Kowalski,\n"
        "From now on: 499,00\xa0zł, Sklep & Syn.",  # a plain-text message: nothing HTML-escaped
    }
    assert [(r["customer_id"], r["template"], r["subject"], r["text"]) for r in records[1:2]] == [
        ("C2", "winback.cs.eml.j2", "Sleva", "Subject: Sleva\n\nAhoj")
    ]
    assert [r["customer_id"] for r in records] == ["C1", "C2", "C3", "C4"]


def test_mbox_keeps_eml_headers_as_mime_fields(tmp_path: Path) -> None:
    config = '[sender]\nname = "Sklep & Syn"\nemail = "shop@example.com"\n'
    ws = make_ws(tmp_path, {"winback.eml.j2": EML}, config)
    result = render_letters(make_db(tmp_path), ws, job("mbox", only={"C4"}), tmp_path / "out")
    message_id = hashlib.sha256(b"winback\x002026-11-01\x00C4").hexdigest()[:32]  # README: the same on every run
    assert result.paths[0].read_text(encoding="utf-8") == textwrap.dedent(f"""\
        From crmlist Sun Nov  1 00:00:00 2026
        X-Crmlist-Customer-Id: C4
        X-Crmlist-Campaign: winback
        X-Crmlist-Cell: std
        X-Crmlist-Offer: STD10
        Subject: STD10 =?utf-8?q?f=C3=BCr?= Alex
        From: shop@example.com
        To: Alex Smith <alex@example.com>
        Date: Sun, 01 Nov 2026 00:00:00 +0000
        Message-ID: <{message_id}@example.com>
        Content-Type: text/plain; charset="utf-8"
        Content-Transfer-Encoding: 8bit
        MIME-Version: 1.0

        Dear Alex Smith,
        >From now on: €45.50, Sklep & Syn.

    """)


HTML_EML = """\
    Subject: {{ offer }} & more for {{ customer.first_name }} <3
    Reply-To: {{ sender.name }} <help@example.com>
    Content-Type: text/html

    <p>{{ customer|salutation }},</p><p>{{ sender.name }} & {{ customer.last_name }}</p>
"""


def test_eml_files_parse_back_as_the_messages_meant_in_every_language(tmp_path: Path) -> None:
    """Each .eml file read back by Python's email parser (policy.default): decoded headers as written,
    never HTML-escaped (the HTML body is), the defaults added, CRLF line ends, the body in UTF-8."""
    config = (
        '[sender]\nname = "Sklep & Syn Łódź"\nemail = "shop@example.com"\n'
        'unsubscribe = "https://shop.example/unsubscribe?id={customer_id}"\n'
    )
    ws = make_ws(tmp_path, {"winback.eml.j2": HTML_EML}, config)
    result = render_letters(make_db(tmp_path, template="winback.eml"), ws, job("files"), tmp_path / "out")
    assert result.failed == [] and len(result.written) == 4
    expected = {
        "C1": ("Jan", "Jan Kowalski <jan@example.com>", "Szanowny Panie Kowalski", "Kowalski"),
        "C2": ("Jana", "Jana Nováková <jana@example.com>", "Vážená paní Nováková", "Nováková"),
        "C3": ("Иван", "Иван Петров <ivan@example.com>", "Уважаемый Иван Петров", "Петров"),
        "C4": ("Alex", "Alex Smith <alex@example.com>", "Dear Alex Smith", "Smith"),
    }
    for customer_id, (first, to, greeting, last) in expected.items():
        raw = (tmp_path / "out" / "letters" / f"{customer_id}.eml").read_bytes()
        assert b"\r" not in raw.replace(b"\r\n", b"") and raw.count(b"\r\n") > 8
        head = raw.split(b"\r\n\r\n", 1)[0]
        assert head.isascii() and max(map(len, head.split(b"\r\n"))) <= 78  # encoded words, folded lines
        msg = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
        assert str(msg["Subject"]) == f"STD10 & more for {first} <3"
        assert str(msg["Reply-To"]) == "Sklep & Syn Łódź <help@example.com>"
        assert str(msg["From"]) == "Sklep & Syn Łódź <shop@example.com>"
        assert str(msg["To"]) == to and msg["To"].addresses[0].addr_spec == to.split("<")[1].rstrip(">")
        assert msg["Date"].datetime == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
        digest = hashlib.sha256(f"winback\0{AS_OF}\0{customer_id}".encode()).hexdigest()[:32]
        assert msg["Message-ID"] == f"<{digest}@example.com>"
        assert msg["List-Unsubscribe"] == f"<https://shop.example/unsubscribe?id={customer_id}>"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg.get_content_type() == "text/html" and msg.get_content_charset() == "utf-8"
        body = msg.get_content()
        assert body.startswith(f"<p>{greeting},</p>")
        assert f"<p>Sklep &amp; Syn Łódź & {last}</p>" in body  # the HTML body's values are escaped


@pytest.mark.parametrize("fmt", ["files", "jsonl", "mbox", "zip"])
def test_rerender_is_byte_identical(tmp_path: Path, fmt: str) -> None:
    ws = make_ws(tmp_path, {"winback.txt.j2": "{{ customer|salutation }}\nFrom {{ as_of|date }}\n"})
    first = render_letters(make_db(tmp_path), ws, job(fmt), tmp_path / "a")
    second = render_letters(make_db(tmp_path), ws, job(fmt), tmp_path / "b")
    files_a = sorted(p for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert [p.relative_to(tmp_path / "a") for p in files_a] == [p.relative_to(tmp_path / "b") for p in files_b]
    assert all(filecmp.cmp(a, b, shallow=False) for a, b in zip(files_a, files_b, strict=True))
    assert [p.relative_to(tmp_path / "a") for p in first.paths] == [p.relative_to(tmp_path / "b") for p in second.paths]
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]  # no temporary files left
    if fmt == "mbox":  # mboxrd: a body line starting "From " is quoted
        assert b"\nDear Alex Smith\n>From November 1, 2026\n\n" in first.paths[0].read_bytes()
    if fmt == "zip":
        names = zipfile.ZipFile(first.paths[0]).namelist()
        assert names == ["letters/C1.txt", "letters/C2.txt", "letters/C3.txt", "letters/C4.txt"]


# --- golden letters ----------------------------------------------------------------------------------

GOLDEN_TEMPLATES = {
    "winback.txt.j2": """\
        {{ customer|salutation }},

        since {{ customer.first_purchase_date|date }} you have spent {{ customer.monetary|money('USD') }}.
        {% for r in recommendations %}- {{ r.name }} ({{ r.color }}), {{ r.price|money('USD') }}
        {% endfor %}Use {{ offer }} by {{ as_of|date }}.
        {{ sender.name }}
    """,
    "winback.pl.txt.j2": """\
        {{ customer|salutation }},

        od {{ customer.first_purchase_date|date }} wydał Pan u nas {{ customer.monetary|money }}
        ({{ customer.frequency }} {{ customer.frequency|plural('zamówienie', 'zamówienia', 'zamówień') }}).
        {% for r in recommendations %}- {{ r.name }}{% if r.color %} ({{ r.color }}){% endif %}, {{ r.price|money }}
        {% endfor %}Kod {{ offer }} do {{ as_of|date }}.
        {{ sender.name }}
    """,
    "winback.cs.txt.j2": """\
        {{ customer|salutation }},

        od {{ customer.first_purchase_date|date }} jste u nás utratila {{ customer.monetary|money('CZK') }}.
        {% for r in recommendations %}- {{ r.name }}, {{ r.price|money('CZK') }}
        {% endfor %}Kód {{ offer }} platí do {{ as_of|date('short') }}.
    """,
    "winback.ru.txt.j2": """\
        {{ customer|salutation }}!

        С {{ customer.first_purchase_date|date }} вы потратили {{ customer.monetary|money('RUB') }}.
        {{ 5|plural(one='балл', few='балла', many='баллов') }}
    """,
}


def test_golden_letters(tmp_path: Path) -> None:
    """The letters byte for byte as committed in tests/golden/letters/, which a person read and found right
    (see tests/golden/README.md). CRMLIST_REGENERATE_GOLDEN=1 rewrites them and skips the comparison."""
    config = 'locale = "en"\ncurrency = "PLN"\n[sender]\nname = "Sklep Łódź"\nemail = "shop@example.com"\n'
    ws = make_ws(tmp_path, GOLDEN_TEMPLATES, config)
    out = tmp_path / "out"
    files = render_letters(make_db(tmp_path), ws, job("files"), out)
    mbox = render_letters(make_db(tmp_path), ws, job("mbox"), out)
    assert files.paths == [out / "letters"]
    produced = {p.name: p.read_bytes() for p in [*sorted(files.paths[0].iterdir()), *mbox.paths]}
    assert sorted(produced) == ["C1.txt", "C2.txt", "C3.txt", "C4.txt", "letters.mbox"]
    if REGENERATE:
        write_golden(produced)
        pytest.skip(f"rewrote {GOLDEN}: read `git diff {GOLDEN}`, then run again without CRMLIST_REGENERATE_GOLDEN")
    committed = {p.name: p.read_bytes() for p in sorted(GOLDEN.iterdir())}
    assert sorted(committed) == sorted(produced)  # none missing, none left over
    for name, data in produced.items():
        assert data == committed[name], f"{name} changed; if on purpose: CRMLIST_REGENERATE_GOLDEN=1, then review"


def write_golden(produced: Mapping[str, bytes]) -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for stale in set(p.name for p in GOLDEN.iterdir()) - set(produced):
        (GOLDEN / stale).unlink()
    for name, data in produced.items():
        (GOLDEN / name).write_bytes(data)


def test_golden_mbox_holds_the_golden_files_each_to_its_customer() -> None:
    """The committed mbox read by the standard library: one message per golden letter, addressed to that
    customer from the sender, with the campaign's offer, its body the letter's file and a newline."""
    emails = {"C1": "jan@example.com", "C2": "jana@example.com", "C3": "ivan@example.com", "C4": "alex@example.com"}
    messages = list(mailbox.mbox(GOLDEN / "letters.mbox", create=False))
    assert [m["X-Crmlist-Customer-Id"] for m in messages] == list(emails)
    for message in messages:
        customer = message["X-Crmlist-Customer-Id"]
        assert str(make_header(decode_header(message["From"]))) == "Sklep Łódź <shop@example.com>"
        assert (message["To"], message["X-Crmlist-Campaign"], message["X-Crmlist-Offer"]) == (
            emails[customer],
            "winback",
            "STD10",
        )
        body = message.get_payload(decode=True)
        assert body == (GOLDEN / f"{customer}.txt").read_bytes() + b"\n", customer


TEXT_PART = "Subject: {{ offer }} dla {{ customer.first_name }}\n\n{{ customer|salutation }}, kod {{ offer }}.\n"
HTML_PART = "<p>{{ customer|salutation }}, <b>{{ offer }}</b> &amp; {{ sender.name }}</p>\n"


def test_an_eml_letter_with_an_html_template_is_multipart_alternative_and_arrives_as_sent(tmp_path: Path) -> None:
    """NAME.eml.j2 and NAME.html.j2 of the same language: one message, the text part first and the HTML
    part last (RFC 2046); a language with an eml template of its own and no HTML one gets a single part.
    The mbox, delivered message by message to a local SMTP server (aiosmtpd), arrives unchanged."""
    aiosmtpd = pytest.importorskip("aiosmtpd.controller")
    templates = {"winback.eml.j2": TEXT_PART, "winback.html.j2": HTML_PART, "winback.cs.eml.j2": TEXT_PART}
    ws = make_ws(tmp_path, templates, '[sender]\nname = "Sklep & Syn"\nemail = "shop@example.com"\n')
    result = render_letters(make_db(tmp_path, template="winback.eml"), ws, job("mbox"), tmp_path / "out")
    assert result.failed == [] and len(result.written) == 4
    messages = {m["X-Crmlist-Customer-Id"]: m for m in mailbox.mbox(result.paths[0], create=False)}
    parsed = {
        cid: email.parser.BytesParser(policy=email.policy.default).parsebytes(m.as_bytes())
        for cid, m in messages.items()
    }
    for cid in ("C1", "C3", "C4"):
        msg = parsed[cid]
        assert msg.get_content_type() == "multipart/alternative", cid
        parts = list(msg.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
        assert parts[0].get_content().endswith(", kod STD10.\n")
        assert parts[1].get_content().endswith("<b>STD10</b> &amp; Sklep &amp; Syn</p>\n")
    assert str(parsed["C3"]["Subject"]) == "STD10 dla Иван"
    assert parsed["C3"].get_body(("html",)).get_content().startswith("<p>Уважаемый Иван Петров, ")
    assert parsed["C2"].get_content_type() == "text/plain"  # cs: its own eml template, no cs HTML one
    assert parsed["C2"].get_content() == "Vážená paní Nováková, kod STD10.\n"

    arrived: list[bytes] = []

    class Keep:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            arrived.append(envelope.original_content)
            return "250 OK"

    with socket.socket() as probe:  # a free port for the server
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = aiosmtpd.Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for cid in sorted(messages):
                to = parsed[cid]["To"].addresses[0].addr_spec
                smtp.sendmail("shop@example.com", [to], messages[cid].as_bytes(policy=email.policy.SMTP))  # CRLF
    finally:
        controller.stop()
    assert len(arrived) == 4
    for cid, raw in zip(sorted(messages), arrived, strict=True):
        got = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
        sent = parsed[cid]
        for header in ("Subject", "From", "To", "Date", "Message-ID", "X-Crmlist-Customer-Id"):
            assert str(got[header]) == str(sent[header]), (cid, header)
        assert [p.get_content().replace("\r\n", "\n") for p in got.walk() if not p.is_multipart()] == [
            p.get_content() for p in sent.walk() if not p.is_multipart()
        ]
