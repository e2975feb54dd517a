"""Phone keys: E.164 digits (no '+') as phonenumbers reads the number in the customer's own country.

The rule: `phonenumbers.parse(value, region)`, where region is the row's `country`, else crmlist.toml
`phone_region` (default PL); a number phonenumbers cannot parse, or one that `is_possible_number` refuses
(a length no number of that country has), is impossible and its row is rejected; any other number's key
is its E.164 form without the '+'. "8 903 093-64-40" in RU -> "79030936440", "+48 601 234 567" and
"601-234-567" in PL -> "48601234567".

phonenumbers takes some 30 microseconds a number, half a minute for a million customers, so the values
most files hold take a SQL shortcut that computes exactly what phonenumbers would: digits, spaces, '-',
'(' and ')', with at most a leading '+', of a few countries' usual national and international forms,
read from phonenumbers' own metadata (country calling code, international and national prefixes,
possible lengths, the national number pattern). Every other value goes to phonenumbers itself, called
from SQL as a Python function (`register`). tests/test_keys.py compares the two on generated numbers.
phonenumbers is imported only by loads that have a phone column.
"""

from __future__ import annotations

import contextlib
import functools
import re
from dataclasses import dataclass
from typing import Any

import duckdb

FUNCTION = "crm_phone_key"
# Countries whose usual forms take the SQL shortcut (with crmlist.toml phone_region); the others are
# parsed by phonenumbers, which is exact for them too, only slower.
SHORTCUT_REGIONS = ("PL", "CZ", "SK", "RU", "UA", "DE", "AT", "GB", "IE", "US")
MARKS = (" ", "-", "(", ")")


def phone_key(value: str | None, region: str | None) -> str | None:
    """The rule itself: E.164 digits of `value` read in `region`, or None when it is not a possible number."""
    import phonenumbers

    if value is None or region is None:
        return None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


def is_region(region: str) -> bool:
    """Whether phonenumbers knows the region ("PL": yes, "XX": no)."""
    import phonenumbers

    return region.upper() in phonenumbers.SUPPORTED_REGIONS


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Make crm_phone_key(value, region) callable in the connection's SQL (once per connection)."""
    from duckdb import func, sqltypes

    with contextlib.suppress(duckdb.NotImplementedException):  # registered by an earlier load on `con`
        con.create_function(
            FUNCTION,
            phone_key,
            [sqltypes.VARCHAR, sqltypes.VARCHAR],
            sqltypes.VARCHAR,
            null_handling=func.SPECIAL,  # it returns NULL for an impossible number
            side_effects=False,
        )


@dataclass(frozen=True)
class _Plan:
    """What the shortcut needs of a country: phonenumbers' metadata, checked to be plain digit strings."""

    region: str
    code: str  # country calling code
    idd: str  # international prefix dialled from the country
    national: tuple[str, ...]  # national prefixes for parsing, in the order the pattern tries them
    lengths: tuple[int, ...]  # possible lengths of the national significant number (not local-only)
    pattern: str  # the national number pattern, to tell whether a number keeps its national prefix


def _plan(region: str) -> _Plan | None:
    """The shortcut plan of a region, or None when its metadata is not of the plain kind the shortcut
    reproduces (an international or national prefix that is a pattern, a transform rule, a shared code)."""
    import phonenumbers
    from phonenumbers import PhoneMetadata

    meta = PhoneMetadata.metadata_for_region(region, None)
    if meta is None or meta.country_code is None:
        return None
    if phonenumbers.region_code_for_country_code(meta.country_code) != region:
        return None
    idd, npp, general = meta.international_prefix or "", meta.national_prefix_for_parsing, meta.general_desc
    if not re.fullmatch(r"\d+", idd) or meta.national_prefix_transform_rule:
        return None
    if npp and not re.fullmatch(r"\d+(\|\d+)*", npp):
        return None
    if general is None or not general.national_number_pattern or "'" in general.national_number_pattern:
        return None
    national = tuple(npp.split("|")) if npp else ()
    return _Plan(
        region, str(meta.country_code), idd, national, tuple(general.possible_length), general.national_number_pattern
    )


@functools.cache
def _plans(regions: tuple[str, ...]) -> tuple[_Plan, ...]:
    found = (_plan(r) for r in dict.fromkeys(r.upper() for r in regions))
    return tuple(p for p in found if p is not None)


def _lengths(expr: str, plan: _Plan) -> str:
    return f"length({expr}) IN ({', '.join(str(n) for n in plan.lengths)})"


def _significant(number: str, plan: _Plan) -> str:
    """True when `number` (digits) is a national significant number phonenumbers keeps as it is: a possible
    length, no leading zero and no national prefix for it to strip."""
    starts = [f"starts_with({number}, '{p}')" for p in ("0", *plan.national)]
    return f"{_lengths(number, plan)} AND NOT ({' OR '.join(starts)})"


def _international(digits: str, plans: tuple[_Plan, ...]) -> str:
    """The key of digits after '+' or an international prefix: the country code (calling codes are prefix
    free, so at most one matches) and a national significant number kept as it is. NULL otherwise."""
    ifs = [
        f"WHEN starts_with({digits}, '{p.code}') AND {_significant(f'substr({digits}, {len(p.code) + 1})', p)} "
        f"THEN {digits}"
        for p in plans
    ]
    return f"CASE {' '.join(ifs)} END"


def _national(digits: str, plan: _Plan, plans: tuple[_Plan, ...]) -> str:
    """The key of digits written without '+' in the plan's country, in phonenumbers' order: an international
    prefix (unless a 0 follows it), a number starting with the country code (left to phonenumbers), a
    national prefix (stripped when the number with it does not fit the national number pattern), or a
    national significant number as it is. NULL where phonenumbers must decide."""
    after = f"substr({digits}, {len(plan.idd) + 1})"
    ifs = [
        f"WHEN starts_with({digits}, '{plan.idd}') THEN CASE WHEN NOT starts_with({after}, '0') "
        f"THEN {_international(after, plans)} END",
        f"WHEN starts_with({digits}, '{plan.code}') THEN NULL",
    ]
    for i, prefix in enumerate(plan.national):
        if i:  # a later alternative of the prefix pattern: phonenumbers decides
            ifs.append(f"WHEN starts_with({digits}, '{prefix}') THEN NULL")
            continue
        stripped = f"substr({digits}, {len(prefix) + 1})"
        ifs.append(
            f"WHEN starts_with({digits}, '{prefix}') THEN CASE WHEN {_lengths(stripped, plan)} "
            f"AND NOT starts_with({stripped}, '0') AND NOT regexp_full_match({digits}, '{plan.pattern}') "
            f"THEN '{plan.code}' || {stripped} END"
        )
    ifs.append(f"WHEN {_significant(digits, plan)} THEN '{plan.code}' || {digits}")
    return f"CASE {' '.join(ifs)} END"


def digits_sql(ref: str) -> str:
    """The digits of a value of the shortcut's shape (digits, spaces, '-', '(' and ')' after at most one
    leading '+'); NULL for any other value."""
    body = f"CASE WHEN starts_with({ref}, '+') THEN substr({ref}, 2) ELSE {ref} END"
    for mark in MARKS:
        body = f"replace({body}, '{mark}', '')"
    return f"CASE WHEN regexp_full_match({body}, '[0-9]+') THEN {body} END"


def phone_key_sql(ref: str, digits: str, region: str, regions: tuple[str, ...]) -> str:
    """SQL for the phone key of the value `ref` (trimmed, NULL when blank) with `digits` = digits_sql(ref)
    and `region` the SQL of its country. NULL for an impossible number. `regions` are the countries given
    a shortcut (those phonenumbers' metadata allows); crm_phone_key must be registered."""
    plans = _plans(regions)
    national = " ".join(f"WHEN '{p.region}' THEN {_national(digits, p, plans)}" for p in plans)
    shortcut = (
        f"CASE WHEN {digits} IS NULL THEN NULL WHEN starts_with({ref}, '+') THEN {_international(digits, plans)} "
        f"ELSE CASE {region} {national} END END"
    )
    return f"CASE WHEN {ref} IS NULL THEN NULL ELSE coalesce({shortcut}, {FUNCTION}({ref}, {region})) END"


def shortcut_regions(default_region: str) -> tuple[str, ...]:
    return (*SHORTCUT_REGIONS, default_region.upper())


def uses_phone_keys(table: str, names: Any) -> bool:
    """Whether a load of `table` with these column names computes phone keys."""
    return table in ("customers", "suppressions") and "phone" in names
