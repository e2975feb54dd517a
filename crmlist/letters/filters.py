"""Template filters: CLDR money, dates, numbers, plurals (Babel) and the greeting in each language."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Literal, cast, get_args

from babel import UnknownLocaleError
from babel.dates import DateTimePattern, get_date_format, parse_pattern
from babel.numbers import format_decimal, format_percent
from jinja2 import pass_context
from jinja2.runtime import Context
from vokativ import vokativ

from crmlist.letters.money import babel_locale, money_text

_MEMO_SIZE = 100_000
_EXACT = (Decimal, int)
# CLDR's order of plural categories; positional plural forms follow it.
PLURAL_ORDER = ("zero", "one", "two", "few", "many", "other")
# Integers that exercise every CLDR integer rule (mod 10, mod 100, and the million rules of fr/es/it).
_PLURAL_PROBES = (*range(0, 200), 1000, 10000, 100000, 1000000)
_LANGUAGE_RE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")


class FilterError(ValueError):
    """A filter got a value it cannot format; the message never quotes the value (it may be personal)."""


@lru_cache(maxsize=1024)
def resolve_locale(language: str | None, default: str) -> str:
    """The Babel locale for a customer's language ('pl', 'PL', 'cs_CZ'), else the default, else en."""
    for candidate in (language, default):
        if not candidate or not _LANGUAGE_RE.match(candidate):
            continue
        try:
            return str(babel_locale(candidate.replace("-", "_")))
        except (ValueError, UnknownLocaleError):
            continue
    return "en"


@lru_cache(maxsize=64)
def integer_plural_categories(locale: str) -> tuple[str, ...]:
    """The plural categories whole numbers reach in a language, in CLDR order (pl: one, few, many)."""
    rule = babel_locale(locale).plural_form
    reached = {rule(n) for n in _PLURAL_PROBES}
    return tuple(c for c in PLURAL_ORDER if c in reached)


@lru_cache(maxsize=4096)
def _plural_category(number: str, locale: str) -> str:
    # keyed by the text: 1.5 and 1.50 are equal numbers but CLDR tells them apart by visible decimals
    return babel_locale(locale).plural_form(Decimal(number))


_DateFormat = Literal["full", "long", "medium", "short"]
_DATE_FORMATS = get_args(_DateFormat)


@lru_cache(maxsize=256)
def _date_pattern(fmt: str, locale: str) -> DateTimePattern:
    """A date format's CLDR pattern, looked up and parsed once: format_date does both for every date."""
    if fmt in _DATE_FORMATS:  # one of the locale's own formats, by name
        return parse_pattern(get_date_format(cast(_DateFormat, fmt), locale=babel_locale(locale)))
    return parse_pattern(fmt)


@lru_cache(maxsize=65536)  # dates of a campaign repeat: a few thousand days, a few locales
def _date(value: dt.date, fmt: str, locale: str) -> str:
    # format_date(value, fmt, locale=...), step by step as Babel takes them, with the pattern cached
    return _date_pattern(fmt, locale).apply(value, babel_locale(locale))


def _number_value(value: Any, name: str) -> Decimal | int | float:
    if isinstance(value, bool) or value is None:
        raise FilterError(f"{name}: expects a number, got {type(value).__name__}")
    if isinstance(value, Decimal | int | float):
        return value
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise FilterError(f"{name}: expects a number, got text that is not one") from None
    raise FilterError(f"{name}: expects a number, got {type(value).__name__}")


def _date_value(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.strip()).date()
        except ValueError:
            raise FilterError("date: expects a date or an ISO date text, got text that is not one") from None
    raise FilterError(f"date: expects a date, got {type(value).__name__}")


def _context_locale(context: Context, default: str) -> str:
    # render puts the customer's resolved locale into every letter's context as `locale`; a template's
    # own top-level {% set locale = ... %} lands in context.vars and wins (read directly: the hot path)
    value = context.vars.get("locale") or context.parent.get("locale")
    return value if isinstance(value, str) and value else default


_UNSEEN = object()


class _Memo(dict[Any, Any]):
    """Formatted values by their inputs, emptied when full: amounts and counts repeat across letters."""

    def remember(self, key: Any, value: Any) -> Any:
        if len(self) >= _MEMO_SIZE:
            self.clear()
        self[key] = value
        return value


def pick_plural(n: Any, locale: str, forms: tuple[Any, ...], by_category: Mapping[str, Any]) -> Any:
    """The form of a word for n: by CLDR category keyword, or positionally in CLDR integer order."""
    number: Decimal | int | float = _number_value(n, "plural")
    if forms and by_category:
        raise FilterError("plural: give the forms either by position or by category, not both")
    unknown = sorted(set(by_category) - set(PLURAL_ORDER))
    if unknown:
        raise FilterError(f"plural: unknown category {unknown[0]!r} (use {', '.join(PLURAL_ORDER)})")
    if forms:
        categories = integer_plural_categories(locale)
        if len(forms) != len(categories):
            raise FilterError(
                f"plural: {locale} takes {len(categories)} forms ({', '.join(categories)}), got {len(forms)}"
            )
        by_category = dict(zip(categories, forms, strict=True))
    # a whole Decimal such as 5.00 from a DECIMAL column is read as 5, as the reader sees it
    if not isinstance(number, int) and number == int(number):
        number = int(number)
    category = _plural_category(str(number if number >= 0 else -number), locale)
    for candidate in (category, "other", "many"):
        if candidate in by_category:
            return by_category[candidate]
    raise FilterError(f"plural: no form for category {category!r} in {locale} (add {category}= or other=)")


def _money_filter(fallback: str, default_currency: str) -> Callable[..., str]:
    monies = _Memo()

    @pass_context
    def money(context: Context, amount: Any, currency: str | None = None) -> str:
        value = context.vars.get("locale") or context.parent.get("locale")  # _context_locale, inlined: hot
        locale = value if isinstance(value, str) and value else fallback
        if type(amount) in _EXACT:  # not bool, nor a float equal to a Decimal
            # a Decimal by its text: hashing a Decimal costs more than formatting it
            key = (amount if type(amount) is int else str(amount), currency, locale)
            text: str | None = monies.get(key)
            if text is None:
                text = monies.remember(key, money_text(amount, currency or default_currency, locale))
            return text
        return money_text(_number_value(amount, "money"), currency or default_currency, locale)

    return money


def _plural_filter(fallback: str) -> Callable[..., Any]:
    plurals = _Memo()

    @pass_context
    def plural(context: Context, n: Any, *forms: Any, **by_category: Any) -> Any:
        value = context.vars.get("locale") or context.parent.get("locale")  # _context_locale, inlined: hot
        locale = value if isinstance(value, str) and value else fallback
        if by_category or type(n) is not int:
            return pick_plural(n, locale, forms, by_category)
        key = (n, locale, forms)
        try:
            form = plurals.get(key, _UNSEEN)
        except TypeError:  # a form that cannot be a key (a list): nothing to remember
            return pick_plural(n, locale, forms, {})
        return plurals.remember(key, pick_plural(n, locale, forms, {})) if form is _UNSEEN else form

    return plural


def make_filters(default_locale: str, default_currency: str) -> dict[str, Callable[..., Any]]:
    """The letter filters, bound to the workspace's default locale and currency."""
    fallback = resolve_locale(default_locale, "en")

    @pass_context
    def date(context: Context, value: Any, format: str = "long") -> str:
        locale = context.vars.get("locale") or context.parent.get("locale")  # _context_locale, inlined: hot
        day = value if type(value) is dt.date else _date_value(value)
        return _date(day, format, locale if isinstance(locale, str) and locale else fallback)

    @pass_context
    def number(context: Context, value: Any, format: str | None = None) -> str:
        locale = babel_locale(_context_locale(context, fallback))
        return format_decimal(_number_value(value, "number"), format=format, locale=locale)

    @pass_context
    def percent(context: Context, value: Any, format: str | None = None) -> str:
        locale = babel_locale(_context_locale(context, fallback))
        return format_percent(_number_value(value, "percent"), format=format, locale=locale)

    def salutation_filter(customer: Any) -> str:
        if type(customer) is not dict and not isinstance(customer, Mapping):
            raise FilterError(f"salutation: expects the customer, got {type(customer).__name__}")
        return salutation(customer, fallback)

    return {
        "money": _money_filter(fallback, default_currency),
        "date": date,
        "number": number,
        "percent": percent,
        "plural": _plural_filter(fallback),
        "salutation": salutation_filter,
    }


# Greetings per language: (female, male, neutral with a name, neutral without one).
# Polish and Czech address by surname after Pani/Pan; Russian by first name and surname.
_GREETINGS: dict[str, tuple[str, str, str, str]] = {
    "en": ("Dear Ms", "Dear Mr", "Dear", "Hello"),
    "pl": ("Szanowna Pani", "Szanowny Panie", "Dzień dobry,", "Dzień dobry"),
    "cs": ("Vážená paní", "Vážený pane", "Dobrý den,", "Dobrý den"),
    "ru": ("Уважаемая", "Уважаемый", "Здравствуйте,", "Здравствуйте"),
}
# Without a surname a gendered greeting stands alone in these languages ("Szanowna Pani", "Dear Sir").
_WITHOUT_SURNAME = {"en": ("Dear Madam", "Dear Sir")}


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _match_case(original: str, declined: str) -> str:
    """Give a lower-cased inflected name the capitals of the name it came from (Novák -> Nováku)."""
    if original.isupper() and len(original) > 1:
        return declined.upper()
    chars = [o if i < len(original) and (o := original[i]).lower() == ch else ch for i, ch in enumerate(declined)]
    return "".join(chars)


def czech_vocative(surname: str) -> str:
    """A Czech man's surname in the vocative (Novák -> Nováku, Svoboda -> Svobodo), by `vokativ`."""
    return _match_case(surname, vokativ(surname, woman=False, last_name=True))


def salutation(customer: Mapping[str, Any], default_locale: str = "en") -> str:
    """The greeting in the customer's language and gender, the name as that language writes it."""
    get = customer.get
    return _salutation(get("language"), get("gender"), get("first_name"), get("last_name"), default_locale)


@lru_cache(maxsize=65536)
def _salutation(language: Any, gender: Any, first: Any, last: Any, default_locale: str) -> str:
    lang = resolve_locale(_text(language) or None, default_locale).split("_")[0]
    return _greeting(lang if lang in _GREETINGS else "en", _text(gender).upper(), _text(first), _text(last))


@lru_cache(maxsize=8192)
def _greeting(lang: str, gender: str, first: str, last: str) -> str:
    female, male, neutral, bare = _GREETINGS[lang]
    if gender in ("F", "M"):
        greeting = female if gender == "F" else male
        if lang == "ru":
            name = " ".join(p for p in (first, last) if p)
        elif last:
            name = czech_vocative(last) if lang == "cs" and gender == "M" else last
        else:
            alone = _WITHOUT_SURNAME.get(lang)
            return alone[gender == "M"] if alone else greeting
        return f"{greeting} {name}" if name else bare
    full = " ".join(p for p in (first, last) if p)
    return f"{neutral} {full}" if full else bare
