"""A campaign measured against its control group: one scope per cell and one overall, with cost and ROI."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb

from crmlist.report.population import Population, RunInfo, campaign_runs, measure_population, pick_runs
from crmlist.report.settings import Settings, report_settings
from crmlist.report.stats import Group, RevenueDifference, Uplift, response_uplift, revenue_difference
from crmlist.workspace import Workspace

OVERALL = "overall"
MIN_CONTROLS = 30
MIN_RESPONDERS = 5
COLUMNS = (
    "scope", "n_targets", "n_control", "responders_t", "responders_c", "rate_t", "rate_c",
    "uplift", "uplift_low", "uplift_high", "relative_uplift", "p_value",
    "revenue_t", "revenue_c", "revenue_per_head_t", "revenue_per_head_c",
    "revenue_per_head_diff", "revenue_per_head_diff_low", "revenue_per_head_diff_high", "revenue_p_value",
    "incremental_responders", "incremental_responders_low", "incremental_responders_high",
    "incremental_revenue", "incremental_revenue_low", "incremental_revenue_high",
    "cost", "roi", "small_sample", "note",
)  # fmt: skip


@dataclass(frozen=True)
class Scope:
    """Targets against controls in one cell, or in all cells pooled."""

    name: str
    targets: Group
    control: Group
    cost: Decimal
    margin: Decimal
    uplift: Uplift | None
    revenue: RevenueDifference | None
    notes: tuple[str, ...] = ()

    @property
    def small_sample(self) -> bool:
        """Too few controls or responders for the intervals to be trusted."""
        return self.control.n < MIN_CONTROLS or min(self.targets.responders, self.control.responders) < MIN_RESPONDERS

    @property
    def roi(self) -> float | None:
        if self.revenue is None or not self.cost:
            return None
        incremental = self.revenue.difference.estimate * self.targets.n
        return (incremental * float(self.margin) - float(self.cost)) / float(self.cost)

    def row(self) -> dict[str, Any]:
        """One output row, keyed by COLUMNS: rates as fractions, money sums exact, statistics as floats."""
        n = self.targets.n
        lift = self.uplift.absolute if self.uplift else None
        diff = self.revenue.difference if self.revenue else None
        responders = lift.scaled(n) if lift else None
        revenue = diff.scaled(n) if diff else None
        values = [
            self.name, n, self.control.n, self.targets.responders, self.control.responders,
            self.targets.rate, self.control.rate,
            *_parts(lift), self.uplift.relative if self.uplift else None, self.uplift.p_value if self.uplift else None,
            self.targets.revenue, self.control.revenue, self.targets.per_head, self.control.per_head,
            *_parts(diff), self.revenue.p_value if self.revenue else None,
            *_parts(responders), *_parts(revenue),
            self.cost, self.roi, self.small_sample, "; ".join(self._notes()),
        ]  # fmt: skip
        return dict(zip(COLUMNS, values, strict=True))

    def _notes(self) -> list[str]:
        notes = list(self.notes)
        if not self.control.n:
            notes.append("no control group: nothing to measure against")
        elif self.small_sample:
            notes.append(f"small sample (<{MIN_CONTROLS} controls or <{MIN_RESPONDERS} responders in a group)")
        return notes


def _parts(interval: Any) -> tuple[Any, Any, Any]:
    return (None, None, None) if interval is None else (interval.estimate, interval.low, interval.high)


@dataclass(frozen=True)
class Report:
    """A campaign's response against its control group, per cell and overall, over one or all of its runs."""

    campaign: str
    runs: list[RunInfo]
    all_runs: bool
    settings: Settings
    source: str  # "responses" or "purchases"
    scopes: list[Scope] = field(default_factory=list)

    @property
    def run_id(self) -> str | None:
        return None if self.all_runs else self.runs[0].run_id

    @property
    def as_of(self) -> dt.date | None:
        dates = {r.as_of for r in self.runs}
        return dates.pop() if len(dates) == 1 else None

    @property
    def waterfall(self) -> list[tuple[str, int, int]] | None:
        return None if self.all_runs else self.runs[0].waterfall

    @property
    def overall(self) -> Scope:
        """All targets pooled against all controls: the line campaigns are compared on."""
        return self.scopes[0]

    def rows(self) -> list[dict[str, Any]]:
        return [scope.row() for scope in self.scopes]


def report_campaign(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    campaign: str,
    run_id: str | None = None,
    all_runs: bool = False,
    window_days: int | None = None,
) -> Report:
    """Measure a campaign's latest run (or --run RUN_ID, or all runs pooled) against its controls."""
    runs = pick_runs(campaign_runs(con, campaign), run_id, all_runs)
    return measure_runs(con, ws, campaign, runs, all_runs, window_days)


def measure_runs(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    campaign: str,
    runs: list[RunInfo],
    pooled: bool,
    window_days: int | None = None,
) -> Report:
    """Measure the given runs of a campaign, overall and per cell; pooled, each contact has its own window."""
    settings = report_settings(ws, campaign, window_days)
    population = measure_population(con, campaign, runs, settings)
    return Report(campaign, runs, pooled, settings, population.source, scopes_of(population, settings))


def scopes_of(population: Population, settings: Settings) -> list[Scope]:
    """The overall scope (every cell pooled), then one scope per cell in rule-file order."""
    order = {name: index for index, name in enumerate(settings.cells)}
    cells = sorted(population.groups, key=lambda c: (order.get(c, len(order)), c))
    pooled = {flag: sum((population.groups[c][flag] for c in cells), Group()) for flag in (True, False)}
    channels: dict[str | None, int] = {}
    for cell in cells:
        for channel, n in population.targets_by_channel.get(cell, {}).items():
            channels[channel] = channels.get(channel, 0) + n
    total = pooled[False].n
    overall = _scope(OVERALL, pooled, channels, settings.fixed_cost, settings)
    return [overall] + [
        _scope(
            cell,
            population.groups[cell],
            population.targets_by_channel.get(cell, {}),
            _fixed_share(settings.fixed_cost, population.groups[cell][False].n, total),
            settings,
        )
        for cell in cells
    ]


def _fixed_share(fixed_cost: Decimal, targets: int, total: int) -> Decimal:
    """A cell's part of the fixed cost, in proportion to its targets (an exact 0 when there is none)."""
    return fixed_cost * targets / total if fixed_cost and total else Decimal(0)


def _scope(
    name: str, sides: dict[bool, Group], channels: dict[str | None, int], fixed: Decimal, settings: Settings
) -> Scope:
    """One scope: its statistics, and its cost (contacts by channel, plus its part of the fixed cost)."""
    targets, control = sides[False], sides[True]
    cost = fixed
    notes = []
    for channel, n in sorted(channels.items(), key=lambda item: item[0] or ""):
        per_contact = settings.contact_cost(channel)
        if per_contact is None:
            notes.append(f"no cost per contact for channel {channel or '(none)'}: counted as 0")
        else:
            cost += per_contact * n
    return Scope(
        name,
        targets,
        control,
        cost,
        settings.margin,
        response_uplift(targets, control),
        revenue_difference(targets, control),
        tuple(notes),
    )
