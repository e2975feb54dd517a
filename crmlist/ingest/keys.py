"""Normalised contact keys (email_key, address_key) and the e-mail syntax check, as set-based DuckDB SQL.

The rules, as the README quotes them (phone keys are in ingest.phones):

- email_key: the email, Unicode NFC, trimmed, lower-cased. "  Jan.Nowak@Example.COM " -> "jan.nowak@example.com".
- An e-mail is well formed when it has exactly one '@', a non-empty part before it, after it two or more
  non-empty labels separated by dots, and no whitespace or control character but at either end
  ("a@b.pl", " A@B.PL ": yes; "not-an-email", "a@b@c", "a@b", "a@b..pl", "a b@c.pl": no).
- address_key: street | postal code | city. Street and city: NFC, lower-cased, every run of punctuation,
  whitespace and control characters one space, trimmed ("UL. POLNA  7." -> "ul polna 7", "Frýdek-Místek"
  -> "frýdek místek"). Postal code: NFC, upper-cased, whitespace and control characters removed; then in
  the row's country (else crmlist.toml phone_region) PL: two digits, a dash or none, three digits ->
  NN-NNN; CZ and SK: three, a dash or none, two -> NNN NN; RU: three, a dash or none, three -> NNNNNN;
  any other code stays as it is ("00 001", "00001", "00-001" in PL -> "00-001"; "sw1a 1aa" -> "SW1A1AA").
  NULL when any of the three is blank, so an incomplete address never matches anything.
Blank or whitespace-only values are NULL before any of this, so a blank field never matches anything.

Regular expressions are the slow part of a load, so the email key first takes a shortcut that gives the
same result for the values most files hold (visible ASCII at both ends) and applies the full rule to the
rest.
"""

from __future__ import annotations

# Whitespace as users type it in spreadsheets: ASCII blanks plus no-break and narrow no-break spaces.
WS_CLASS = r"[\s\x{00A0}\x{202F}]"
# What separates the words of a street or city in its key: punctuation, separators, controls.
SEPARATORS = r"[\p{P}\p{Z}\p{Cc}\s]+"
BLANKS = r"[\p{Z}\p{Cc}\s]+"
# The separator runs that are not a single space: those holding anything else, and runs of spaces.
_NOT_SPACE = r"[\p{P}\p{Cc}\x{00A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]"
CHANGED_SEPARATORS = rf"{SEPARATORS[:-1]}*{_NOT_SPACE}{SEPARATORS[:-1]}*| {{2,}}"
# Characters an e-mail address never has: '@' (besides its one), whitespace and controls.
_NOT_IN_EMAIL = r"@\s\p{Z}\p{Cc}"
# Whitespace at either end is allowed: the key trims it.
EMAIL_SYNTAX = rf"{BLANKS[:-1]}*[^{_NOT_IN_EMAIL}]+@[^{_NOT_IN_EMAIL}.]+(\.[^{_NOT_IN_EMAIL}.]+)+{BLANKS[:-1]}*"
# Postal codes per country: the code's pattern (after whitespace is removed, a dash optional) and its key.
POSTAL_FORMATS = {
    "PL": (r"([0-9]{2})\p{Pd}?([0-9]{3})", r"\1-\2"),
    "CZ": (r"([0-9]{3})\p{Pd}?([0-9]{2})", r"\1 \2"),
    "SK": (r"([0-9]{3})\p{Pd}?([0-9]{2})", r"\1 \2"),
    "RU": (r"([0-9]{3})\p{Pd}?([0-9]{3})", r"\1\2"),
}


def _visible_ends(ref: str) -> str:
    """True when the value starts and ends with a visible ASCII character: trimming leaves it as it is."""
    return f"ascii({ref}) BETWEEN 33 AND 126 AND ascii(right({ref}, 1)) BETWEEN 33 AND 126"


def email_key_sql(ref: str, shortcut: bool = True) -> str:
    """SQL for the email key of the column expression `ref` (shortcut=False: the full rule for every value,
    which the tests compare the shortcuts with)."""
    full = f"nullif(lower(trim(regexp_replace(nfc_normalize({ref}), '^{WS_CLASS}+|{WS_CLASS}+$', '', 'g'))), '')"
    return f"CASE WHEN {_visible_ends(ref)} THEN lower(nfc_normalize({ref})) ELSE {full} END" if shortcut else full


def email_ok_sql(ref: str) -> str:
    """SQL that is true when the (trimmed) e-mail `ref` is well formed."""
    return f"regexp_full_match({ref}, '{EMAIL_SYNTAX}')"


def words_key_sql(ref: str, shortcut: bool = True) -> str:
    """A street or city as its key: NFC, lower case, punctuation and whitespace runs one space, trimmed;
    NULL when nothing is left. The shortcut replaces only the runs that change (not a single space), which
    is most of the cost of a regular expression; shortcut=False is the rule as written, for the tests."""
    runs = CHANGED_SEPARATORS if shortcut else SEPARATORS
    return f"nullif(trim(regexp_replace(lower(nfc_normalize({ref})), '{runs}', ' ', 'g')), '')"


def postal_key_sql(ref: str, country: str) -> str:
    """A postal code as its key in the SQL country `country` (an upper-case code): see the module doc."""
    plain = f"upper(regexp_replace(nfc_normalize({ref}), '{BLANKS}', '', 'g'))"
    formats = " ".join(
        f"WHEN '{code}' THEN regexp_replace({plain}, '^{pattern}$', '{key}')"
        for code, (pattern, key) in POSTAL_FORMATS.items()
    )
    return f"nullif(CASE {country} {formats} ELSE {plain} END, '')"


def address_key_sql(street: str, postal_code: str, city: str, country: str) -> str:
    """SQL for the address key; NULL when street, postal code or city is NULL. `country` is the SQL of the
    row's country (upper case), already defaulted to the workspace's region."""
    parts = (words_key_sql(street), postal_key_sql(postal_code, country), words_key_sql(city))
    return " || '|' || ".join(parts)
