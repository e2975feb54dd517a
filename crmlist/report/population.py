"""Who was contacted and who responded: a campaign's runs, and responders and revenue per cell and group."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import duckdb

from crmlist.errors import NotFoundError, UsageError
from crmlist.report.settings import Settings
from crmlist.report.stats import Group

_RUNS = """
SELECT ch.run_id, coalesce(any_value(r.as_of), max(ch.as_of)) AS run_as_of,
       any_value(r.finished_at) AS run_finished, any_value(r.counts) AS run_counts
FROM contact_history AS ch LEFT JOIN runs AS r ON r.run_id = ch.run_id
WHERE ch.campaign = $campaign
GROUP BY ch.run_id
ORDER BY run_as_of DESC, run_finished DESC NULLS LAST, ch.run_id DESC
"""
NO_HISTORY_HINT = "none yet: record one with crmlist run CAMPAIGN, or crmlist load contacts FILE"
# A campaign's contact rows: targets and its own control group (global control members are not its).
_CAMPAIGN_POPULATION = """
SELECT run_id, customer_id, as_of, is_control, campaign, coalesce(nullif(trim(cell), ''), 'all') AS cell,
       coalesce(nullif(trim(channel), ''), CAST($channel AS VARCHAR)) AS channel
FROM contact_history
WHERE campaign = $campaign AND list_contains($runs, run_id) AND is_control IS NOT NULL
  AND customer_id IS NOT NULL AND control_group IS DISTINCT FROM 'global'
"""
# One unit per population row (run, customer): a customer in two pooled runs counts in both.
_UNITS = """
WITH pop AS ({pop}),
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
# Both ends of the window are inclusive: as_of <= day <= as_of + window_days. A response counts for the
# row's campaign when its campaign names it or is blank.
_FROM_RESPONSES = """
SELECT p.run_id, p.customer_id, r.revenue FROM pop AS p JOIN responses AS r ON r.customer_id = p.customer_id
WHERE r.responded_at BETWEEN p.as_of AND p.as_of + CAST($window AS INTEGER)
  AND (nullif(trim(r.campaign), '') IS NULL OR trim(r.campaign) = p.campaign)
  AND (CAST($offer_code AS VARCHAR) IS NULL OR trim(r.offer_code) = CAST($offer_code AS VARCHAR))
"""
_FROM_PURCHASES = """
SELECT p.run_id, p.customer_id, pu.amount AS revenue FROM pop AS p
JOIN purchases AS pu ON pu.customer_id = p.customer_id
LEFT JOIN products AS pr ON pr.product_id = pu.product_id
WHERE pu.order_date BETWEEN p.as_of AND p.as_of + CAST($window AS INTEGER)
  AND (CAST($category AS VARCHAR) IS NULL OR coalesce(pu.category, pr.category) = CAST($category AS VARCHAR))
"""


@dataclass(frozen=True)
class RunInfo:
    """A recorded (or loaded) run of the campaign."""

    run_id: str
    as_of: dt.date
    waterfall: list[tuple[str, int, int]] | None


@dataclass
class Population:
    """Per cell, the targets and controls (as Groups) and the targets per channel, for costs."""

    source: str  # "responses" or "purchases": where responses came from
    groups: dict[str, dict[bool, Group]] = field(default_factory=dict)  # cell -> is_control -> Group
    targets_by_channel: dict[str, dict[str | None, int]] = field(default_factory=dict)


def campaign_runs(con: duckdb.DuckDBPyConnection, campaign: str) -> list[RunInfo]:
    """The campaign's runs, latest first (by as-of, then finish time); NotFoundError when it has none."""
    rows = con.execute(_RUNS, {"campaign": campaign}).fetchall()
    if not rows:
        known = recorded_campaigns(con)
        raise NotFoundError(
            "report",
            f"no contact history for campaign {campaign!r}",
            f"campaigns with contact history: {', '.join(known)}" if known else NO_HISTORY_HINT,
        )
    return [RunInfo(run_id, as_of, _waterfall(counts)) for run_id, as_of, _, counts in rows]


def recorded_campaigns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The campaigns with contact history (recorded runs and loaded contacts), by name."""
    rows = con.execute("SELECT DISTINCT campaign FROM contact_history WHERE campaign IS NOT NULL").fetchall()
    return sorted(str(campaign) for (campaign,) in rows)


def pick_runs(runs: list[RunInfo], run_id: str | None, all_runs: bool) -> list[RunInfo]:
    """--run RUN_ID, --all-runs, or else the latest run."""
    if run_id and all_runs:
        raise UsageError("report", "--run and --all-runs do not go together", "pass one of them")
    if all_runs:
        return runs
    if run_id is None:
        return runs[:1]
    chosen = [r for r in runs if r.run_id == run_id]
    if not chosen:
        raise NotFoundError("--run", f"no run {run_id!r} of this campaign", f"its runs: {_names(runs)}")
    return chosen


def _names(runs: list[RunInfo]) -> str:
    shown = ", ".join(r.run_id for r in runs[:10])
    return shown + (f" and {len(runs) - 10} more" if len(runs) > 10 else "")


def _waterfall(counts: str | None) -> list[tuple[str, int, int]] | None:
    """runs.counts' "waterfall" ([[step, remaining, removed], ...]); None for loaded runs and odd shapes."""
    try:
        steps = json.loads(counts or "{}").get("waterfall")
        return [(str(s), int(r), int(d)) for s, r, d in steps] if steps else None
    except (ValueError, TypeError, AttributeError):
        return None


def measure_population(
    con: duckdb.DuckDBPyConnection, campaign: str, runs: list[RunInfo], settings: Settings
) -> Population:
    """Responders and revenue per cell and group: responses rows, or purchases when there are none."""
    params: dict[str, Any] = {"campaign": campaign, "runs": [r.run_id for r in runs], "channel": settings.channel}
    return tally_population(con, _CAMPAIGN_POPULATION, params, settings)


def tally_population(
    con: duckdb.DuckDBPyConnection, pop: str, params: dict[str, Any], settings: Settings
) -> Population:
    """Per `cell` of the rows `pop` selects (run_id, customer_id, as_of, is_control, campaign, cell, channel):
    the units of targets and controls, their responders and revenue, and the targets per channel."""
    has_responses = con.execute("SELECT EXISTS (SELECT 1 FROM responses)").fetchone()
    source = "responses" if has_responses and has_responses[0] else "purchases"
    hits = _FROM_RESPONSES if source == "responses" else _FROM_PURCHASES
    params = params | {"window": settings.window_days}
    if source == "responses":
        params["offer_code"] = settings.offer_code
    else:
        params["category"] = settings.category
    population = Population(source)
    for cell, is_control, channel, n, responders, cents, cents_sq in con.execute(
        _UNITS.format(pop=pop, hits=hits), params
    ).fetchall():
        sides = population.groups.setdefault(cell, {True: Group(), False: Group()})
        sides[is_control] = sides[is_control] + Group(int(n), int(responders), int(cents), int(cents_sq))
        if not is_control:
            by_channel = population.targets_by_channel.setdefault(cell, {})
            by_channel[channel] = by_channel.get(channel, 0) + int(n)
    return population
