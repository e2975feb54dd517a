"""Money amounts exactly as Babel (CLDR) writes them, without Babel's cost for every letter."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import NamedTuple

from babel import Locale
from babel.numbers import format_currency, get_currency_precision, get_decimal_symbol, get_group_symbol


@lru_cache(maxsize=256)
def babel_locale(identifier: str) -> Locale:
    """The parsed Babel locale, parsed once per process."""
    return Locale.parse(identifier)


class _MoneyFormat(NamedTuple):
    """How Babel writes amounts of one currency in one locale, taken apart once so that each
    letter formats in microseconds: prefix, grouped digits, decimal part, suffix."""

    prefix: str
    suffix: str
    group: str
    decimal: str
    quantum: Decimal
    sizes: tuple[int, int]  # CLDR grouping: primary, then secondary (3, 2 in hi)


# Amounts Babel and the fast path must agree on before the fast path is used for a currency/locale.
_MONEY_PROBES = (
    tuple(
        Decimal(v)
        for v in ("0", "0.005", "0.015", "1", "5", "12.5", "99.995", "999.99", "1000", "1234.5", "9999.999", "10000")
    )
    + tuple(Decimal(v) for v in ("123456.78", "1000000", "7654321.09", "123456789012.345"))
    + (0, 7, 1234, 10**7)
)


def _group(digits: str, sizes: tuple[int, int], symbol: str) -> str:
    size, parts = sizes[0], []
    while len(digits) > size:
        parts.append(digits[-size:])
        digits = digits[:-size]
        size = sizes[1]
    parts.append(digits)
    return symbol.join(reversed(parts))


def _fast_money(fmt: _MoneyFormat, amount: Decimal | int) -> str:
    quantized = (amount if type(amount) is Decimal else Decimal(amount)).quantize(fmt.quantum)
    if fmt.sizes == (3, 3):  # Python groups by threes itself ("1,234.50"): swap in the locale's symbols
        text = f"{quantized:,f}"
        number = text.replace(",", "\0").replace(".", fmt.decimal).replace("\0", fmt.group)
    else:
        whole, _, cents = f"{quantized:f}".partition(".")
        number = _group(whole, fmt.sizes, fmt.group) + (fmt.decimal + cents if cents else "")
    return fmt.prefix + number + fmt.suffix


@lru_cache(maxsize=256)
def _money_format(currency: str, locale: str) -> _MoneyFormat | None:
    """The fast format of non-negative amounts, None when it would not match Babel's output exactly."""
    loc = babel_locale(locale)
    try:
        pattern = loc.currency_formats["standard"]
        digits = get_currency_precision(currency)
        base = _MoneyFormat("", "", get_group_symbol(loc), get_decimal_symbol(loc), Decimal(1).scaleb(-digits), (
            pattern.grouping[0], pattern.grouping[1]))  # fmt: skip
        probe = Decimal("1234567.89")
        expected, number = format_currency(probe, currency, locale=loc), _fast_money(base, probe)
        if expected.count(number) != 1:
            return None
        prefix, suffix = expected.split(number)
        fmt = base._replace(prefix=prefix, suffix=suffix)
        if all(_fast_money(fmt, v) == format_currency(v, currency, locale=loc) for v in _MONEY_PROBES):
            return fmt
    except (KeyError, ValueError, TypeError, IndexError):
        pass
    return None


def _finite(amount: Decimal | int) -> bool:
    return not isinstance(amount, Decimal) or amount.is_finite()


def money_text(amount: Decimal | int | float, currency: str, locale: str) -> str:
    """format_currency(amount, currency, locale=locale), through the fast path when it gives the same text."""
    if isinstance(amount, Decimal | int) and not isinstance(amount, bool) and _finite(amount) and amount >= 0:
        fmt = _money_format(currency, locale)
        if fmt is not None:
            return _fast_money(fmt, amount)
    return format_currency(amount, currency, locale=babel_locale(locale))
