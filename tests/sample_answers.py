"""The sample campaigns' lists worked out by hand: plain Python over sample_data/*.csv, no crmlist code.

Each rule of queries/*.toml is written again below as a Python predicate, next to its text; the
waterfall follows README's "The waterfall" step by step (consent and contact, suppressions by any key
and every record sharing a key with a named one, each where, each exclude, the contact cap, dedupe by
the channel's keys keeping the highest monetary then the smallest id, first matching cell, the
sha256 control split). Matching keys follow README's "Matching keys"; phone keys are phonenumbers'
E.164 digits, as README defines them. Tests compare crmlist's engines with these answers.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import phonenumbers

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"
AS_OF = dt.date(2026, 11, 1)
PHONE_REGION = "PL"  # crmlist.toml's phone_region in the sample workspace
CAP = "contact cap (1 in 30 days)"  # every sample campaign's [contact_cap]: max 1 in 30 days


def read_sample(name: str) -> list[dict[str, str]]:
    """A sample CSV file's rows, values trimmed (crmlist trims every value; blank is NULL)."""
    with (SAMPLE_DATA / name).open(encoding="utf-8", newline="") as fh:
        return [{k: v.strip() for k, v in row.items()} for row in csv.DictReader(fh)]


# --- Matching keys (README "Matching keys") ---------------------------------------------------------------


def email_key(email: str) -> str | None:
    return unicodedata.normalize("NFC", email).strip().lower() or None


def phone_key(phone: str, country: str) -> str | None:
    if not phone:
        return None
    number = phonenumbers.parse(phone, country or PHONE_REGION)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).removeprefix("+")


def _words(text: str) -> str:
    """A street or city: NFC, lower case, every run of punctuation and whitespace one space, trimmed."""
    return re.sub(r"[\W_]+", " ", unicodedata.normalize("NFC", text).lower()).strip()


# Postal codes per country: the pattern after whitespace is removed (a dash optional), and its key.
_POSTAL = {
    "PL": (r"(\d{2})-?(\d{3})", r"\1-\2"),
    "CZ": (r"(\d{3})-?(\d{2})", r"\1 \2"),
    "SK": (r"(\d{3})-?(\d{2})", r"\1 \2"),
    "RU": (r"(\d{3})-?(\d{3})", r"\1\2"),
}


def address_key(street: str, postal_code: str, city: str, country: str) -> str | None:
    if not (street and postal_code and city):
        return None
    code = re.sub(r"\s+", "", postal_code).upper()
    pattern, key = _POSTAL.get(country or PHONE_REGION, ("(.*)", r"\1"))
    return "|".join((_words(street), re.sub(f"^{pattern}$", key, code), _words(city)))


def keys(row: dict[str, str]) -> set[tuple[str, str]]:
    """(kind, value) of every key a customers or suppressions row has."""
    country = row.get("country", "").upper()
    found = {
        ("id", row.get("customer_id", "")),
        ("email", email_key(row.get("email", ""))),
        ("phone", phone_key(row.get("phone", ""), country)),
        ("address", address_key(row.get("street", ""), row.get("postal_code", ""), row.get("city", ""), country)),
    }
    return {(kind, value) for kind, value in found if value}


# --- Customers and their facts as of 2026-11-01 -------------------------------------------------------------


@dataclass
class Customer:
    row: dict[str, str]
    keys: set[tuple[str, str]]
    lines: list[dict[str, Any]] = field(default_factory=list)  # purchases up to as-of, category filled in

    @property
    def id(self) -> str:
        return self.row["customer_id"]

    @property
    def frequency(self) -> int:
        return len({line["order_id"] for line in self.lines})

    @property
    def monetary(self) -> Decimal:
        return sum((line["amount"] for line in self.lines), Decimal(0))

    @property
    def recency_days(self) -> int | None:
        return (AS_OF - max(line["date"] for line in self.lines)).days if self.lines else None

    def bought(self, category: str | None = None, product: str | None = None, within_days: int | None = None) -> bool:
        return any(
            (category is None or line["category"] == category)
            and (product is None or line["product_id"] == product)
            and (within_days is None or line["date"] > AS_OF - dt.timedelta(days=within_days))
            for line in self.lines
        )


@cache
def sample_customers() -> tuple[Customer, ...]:
    """Every customer signed up by the as-of date, with the purchases up to it (a line's blank category is
    its product's)."""
    categories = {p["product_id"]: p["category"] for p in read_sample("products.csv")}
    customers = {r["customer_id"]: Customer(r, keys(r)) for r in read_sample("customers.csv")}
    for line in read_sample("purchases.csv"):
        day = dt.date.fromisoformat(line["order_date"])
        if day <= AS_OF:
            customers[line["customer_id"]].lines.append(
                {"order_id": line["order_id"], "date": day, "product_id": line["product_id"],
                 "category": line["category"] or categories[line["product_id"]], "amount": Decimal(line["amount"])}
            )  # fmt: skip
    signed_up = (c for c in customers.values() if not c.row["signup_date"] or c.row["signup_date"] <= AS_OF.isoformat())
    return tuple(signed_up)


# --- The sample rule files, by hand ------------------------------------------------------------------------

Test = Callable[[Customer], bool]


@dataclass(frozen=True)
class Cell:
    name: str
    where: str  # the rule file's text, which `test` means
    test: Test
    offer: str
    limit: int | None = None
    order_by: str | None = None
    order: Callable[[Customer], Any] = lambda c: 0  # the sort key order_by means; ties by customer_id


@dataclass(frozen=True)
class Rules:
    channel: str
    where: dict[str, Test]  # each condition's text in the rule file: what it means
    exclude: dict[str, Test]
    cells: tuple[Cell, ...]
    salt: str
    percent: int = 10


SAMPLE_RULES = {
    "winback": Rules(
        channel="email",
        where={
            "frequency >= 2": lambda c: c.frequency >= 2,
            "recency_days BETWEEN 180 AND 365": lambda c: c.recency_days is not None and 180 <= c.recency_days <= 365,
        },
        exclude={},
        cells=(
            Cell(
                "vip",
                "monetary >= 1000",
                lambda c: c.monetary >= 1000,
                "VIP20",
                limit=50,
                order_by="monetary DESC",
                order=lambda c: -c.monetary,
            ),
            Cell("standard", "TRUE", lambda c: True, "STD10"),
        ),
        salt="winback",
    ),
    "digital_tv": Rules(
        channel="email",
        where={"bought(category => 'tv', within_days => 730)": lambda c: c.bought(category="tv", within_days=730)},
        exclude={"bought(category => 'digital_tv')": lambda c: c.bought(category="digital_tv")},
        cells=(Cell("all", "TRUE", lambda c: True, "DTV3FREE"),),
        salt="digital_tv",
    ),
    "briefcase_crosssell": Rules(
        channel="mail",
        where={"bought(category => 'briefcase', within_days => 365)": lambda c: c.bought("briefcase", within_days=365)},
        exclude={
            "bought(product => 'P-FLD-BLK') AND bought(product => 'P-FLD-BRN')": lambda c: (
                c.bought(product="P-FLD-BLK") and c.bought(product="P-FLD-BRN")
            )
        },
        cells=(Cell("folder", "TRUE", lambda c: True, "FOLDER15"),),
        salt="briefcase_crosssell",
    ),
}
# scripts/demo.sh (`make demo`) runs them in this order on one as-of date.
DEMO_ORDER = ("digital_tv", "briefcase_crosssell", "winback")


def rule_texts(rules: Rules) -> dict[str, Any]:
    """What SAMPLE_RULES says the rule file holds, in the rule file's own shape (to compare with it)."""
    cells = [
        {k: v for k, v in (("name", c.name), ("where", c.where), ("offer", c.offer), ("limit", c.limit),
                           ("order_by", c.order_by)) if v is not None}
        for c in rules.cells
    ]  # fmt: skip
    audience = {"where": list(rules.where)} | ({"exclude": list(rules.exclude)} if rules.exclude else {})
    return {"channel": rules.channel, "audience": audience, "cells": cells,
            "control": {"percent": rules.percent, "salt": rules.salt}}  # fmt: skip


# --- The waterfall, by hand --------------------------------------------------------------------------------


def _reachable(c: Customer, channel: str) -> bool:
    fields = {"email": ("email",), "mail": ("street", "postal_code", "city")}[channel]
    return c.row[f"{channel}_opt_in"] == "true" and all(c.row[f] for f in fields)


def _suppressed(customers: Iterable[Customer], channel: str) -> set[str]:
    """Records a suppression covering the channel names by any key, and every record sharing a key with one."""
    customers = list(customers)
    covering = [s for s in read_sample("suppressions.csv") if s["channel"] in ("", "all", channel)]
    named = [c for c in customers if c.keys & set().union(*map(keys, covering))]
    theirs = set().union(*(c.keys for c in named))
    return {c.id for c in customers if c.keys & theirs}


def _dedupe(kept: list[Customer], key: Callable[[Customer], str | None]) -> list[Customer]:
    """One per key value: the highest monetary, then the smallest customer_id; no key, no dedupe."""
    best: dict[str, str] = {}
    for c in sorted(kept, key=lambda c: (-c.monetary, c.id)):
        best.setdefault(key(c) or f"\0{c.id}", c.id)
    winners = set(best.values())
    return [c for c in kept if c.id in winners]


def _mail_address(c: Customer) -> str:
    row = c.row
    return f"{address_key(row['street'], row['postal_code'], row['city'], row['country'])}|{row['country'].upper()}"


def bucket(salt: str, customer_id: str) -> int:
    """README: the first 16 hex digits of sha256(salt:customer_id) as an unsigned integer, mod 10000."""
    return int(hashlib.sha256(f"{salt}:{customer_id}".encode()).hexdigest()[:16], 16) % 10000


@dataclass(frozen=True)
class Answer:
    """What a campaign should give: waterfall rows, targets in list order, controls sorted."""

    waterfall: list[tuple[str, int, int]]  # (step, remaining, removed)
    targets: list[tuple[str, str, str]]  # (customer_id, cell, offer)
    control: list[tuple[str, str, str]]


def answer(name: str, contacted: frozenset[str] = frozenset()) -> Answer:
    """The campaign as of 2026-11-01; `contacted`: customers with a (non-control) contact that day."""
    rules = SAMPLE_RULES[name]
    everyone = sample_customers()
    steps: list[tuple[str, list[Customer]]] = [("all customers", list(everyone))]

    def step(label: str, keep: Test) -> None:
        steps.append((label, [c for c in steps[-1][1] if keep(c)]))

    step(f"consent and contact ({rules.channel})", lambda c: _reachable(c, rules.channel))
    suppressed = _suppressed(everyone, rules.channel)
    step(f"suppressions ({rules.channel})", lambda c: c.id not in suppressed)
    for text, test in rules.where.items():
        step(f"where: {text}", test)
    for text, test in rules.exclude.items():
        step(f"exclude: {text}", lambda c, test=test: not test(c))
    step(CAP, lambda c: c.id not in contacted)
    kept = steps[-1][1]
    if rules.channel == "email":
        kept = _dedupe(kept, lambda c: email_key(c.row["email"]))
    else:  # mail: the household, then the address with its country
        kept = _dedupe(_dedupe(kept, lambda c: c.row["household_id"] or None), _mail_address)
    steps.append((f"dedupe ({rules.channel})", kept))
    listed: list[tuple[Customer, Cell]] = []
    for i, cell in enumerate(rules.cells):  # first match wins; a customer past the limit is dropped
        members = [c for c in kept if cell.test(c) and not any(e.test(c) for e in rules.cells[:i])]
        members.sort(key=lambda c: (cell.order(c), c.id))
        listed += [(c, cell) for c in members[: cell.limit]]
    steps.append(("cells", [c for c, _ in listed]))
    held = {c.id for c, _ in listed if bucket(rules.salt, c.id) < rules.percent * 100}
    steps.append(("control", [c for c, _ in listed if c.id not in held]))
    waterfall = [
        (label, len(rows), len(steps[i - 1][1]) - len(rows) if i else 0) for i, (label, rows) in enumerate(steps)
    ]
    return Answer(
        waterfall,
        [(c.id, cell.name, cell.offer) for c, cell in listed if c.id not in held],
        sorted((c.id, cell.name, cell.offer) for c, cell in listed if c.id in held),
    )


@cache
def demo_answers() -> dict[str, Answer]:
    """Every sample campaign run as `make demo` runs them: each one's targets are capped out of the later ones."""
    contacted: frozenset[str] = frozenset()
    answers = {}
    for name in DEMO_ORDER:
        answers[name] = answer(name, contacted)
        contacted |= {customer_id for customer_id, _, _ in answers[name].targets}
    return answers
