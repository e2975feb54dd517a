"""Tables the sample-data generator draws from: catalogue, names, places, phone formats."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

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
