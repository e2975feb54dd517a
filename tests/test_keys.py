"""crmlist.ingest.keys and ingest.phones: property tests of the key normalisers (Hypothesis).

The phone key's SQL shortcut must give exactly phonenumbers' answer wherever it answers at all; the
other keys must not depend on case, whitespace, punctuation, Unicode normal form or postal code layout.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmlist.ingest import keys, phones

REGIONS = (*phones.SHORTCUT_REGIONS, "FR", "KZ", "BY", "IT")
PREFIXES = ("", "+", "00", "0", "8", "810", "1", "011", "+7", "+48", "0048", "(0)", "+420", "+44", "+1", "7", "48")
FALLBACK = "from phonenumbers"  # what the stand-in for crm_phone_key returns: the shortcut did not answer


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect() as connection:
        yield connection


@pytest.fixture(scope="module")
def shortcut_con() -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection whose crm_phone_key only says that the shortcut left the value to phonenumbers."""
    from duckdb import sqltypes

    with duckdb.connect() as connection:
        connection.create_function(
            phones.FUNCTION, lambda v, r: FALLBACK, [sqltypes.VARCHAR, sqltypes.VARCHAR], sqltypes.VARCHAR
        )
        yield connection


def sql_phone_keys(con: duckdb.DuckDBPyConnection, rows: list[tuple[str, str]]) -> list[str | None]:
    digits = phones.digits_sql("v")
    key = phones.phone_key_sql("v", "d", "r", phones.shortcut_regions("PL"))
    sql = (
        f"SELECT {key} FROM (SELECT *, {digits} AS d FROM (SELECT unnest($v) AS v, unnest($r) AS r, "
        "generate_subscripts($v, 1) AS i)) ORDER BY i"
    )
    return [k for (k,) in con.execute(sql, {"v": [v for v, _ in rows], "r": [r for _, r in rows]}).fetchall()]


def phone_text() -> st.SearchStrategy[str]:
    """Numbers as people write them: a prefix, digits in groups, the usual marks (and some unusual)."""
    groups = st.lists(st.text(alphabet="0123456789", min_size=1, max_size=4), min_size=1, max_size=5)
    marks = st.sampled_from([" ", "-", "", "(", ")", ".", "/", " - "])
    return st.builds(
        lambda prefix, parts, mark, tail: prefix + mark.join(parts) + tail,
        st.sampled_from(PREFIXES),
        groups,
        marks,
        st.sampled_from(["", "", "", " ", ")", " ext. 12", "x"]),
    )


# Each example is one query of some 27 kB of SQL (60 ms to plan), so the examples are fewer, longer lists:
# 60 lists of 20 to 60 numbers try more numbers (about 2,600) than 300 lists of 1 to 40 did (about 2,000).
@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(phone_text(), st.sampled_from(REGIONS)), min_size=20, max_size=60))
def test_the_phone_shortcut_answers_exactly_as_phonenumbers(
    shortcut_con: duckdb.DuckDBPyConnection, rows: list[tuple[str, str]]
) -> None:
    got = sql_phone_keys(shortcut_con, rows)
    for (value, region), key in zip(rows, got, strict=True):
        assert key in (FALLBACK, phones.phone_key(value, region)), (value, region, key)


@settings(max_examples=25, deadline=None)  # about 1,100 numbers, as 100 lists of 1 to 40 tried 600
@given(st.lists(st.tuples(phone_text(), st.sampled_from(REGIONS)), min_size=20, max_size=60))
def test_phone_keys_in_sql_are_phonenumbers_e164(rows: list[tuple[str, str]]) -> None:
    with duckdb.connect() as con:
        phones.register(con)
        assert sql_phone_keys(con, rows) == [phones.phone_key(v, r) for v, r in rows]


def test_the_phone_shortcut_covers_the_usual_forms(shortcut_con: duckdb.DuckDBPyConnection) -> None:
    rows = [
        ("8 903 093-64-40", "RU"),
        ("+7 (903) 093-64-40", "RU"),
        ("+7 903 093-64-40", "PL"),  # '+': the number's own country decides, not the row's
        ("601 234 567", "PL"),
        ("+48 601-234-567", "PL"),
        ("0048 601 234 567", "PL"),
        ("00420 602 088 025", "CZ"),
        ("0905 123 456", "SK"),
        ("+44 7700 900209", "GB"),
        ("07700 900209", "GB"),
        ("(201) 555-0123", "US"),
    ]
    assert sql_phone_keys(shortcut_con, rows) == [
        "79030936440",
        "79030936440",
        "79030936440",
        "48601234567",
        "48601234567",
        "48601234567",
        "420602088025",
        "421905123456",
        "447700900209",
        "447700900209",
        "12015550123",
    ]


def test_impossible_phone_numbers_have_no_key() -> None:
    assert [phones.phone_key(v, r) for v, r in [("12", "PL"), ("+7 903", "RU"), ("n/a", "PL"), ("601", "XX")]] == [
        None,
        None,
        None,
        None,
    ]


def one(con: duckdb.DuckDBPyConnection, sql: str, *values: str | None) -> str | None:
    row = con.execute(f"SELECT {sql}", list(values)).fetchone()
    assert row is not None
    return row[0]


EMAIL_LOCAL = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-éłÉŁ", min_size=1)
LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-ąĄ", min_size=1, max_size=10)
EMAILS = st.builds(lambda local, labels: local + "@" + ".".join(labels), EMAIL_LOCAL, st.lists(LABEL, min_size=2))


@settings(max_examples=200, deadline=None)
@given(EMAILS, st.sampled_from(["", " ", "  ", "\t", "\u00a0"]), st.sampled_from(["NFC", "NFD"]))
def test_email_keys_ignore_case_blanks_at_the_ends_and_normal_form(
    con: duckdb.DuckDBPyConnection, email: str, pad: str, form: str
) -> None:
    key = one(con, keys.email_key_sql("$1"), email)
    written = pad + unicodedata.normalize(form, email.upper() if email.isascii() else email) + pad
    assert one(con, keys.email_key_sql("$1"), written) == key
    assert one(con, keys.email_key_sql("$1"), key) == key
    assert one(con, keys.email_ok_sql("$1"), written) is True


@settings(max_examples=200, deadline=None)
@given(EMAILS, st.integers(min_value=0), st.sampled_from([" ", "@", "\n", "\u00a0", "\x00"]))
def test_an_email_with_a_second_at_or_a_space_inside_is_not_well_formed(
    con: duckdb.DuckDBPyConnection, email: str, at: int, bad: str
) -> None:
    position = 1 + at % (len(email) - 1)  # inside: never at either end
    assert one(con, keys.email_ok_sql("$1"), email[:position] + bad + email[position:]) is False


WORDS = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzłóśćżźęąčřž0123456789", min_size=1, max_size=8), min_size=1
)
SEPARATORS = st.lists(st.sampled_from([" ", "  ", ". ", ".", ",", " / ", "-", "\u00a0", "\t", "–"]), min_size=8)


@settings(max_examples=200, deadline=None)
@given(WORDS, SEPARATORS, st.booleans(), st.sampled_from(["", ".", " ", ",", "  "]))
def test_street_and_city_keys_ignore_case_punctuation_and_whitespace(
    con: duckdb.DuckDBPyConnection, words: list[str], separators: list[str], upper: bool, end: str
) -> None:
    plain = one(con, keys.words_key_sql("$1"), " ".join(words))
    written = "".join(w + (separators[i % len(separators)] if i < len(words) - 1 else "") for i, w in enumerate(words))
    written = end + (written.upper() if upper else written) + end
    assert one(con, keys.words_key_sql("$1"), unicodedata.normalize("NFD", written)) == plain
    assert one(con, keys.words_key_sql("$1"), plain) == plain


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789", min_size=6, max_size=6), st.sampled_from(["", " ", "-", "  ", "\u2013"]))
def test_postal_codes_are_one_key_however_they_are_spaced(
    con: duckdb.DuckDBPyConnection, digits: str, mark: str
) -> None:
    expected = {"PL": f"{digits[:2]}-{digits[2:5]}", "CZ": f"{digits[:3]} {digits[3:5]}", "RU": digits}
    for country, key in expected.items():
        n = 6 if country == "RU" else 5
        split = 2 if country == "PL" else 3
        written = f" {digits[:split]}{mark}{digits[split:n]} "
        assert one(con, keys.postal_key_sql("$1", "$2"), written, country) == key
    assert one(con, keys.postal_key_sql("$1", "$2"), f"{digits[:3]} {digits[3:]}x", "GB") == f"{digits}X"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ab1 .,/-\t\u00a0\u2003\u2028\u3000\x85–ł", max_size=12), min_size=1, max_size=30))
def test_the_street_key_shortcut_gives_the_rules_result(con: duckdb.DuckDBPyConnection, values: list[str]) -> None:
    fast, full = keys.words_key_sql("v"), keys.words_key_sql("v", shortcut=False)
    rows = con.execute(f"SELECT {fast}, {full} FROM (SELECT unnest($1) AS v)", [values]).fetchall()
    assert [a for a, _ in rows] == [b for _, b in rows]


def test_the_addresses_of_the_issue_are_one_key(con: duckdb.DuckDBPyConnection) -> None:
    key = keys.address_key_sql("$1", "$2", "$3", "'PL'")
    assert one(con, key, "UL. POLNA 7", "07871", "WARSZAWA") == one(con, key, "ul. Polna  7", "07-871", "Warszawa")
    assert one(con, key, "ul. Lipowa 8.", "00 001", "Kraków") == one(con, key, "ul. Lipowa 8", "00001", "KRAKÓW")
    assert one(con, key, "ul. Lipowa 8", "00-001", "Kraków") == "ul lipowa 8|00-001|kraków"
    assert one(con, key, "ul. Polna 7/3", "00-001", "Kraków") != one(con, key, "ul. Polna 73", "00-001", "Kraków")
    assert one(con, key, "ul. Polna 7", None, "Kraków") is None
