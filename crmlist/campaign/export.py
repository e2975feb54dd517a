"""A campaign's list exported to a file or stdout: the targets (or control) `run` would write, recording nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from crmlist import store
from crmlist.campaign.evaluate import list_query, resolve_as_of
from crmlist.campaign.execute import evaluate_on
from crmlist.campaign.identity import recorded_wave
from crmlist.campaign.model import load_campaign
from crmlist.outputs import format_from_path, write_output
from crmlist.workspace import Workspace, guard_output, parse_as_of

STDOUT = "-"


@dataclass(frozen=True)
class ListExport:
    """Which list of which campaign, as of when, and where it goes in which format."""

    campaign: str
    output: str  # a file, or STDOUT
    file_format: str | None = None  # None: from the file's extension, else csv
    control: bool = False  # the control group instead of the targets
    as_of: str | dt.date | None = None  # None: the rule file's as_of, else today
    wave: int = 1
    engine: str | None = None  # None: the workspace's engine


def export_list(ws: Workspace, request: ListExport, wait: float = 0.0, lap: Callable[[str], None] | None = None) -> int:
    """Write the list and return its rows. The format and the path are checked before the database is
    opened, so a bad -o fails without waiting for a lock; `lap(phase)` follows open, evaluate and write."""
    done = lap or (lambda phase: None)
    to_file = request.output != STDOUT
    kind = format_from_path(request.output if to_file else "", request.file_format)
    if to_file:
        guard_output(ws, request.output, "-o")
    with store.reader(ws.db_path, "export", wait=wait) as con:
        done("open")
        campaign = load_campaign(ws, request.campaign)
        as_of = resolve_as_of(campaign, parse_as_of(request.as_of) if request.as_of else None)
        # A recorded wave's own contacts do not count in its cap: the export gives the list `run` gave.
        recorded = recorded_wave(con, request.campaign, as_of, request.wave)
        selection = evaluate_on(
            con,
            ws,
            campaign,
            as_of,
            exclude_run=recorded.run_id if recorded else None,
            columns=(),
            engine=request.engine,
            once=True,
        )
        sql, params = list_query(selection, control=request.control)
        done("evaluate")
        rows = write_output(con, sql, params, request.output, kind)
        done("write")
    return rows
