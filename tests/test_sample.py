"""The bundled sample data, the skeleton's config, rule files and templates that `crmlist init` writes."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import math
import tomllib
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from jinja2 import meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from crmlist.errors import OutputError
from crmlist.sample import write_sample_data

ROOT = Path(__file__).resolve().parents[1]
SKELETON = ROOT / "crmlist" / "skeleton"
FILES = ("customers.csv", "products.csv", "purchases.csv", "suppressions.csv")
COMMITTED = (*FILES, "responses.csv")  # sample_data/: the generated files and the responses to the demo
CAMPAIGNS = ("briefcase_crosssell", "digital_tv", "winback")
# DESIGN.md section 6: the letter context and filters, nothing else.
CONTEXT = {"customer", "campaign", "cell", "offer", "channel", "as_of", "sender", "recommendations"}
LETTER_FILTERS = {
    "briefcase_crosssell": {"salutation", "date", "money"},
    "digital_tv": {"salutation", "plural"},
    "winback": {"salutation", "date", "money", "plural"},
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    folder = tmp_path_factory.mktemp("sample")
    return folder, write_sample_data(folder)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_row_counts_are_returned_per_file(generated: tuple[Path, dict[str, int]]) -> None:
    folder, counts = generated
    assert counts == {"customers.csv": 2000, "products.csv": 61, "purchases.csv": 19517, "suppressions.csv": 40}
    assert {name: len(read_rows(folder / name)) for name in FILES} == counts
    assert sum((folder / name).stat().st_size for name in FILES) < 1_500_000


def test_script_regenerates_the_committed_files(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_sample_data", ROOT / "scripts" / "make_sample_data.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(tmp_path / "again")]) == 0
    assert script.main([]) == 2
    # The committed files are the reviewed answer (test_committed_* below check them against the
    # generator's rules); if this fails on purpose: python scripts/make_sample_data.py sample_data
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == sorted(COMMITTED)
    for name in COMMITTED:
        assert (tmp_path / "again" / name).read_bytes() == (ROOT / "sample_data" / name).read_bytes(), name


def test_another_seed_gives_other_data(generated: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    write_sample_data(tmp_path, seed=1)
    assert (tmp_path / "customers.csv").read_bytes() != (generated[0] / "customers.csv").read_bytes()


def test_unwritable_folder_is_an_output_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder", encoding="utf-8")
    with pytest.raises(OutputError) as caught:
        write_sample_data(tmp_path / "taken" / "sample")
    assert (caught.value.exit_code, caught.value.what) == (73, "cannot write sample data: Not a directory")


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_files_are_plain_utf8_with_newlines(name: str) -> None:
    committed = (ROOT / "sample_data" / name).read_bytes()
    committed.decode("utf-8")
    assert not committed.startswith(b"\xef\xbb\xbf")
    assert b"\r" not in committed and committed.endswith(b"\n")


@pytest.fixture(scope="module")
def committed() -> Iterator[duckdb.DuckDBPyConnection]:
    """The committed CSV files as text views in a fresh DuckDB: SQL written here, none of crmlist's code."""
    con = duckdb.connect()
    for name in COMMITTED:
        path = str(ROOT / "sample_data" / name)
        con.execute(f"CREATE VIEW {name[:-4]} AS SELECT * FROM read_csv('{path}', all_varchar = true, header = true)")
    yield con
    con.close()


def within_binomial(count: int, n: int, p: float) -> bool:
    """count is within 4 standard deviations of n draws with chance p (the generator's documented weight)."""
    return abs(count - n * p) <= 4 * math.sqrt(n * p * (1 - p))


def test_committed_customers_follow_the_generators_rules(committed: duckdb.DuckDBPyConnection) -> None:
    """crmlist/sample: 2000 customers numbered 000001 on, languages by weight 50/20/12/18 and their countries,
    sign-ups 2018-01-01 to 7 days before the as-of date, blanks at their documented rates, households only
    where two people share one, and the CRM's loyalty tier by all-time spend."""
    one = lambda sql: committed.sql(sql).fetchall()  # noqa: E731
    assert one("SELECT count(*), count(DISTINCT customer_id), min(customer_id), max(customer_id) FROM customers") == [
        (2000, 2000, "000001", "002000")
    ]
    assert one("SELECT min(signup_date) >= '2018-01-01', max(signup_date) <= '2026-10-25' FROM customers") == [
        (True, True)
    ]
    countries = one("SELECT language, list(DISTINCT country ORDER BY country) FROM customers GROUP BY 1 ORDER BY 1")
    assert countries == [("cs", ["CZ"]), ("en", ["GB", "IE", "US"]), ("pl", ["PL"]), ("ru", ["RU"])]
    languages = dict(one("SELECT language, count(*) FROM customers GROUP BY 1"))
    for language, weight in {"pl": 0.50, "cs": 0.20, "ru": 0.12, "en": 0.18}.items():
        assert within_binomial(languages[language], 2000, weight), (language, languages[language])
    blanks = one("SELECT count(*) - count(email), count(*) - count(phone), count(*) - count(birth_date), "
                 "count(*) - count(street) FROM customers")[0]  # fmt: skip
    for column, count, rate in zip(
        ("email", "phone", "birth_date", "street"), blanks, (0.07, 0.10, 0.03, 0.03), strict=True
    ):
        assert within_binomial(count, 2000, rate), (column, count)
    # a household id only where two or more records live at one address
    households = "SELECT household_id, count(*) AS n, count(DISTINCT (street, postal_code, city)) AS a FROM customers"
    assert one(f"{households} WHERE household_id IS NOT NULL GROUP BY 1 HAVING n < 2 OR a > 1") == []
    never = one("SELECT count(*) FROM customers WHERE customer_id NOT IN (SELECT customer_id FROM purchases)")[0][0]
    assert within_binomial(never, 2000, 0.14), never  # the "never" segment, weight 14 of 100
    tiers = """
        SELECT c.customer_id FROM customers AS c LEFT JOIN (
            SELECT customer_id, sum(CAST(amount AS DECIMAL(18, 2))) AS spent FROM purchases GROUP BY 1
        ) AS p USING (customer_id)
        WHERE c.loyalty_tier IS DISTINCT FROM CASE WHEN p.spent >= 2500 THEN 'gold' WHEN p.spent >= 800 THEN 'silver'
                                                   WHEN p.spent >= 0 THEN 'bronze' END
    """
    assert one(tiers) == []


# The generator's documented suppression kinds (crmlist/sample/__init__.py): (channels, reasons) per key.
SUPPRESSION_KINDS = {
    "email": (("email", "all", ""), ("unsubscribed", "spam complaint", "hard bounce")),
    "phone": (("all", ""), ("asked not to be called", "STOP reply to SMS")),
    "customer_id": (("all", "mail", ""), ("deceased", "objection to marketing (GDPR art. 21)")),
    "address": (("mail", "all"), ("returned mail: moved away", "returned mail: addressee unknown")),
}


def test_committed_purchases_and_suppressions_follow_the_generators_rules(
    committed: duckdb.DuckDBPyConnection,
) -> None:
    """Purchases: known customers and products, 2023-11-02 (three years back) to the day before the as-of,
    never before sign-up, order ids numbered by date, a line's category blank (about 4%) or its product's.
    Suppressions: 36 customers by one key each, with a reason and channel of that key's kind, and 4 people on
    the national opt-out list who are no customers; added from 2024-01-01 to 2 days before the as-of."""
    one = lambda sql: committed.sql(sql).fetchall()  # noqa: E731
    lines = """
        SELECT count(*), count(r.product_id), count(c.customer_id), count(*) FILTER (p.order_date < c.signup_date),
               min(p.order_date), max(p.order_date), count(*) FILTER (p.category IS NULL),
               count(*) FILTER (p.category <> r.category)
        FROM purchases AS p LEFT JOIN products AS r USING (product_id) LEFT JOIN customers AS c USING (customer_id)
    """
    n, with_product, with_customer, before_signup, first, last, blank, other = one(lines)[0]
    assert (with_product, with_customer, before_signup, first, last, other) == (n, n, 0, "2023-11-02", "2026-10-31", 0)
    assert within_binomial(blank, n, 0.04), blank
    orders = one("""
        SELECT count(*), max(CAST(substr(order_id, 2) AS INTEGER)), count(*) FILTER (customers > 1 OR days > 1),
               count(*) FILTER (day < before)
        FROM (SELECT *, lag(day) OVER (ORDER BY order_id) AS before FROM (
              SELECT order_id, count(DISTINCT customer_id) AS customers, count(DISTINCT order_date) AS days,
                     min(order_date) AS day FROM purchases GROUP BY 1))
    """)[0]  # fmt: skip
    assert orders == (orders[0], orders[0], 0, 0)  # O00001 to the last one, one customer and day each, by date
    kinds = """
        SELECT CASE WHEN customer_id IS NOT NULL THEN 'customer_id' WHEN email IS NOT NULL THEN 'email'
                    WHEN phone IS NOT NULL THEN 'phone' WHEN street IS NOT NULL AND postal_code IS NOT NULL
                     AND city IS NOT NULL AND country IS NOT NULL THEN 'address' END AS kind,
               reason = 'national opt-out list' AS opt_out, channel, reason,
               (customer_id IS NOT NULL)::INT + (email IS NOT NULL)::INT + (phone IS NOT NULL)::INT
               + (coalesce(street, postal_code, city, country) IS NOT NULL)::INT AS keys
        FROM suppressions
    """
    assert one(f"SELECT count(*) FROM ({kinds}) WHERE keys <> 1 OR kind IS NULL") == [(0,)]  # one whole key each
    rows = one(f"SELECT kind, opt_out, coalesce(channel, ''), reason FROM ({kinds})")
    assert len(rows) == 40 and sum(opt_out for _, opt_out, _, _ in rows) == 4
    assert all(kind == "email" and channel in ("all", "") for kind, opt_out, channel, _ in rows if opt_out)
    for kind, opt_out, channel, reason in rows:
        if not opt_out:
            channels, reasons = SUPPRESSION_KINDS[kind]
            assert channel in channels and reason in reasons, (kind, channel, reason)
    opt_outs = one("SELECT email FROM suppressions WHERE reason = 'national opt-out list'")
    assert sorted(e.strip() for (e,) in opt_outs) == [f"No.Marketing{n}@Example.COM" for n in range(1, 5)]
    assert one("SELECT count(*) FROM suppressions WHERE customer_id NOT IN (SELECT customer_id FROM customers)") == [
        (0,)
    ]
    added = one("SELECT min(added_at) >= '2024-01-01 07', max(added_at) <= '2026-10-30 21', "
                "bool_and(added_at >= coalesce(before, '')) FROM (SELECT added_at, lag(added_at) OVER () AS before "
                "FROM suppressions)")  # fmt: skip
    assert added == [(True, True, True)]


def test_amounts_are_exactly_quantity_times_unit_price(generated: tuple[Path, dict[str, int]]) -> None:
    rows = read_rows(generated[0] / "purchases.csv")
    for row in rows:
        amount, unit_price = Decimal(row["amount"]), Decimal(row["unit_price"])
        assert amount == Decimal(row["quantity"]) * unit_price, row["order_id"]
        assert amount.as_tuple().exponent == unit_price.as_tuple().exponent == -2, row["order_id"]
    assert {row["currency"] for row in rows} == {"PLN"}
    dates = sorted(row["order_date"] for row in rows)
    assert (dates[0], dates[-1]) == ("2023-11-02", "2026-10-31")
    assert sum(1 for row in rows if row["category"] == "") == 759


def test_briefcases_complement_folders_black_first(generated: tuple[Path, dict[str, int]]) -> None:
    products = {row["product_id"]: row for row in read_rows(generated[0] / "products.csv")}
    picked = {pid: (products[pid]["category"], products[pid]["color"], products[pid]["complements"]) for pid in (
        "P-BRF-BLK", "P-BRF-BRN", "P-FLD-BLK", "P-FLD-BRN")}  # fmt: skip
    assert picked == {
        "P-BRF-BLK": ("briefcase", "black", "P-FLD-BLK|P-FLD-BRN"),
        "P-BRF-BRN": ("briefcase", "brown", "P-FLD-BRN|P-FLD-BLK"),
        "P-FLD-BLK": ("folder", "black", "P-PEN-BLK"),
        "P-FLD-BRN": ("folder", "brown", "P-PEN-BRN"),
    }
    for product in products.values():
        for other in filter(None, product["complements"].split("|")):
            assert products[other]["category"] != product["category"], (product["product_id"], other)
    categories = Counter(p["category"] for p in products.values())
    assert categories["tv"] == 5 and categories["digital_tv"] == 3 and categories["briefcase"] == 3


def test_purchases_have_the_structure_campaigns_need(generated: tuple[Path, dict[str, int]]) -> None:
    folder = generated[0]
    customers = {row["customer_id"]: row for row in read_rows(folder / "customers.csv")}
    rows = read_rows(folder / "purchases.csv")
    assert {row["customer_id"] for row in rows} <= set(customers)
    assert len({row["customer_id"] for row in rows}) == 1708  # 292 customers never buy
    assert len({row["customer_id"] for row in rows if row["product_id"].startswith("P-BRF-")}) == 159
    assert all(row["order_date"] >= customers[row["customer_id"]]["signup_date"] for row in rows)
    lines_per_order = Counter(row["order_id"] for row in rows)
    assert sum(1 for n in lines_per_order.values() if n > 1) == 5073


def test_customers_exercise_ids_names_and_dedupe(generated: tuple[Path, dict[str, int]]) -> None:
    rows = read_rows(generated[0] / "customers.csv")
    assert rows[0]["customer_id"] == "000001" and len({r["customer_id"] for r in rows}) == 2000
    assert Counter(r["language"] for r in rows) == {"pl": 1020, "cs": 398, "en": 346, "ru": 236}
    assert Counter(r["gender"] for r in rows) == {"F": 963, "M": 984, "": 31, "X": 22}
    by_language = {r["language"]: r["country"] for r in rows if r["language"] != "en"}
    assert by_language == {"pl": "PL", "cs": "CZ", "ru": "RU"}
    assert {r["country"] for r in rows if r["language"] == "en"} == {"GB", "IE", "US"}
    emails = Counter(r["email"].strip().casefold() for r in rows if r["email"].strip())
    assert sum(1 for n in emails.values() if n > 1) == 39  # same address, other case and spaces
    assert sum(1 for r in rows if r["email"] == "") == 146
    assert {r["email_opt_in"] for r in rows} == {"true", "false", ""}
    assert "loyalty_tier" in rows[0]


def test_suppressions_are_messy_keys_of_real_customers(generated: tuple[Path, dict[str, int]]) -> None:
    folder = generated[0]
    customers = read_rows(folder / "customers.csv")
    known = {c["email"].strip().casefold() for c in customers}
    rows = read_rows(folder / "suppressions.csv")
    emails = [r["email"] for r in rows if r["email"]]
    assert len(emails) == 13
    assert sum(1 for e in emails if e.strip().casefold() in known) == 9  # and 4 people who are no customers
    assert all(e != e.strip().lower() for e in emails)  # every one needs normalising to match
    assert Counter(r["channel"] for r in rows) == {"all": 17, "mail": 11, "": 7, "email": 5}
    assert all(dt.datetime.fromisoformat(r["added_at"]) < dt.datetime(2026, 11, 1) for r in rows)


def load_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def test_config_is_the_skeleton_with_no_cap_and_no_global_control() -> None:
    link = ROOT / "crmlist.toml"
    assert link.is_symlink() and link.resolve() == (SKELETON / "crmlist.toml").resolve()
    config = load_toml(link)
    assert {k: config[k] for k in ("locale", "currency", "timezone", "phone_region", "output")} == {
        "locale": "en",
        "currency": "PLN",
        "timezone": "Europe/Warsaw",
        "phone_region": "PL",
        "output": "out",
    }
    assert sorted(config["sender"]) == ["city", "country", "email", "name", "phone", "postal_code", "street"]
    assert config["offers"] == {"recommend": 3, "category_days": 365} and config["response"] == {"window_days": 30}
    assert sorted(config["costs"]) == ["email", "mail", "phone", "sms"]
    assert sorted(config) == ["costs", "currency", "locale", "offers", "output", "phone_region", "response",
                              "sender", "timezone"]  # fmt: skip


RULE_KEYS = {"description", "channel", "template", "as_of", "columns", "audience", "contact_cap", "cells",
             "control", "response", "cost_per_contact", "fixed_cost"}  # fmt: skip


@pytest.mark.parametrize("campaign", CAMPAIGNS)
def test_rule_file_uses_only_contract_keys(campaign: str) -> None:
    rules = load_toml(SKELETON / "queries" / f"{campaign}.toml")
    assert set(rules) <= RULE_KEYS
    assert rules["description"] and rules["template"] == campaign
    assert set(rules["audience"]) <= {"where", "exclude"}
    assert all(set(cell) <= {"name", "where", "offer", "limit", "order_by", "template"} for cell in rules["cells"])
    assert all({"name", "where", "offer"} <= set(cell) for cell in rules["cells"])


def test_rule_files_say_what_the_brief_asks() -> None:
    rules = {name: load_toml(SKELETON / "queries" / f"{name}.toml") for name in CAMPAIGNS}
    assert {name: r["channel"] for name, r in rules.items()} == {
        "briefcase_crosssell": "mail",
        "digital_tv": "email",
        "winback": "email",
    }
    assert rules["briefcase_crosssell"]["audience"]["where"] == ["bought(category => 'briefcase', within_days => 365)"]
    assert rules["briefcase_crosssell"]["cells"][0]["offer"] == "FOLDER15"
    winback = rules["winback"]
    assert winback["audience"]["where"] == ["frequency >= 2", "recency_days BETWEEN 180 AND 365"]
    assert [(c["name"], c["where"], c.get("order_by"), c.get("limit")) for c in winback["cells"]] == [
        ("vip", "monetary >= 1000", "monetary DESC", 50),
        ("standard", "TRUE", None, None),
    ]
    assert winback["control"] == {"percent": 10, "salt": "winback"}


def test_every_sample_campaign_has_its_own_control_and_the_shared_cap() -> None:
    """Good practice in every rule file init writes: a control group with its own salt, one cap for all."""
    rules = {name: load_toml(SKELETON / "queries" / f"{name}.toml") for name in CAMPAIGNS}
    assert {name: r["control"] for name, r in rules.items()} == {
        name: {"percent": 10, "salt": name} for name in CAMPAIGNS
    }
    # max 1 in 30 days: anyone contacted by any campaign that day (or in the 29 before) is skipped
    assert {name: r["contact_cap"] for name, r in rules.items()} == {name: {"max": 1, "days": 30} for name in CAMPAIGNS}
    assert "contact_cap" not in load_toml(SKELETON / "crmlist.toml")  # DESIGN.md section 6: init's config has none


def template_names() -> list[str]:
    return sorted(p.name for p in (SKELETON / "templates").glob("*.j2"))


def test_every_campaign_has_a_letter_per_language() -> None:
    expected = [f"{c}{lang}.txt.j2" for c in CAMPAIGNS for lang in (".cs", ".pl", ".ru", "")]
    assert template_names() == sorted(expected)


@pytest.mark.parametrize("name", template_names())
def test_template_parses_and_uses_only_the_letter_context(name: str) -> None:
    env = SandboxedEnvironment()
    # stand-ins for the letter filters: compiling fails on any filter outside the contract
    env.filters.update({name: str for name in ("money", "date", "number", "percent", "plural", "salutation")})
    source = (SKELETON / "templates" / name).read_text(encoding="utf-8")
    tree = env.parse(source)
    assert meta.find_undeclared_variables(tree) <= CONTEXT
    used = {node.name for node in tree.find_all(nodes.Filter)}
    assert used == LETTER_FILTERS[name.split(".")[0]]
    assert 10 <= len(source.splitlines()) <= 20
