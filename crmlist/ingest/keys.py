"""Normalised contact keys (email_key, phone_key, address_key) as set-based DuckDB SQL.

The rules, as the README quotes them:

- email_key: the email, Unicode NFC, trimmed, lower-cased. "  Jan.Nowak@Example.COM " -> "jan.nowak@example.com".
- phone_key: E.164 digits without the '+'. Every character but the digits is dropped; then a number written
  with a leading '+' keeps its digits as they are ("+48 601 234 567" -> "48601234567"), a leading '00' is the
  international prefix and is dropped ("0048 601..." -> "48601..."), and any other number is national: one
  leading trunk '0' is dropped and the country calling code of crmlist.toml `phone_region` (default PL, 48)
  is put in front ("601 234 567" -> "48601234567", "0601 234 567" -> "48601234567"). No digits: NULL.
- address_key: street | postal code | city, each NFC and lower-cased; runs of whitespace in street and city
  become one space, all whitespace is removed from the postal code ("Długa  5", "00-950 ", "WARSZAWA" ->
  "długa 5|00-950|warszawa"). NULL when any of the three is blank.
Blank or whitespace-only values are NULL before any of this, so a blank field never matches anything.

Regular expressions are the slow part of a load, so each key first takes a shortcut that gives the same
result for the values most files hold (visible ASCII at both ends, phone numbers of digits, spaces, '+',
'-' and parentheses) and applies the full rule to the rest.
"""

from __future__ import annotations

# Whitespace as users type it in spreadsheets: ASCII blanks plus no-break and narrow no-break spaces.
WS_CLASS = r"[\s\x{00A0}\x{202F}]"
# The whitespace that collapsing changes: runs of two or more, and any single blank but the space.
COLLAPSED = r"[\s\x{00A0}\x{202F}]{2,}|[\t\n\f\r\x{00A0}\x{202F}]"
PHONE_MARKS = (" ", "-", "+", "(", ")")


def country_calling_code(region: str) -> str:
    """The calling code of a region ("PL" -> "48"), looked up once per load; unknown regions give ''."""
    import phonenumbers  # imported here: only loads that write phone keys pay for it

    code = phonenumbers.country_code_for_region(region.upper())
    return str(code) if code else ""


def _visible_ends(ref: str) -> str:
    """True when the value starts and ends with a visible ASCII character: trimming leaves it as it is."""
    return f"ascii({ref}) BETWEEN 33 AND 126 AND ascii(right({ref}, 1)) BETWEEN 33 AND 126"


def _collapse(ref: str, shortcut: bool) -> str:
    runs = COLLAPSED if shortcut else f"{WS_CLASS}+"  # single spaces stay as they are either way
    return f"lower(trim(regexp_replace(nfc_normalize({ref}), '{runs}', ' ', 'g')))"


def email_key_sql(ref: str, shortcut: bool = True) -> str:
    """SQL for the email key of the column expression `ref` (shortcut=False: the full rule for every value,
    which the tests compare the shortcuts with)."""
    full = f"nullif(lower(trim(regexp_replace(nfc_normalize({ref}), '^{WS_CLASS}+|{WS_CLASS}+$', '', 'g'))), '')"
    return f"CASE WHEN {_visible_ends(ref)} THEN lower(nfc_normalize({ref})) ELSE {full} END" if shortcut else full


def _phone_digits(ref: str, shortcut: bool) -> str:
    """The digits of a phone number: the usual marks dropped by replace(), a regular expression otherwise."""
    full = f"regexp_replace({ref}, '[^0-9]', '', 'g')"
    if not shortcut:
        return full
    stripped = ref
    for mark in PHONE_MARKS:
        stripped = f"replace({stripped}, '{mark}', '')"
    return f"CASE WHEN regexp_full_match({stripped}, '[0-9]*') THEN {stripped} ELSE {full} END"


def phone_key_sql(ref: str, calling_code_param: str = "$phone_cc", shortcut: bool = True) -> str:
    """SQL for the phone key of `ref`; the region's calling code is a bound parameter."""
    digits = _phone_digits(ref, shortcut)
    plus = f"regexp_matches({ref}, '^[\\s(]*\\+')"
    if shortcut:  # a leading '+' or digit settles it
        settled = f"WHEN starts_with({ref}, '+') THEN true WHEN ascii({ref}) BETWEEN 48 AND 57 THEN false"
        plus = f"CASE {settled} ELSE {plus} END"
    return (
        f"CASE WHEN {digits} = '' THEN NULL "
        f"WHEN {plus} THEN {digits} "
        f"WHEN starts_with({digits}, '00') THEN nullif(substr({digits}, 3), '') "
        f"WHEN starts_with({digits}, '0') THEN nullif({calling_code_param} || substr({digits}, 2), "
        f"{calling_code_param}) "
        f"ELSE {calling_code_param} || {digits} END"
    )


def address_key_sql(street: str, postal_code: str, city: str, shortcut: bool = True) -> str:
    """SQL for the address key; NULL when street, postal code or city is NULL."""
    postal = f"lower(regexp_replace(nfc_normalize({postal_code}), '{WS_CLASS}+', '', 'g'))"
    parts = (
        f"nullif({_collapse(street, shortcut)}, '')",
        f"nullif({postal}, '')",
        f"nullif({_collapse(city, shortcut)}, '')",
    )
    return " || '|' || ".join(parts)
