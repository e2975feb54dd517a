"""What a report measures with: response window, offer code, category, costs and margin, from each source."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from crmlist.campaign.model import load_campaign
from crmlist.errors import BadInputError, UsageError
from crmlist.workspace import CONFIG_NAME, Workspace

DEFAULT_WINDOW_DAYS = 30


@dataclass(frozen=True)
class Settings:
    """The campaign's rule file (when there is one) merged over crmlist.toml and the defaults."""

    window_days: int = DEFAULT_WINDOW_DAYS
    offer_code: str | None = None
    category: str | None = None
    channel: str | None = None  # the rule file's, for contact rows that name none
    cost_per_contact: Decimal | None = None  # the rule file's, overriding [costs]
    channel_costs: dict[str, Decimal] = field(default_factory=dict)
    fixed_cost: Decimal = Decimal(0)
    margin: Decimal = Decimal(1)
    cells: list[str] = field(default_factory=list)  # cell names in rule-file order

    def contact_cost(self, channel: str | None) -> Decimal | None:
        """Cost of one contact on a channel; None when nothing sets one."""
        if self.cost_per_contact is not None:
            return self.cost_per_contact
        return self.channel_costs.get(channel or "")


def report_settings(ws: Workspace, campaign: str, window_days: int | None) -> Settings:
    """--window-days, else the rule file's [response], else crmlist.toml [response], else 30 days."""
    if window_days is not None and window_days < 0:
        raise UsageError("--window-days", f"{window_days} is negative", "give a number of days, 0 or more")
    config_window = _config_number(ws, ("response", "window_days"), int)
    margin = _config_number(ws, ("report", "margin"), Decimal)
    base = Settings(
        window_days=next(w for w in (window_days, config_window, DEFAULT_WINDOW_DAYS) if w is not None),
        channel_costs={k: _config_number(ws, ("costs", k), Decimal) for k in ws.section("costs")},
        margin=Decimal(1) if margin is None else margin,
    )
    if not (ws.queries_dir / f"{campaign}.toml").is_file():
        return base  # loaded contacts of a campaign run elsewhere: crmlist.toml alone
    rules = load_campaign(ws, campaign)
    response: dict[str, Any] = rules.response
    window = base.window_days
    if window_days is None and response.get("window_days") is not None:
        window = int(response["window_days"])
        if window < 0:
            raise BadInputError(f"queries/{campaign}.toml", "response.window_days: is negative", "write 0 or more")
    return replace(
        base,
        window_days=window,
        offer_code=_text(response.get("offer_code")),
        category=_text(response.get("category")),
        channel=rules.channel,
        cost_per_contact=rules.cost_per_contact,
        fixed_cost=rules.fixed_cost,
        cells=[c.name for c in rules.cells],
    )


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None


def _config_number(ws: Workspace, path: tuple[str, str], kind: type) -> Any:
    """A number of crmlist.toml, checked: days are whole and 0 or more, money and margins are numbers."""
    value = ws.section(path[0]).get(path[1])
    if value is None:
        return None
    key = ".".join(path)
    whole = isinstance(value, int) and not isinstance(value, bool)
    if kind is int and (not whole or value < 0):
        raise BadInputError(CONFIG_NAME, f"{key}: expected a whole number of days, got {value!r}", "write e.g. 30")
    if kind is Decimal and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise BadInputError(CONFIG_NAME, f"{key}: expected a number, got {value!r}", "write e.g. 0.01")
    return Decimal(str(value)) if kind is Decimal else int(value)
