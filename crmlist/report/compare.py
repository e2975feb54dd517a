"""Campaigns compared: each campaign's runs in a period pooled, measured as its own report's overall line."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb

from crmlist.errors import NotFoundError, UsageError
from crmlist.report.measure import COLUMNS, Report, measure_runs
from crmlist.report.population import NO_HISTORY_HINT, RunInfo, campaign_runs, recorded_campaigns
from crmlist.workspace import Workspace

# The overall line of each campaign's report (COLUMNS without "scope"), after what identifies it.
COMPARISON_COLUMNS = ("campaign", "n_runs", "first_as_of", "last_as_of", "window_days", *COLUMNS[1:])


@dataclass(frozen=True)
class Comparison:
    """Every campaign with a run in the period, each one's runs there pooled as `--all-runs` pools them."""

    start: dt.date | None
    end: dt.date | None
    reports: list[Report]  # by campaign name

    @property
    def period(self) -> str:
        return period_text(self.start, self.end)

    @property
    def source(self) -> str:
        """Where responses came from ("responses" or "purchases"): the same for every campaign."""
        return self.reports[0].source

    def rows(self) -> list[dict[str, Any]]:
        """One row per campaign, keyed by COMPARISON_COLUMNS."""
        return [campaign_row(report) for report in self.reports]


def campaign_row(report: Report) -> dict[str, Any]:
    """A campaign's overall line, with its name, runs, as-of dates and response window in front."""
    dates = [run.as_of for run in report.runs]
    head = {
        "campaign": report.campaign,
        "n_runs": len(report.runs),
        "first_as_of": min(dates),
        "last_as_of": max(dates),
        "window_days": report.settings.window_days,
    }
    overall = report.overall.row()
    return head | {column: overall[column] for column in COLUMNS[1:]}


def compare_campaigns(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    start: dt.date | None = None,
    end: dt.date | None = None,
    window_days: int | None = None,
) -> Comparison:
    """Every campaign whose runs' as-of lies in start..end (both included; None: open), by name."""
    if start and end and start > end:
        raise UsageError("--from", f"{start} is after --to {end}", "give the earlier date to --from")
    reports, dates = [], []
    for campaign in recorded_campaigns(con):
        runs = campaign_runs(con, campaign)
        dates += [run.as_of for run in runs]
        chosen = [run for run in runs if _within(run, start, end)]
        if chosen:
            reports.append(measure_runs(con, ws, campaign, chosen, True, window_days))
    if not reports:
        raise NotFoundError("report", f"no campaign has a run as of {period_text(start, end)}", _empty_hint(dates))
    return Comparison(start, end, reports)


def _within(run: RunInfo, start: dt.date | None, end: dt.date | None) -> bool:
    return (start is None or start <= run.as_of) and (end is None or run.as_of <= end)


def _empty_hint(dates: list[dt.date]) -> str:
    if not dates:
        return NO_HISTORY_HINT
    first, last = min(dates), max(dates)
    recorded = f"{first}" if first == last else f"{first} to {last}"
    return f"the recorded runs are as of {recorded}: widen --from / --to"


def period_text(start: dt.date | None, end: dt.date | None) -> str:
    """A period for people: "2026-11-01 to 2026-11-30", "2026-11-01 or later", "any date"."""
    if start and end:
        return f"{start} to {end}"
    if start:
        return f"{start} or later"
    return f"{end} or earlier" if end else "any date"


def parse_day(option: str, value: str | None) -> dt.date | None:
    """A --from / --to date (YYYY-MM-DD); None when not given."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(option, f"{value!r} is not a date", "write it as YYYY-MM-DD") from None
