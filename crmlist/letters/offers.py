"""What a letter may recommend: `[offers]` of crmlist.toml, overridden key by key by a campaign's own."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from crmlist.errors import BadInputError

# key: (what it must be, an example for the hint)
KEYS: dict[str, tuple[str, str]] = {
    "recommend": ("a whole number >= 0", "recommend = 3"),
    "exclude_categories": ("a list of category names", 'exclude_categories = ["gift-cards"]'),
    "category_days": ("a whole number of days >= 0", "category_days = 365"),
    "min_price": ("a number >= 0", "min_price = 20"),
    "max_price": ("a number >= 0", "max_price = 500"),
}


@dataclass(frozen=True)
class Offers:
    """How many products a letter recommends and which may never be: excluded categories, categories the
    customer bought within `category_days` before as-of (0: only the product's own), prices outside
    [min_price, max_price]; products marked out of stock never are."""

    recommend: int = 3
    exclude_categories: tuple[str, ...] = ()
    category_days: int = 365
    min_price: Decimal | None = None
    max_price: Decimal | None = None

    def params(self) -> dict[str, Any]:
        """The recommendation query's parameters."""
        return {
            "n": self.recommend,
            "exclude": list(self.exclude_categories),
            "category_days": self.category_days,
            "min_price": self.min_price,
            "max_price": self.max_price,
        }


def offers_problems(where: str, table: Any) -> list[BadInputError]:
    """Every problem of one `[offers]` table: unknown keys (with the closest valid one) and bad values."""
    if not isinstance(table, dict):
        return [BadInputError(where, "offers: expected a table", "write [offers] with recommend = N")]
    problems = []
    for key, value in table.items():
        if key not in KEYS:
            close = difflib.get_close_matches(key, list(KEYS), n=1)
            hint = f"did you mean `{close[0]}`?" if close else f"valid keys: {', '.join(KEYS)}"
            problems.append(BadInputError(where, f"offers.{key}: unknown key", hint))
        elif not _valid(key, value):
            what, example = KEYS[key]
            problems.append(BadInputError(where, f"offers.{key}: must be {what}", f"e.g. {example}"))
    low, high = table.get("min_price", 0), table.get("max_price", 0)
    if (
        "min_price" in table
        and "max_price" in table
        and _valid("min_price", low)
        and _valid("max_price", high)
        and low > high
    ):
        problems.append(BadInputError(where, "offers: min_price is above max_price", "swap them"))
    return problems


def _valid(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if key == "exclude_categories":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if key in ("min_price", "max_price"):
        return isinstance(value, (int, float)) and value >= 0
    return isinstance(value, int) and value >= 0


def resolve_offers(workspace: dict[str, Any], campaign: dict[str, Any], campaign_where: str) -> Offers:
    """The campaign's offers: its own `[offers]` keys over crmlist.toml's; BadInputError names the first
    problem (`crmlist check` lists them all)."""
    for where, table in (("crmlist.toml", workspace), (campaign_where, campaign)):
        problems = offers_problems(where, table)
        if problems:
            raise problems[0]
    merged = workspace | campaign
    return Offers(
        recommend=int(merged.get("recommend", 3)),
        exclude_categories=tuple(sorted({v.strip().lower() for v in merged.get("exclude_categories", [])})),
        category_days=int(merged.get("category_days", 365)),
        min_price=_money(merged.get("min_price")),
        max_price=_money(merged.get("max_price")),
    )


def _money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))
