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
"""

from __future__ import annotations

import phonenumbers

# Whitespace as users type it in spreadsheets: ASCII blanks plus no-break and narrow no-break spaces.
WS_CLASS = r"[\s\x{00A0}\x{202F}]"


def country_calling_code(region: str) -> str:
    """The calling code of a region ("PL" -> "48"), looked up once per load; unknown regions give ''."""
    code = phonenumbers.country_code_for_region(region.upper())
    return str(code) if code else ""


def _collapse(ref: str) -> str:
    return f"lower(trim(regexp_replace(nfc_normalize({ref}), '{WS_CLASS}+', ' ', 'g')))"


def email_key_sql(ref: str) -> str:
    """SQL for the email key of the column expression `ref`."""
    return f"nullif(lower(trim(regexp_replace(nfc_normalize({ref}), '^{WS_CLASS}+|{WS_CLASS}+$', '', 'g'))), '')"


def phone_key_sql(ref: str, calling_code_param: str = "$phone_cc") -> str:
    """SQL for the phone key of `ref`; the region's calling code is a bound parameter."""
    digits = f"regexp_replace({ref}, '[^0-9]', '', 'g')"
    return (
        f"CASE WHEN {digits} = '' THEN NULL "
        f"WHEN regexp_matches({ref}, '^[\\s(]*\\+') THEN {digits} "
        f"WHEN starts_with({digits}, '00') THEN nullif(substr({digits}, 3), '') "
        f"WHEN starts_with({digits}, '0') THEN nullif({calling_code_param} || substr({digits}, 2), "
        f"{calling_code_param}) "
        f"ELSE {calling_code_param} || {digits} END"
    )


def address_key_sql(street: str, postal_code: str, city: str) -> str:
    """SQL for the address key; NULL when street, postal code or city is NULL."""
    postal = f"lower(regexp_replace(nfc_normalize({postal_code}), '{WS_CLASS}+', '', 'g'))"
    return f"nullif({_collapse(street)}, '') || '|' || nullif({postal}, '') || '|' || nullif({_collapse(city)}, '')"
