"""The bundled sample data, the skeleton's config, rule files and templates that `crmlist init` writes."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import tomllib
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from jinja2 import meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from crmlist.errors import OutputError
from crmlist.sample import write_sample_data

ROOT = Path(__file__).resolve().parents[1]
SKELETON = ROOT / "crmlist" / "skeleton"
FILES = ("customers.csv", "products.csv", "purchases.csv", "suppressions.csv")
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


def test_script_regenerates_the_same_bytes(generated: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_sample_data", ROOT / "scripts" / "make_sample_data.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(tmp_path / "again")]) == 0
    assert script.main([]) == 2
    for name in FILES:
        assert (tmp_path / "again" / name).read_bytes() == (generated[0] / name).read_bytes(), name


def test_another_seed_gives_other_data(generated: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    write_sample_data(tmp_path, seed=1)
    assert (tmp_path / "customers.csv").read_bytes() != (generated[0] / "customers.csv").read_bytes()


def test_unwritable_folder_is_an_output_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder", encoding="utf-8")
    with pytest.raises(OutputError) as caught:
        write_sample_data(tmp_path / "taken" / "sample")
    assert (caught.value.exit_code, caught.value.what) == (73, "cannot write sample data: Not a directory")


@pytest.mark.parametrize("name", FILES)
def test_committed_sample_data_is_a_fresh_generation(generated: tuple[Path, dict[str, int]], name: str) -> None:
    committed = (ROOT / "sample_data" / name).read_bytes()
    # if this fails: python scripts/make_sample_data.py sample_data
    assert committed == (generated[0] / name).read_bytes()
    assert not committed.startswith(b"\xef\xbb\xbf")
    assert b"\r" not in committed


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
    assert config["offers"] == {"recommend": 3} and config["response"] == {"window_days": 30}
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
