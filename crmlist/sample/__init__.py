"""Seeded generator of the bundled sample data: customers, products, purchases and suppressions CSVs."""

from __future__ import annotations

import csv
import datetime as dt
import random
import unicodedata
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from crmlist.errors import OutputError
from crmlist.sample.data import (
    AS_OF,
    BOUGHT_WITH,
    CATALOGUE,
    CENT,
    CUSTOMERS,
    CYRILLIC,
    EMAIL_DOMAINS,
    FIELDS,
    FIRST_NAMES,
    FIRST_ORDER_DAY,
    HOBBIES,
    LANGUAGE_COUNTRIES,
    LAST_NAMES,
    ONE_OFFS,
    PHONES,
    PLACES,
    PREFERENCE,
    STREETS,
    Row,
)


def write_sample_data(folder: Path, seed: int = 20261101) -> dict[str, int]:
    """Write customers, products, purchases and suppressions CSVs into folder; rows written per file."""
    rng = random.Random(seed)
    products = _products()
    customers = _customers(rng, CUSTOMERS)
    purchases = _purchases(rng, customers, {p["product_id"]: p for p in products})
    _set_loyalty_tiers(customers, purchases)
    suppressions = _suppressions(rng, customers)
    tables = {
        "customers.csv": customers,
        "products.csv": products,
        "purchases.csv": purchases,
        "suppressions.csv": suppressions,
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, rows in tables.items():
            # "\n" line ends and UTF-8 without BOM: the same bytes on every platform
            with (folder / name).open("w", encoding="utf-8", newline="") as fh:
                writer = csv.DictWriter(fh, FIELDS[name], extrasaction="ignore", lineterminator="\n")
                writer.writeheader()
                writer.writerows(rows)
    except OSError as exc:
        raise OutputError(
            str(folder), f"cannot write sample data: {exc.strerror}", "choose a folder you can write to"
        ) from None
    return {name: len(rows) for name, rows in tables.items()}


def _products() -> list[Row]:
    fields = FIELDS["products.csv"]
    return [dict(zip(fields, line.split(";"), strict=True)) for line in CATALOGUE.split("\n") if line]


# --- customers -------------------------------------------------------------------------------------------


def _customers(rng: random.Random, count: int) -> list[Row]:
    customers: list[Row] = []
    emails: set[str] = set()  # membership only: iterating a set of str would break determinism
    for number in range(1, count + 1):
        roll = rng.random()
        # the first 50 are all new people, so duplicates and partners have someone to copy
        if number > 50 and roll < 0.015:
            row = _duplicate_record(rng, rng.choice(customers))
        elif number > 50 and roll < 0.09:
            row = _household_partner(rng, rng.choice(customers), emails)
        else:
            row = _new_person(rng, emails)
        row["customer_id"] = f"{number:06d}"
        customers.append(row)
    return customers


def _new_person(rng: random.Random, emails: set[str]) -> Row:
    language = rng.choices(("pl", "cs", "ru", "en"), weights=(50, 20, 12, 18))[0]
    country = rng.choice(LANGUAGE_COUNTRIES[language])
    gender = rng.choices(("F", "M", "X", ""), weights=(49, 48, 1.5, 1.5))[0]
    row: Row = {"language": language, "country": country, "gender": gender, "household_id": ""}
    row["_surname"] = rng.choice(LAST_NAMES[language].split())
    row.update(_address(rng, country))
    _fill_person(rng, row, emails)
    return row


def _household_partner(rng: random.Random, other: Row, emails: set[str]) -> Row:
    """Someone living with `other`: same address, household and surname, the other gender."""
    # only shared households get an id: a blank one must never join strangers
    other["household_id"] = other["household_id"] or f"H{other['customer_id'][1:]}"
    keep = ("language", "country", "household_id", "street", "city", "postal_code", "_surname")
    row: Row = {key: other[key] for key in keep}
    row["gender"] = {"F": "M", "M": "F"}.get(other["gender"], rng.choice("FM"))
    _fill_person(rng, row, emails)
    return row


def _duplicate_record(rng: random.Random, other: Row) -> Row:
    """The same person signed up again: the e-mail differs only in case and spaces, the phone in format."""
    row = dict(other)
    if row["email"]:
        row["email"] = _messy_email(rng, row["email"])
    if row["phone"]:
        row["phone"] = _format_phone(rng, row["country"], row["_phone_digits"])
    row["signup_date"] = _random_day(rng, dt.date(2025, 1, 1), AS_OF - dt.timedelta(days=20))
    row["_duplicate"] = True
    return row


def _fill_person(rng: random.Random, row: Row, emails: set[str]) -> None:
    language, gender = row["language"], row["gender"]
    first_gender = gender if gender in ("F", "M") else rng.choice("FM")
    surname = row["_surname"].split(":")
    row["first_name"] = rng.choice(FIRST_NAMES[language, first_gender].split())
    row["last_name"] = surname[-1] if first_gender == "F" else surname[0]
    age_days = rng.randint(18 * 366, 88 * 365)
    row["birth_date"] = "" if rng.random() < 0.03 else (AS_OF - dt.timedelta(days=age_days)).isoformat()
    row["email"] = "" if rng.random() < 0.07 else _email(rng, row, emails)
    row["_phone_digits"] = _phone_digits(rng, row["country"])
    row["phone"] = "" if rng.random() < 0.10 else _format_phone(rng, row["country"], row["_phone_digits"])
    row["signup_date"] = _random_day(rng, dt.date(2018, 1, 1), AS_OF - dt.timedelta(days=7))
    for flag, weights in (("email", (70, 20, 10)), ("sms", (40, 40, 20)), ("mail", (62, 23, 15))):
        row[f"{flag}_opt_in"] = rng.choices(("true", "false", ""), weights=weights)[0]
    row["phone_opt_in"] = rng.choices(("true", "false", ""), weights=(30, 50, 20))[0]


def _address(rng: random.Random, country: str) -> Row:
    city, postal_pattern = rng.choice(PLACES[country])
    street = rng.choice(STREETS[country]).format(n=rng.randint(1, 180), f=rng.randint(1, 60))
    if rng.random() < 0.03:  # an incomplete address: unusable for mail
        street = ""
    return {"street": street, "city": city, "postal_code": _fill_pattern(rng, postal_pattern)}


def _fill_pattern(rng: random.Random, pattern: str) -> str:
    letters = "ABDEFGHJLNPQRSTUWXY"
    return "".join(
        rng.choice("0123456789") if ch == "#" else rng.choice(letters) if ch == "@" else ch for ch in pattern
    )


def _email(rng: random.Random, row: Row, emails: set[str]) -> str:
    first, last = _ascii(row["first_name"]), _ascii(row["last_name"])
    style = rng.choice(("{f}.{l}", "{f}.{l}", "{i}.{l}", "{f}{l}", "{l}.{f}", "{f}.{l}{d}"))
    local = style.format(f=first, l=last, i=first[:1], d=rng.randint(1, 99))
    email = f"{local}@{rng.choice(EMAIL_DOMAINS[row['language']])}"
    while email in emails:
        email = f"{local}{rng.randint(100, 999)}@{email.split('@')[1]}"
    emails.add(email)
    return email


def _ascii(name: str) -> str:
    """A name as an e-mail address writes it: Łukasz -> lukasz, Фёдоров -> fedorov, O'Brien -> obrien."""
    lowered = name.lower().replace("ł", "l")
    spelled = "".join(CYRILLIC.get(ch, ch) for ch in lowered)
    decomposed = unicodedata.normalize("NFKD", spelled)
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalnum())


def _messy_email(rng: random.Random, email: str) -> str:
    """The same address as people retype it: '  JAN.Kowalski@Example.COM '."""
    local, domain = email.split("@")
    parts = [p.upper() if rng.random() < 0.3 else p.capitalize() for p in local.split(".")]
    domain = domain.upper() if rng.random() < 0.5 else domain.capitalize()
    return f"{' ' * rng.randint(0, 2)}{'.'.join(parts)}@{domain}{' ' * rng.randint(1, 2)}"


def _phone_digits(rng: random.Random, country: str) -> str:
    prefixes, groups, _ = PHONES[country]
    prefix = rng.choice(prefixes)
    return prefix + "".join(rng.choice("0123456789") for _ in range(sum(groups) - len(prefix)))


def _format_phone(rng: random.Random, country: str, digits: str, first_forms: int = 0) -> str:
    _, groups, formats = PHONES[country]
    formats = formats[:first_forms] if first_forms else formats
    parts, start = [], 0
    for size in groups:
        parts.append(digits[start : start + size])
        start += size
    return rng.choice(formats).format(*parts)


def _random_day(rng: random.Random, first: dt.date, last: dt.date) -> str:
    return (first + dt.timedelta(days=rng.randint(0, (last - first).days))).isoformat()


def _set_loyalty_tiers(customers: list[Row], purchases: list[Row]) -> None:
    """The extra column: the CRM's own tier by all-time spend, kept to show extras survive loading."""
    spend: dict[str, Decimal] = {}
    for line in purchases:
        spend[line["customer_id"]] = spend.get(line["customer_id"], Decimal(0)) + Decimal(line["amount"])
    for row in customers:
        total = spend.get(row["customer_id"])
        tiers = ((Decimal(2500), "gold"), (Decimal(800), "silver"), (Decimal(0), "bronze"))
        row["loyalty_tier"] = "" if total is None else next(t for floor, t in tiers if total >= floor)


# --- purchases -------------------------------------------------------------------------------------------

# name, weight, days since the last order (from, to), mean number of orders
SEGMENTS = (
    ("never", 14, 0, 0, 0),
    ("active", 43, 1, 179, 7),
    ("lapsed", 22, 180, 365, 4),
    ("churned", 17, 366, 3 * 365 - 1, 2),
    ("heavy", 4, 1, 60, 80),
)


def _purchases(rng: random.Random, customers: list[Row], products: dict[str, Row]) -> list[Row]:
    orders: list[tuple[dt.date, str, int, list[str]]] = []
    for row in customers:
        dates = _order_dates(rng, dt.date.fromisoformat(row["signup_date"]))
        for seq, basket in enumerate(_baskets(rng, len(dates), products)):
            orders.append((dates[seq], row["customer_id"], seq, basket))
    orders.sort()
    lines: list[Row] = []
    for number, (day, customer_id, _, basket) in enumerate(orders, start=1):
        for product_id in basket:
            lines.append(_line(rng, f"O{number:05d}", day, customer_id, products[product_id]))
    return lines


def _order_dates(rng: random.Random, signup: dt.date) -> list[dt.date]:
    """Order days of one customer: the last one by segment (lapsed, churned, ...), the rest before it."""
    _, _, low, high, mean = rng.choices(SEGMENTS, weights=[s[1] for s in SEGMENTS])[0]
    if mean == 0:
        return []
    earliest = max(FIRST_ORDER_DAY, signup)
    last = AS_OF - dt.timedelta(days=rng.randint(low, high))
    if last < earliest:  # signed up too recently for the segment: buys after signing up
        last = earliest + dt.timedelta(days=rng.randint(0, (AS_OF - earliest).days - 1))
    # a few heavy buyers make many orders, the rest a long tail; keeps the file size steady across seeds
    count = rng.randint(mean * 2 // 3, mean * 4 // 3) if mean > 20 else 1 + int(rng.expovariate(1 / (mean - 1)))
    span = (last - earliest).days
    others = [earliest + dt.timedelta(days=rng.randint(0, span)) for _ in range(count - 1)]
    return sorted([*others, last])


def _baskets(rng: random.Random, count: int, products: dict[str, Row]) -> list[list[str]]:
    """Products of each order: hobby purchases, and now and then a TV, phone or briefcase with extras."""
    if count == 0:
        return []
    hobbies = [rng.choice(HOBBIES), rng.choice(HOBBIES)]
    baskets = [_hobby_basket(rng, hobbies, products) for _ in range(count)]
    for category, share in ONE_OFFS:
        if rng.random() < share:
            at = rng.randrange(count)
            baskets[at] = _basket(rng, _pick(rng, products, category, dearness=0.5), products)
            if category == "tv" and at + 1 < count and rng.random() < 0.2:  # the package once the TV is in
                _add(baskets[rng.randrange(at + 1, count)], _pick(rng, products, "digital_tv"))
    if rng.random() < 0.09:
        _add_briefcase(rng, baskets, products)
    if rng.random() < 0.03:  # a TV bought elsewhere
        _add(baskets[rng.randrange(count)], _pick(rng, products, "digital_tv"))
    return baskets


def _add_briefcase(rng: random.Random, baskets: list[list[str]], products: dict[str, Row]) -> None:
    """Most often in the latest order; some buyers already own a folder from an earlier one."""
    at = len(baskets) - 1 if rng.random() < 0.7 else rng.randrange(len(baskets))
    brief = _pick(rng, products, "briefcase", dearness=0.5)
    baskets[at] = _basket(rng, brief, products, share=0.15)
    if rng.random() < 0.25:  # a pen to match: co-purchased, never listed as a complement
        _add(baskets[at], "P-PEN-BRN" if products[brief]["color"] == "brown" else "P-PEN-BLK")
    if at > 0 and rng.random() < 0.15:
        _add(baskets[rng.randrange(at)], _pick(rng, products, "folder"))


def _pick(rng: random.Random, products: dict[str, Row], category: str, dearness: float = 1.0) -> str:
    """A product of the category; cheap ones are bought more often than dear ones."""
    ids = [pid for pid, p in products.items() if p["category"] == category]
    weights = [PREFERENCE.get(p, 1.0) / float(products[p]["price"]) ** dearness for p in ids]
    return rng.choices(ids, weights=weights)[0]


def _hobby_basket(rng: random.Random, hobbies: list[str], products: dict[str, Row]) -> list[str]:
    basket = _basket(rng, _pick(rng, products, rng.choice(hobbies)), products)
    if rng.random() < 0.35:
        _add(basket, _pick(rng, products, rng.choice(hobbies)))
    return basket


def _basket(rng: random.Random, main: str, products: dict[str, Row], share: float = 0.35) -> list[str]:
    """The main product and now and then its complements: the first most often, as people buy them."""
    basket = [main]
    extras = [e for e in products[main]["complements"].split("|") if e] + BOUGHT_WITH.get(main, [])
    for index, extra in enumerate(extras):
        if rng.random() < share / (index + 1):
            basket.append(extra)
    return basket


def _add(basket: list[str], product_id: str) -> None:
    if product_id not in basket:
        basket.append(product_id)


def _line(rng: random.Random, order_id: str, day: dt.date, customer_id: str, product: Row) -> Row:
    price = Decimal(product["price"])
    if rng.random() < 0.12:
        price = (price * Decimal("0.9")).quantize(CENT, ROUND_HALF_UP)
    cheap = price < 100 and product["category"] in ("books", "accessories", "kitchen")
    quantity = rng.choices((1, 2, 3), weights=(80, 15, 5))[0] if cheap else 1
    return {
        "order_id": order_id,
        "customer_id": customer_id,
        "order_date": day.isoformat(),
        "product_id": product["product_id"],
        # a few lines lack the category: facts fall back to the product's
        "category": "" if rng.random() < 0.04 else product["category"],
        "quantity": quantity,
        "unit_price": f"{price:.2f}",
        "amount": f"{price * quantity:.2f}",
        "currency": "PLN",
    }


# --- suppressions ----------------------------------------------------------------------------------------

SUPPRESSION_KINDS = {  # key: (channels, reasons)
    "email": (("email", "all", ""), ("unsubscribed", "spam complaint", "hard bounce")),
    "phone": (("all", ""), ("asked not to be called", "STOP reply to SMS")),
    "customer_id": (("all", "mail", ""), ("deceased", "objection to marketing (GDPR art. 21)")),
    "address": (("mail", "all"), ("returned mail: moved away", "returned mail: addressee unknown")),
}


def _suppressions(rng: random.Random, customers: list[Row]) -> list[Row]:
    people = [c for c in customers if not c.get("_duplicate")]
    rows = []
    for index, person in enumerate(rng.sample(people, 36)):
        kind = list(SUPPRESSION_KINDS)[index % 4]
        if kind != "customer_id" and not person[kind if kind != "address" else "street"]:
            kind = "customer_id"
        channels, reasons = SUPPRESSION_KINDS[kind]
        row = _suppression_key(rng, kind, person)
        row.update(channel=rng.choice(channels), reason=rng.choice(reasons))
        rows.append(row)
    for number in range(4):  # people on an opt-out list who are not customers
        email = f"{' ' * number}No.Marketing{number + 1}@Example.COM "
        rows.append({"email": email, "channel": rng.choice(("all", "")), "reason": "national opt-out list"})
    for row in rows:
        day = _random_day(rng, dt.date(2024, 1, 1), AS_OF - dt.timedelta(days=2))
        row["added_at"] = f"{day} {rng.randint(7, 20):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
    return sorted(rows, key=lambda r: r["added_at"])


def _suppression_key(rng: random.Random, kind: str, person: Row) -> Row:
    """The key as a call centre typed it: other case, stray spaces, another phone format."""
    if kind == "email":
        return {"email": _messy_email(rng, person["email"])}
    if kind == "phone":
        # the first two forms of every country read the same with any phone_region
        spelled = _format_phone(rng, person["country"], person["_phone_digits"], first_forms=2)
        return {"phone": f" {spelled} "}
    if kind == "customer_id":
        return {"customer_id": person["customer_id"]}
    street = person["street"].upper() if rng.random() < 0.5 else f" {person['street']} "
    city = person["city"].upper() if rng.random() < 0.5 else person["city"].lower()
    return {
        "street": street,
        "postal_code": f"{person['postal_code']} ",
        "city": city,
        "country": person["country"],
    }
