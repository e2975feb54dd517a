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
from crmlist.report.population import Population, RunInfo
from crmlist.report.settings import report_settings
from crmlist.report.stats import Group
from crmlist.workspace import Workspace

GLOBAL_SCOPE = "global control"
_UNITS = """
WITH pop AS (
    SELECT run_id, customer_id, as_of, is_control, campaign AS cell, campaign,
           coalesce(nullif(trim(channel), ''), 'email') AS channel
    FROM contact_history
    WHERE customer_id IS NOT NULL AND is_control IS NOT NULL AND campaign IS NOT NULL
      AND (NOT is_control OR control_group = 'global')
      AND ($start IS NULL OR as_of >= $start) AND ($end IS NULL OR as_of <= $end)
),
hits AS ({hits}),
units AS (
    SELECT p.cell, p.is_control, p.channel, p.run_id, p.customer_id, count(h.customer_id) > 0 AS responded,
           CAST(coalesce(sum(h.revenue), 0) * 100 AS HUGEINT) AS cents
    FROM pop AS p LEFT JOIN hits AS h ON h.run_id = p.run_id AND h.customer_id = p.customer_id
    GROUP BY ALL
)
SELECT cell, is_control, channel, count(*), count_if(responded), sum(cents), sum(cents * cents)
FROM units GROUP BY ALL ORDER BY ALL
"""
# A response counts for the row's campaign: its campaign names it or is blank (as in a campaign's report).
_FROM_RESPONSES = """
SELECT p.run_id, p.customer_id, r.revenue FROM pop AS p JOIN responses AS r ON r.customer_id = p.customer_id
WHERE r.responded_at BETWEEN p.as_of AND p.as_of + CAST($window AS INTEGER)
  AND (nullif(trim(r.campaign), '') IS NULL OR trim(r.campaign) = p.campaign)
"""
_FROM_PURCHASES = """
SELECT p.run_id, p.customer_id, pu.amount AS revenue FROM pop AS p
JOIN purchases AS pu ON pu.customer_id = p.customer_id
WHERE pu.order_date BETWEEN p.as_of AND p.as_of + CAST($window AS INTEGER)
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
    has_responses = con.execute("SELECT EXISTS (SELECT 1 FROM responses)").fetchone()
    source = "responses" if has_responses and has_responses[0] else "purchases"
    hits = _FROM_RESPONSES if source == "responses" else _FROM_PURCHASES
    population = Population(source)
    rows = con.execute(_UNITS.format(hits=hits), {**period, "window": settings.window_days}).fetchall()
    for cell, is_control, channel, n, responders, cents, cents_sq in rows:
        sides = population.groups.setdefault(cell, {True: Group(), False: Group()})
        sides[is_control] = sides[is_control] + Group(int(n), int(responders), int(cents), int(cents_sq))
        if not is_control:
            by_channel = population.targets_by_channel.setdefault(cell, {})
            by_channel[channel] = by_channel.get(channel, 0) + int(n)
    return Report(GLOBAL_SCOPE, runs, True, settings, source, scopes_of(population, settings))
