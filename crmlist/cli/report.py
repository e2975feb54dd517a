"""The report command: a campaign's response, uplift, revenue and ROI against its control group, or all compared."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crmlist import store
from crmlist.cli.app import app, workspace_from
from crmlist.cli.options import DbOpt, JsonOpt, QuietOpt, WaitOpt, WorkspaceOpt
from crmlist.cli.output import Printer, stdout_console
from crmlist.errors import UsageError
from crmlist.workspace import guard_output

if TYPE_CHECKING:
    from crmlist.report import Comparison, Report

REPORT_FORMATS = ("table", "csv", "json")
_ONE_OR_ALL = "crmlist report CAMPAIGN measures one campaign; crmlist report --all compares them all"


@app.command()
def report(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(metavar="CAMPAIGN", help="Campaign name as recorded in contact history (or --all)."),
    ] = None,
    all_campaigns: Annotated[
        bool, typer.Option("--all", help="Compare every campaign with a run in the period, one line each.")
    ] = False,
    programme: Annotated[
        bool,
        typer.Option("--global", help="Everyone contacted in the period against the global control group."),
    ] = False,
    date_from: Annotated[
        str | None, typer.Option("--from", metavar="DATE", help="With --all or --global: runs as of DATE or later.")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", metavar="DATE", help="With --all or --global: runs as of DATE or earlier.")
    ] = None,
    run_id: Annotated[str | None, typer.Option("--run", help="Report this run (default: the latest).")] = None,
    all_runs: Annotated[bool, typer.Option("--all-runs", help="Pool every run of the campaign.")] = False,
    window_days: Annotated[
        int | None,
        typer.Option("--window-days", help="Response window in days after as-of (default: rule file, config, 30)."),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="table, csv or json (default: table on a terminal, else csv).")
    ] = None,
    chart: Annotated[Path | None, typer.Option("--chart", help="Also draw a chart: FILE.png, .svg or .html.")] = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    wait: WaitOpt = 0.0,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Measure a campaign against its control group: response rates, uplift, revenue, ROI. Reads only.

    With --all, compare every campaign whose runs are as of a date in --from..--to (both included),
    each campaign's runs there pooled as --all-runs pools them.

    Example: crmlist report winback --format csv

    With --global, measure every campaign's targets in the period against the global control members
    the runs recorded (crmlist.toml [control] global_percent): the programme's lift.

    Example: crmlist report --all --from 2026-11-01 --to 2026-11-30
    """
    from crmlist.report import compare_campaigns, report_campaign, report_csv, report_document
    from crmlist.report.chart import chart_format, write_chart
    from crmlist.report.compare import parse_day
    from crmlist.report.programme import report_programme

    kind = "json" if json_ else fmt or ("table" if sys.stdout.isatty() else "csv")
    if kind not in REPORT_FORMATS:
        raise UsageError("--format", f"unknown format {kind!r}", f"use one of: {', '.join(REPORT_FORMATS)}")
    if chart is not None:
        chart_format(chart)
    _check_choice(name, all_campaigns, programme, period=bool(date_from or date_to), runs=bool(run_id or all_runs))
    start, end = parse_day("--from", date_from), parse_day("--to", date_to)
    ws = workspace_from(ctx, workspace, db)
    if chart is not None:
        guard_output(ws, chart, "--chart")
    result: Report | Comparison
    with store.reader(ws.db_path, "report", wait=wait) as con:
        if programme:
            result = report_programme(con, ws, start, end, window_days)
        elif name is None:
            result = compare_campaigns(con, ws, start, end, window_days)
        else:
            result = report_campaign(con, ws, name, run_id, all_runs, window_days)
    if chart is not None:
        write_chart(result, chart)
    printer = Printer(quiet, kind == "json")
    if kind == "json":
        printer.result("report", **report_document(result), paths={"chart": str(chart)} if chart else {})
    elif quiet:
        pass  # --quiet: nothing on stdout, e.g. when only the chart is wanted
    elif kind == "csv":
        sys.stdout.write(report_csv(result))
    else:
        _show(result)
    if chart is not None:
        printer.notice(f"chart written to {chart}")


def _check_choice(name: str | None, all_campaigns: bool, programme: bool, period: bool, runs: bool) -> None:
    """One campaign (with --run or --all-runs), --all or --global (with --from and --to): exactly one."""
    if programme and (name is not None or all_campaigns or runs):
        raise UsageError(
            "report", "--global measures the whole programme: give no CAMPAIGN, --all, --run or --all-runs", None
        )
    if programme:
        return
    if name is not None and all_campaigns:
        raise UsageError("report", f"give a CAMPAIGN or --all, not both (got {name!r} and --all)", _ONE_OR_ALL)
    if name is None and not all_campaigns:
        raise UsageError("report", "missing CAMPAIGN", _ONE_OR_ALL)
    if all_campaigns and runs:
        raise UsageError(
            "report",
            "--run and --all-runs are for one campaign; --all pools each campaign's runs in the period",
            "choose the period with --from and --to",
        )
    if name is not None and period:
        raise UsageError(
            "report",
            "--from and --to go with --all",
            f"compare campaigns with --all, or pick a run of {name} with --run",
        )


def _show(result: Report | Comparison) -> None:
    from rich.table import Table

    from crmlist.report.formats import report_table, report_title

    header, rows = report_table(result)
    table = Table(*header, title=report_title(result))
    for row in rows:
        table.add_row(*row)
    stdout_console().print(table)
