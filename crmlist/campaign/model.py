"""Campaign rule files: read queries/NAME.toml into a validated Campaign, naming file, key and fix."""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from crmlist.errors import BadInputError, CrmlistError, MultipleErrors, NotFoundError
from crmlist.letters.offers import Offers, offers_problems, resolve_offers
from crmlist.workspace import Workspace

CHANNELS = ("email", "sms", "mail", "phone")
TOP_KEYS = {
    "description": str,
    "channel": str,
    "template": str,
    "as_of": (str, dt.date),
    "columns": list,
    "audience": dict,
    "contact_cap": dict,
    "cells": list,
    "control": dict,
    "response": dict,
    "cost_per_contact": (int, float),
    "fixed_cost": (int, float),
    "offers": dict,
}
AUDIENCE_KEYS = {"where": (str, list), "exclude": (str, list)}
CELL_KEYS = {"name": str, "where": str, "offer": str, "limit": int, "order_by": str, "template": str}
CAP_KEYS = {"max": int, "days": int}
CONTROL_KEYS = {"percent": (int, float), "salt": str}
RESPONSE_KEYS = {"window_days": int, "category": str, "offer_code": str}


@dataclass(frozen=True)
class Cell:
    """One cell of a campaign: customers matching `where` first, in file order."""

    name: str
    where: str
    offer: str | None = None
    limit: int | None = None
    order_by: str | None = None
    template: str | None = None


@dataclass(frozen=True)
class ContactCap:
    """At most `max` contacts within `days` days before as-of, across all campaigns."""

    max: int
    days: int


@dataclass(frozen=True)
class Campaign:
    """A validated rule file."""

    name: str
    path: Path
    description: str
    channel: str
    template: str
    as_of: dt.date | None
    where: list[str]
    exclude: list[str]
    cells: list[Cell]
    contact_cap: ContactCap | None
    control_percent_x100: int  # percent x 100 as an integer: 10.5 % -> 1050
    control_salt: str
    columns: list[str] = field(default_factory=list)
    response: dict[str, Any] = field(default_factory=dict)
    cost_per_contact: Decimal | None = None
    fixed_cost: Decimal = Decimal(0)
    offers: dict[str, Any] = field(default_factory=dict)  # its own [offers] keys (crmlist.letters.offers)
    template_given: bool = False  # the rule file names a template (else letters only when NAME.*.j2 exist)
    location: str = ""  # how messages name the rule file when it is not queries/NAME.toml (a run's rules.toml)

    @property
    def rule_file(self) -> str:
        """The rule file as messages name it: queries/NAME.toml, or the copy a run folder keeps."""
        return self.location or f"queries/{self.path.name}"

    def letter_offers(self, ws: Workspace) -> Offers:
        """What its letters may recommend: its own [offers] keys over crmlist.toml's."""
        return resolve_offers(ws.section("offers"), self.offers, self.rule_file)

    def where_key(self, section: str, index: int) -> str:
        """The rule-file key of an expression, as error messages name it."""
        return f"audience.{section}[{index}]"


def campaign_names(ws: Workspace) -> list[str]:
    """Names of all campaigns (rule files) in the workspace, sorted."""
    if not ws.queries_dir.is_dir():
        return []
    return sorted(p.stem for p in ws.queries_dir.glob("[!.#~]*.toml"))


def campaign_path(ws: Workspace, name: str) -> Path:
    """The rule file of a campaign; NotFoundError with the closest names when it is missing."""
    path = ws.queries_dir / f"{name}.toml"
    if not path.is_file():
        names = campaign_names(ws)
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"campaigns: {', '.join(names) or 'none'}"
        raise NotFoundError(f"queries/{name}.toml", f"no campaign named {name!r}", hint)
    return path


def load_campaign(ws: Workspace, name: str, path: Path | None = None) -> Campaign:
    """Read and validate one rule file; every problem found is reported at once.

    `path`: the rule file as a run read it (its folder's rules.toml) instead of queries/NAME.toml.
    """
    where = str(path) if path else f"queries/{name}.toml"
    recorded = path is not None
    path = path or campaign_path(ws, name)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BadInputError(where, f"not valid TOML: {exc}", "fix the TOML syntax") from None
    except UnicodeDecodeError:
        raise BadInputError(where, "not UTF-8 text", "save the rule file as UTF-8") from None
    problems: list[CrmlistError] = []
    campaign = _build(ws, name, path, data, problems, where)
    if problems:
        raise problems[0] if len(problems) == 1 else MultipleErrors(problems)
    assert campaign is not None
    return dataclasses.replace(campaign, location=where) if recorded else campaign


def _check_keys(
    where: str, prefix: str, table: dict[str, Any], spec: dict[str, Any], problems: list[CrmlistError]
) -> None:
    for key, value in table.items():
        if key not in spec:
            close = difflib.get_close_matches(key, list(spec), n=1)
            hint = f"did you mean `{close[0]}`?" if close else f"valid keys: {', '.join(spec)}"
            problems.append(BadInputError(where, f"{prefix}{key}: unknown key", hint))
        elif not isinstance(value, spec[key]) or isinstance(value, bool):
            types = spec[key] if isinstance(spec[key], tuple) else (spec[key],)
            expected = " or ".join(_type_name(t) for t in types)
            problems.append(
                BadInputError(
                    where,
                    f"{prefix}{key}: expected {expected}, got {_type_name(type(value))}",
                    f"write it as {expected}",
                )
            )


def _type_name(kind: type) -> str:
    names = {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "a table"}
    return names.get(kind, "a date" if kind is dt.date else kind.__name__)


def _expressions(value: Any) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [str(item) for item in items]


def _check_sections(where: str, data: dict[str, Any], problems: list[CrmlistError]) -> None:
    """The keys of the rule file and of each of its tables, and the channel."""
    _check_keys(where, "", data, TOP_KEYS, problems)
    sections: dict[str, dict[str, Any]] = {
        "audience": AUDIENCE_KEYS,
        "contact_cap": CAP_KEYS,
        "control": CONTROL_KEYS,
        "response": RESPONSE_KEYS,
    }
    for section, spec in sections.items():
        if isinstance(data.get(section), dict):
            _check_keys(where, f"{section}.", data[section], spec, problems)
    if isinstance(data.get("offers"), dict):
        problems.extend(offers_problems(where, data["offers"]))
    channel = data.get("channel", "email")
    if channel not in CHANNELS:
        close = difflib.get_close_matches(str(channel), CHANNELS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"use one of: {', '.join(CHANNELS)}"
        problems.append(BadInputError(where, f"channel: unknown channel {channel!r}", hint))


def _build(
    ws: Workspace, name: str, path: Path, data: dict[str, Any], problems: list[CrmlistError], where: str
) -> Campaign | None:
    _check_sections(where, data, problems)
    channel = data.get("channel", "email")
    audience: dict[str, Any] = data["audience"] if isinstance(data.get("audience"), dict) else {}
    cells = _cells(where, data.get("cells"), problems)
    as_of = _as_of(where, data.get("as_of"), problems)
    percent = _percent(where, data.get("control", {}), problems)
    cap = _cap(ws, where, data.get("contact_cap"), problems)
    columns = data.get("columns", [])
    if isinstance(columns, list) and not all(isinstance(c, str) for c in columns):
        problems.append(BadInputError(where, "columns: expected a list of column names", None))
    if problems:
        return None
    control = data.get("control", {})
    return Campaign(
        name=name,
        path=path,
        description=str(data.get("description", "")),
        channel=str(channel),
        template=str(data.get("template", name)),
        as_of=as_of,
        where=_expressions(audience.get("where")),
        exclude=_expressions(audience.get("exclude")),
        cells=cells,
        contact_cap=cap,
        control_percent_x100=percent,
        control_salt=str(control.get("salt", name)),
        columns=[str(c) for c in columns],
        response=dict(data.get("response", {})),
        cost_per_contact=_money(data.get("cost_per_contact")),
        fixed_cost=_money(data.get("fixed_cost")) or Decimal(0),
        offers=dict(data.get("offers", {})),
        template_given="template" in data,
    )


def _cells(where: str, value: Any, problems: list[CrmlistError]) -> list[Cell]:
    if value is None:
        return [Cell(name="all", where="TRUE")]
    if not isinstance(value, list) or not value:
        problems.append(BadInputError(where, "cells: expected one or more [[cells]] tables", None))
        return []
    cells: list[Cell] = []
    seen: set[str] = set()
    for index, raw in enumerate(value):
        prefix = f"cells[{index}]."
        if not isinstance(raw, dict):
            problems.append(BadInputError(where, f"cells[{index}]: expected a table", "write [[cells]]"))
            continue
        _check_keys(where, prefix, raw, CELL_KEYS, problems)
        cell_name = raw.get("name", f"cell{index + 1}")
        if "where" not in raw:
            problems.append(
                BadInputError(where, f"{prefix}where: missing", 'every cell needs where (where = "TRUE" for all)')
            )
        if cell_name in seen:
            problems.append(BadInputError(where, f"{prefix}name: duplicate cell name {cell_name!r}", None))
        seen.add(str(cell_name))
        limit = raw.get("limit")
        if isinstance(limit, int) and not isinstance(limit, bool) and limit < 0:
            problems.append(BadInputError(where, f"{prefix}limit: must be 0 or more", None))
        cells.append(
            Cell(
                name=str(cell_name),
                where=str(raw.get("where", "TRUE")),
                offer=None if raw.get("offer") is None else str(raw["offer"]),
                limit=limit if isinstance(limit, int) else None,
                order_by=None if raw.get("order_by") is None else str(raw["order_by"]),
                template=None if raw.get("template") is None else str(raw["template"]),
            )
        )
    return cells


def _as_of(where: str, value: Any, problems: list[CrmlistError]) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        problems.append(BadInputError(where, f"as_of: {value!r} is not a date", "write it as YYYY-MM-DD"))
        return None


def _percent(where: str, control: Any, problems: list[CrmlistError]) -> int:
    if not isinstance(control, dict) or "percent" not in control:
        return 0
    value = control["percent"]
    try:
        exact = Decimal(str(value))
    except InvalidOperation:
        return 0
    if not (0 <= exact <= 100) or exact != exact.quantize(Decimal("0.01")):
        problems.append(
            BadInputError(where, f"control.percent: {value} must be 0 to 100 with at most two decimals", None)
        )
        return 0
    return int(exact * 100)


def _cap(ws: Workspace, where: str, value: Any, problems: list[CrmlistError]) -> ContactCap | None:
    source = value if isinstance(value, dict) else ws.section("contact_cap")
    if not source:
        return None
    if "max" not in source or "days" not in source:
        problems.append(BadInputError(where, "contact_cap: needs both max and days", "max = 2, days = 30"))
        return None
    if not all(isinstance(source[k], int) and source[k] > 0 for k in ("max", "days")):
        problems.append(BadInputError(where, "contact_cap: max and days must be whole numbers above 0", None))
        return None
    return ContactCap(max=int(source["max"]), days=int(source["days"]))


def _money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))
