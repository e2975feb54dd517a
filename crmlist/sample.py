"""Seeded generator of the bundled sample data: customers, products, purchases and suppressions CSVs."""

from __future__ import annotations

import csv
import datetime as dt
import random
import unicodedata
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from crmlist.errors import OutputError

# The demo's as-of; every date hangs off it (never off today) so the files never change.
AS_OF = dt.date(2026, 11, 1)
FIRST_ORDER_DAY = AS_OF - dt.timedelta(days=3 * 365)
CENT = Decimal("0.01")
CUSTOMERS = 2000

Row = dict[str, Any]

FIELDS = {
    "customers.csv": ("customer_id", "first_name", "last_name", "gender", "birth_date", "email", "phone",
                      "street", "city", "postal_code", "country", "language", "household_id", "signup_date",
                      "email_opt_in", "sms_opt_in", "mail_opt_in", "phone_opt_in", "loyalty_tier"),
    "products.csv": ("product_id", "name", "category", "color", "price", "complements"),
    "purchases.csv": ("order_id", "customer_id", "order_date", "product_id", "category", "quantity",
                      "unit_price", "amount", "currency"),
    "suppressions.csv": ("customer_id", "email", "phone", "street", "postal_code", "city", "country",
                         "channel", "reason", "added_at"),
}  # fmt: skip

# product_id;name;category;color;price;complements (in the order they should be offered)
CATALOGUE = """
P-TV-32;32-inch HD LED TV;tv;black;849.00;P-MNT-S|P-HDMI-2M|P-DTV-BASIC
P-TV-43;43-inch 4K TV;tv;black;1299.00;P-MNT-S|P-HDMI-2M|P-SND-BAR|P-DTV-PLUS
P-TV-50;50-inch 4K TV;tv;silver;1799.00;P-MNT-L|P-HDMI-2M|P-SND-BAR|P-DTV-PLUS
P-TV-55;55-inch 4K OLED TV;tv;black;3499.00;P-MNT-L|P-SND-BAR|P-HDMI-2M|P-DTV-PREMIUM
P-TV-65;65-inch 4K QLED TV;tv;black;4299.00;P-MNT-L|P-SND-BAR|P-DTV-PREMIUM
P-DTV-BASIC;Digital TV package Basic, 12 months;digital_tv;;299.00;
P-DTV-PLUS;Digital TV package Plus, 12 months;digital_tv;;499.00;
P-DTV-PREMIUM;Digital TV package Premium, 12 months;digital_tv;;799.00;
P-MNT-S;TV wall mount 23-43 inch;accessories;black;119.00;
P-MNT-L;TV wall mount 43-75 inch;accessories;black;219.00;
P-HDMI-2M;HDMI 2.1 cable, 2 m;accessories;black;49.90;
P-REMOTE;Universal remote control;accessories;black;89.00;
P-BATT-AA;AA batteries, pack of 8;accessories;;24.90;
P-CASE-BLK;Phone case;accessories;black;59.00;
P-CASE-RED;Phone case;accessories;red;59.00;
P-CHG-30W;USB-C charger 30 W;accessories;white;79.00;
P-GLASS;Tempered glass screen protector;accessories;;39.00;
P-PWR-10K;Power bank 10000 mAh;accessories;black;99.00;
P-PEN-BLK;Fountain pen;accessories;black;149.00;
P-PEN-BRN;Fountain pen;accessories;brown;149.00;
P-CARD-BRN;Leather card holder;accessories;brown;89.00;
P-SND-BAR;Soundbar 2.1 with subwoofer;audio;black;899.00;P-HDMI-2M|P-MNT-S
P-SPK-BT;Portable Bluetooth speaker;audio;blue;249.00;P-PWR-10K
P-HP-OVER;Wireless over-ear headphones;audio;black;599.00;
P-BUDS;True wireless earbuds;audio;white;349.00;P-CHG-30W
P-TURN;Belt-drive turntable;audio;walnut;1199.00;
P-RADIO;DAB+ kitchen radio;audio;cream;199.00;P-BATT-AA
P-PHN-A15;Smartphone A15, 128 GB;phone;black;999.00;P-CASE-BLK|P-GLASS|P-CHG-30W
P-PHN-A35;Smartphone A35, 256 GB;phone;blue;1699.00;P-CASE-BLK|P-GLASS|P-CHG-30W
P-PHN-X1;Smartphone X1 Pro, 512 GB;phone;black;3999.00;P-CASE-BLK|P-GLASS|P-CHG-30W|P-BUDS
P-PHN-FLIP;Flip phone for seniors;phone;red;299.00;P-CASE-RED|P-CHG-30W
P-BRF-BLK;Leather briefcase;briefcase;black;599.00;P-FLD-BLK|P-FLD-BRN
P-BRF-BRN;Leather briefcase;briefcase;brown;599.00;P-FLD-BRN|P-FLD-BLK
P-BRF-GRY;Canvas briefcase;briefcase;grey;349.00;P-FLD-BLK|P-FLD-BRN
P-FLD-BLK;Leather document folder;folder;black;179.00;P-PEN-BLK
P-FLD-BRN;Leather document folder;folder;brown;179.00;P-PEN-BRN
P-BK-BARISTA;The Home Barista Handbook;books;;69.90;P-BEANS
P-BK-GARDEN;A Year in the Allotment;books;;54.90;P-SEEDS
P-BK-NOVEL;The Lighthouse Keeper's Daughter;books;;39.90;
P-BK-HIST;Rivers of Central Europe: A History;books;;79.90;
P-BK-COOK;Soups of Four Seasons;books;;59.90;P-POT
P-BK-KIDS;The Hedgehog Who Could Not Sleep;books;;29.90;
P-BK-TRAVEL;Walking the Tatras;books;;49.90;
P-BK-CRIME;A Quiet Death in Brno;books;;44.90;
P-MOWER;Cordless lawn mower 36 V;garden;green;1299.00;
P-GLOVES;Garden gloves;garden;green;29.90;
P-HOSE;Garden hose 25 m with reel;garden;green;189.00;
P-SECAT;Bypass secateurs;garden;red;79.00;
P-SEEDS;Vegetable seed collection;garden;;34.90;
P-CAN;Watering can 10 l;garden;green;49.90;
P-CHAIR;Folding garden chair;garden;grey;149.00;
P-COFFEE;Espresso machine;kitchen;silver;1499.00;
P-BEANS;Coffee beans 1 kg;kitchen;;69.90;
P-DESCALE;Descaler for coffee machines;kitchen;;39.90;
P-KETTLE;Electric kettle 1.7 l;kitchen;white;149.00;
P-KNIFE;Chef's knife 20 cm;kitchen;;299.00;
P-SHARP;Whetstone knife sharpener;kitchen;;119.00;
P-BOARD;Oak cutting board;kitchen;;139.00;
P-PAN;Cast-iron frying pan 28 cm;kitchen;black;229.00;
P-POT;Enamelled stockpot 6 l;kitchen;red;259.00;
P-BLEND;Countertop blender;kitchen;black;399.00;
"""

FIRST_NAMES = {
    ("pl", "F"): "Anna Maria Katarzyna Małgorzata Agnieszka Barbara Ewa Magdalena Joanna Zofia Aleksandra",
    ("pl", "M"): "Jan Piotr Krzysztof Andrzej Tomasz Paweł Michał Marcin Łukasz Grzegorz Jakub Wojciech",
    ("cs", "F"): "Jana Eva Hana Anna Lenka Kateřina Lucie Věra Petra Veronika Markéta Zuzana",
    ("cs", "M"): "Jiří Jan Petr Josef Pavel Martin Tomáš Jaroslav Miroslav Lukáš Ondřej Vojtěch",
    ("ru", "F"): "Анна Елена Ольга Наталья Екатерина Татьяна Мария Ирина Светлана Юлия",
    ("ru", "M"): "Александр Сергей Дмитрий Андрей Алексей Михаил Иван Николай Владимир Павел",
    ("en", "F"): "Emma Olivia Sarah Emily Charlotte Sophie Grace Hannah Lucy Megan Siobhan",
    ("en", "M"): "James John Oliver William Thomas George Jack Harry Michael David Liam",
}
# Surnames as masculine:feminine where the language inflects them by gender.
LAST_NAMES = {
    "pl": "Kowalski:Kowalska Nowak Wiśniewski:Wiśniewska Wójcik Kowalczyk Kamiński:Kamińska Mazur "
    "Lewandowski:Lewandowska Zieliński:Zielińska Szymański:Szymańska Woźniak Dąbrowski:Dąbrowska "
    "Kozłowski:Kozłowska Jankowski:Jankowska Krawczyk Piotrowski:Piotrowska",
    "cs": "Novák:Nováková Svoboda:Svobodová Novotný:Novotná Dvořák:Dvořáková Černý:Černá Marek:Marková "
    "Procházka:Procházková Kučera:Kučerová Veselý:Veselá Horák:Horáková Němec:Němcová Pospíšil:Pospíšilová",
    "ru": "Иванов:Иванова Смирнов:Смирнова Кузнецов:Кузнецова Попов:Попова Васильев:Васильева "
    "Петров:Петрова Соколов:Соколова Михайлов:Михайлова Новиков:Новикова Фёдоров:Фёдорова "
    "Морозов:Морозова Волков:Волкова",
    "en": "Smith Jones Taylor Brown Williams Wilson Johnson Davies Murphy O'Brien Walsh Miller Evans Clarke",
}
# country: (city, postal code pattern: # a digit, @ a letter) and street patterns ({n} house, {f} flat)
PLACES = {
    "PL": [("Warszawa", "0#-###"), ("Kraków", "3#-###"), ("Gdańsk", "80-###"), ("Wrocław", "5#-###"),
           ("Poznań", "6#-###"), ("Łódź", "9#-###")],
    "CZ": [("Praha", "1## 00"), ("Brno", "6## 00"), ("Ostrava", "7## 00"), ("Plzeň", "3## 00"),
           ("Olomouc", "77# 00")],
    "RU": [("Москва", "1#####"), ("Санкт-Петербург", "19####"), ("Казань", "420###"),
           ("Екатеринбург", "620###")],
    "GB": [("London", "SW# #@@"), ("Manchester", "M## #@@"), ("Leeds", "LS# #@@")],
    "IE": [("Dublin", "D0# @#@#"), ("Cork", "T12 @#@#"), ("Galway", "H91 @#@#")],
    "US": [("Boston", "021##"), ("Chicago", "606##"), ("Seattle", "981##")],
}  # fmt: skip
STREETS = {
    "PL": ["ul. Marszałkowska {n}/{f}", "ul. Długa {n}", "ul. Kwiatowa {n}", "ul. Polna {n}/{f}",
           "ul. Słoneczna {n}", "al. Jana Pawła II {n}/{f}", "ul. Leśna {n}", "ul. Ogrodowa {n}/{f}"],
    "CZ": ["Vinohradská {f}/{n}", "Husova {n}", "Masarykova {f}/{n}", "Palackého {n}",
           "Nádražní {f}/{n}", "Školní {n}", "Komenského {n}"],
    "RU": ["ул. Ленина, д. {n}, кв. {f}", "ул. Гагарина, д. {n}", "пр. Мира, д. {n}, кв. {f}",
           "ул. Пушкина, д. {n}, кв. {f}", "ул. Садовая, д. {n}", "ул. Советская, д. {n}, кв. {f}"],
    "GB": ["{n} High Street", "{n} Station Road", "{n} Church Lane", "Flat {f}, {n} Victoria Road"],
    "IE": ["{n} Main Street", "{n} Church Road", "{n} Strand Road", "Apartment {f}, {n} Quay Street"],
    "US": ["{n} Main Street", "{n} Oak Avenue", "{n} Maple Street, Apt {f}", "{n} Elm Street"],
}  # fmt: skip
# country: national number prefixes (fictional ranges where one exists), digit groups, written forms
PHONES: dict[str, tuple[tuple[str, ...], tuple[int, ...], tuple[str, ...]]] = {
    "PL": (("50", "51", "53", "60", "66", "69", "72", "79", "88"), (3, 3, 3),
           ("+48 {0} {1} {2}", "0048{0}{1}{2}", "{0}{1}{2}", "+48{0}{1}{2}", "{0}-{1}-{2}")),
    "CZ": (("601", "602", "603", "721", "731", "777"), (3, 3, 3),
           ("+420 {0} {1} {2}", "00420 {0} {1} {2}", "+420{0}{1}{2}")),
    "RU": (("916", "926", "903", "921"), (3, 3, 2, 2),
           ("+7 {0} {1}-{2}-{3}", "+7 ({0}) {1}-{2}-{3}", "8 {0} {1}-{2}-{3}")),
    "GB": (("7700900",), (4, 6), ("+44 {0} {1}", "+44{0}{1}")),
    "IE": (("85", "86", "87"), (2, 3, 4), ("+353 {0} {1} {2}", "00353 {0} {1} {2}")),
    "US": (("61755501", "31255501", "20655501"), (3, 3, 4), ("+1 ({0}) {1}-{2}", "+1 {0} {1} {2}")),
}  # fmt: skip
EMAIL_DOMAINS = {
    "pl": ("poczta.example", "example.com"),
    "cs": ("seznam.example", "example.com"),
    "ru": ("pochta.example", "example.net"),
    "en": ("example.com", "example.org", "mail.example"),
}
CYRILLIC = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя", ("a", "b", "v", "g", "d", "e", "e", "zh", "z",
    "i", "y", "k", "l", "m", "n", "o", "p", "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y",
    "", "e", "yu", "ya"), strict=True))  # fmt: skip
LANGUAGE_COUNTRIES = {"pl": ("PL",), "cs": ("CZ",), "ru": ("RU",), "en": ("GB", "GB", "IE", "US", "US")}
# Categories people come back for, and one-off purchases with the share of buyers who make one.
HOBBIES = ("books", "books", "books", "kitchen", "kitchen", "garden", "garden", "accessories")
ONE_OFFS = (("audio", 0.2), ("phone", 0.1), ("tv", 0.22))
PREFERENCE = {"P-BRF-BLK": 2.5, "P-BRF-BRN": 1.8}  # most briefcases sold are leather ones
# Bought together within one category: co-purchases, never complements (those cross categories).
BOUGHT_WITH = {"P-MOWER": ["P-GLOVES"], "P-SECAT": ["P-GLOVES"], "P-COFFEE": ["P-BEANS", "P-DESCALE"],
               "P-KNIFE": ["P-SHARP", "P-BOARD"]}  # fmt: skip


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
