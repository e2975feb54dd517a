"""The report command: a campaign's response, uplift, revenue and ROI against its control group."""

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

if TYPE_CHECKING:
    from crmlist.report import Report

REPORT_FORMATS = ("table", "csv", "json")


@app.command()
def report(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Campaign name as recorded in contact history.")],
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

    Example: crmlist report winback --format csv
    """
    from crmlist.report import report_campaign, report_csv, report_document
    from crmlist.report.chart import chart_format, write_chart

    kind = "json" if json_ else fmt or ("table" if sys.stdout.isatty() else "csv")
    if kind not in REPORT_FORMATS:
        raise UsageError("--format", f"unknown format {kind!r}", f"use one of: {', '.join(REPORT_FORMATS)}")
    if chart is not None:
        chart_format(chart)
    ws = workspace_from(ctx, workspace, db)
    with store.reader(ws.db_path, "report", wait=wait) as con:
        result = report_campaign(con, ws, name, run_id, all_runs, window_days)
    if chart is not None:
        write_chart(result, chart)
    printer = Printer(quiet, kind == "json")
    if kind == "json":
        document = report_document(result)
        printer.result("report", **document, paths={"chart": str(chart)} if chart else {})
    elif quiet:
        pass  # --quiet: nothing on stdout, e.g. when only the chart is wanted
    elif kind == "csv":
        sys.stdout.write(report_csv(result))
    else:
        _show(result)
    if chart is not None:
        printer.notice(f"chart written to {chart}")


def _show(result: Report) -> None:
    from rich.table import Table

    from crmlist.report.formats import report_lines

    scopes, lines = report_lines(result)
    run = result.run_id or f"all {len(result.runs)} runs"
    as_of = result.as_of.isoformat() if result.as_of else "several dates"
    title = (
        f"{result.campaign}: {run}, as of {as_of}, responses within {result.settings.window_days} days "
        f"(from {result.source}); targets / control"
    )
    table = Table("", *scopes, title=title)
    for label, values in lines:
        table.add_row(label, *values)
    stdout_console().print(table)
