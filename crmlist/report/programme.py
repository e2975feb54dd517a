"""The programme's lift: everyone contacted in a period against the global control members recorded then.

Each campaign run records the global control members it would otherwise have reached (contact history
rows with control_group 'global'). Pooled over the period the way `--all-runs` pools one campaign's
runs (one unit per contact row, each with its own window), targets of every campaign are measured
against those members; each campaign is a scope of its own, "overall" is the programme.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from crmlist.errors import NotFoundError
from crmlist.report.compare import period_text
from crmlist.report.measure import Report, scopes_of
from crmlist.report.population import RunInfo, tally_population
from crmlist.report.settings import report_settings
from crmlist.workspace import Workspace

GLOBAL_SCOPE = "global control"
# Every campaign's targets and the global control members, in the period; each campaign is a cell.
_POPULATION = """
SELECT run_id, customer_id, as_of, is_control, campaign, campaign AS cell,
       coalesce(nullif(trim(channel), ''), 'email') AS channel
FROM contact_history
WHERE customer_id IS NOT NULL AND is_control IS NOT NULL AND campaign IS NOT NULL
  AND (NOT is_control OR control_group = 'global')
  AND ($start IS NULL OR as_of >= $start) AND ($end IS NULL OR as_of <= $end)
"""
_RUNS = """
SELECT DISTINCT ch.run_id, ch.as_of FROM contact_history AS ch
WHERE ch.control_group = 'global' AND ($start IS NULL OR ch.as_of >= $start) AND ($end IS NULL OR ch.as_of <= $end)
ORDER BY ch.as_of DESC, ch.run_id DESC
"""


def report_programme(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    start: dt.date | None = None,
    end: dt.date | None = None,
    window_days: int | None = None,
) -> Report:
    """Targets of every campaign in start..end against the global control members recorded then."""
    period: dict[str, Any] = {"start": start, "end": end}
    runs = [RunInfo(run_id, as_of, None) for run_id, as_of in con.execute(_RUNS, period).fetchall()]
    if not runs:
        raise NotFoundError(
            "report --global",
            f"no global control members recorded as of {period_text(start, end)}",
            "set [control] global_percent in crmlist.toml; every run then records the members it holds out",
        )
    settings = report_settings(ws, "", window_days)
    population = tally_population(con, _POPULATION, period, settings)
    return Report(GLOBAL_SCOPE, runs, True, settings, population.source, scopes_of(population, settings))
