"""What to say about a bad row: the problem, the fix, and the value only when it is not personal data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from crmlist.ingest.columns import Column, Plan

# Canonical columns whose values may appear in messages (ids, dates of purchases, amounts, flags,
# codes). Everything else, every extra column included, is treated as personal data.
SHOWN: dict[str, frozenset[str]] = {
    "customers": frozenset(
        {"customer_id", "gender", "country", "language", "household_id", "signup_date"}
        | {"email_opt_in", "sms_opt_in", "mail_opt_in", "phone_opt_in"}
    ),
    "purchases": frozenset(
        {"order_id", "customer_id", "order_date", "product_id", "category", "quantity", "unit_price"}
        | {"amount", "currency"}
    ),
    "products": frozenset({"product_id", "name", "category", "color", "price", "complements", "in_stock"}),
    "suppressions": frozenset({"customer_id", "channel", "reason", "added_at", "country"}),
    "responses": frozenset({"customer_id", "responded_at", "campaign", "offer_code", "revenue"}),
    "contacts": frozenset({"run_id", "campaign", "cell", "customer_id", "channel", "offer", "is_control", "as_of"}),
}
SKIP_HINT = "or pass --on-error skip to load the good rows and keep the bad ones in load_rejects"


def plural(count: int, noun: str) -> str:
    """'1 row', '2 rows'."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def clip(value: str) -> str:
    """A value quoted for a message: at most 40 characters, line breaks escaped."""
    text = value if len(value) <= 40 else value[:37] + "..."
    return "'" + text.replace("\n", "\\n").replace("\r", "\\r") + "'"


def shown_value(table: str, column: Column | None, value: str | None) -> str:
    """' 'VALUE'' for a non-personal canonical column, '' otherwise."""
    if column is None or value is None or not column.canonical or column.name not in SHOWN[table]:
        return ""
    return " " + clip(value)


def _type_problem(table: str, column: Column, date_format: str | None, decimal_comma: bool) -> tuple[str, str]:
    name, ctype = column.name, column.target_type
    if column.canonical and name == "gender":
        return "is not F, M or X", "write F, M or X, or leave it blank"
    if column.canonical and name == "country":
        return "is not an ISO 3166 alpha-2 country code", "write two-letter codes such as PL, CZ, DE"
    if column.canonical and name == "language":
        return "is not a language code", "write lowercase codes such as pl, cs, ru, en"
    if column.canonical and name == "channel" and table == "suppressions":
        return "is not a channel", "write all, email, sms, mail or phone (blank means all)"
    if ctype in ("DATE", "TIMESTAMP"):
        if date_format:
            return "is not a date", f"write dates as {date_format} (--date-format) or YYYY-MM-DD"
        return "is not a date", "write dates as YYYY-MM-DD, or pass --date-format (e.g. '%d.%m.%Y')"
    if ctype == "BOOLEAN":
        return "is not a yes/no value", "write true/false, yes/no, 1/0, y/n, tak/nie, ano/ne or да/нет"
    if ctype.startswith("DECIMAL"):
        if decimal_comma:
            return "is not a number", "write numbers as 1234,50 or 1 234,50 (--decimal-comma)"
        return "is not a number", "write numbers as 1234.50, or pass --decimal-comma for 1 234,50"
    if ctype == "VARCHAR[]":
        return "is not a list of ids", "separate ids with '|', or give a JSON array"
    return f"does not fit the column's type {ctype}", "make the values fit, or load them into a new column"


Described = tuple[str, str | None, str]  # (what, column name, hint)


def describe(
    table: str, plan: Plan, code: str, value: str | None, date_format: str | None, decimal_comma: bool
) -> Described:
    """(what, column name, hint) for a __crm_bad code of a row of a file with this plan."""
    kind, _, position = code.partition(":")
    column = plan.columns[int(position)] if position else None
    if kind in _ROW_PROBLEMS:
        return _ROW_PROBLEMS[kind]
    if column is not None and kind in _COLUMN_PROBLEMS:
        return _COLUMN_PROBLEMS[kind](_Bad(table, column, value, date_format, decimal_comma))
    return f"bad row ({code})", None, "check the row"


@dataclass(frozen=True)
class _Bad:
    """A bad value of a column, with what the message needs to describe it."""

    table: str
    column: Column
    value: str | None
    date_format: str | None
    decimal_comma: bool

    @property
    def shown(self) -> str:
        return shown_value(self.table, self.column, self.value)


def _missing(bad: _Bad) -> Described:
    name = bad.column.name
    return f"{name}: missing (required)", name, f"fill in {name}"


def _wrong_type(bad: _Bad) -> Described:
    problem, hint = _type_problem(bad.table, bad.column, bad.date_format, bad.decimal_comma)
    name, shown = bad.column.name, bad.shown
    return (f"{name}:{shown} {problem}" if shown else f"{name}: the value {problem}"), name, hint


def _phone(bad: _Bad) -> Described:
    country = f" in {bad.value}" if bad.value else ""
    return (
        f"phone: the value is not a possible phone number{country} (the row's country, else phone_region)",
        "phone",
        "write the number with its country code (e.g. +48 601 234 567), or correct the row's country",
    )


def _email(bad: _Bad) -> Described:
    return (
        "email: the value is not an e-mail address (one @, a name before it, a domain with a dot after it, no spaces)",
        "email",
        "correct the address, or leave it blank",
    )


def _digits(bad: _Bad) -> Described:
    scale = bad.column.target_type.rstrip(")").rpartition(",")[2]
    return (
        f"{bad.column.name}:{bad.shown or ' the value'} has more decimals than the column keeps ({scale})",
        bad.column.name,
        f"round the values in the file to {scale} decimals: crmlist never rounds them silently",
    )


def _out_of_range(bad: _Bad) -> Described:
    limit = "the day of the load" if bad.column.name == "birth_date" else "[dates] latest"
    return (
        f"{bad.column.name}:{bad.shown or ' the date'} is outside the plausible dates ([dates] earliest to {limit})",
        bad.column.name,
        "correct the date, or widen [dates] earliest / latest in crmlist.toml (default 1900-01-01 to 2100-12-31)",
    )


def _control(bad: _Bad) -> Described:
    return (
        f"{bad.column.name}: the value holds a line break or NUL character",
        bad.column.name,
        "keep the value on one line (a line break would end an e-mail header or a list line early)",
    )


_COLUMN_PROBLEMS: dict[str, Callable[[_Bad], Described]] = {
    "missing": _missing,
    "type": _wrong_type,
    "phone": _phone,
    "email": _email,
    "digits": _digits,
    "range": _out_of_range,
    "control": _control,
}
_ROW_PROBLEMS: dict[str, Described] = {
    "noamount": ("amount: missing, and no unit_price to compute it", "amount", "fill in amount, or unit_price"),
    "nokey": (
        "no email, phone, customer_id or full address (street, postal_code, city)",
        None,
        "fill in at least one of them",
    ),
}
