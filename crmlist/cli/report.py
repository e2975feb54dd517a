"""The report command: a campaign's response, uplift, revenue and ROI against its control group, or all compared."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crmlist import store
from crmlist.cli.app import app, workspace_from
from crmlist.cli.options import DbOpt, FormatOpt, JsonOpt, QuietOpt, WaitOpt, WorkspaceOpt
from crmlist.cli.output import Printer, stdout_console
from crmlist.errors import UsageError
from crmlist.workspace import Workspace, guard_output

if TYPE_CHECKING:
    import datetime as dt

    from crmlist.report import Comparison, Report

REPORT_FORMATS = ("table", "csv", "json")
_ONE_OR_ALL = "crmlist report CAMPAIGN measures one campaign; crmlist report --all compares them all"


# The argument and options of this command; those of several are in crmlist/cli/options.py.
RecordedCampaignArg = Annotated[
    str | None, typer.Argument(metavar="CAMPAIGN", help="Campaign name as recorded in contact history (or --all).")
]
AllOpt = Annotated[bool, typer.Option("--all", help="Compare every campaign with a run in the period, one line each.")]
GlobalOpt = Annotated[
    bool, typer.Option("--global", help="Everyone contacted in the period against the global control group.")
]
FromOpt = Annotated[
    str | None, typer.Option("--from", metavar="DATE", help="With --all or --global: runs as of DATE or later.")
]
ToOpt = Annotated[
    str | None, typer.Option("--to", metavar="DATE", help="With --all or --global: runs as of DATE or earlier.")
]
RunOpt = Annotated[str | None, typer.Option("--run", help="Report this run (default: the latest).")]
AllRunsOpt = Annotated[bool, typer.Option("--all-runs", help="Pool every run of the campaign.")]
WindowDaysOpt = Annotated[
    int | None,
    typer.Option("--window-days", help="Response window in days after as-of (default: rule file, config, 30)."),
]
ChartOpt = Annotated[Path | None, typer.Option("--chart", help="Also draw a chart: FILE.png, .svg or .html.")]


@app.command()
def report(
    ctx: typer.Context,
    name: RecordedCampaignArg = None,
    all_campaigns: AllOpt = False,
    programme: GlobalOpt = False,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    run_id: RunOpt = None,
    all_runs: AllRunsOpt = False,
    window_days: WindowDaysOpt = None,
    fmt: FormatOpt = None,
    chart: ChartOpt = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    wait: WaitOpt = 0.0,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Measure a campaign against its control group: response rates, uplift, revenue, ROI. Reads only.

    With --all, compare every campaign whose runs are as of a date in --from..--to (both included),
    each campaign's runs there pooled as --all-runs pools them.

    Formats: table, csv, json (default: table on a terminal, else csv; --json is json).

    Example: crmlist report winback --format csv

    With --global, measure every campaign's targets in the period against the global control members
    the runs recorded (crmlist.toml [control] global_percent): the programme's lift.

    Example: crmlist report --all --from 2026-11-01 --to 2026-11-30
    """
    from crmlist.report.compare import parse_day

    kind = _output_kind(fmt, json_, chart)
    _check_choice(name, all_campaigns, programme, period=bool(date_from or date_to), runs=bool(run_id or all_runs))
    start, end = parse_day("--from", date_from), parse_day("--to", date_to)
    ws = workspace_from(ctx, workspace, db)
    if chart is not None:
        guard_output(ws, chart, "--chart")
    result = _measure(ws, wait, name, programme, start, end, run_id, all_runs, window_days)
    _print_report(result, kind, quiet, chart)


def _output_kind(fmt: str | None, as_json: bool, chart: Path | None) -> str:
    """table, csv or json: --json, else --format, else a table on a terminal and csv off one; the chart's
    extension is checked here too, before anything is read."""
    from crmlist.report.chart import chart_format

    kind = "json" if as_json else fmt or ("table" if sys.stdout.isatty() else "csv")
    if kind not in REPORT_FORMATS:
        raise UsageError("--format", f"unknown format {kind!r}", f"use one of: {', '.join(REPORT_FORMATS)}")
    if chart is not None:
        chart_format(chart)
    return kind


def _measure(
    ws: Workspace,
    wait: float,
    name: str | None,
    programme: bool,
    start: dt.date | None,
    end: dt.date | None,
    run_id: str | None,
    all_runs: bool,
    window_days: int | None,
) -> Report | Comparison:
    """The one library call the options chose: the programme (--global), all campaigns (--all) or one."""
    from crmlist.report import compare_campaigns, report_campaign
    from crmlist.report.programme import report_programme

    with store.reader(ws.db_path, "report", wait=wait) as con:
        if programme:
            return report_programme(con, ws, start, end, window_days)
        if name is None:
            return compare_campaigns(con, ws, start, end, window_days)
        return report_campaign(con, ws, name, run_id, all_runs, window_days)


def _print_report(result: Report | Comparison, kind: str, quiet: bool, chart: Path | None) -> None:
    """The chart first, then the report as a table, csv or one JSON document; --quiet prints no report."""
    from crmlist.report import report_csv, report_document
    from crmlist.report.chart import write_chart

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
