"""Campaign commands: campaigns, check, preview, run, export, letters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from crmlist import store
from crmlist.cli.app import app, workspace_from
from crmlist.cli.options import (
    AsOfOpt,
    DbOpt,
    EngineOpt,
    FormatOpt,
    JobsOpt,
    JsonOpt,
    LettersFormatOpt,
    OutOpt,
    OutputFileOpt,
    QuietOpt,
    WaitOpt,
    WaveOpt,
    WorkspaceOpt,
)
from crmlist.cli.output import Printer, Stopwatch, stdout_console
from crmlist.errors import EXIT_ERROR, EXIT_PARTIAL, MultipleErrors, UsageError
from crmlist.workspace import Workspace, guard_output, parse_as_of

if TYPE_CHECKING:
    from crmlist.campaign.preview import Preview
    from crmlist.campaign.runner import RunResult

CampaignArg = Annotated[str, typer.Argument(help="Campaign name: the stem of queries/NAME.toml.")]
# The options of one command each; those of several are in crmlist/cli/options.py.
SampleOpt = Annotated[int, typer.Option("--sample", help="Sample rows to show.")]
ShowPersonalOpt = Annotated[bool, typer.Option("--show-personal", help="Show names and contacts.")]
RerunOpt = Annotated[
    bool, typer.Option("--rerun", help="Recompute the wave's recorded run and replace its contacts and folder.")
]
ControlOpt = Annotated[bool, typer.Option("--control", help="Export the control group instead.")]
ResumeOpt = Annotated[
    str | None, typer.Option("--resume", help="Render only the letters missing from this recorded run.")
]


@app.command()
def campaigns(
    ctx: typer.Context,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    wait: WaitOpt = 0.0,  # accepted as every reader accepts it; the list comes from the rule files only
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """List the campaigns (queries/*.toml) with their descriptions.

    Example: crmlist campaigns
    """
    from crmlist.campaign.catalog import describe_campaigns

    rows = describe_campaigns(workspace_from(ctx, workspace, db))
    Printer(quiet, json_).result("campaigns", campaigns=rows, counts={"campaigns": len(rows)})
    if quiet or json_:
        return
    for row in rows:
        stdout_console().print(f"{row['campaign']}\t{row['description']}", markup=False)


@app.command()
def views(ctx: typer.Context, workspace: WorkspaceOpt = None, db: DbOpt = None, json_: JsonOpt = False) -> None:
    """List the views (queries/*.sql) with their descriptions, in the order they are built.

    Example: crmlist views
    """
    from crmlist.campaign.views import discover_views

    ws = workspace_from(ctx, workspace, db)
    rows = [{"view": v.name, "description": v.description, "uses": sorted(v.depends_on)} for v in discover_views(ws)]
    if json_:
        Printer(as_json=True).result("views", views=rows, counts={"views": len(rows)})
        return
    for row in rows:
        stdout_console().print(f"{row['view']}\t{row['description']}", markup=False)


@app.command()
def check(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="Campaigns to check (default: all).")] = None,
    as_of: AsOfOpt = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    wait: WaitOpt = 0.0,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Validate rule files, expressions and templates; writes nothing. Exit 65 on any problem.

    Example: crmlist check winback
    """
    import duckdb

    from crmlist.campaign.check import check_campaigns

    ws = workspace_from(ctx, workspace, db)
    if ws.db_path.exists():
        with store.reader(ws.db_path, "check", wait=wait) as con:
            checked, problems = check_campaigns(con, ws, names or [], parse_as_of(as_of))
    else:
        con = duckdb.connect(":memory:")
        store.ensure_schema(con)
        checked, problems = check_campaigns(con, ws, names or [], parse_as_of(as_of))
        con.close()
    if problems:
        raise MultipleErrors(problems)
    out = Printer(quiet, json_)
    out.notice(f"ok: {len(checked)} campaign(s) checked: {', '.join(checked)}")
    out.result("check", counts={"campaigns": len(checked), "problems": 0}, campaigns=checked)


@app.command()
def preview(
    ctx: typer.Context,
    name: CampaignArg,
    as_of: AsOfOpt = None,
    sample: SampleOpt = 5,
    show_personal: ShowPersonalOpt = False,
    wave: WaveOpt = 1,
    engine: EngineOpt = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    wait: WaitOpt = 0.0,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Show the waterfall, cell sizes, sample rows and the change since the last run; writes nothing.

    Example: crmlist preview winback --as-of 2026-11-01
    """
    from crmlist.campaign.preview import preview_campaign

    ws = workspace_from(ctx, workspace, db)
    watch = Stopwatch()
    with store.reader(ws.db_path, "preview", wait=wait) as con:
        watch.lap("open")
        result = preview_campaign(
            con, ws, name, parse_as_of(as_of) if as_of else None, sample, show_personal, engine, wave
        )
        watch.lap("preview")
    Printer(quiet, json_).result("preview", **_preview_summary(name, result), timings=watch.timings())
    if not (quiet or json_):
        from crmlist.cli.render import show_preview

        show_preview(result)


def _preview_summary(name: str, result: Preview) -> dict[str, Any]:
    """The fields of preview's --json document: counts, sample rows, the plan against the last run."""
    plan, verdict = result.plan, result.verdict
    return {
        "campaign": name,
        "as_of": result.selection.as_of.isoformat(),
        "counts": result.selection.counts(),
        "sample": {"columns": result.sample_columns, "rows": [list(map(str, r)) for r in result.sample]},
        "plan": None
        if plan is None
        else {
            "run_id": plan.run_id,
            "entering": plan.entering,
            "leaving": plan.leaving,
            "steps": plan.steps,
            "cells": plan.cells,
        },
        "run": None
        if verdict is None
        else {
            "action": verdict.action,
            "run_id": verdict.run_id,
            "recorded": verdict.recorded,
            "changes": verdict.changes,
        },
    }


@app.command()
def run(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Campaigns to run.")],
    out: OutOpt = None,
    as_of: AsOfOpt = None,
    rerun: RerunOpt = False,
    wave: WaveOpt = 1,
    letters_format: LettersFormatOpt = "files",
    jobs: JobsOpt = None,
    engine: EngineOpt = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    wait: WaitOpt = 0.0,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Write the target list, control list, waterfall and letters, and record contact history.

    Example: crmlist run winback --out out --as-of 2026-11-01
    """
    from crmlist.campaign.runner import run_campaign
    from crmlist.cli.render import show_run

    ws = workspace_from(ctx, workspace, db)
    guard_output(ws, out or ws.out_dir, "--out")
    printer = Printer(quiet, json_)
    results = []
    watch = Stopwatch()
    with store.writer(ws.db_path, f"run {' '.join(names)}", wait=wait) as con:
        watch.lap("open")
        for name in names:
            result = run_campaign(
                con, ws, name, parse_as_of(as_of) if as_of else None, out, rerun, letters_format, jobs, engine, wave
            )
            watch.lap(f"run {name}")
            results.append(result)
            show_run(printer, result)
    partial = any(r.status == "partial" for r in results)
    printer.result("run", ok=not partial, **_run_summary(results), timings=watch.timings())
    if partial:
        raise typer.Exit(EXIT_PARTIAL)


def _run_summary(results: list[RunResult]) -> dict[str, Any]:
    """The fields of run's --json document, per campaign run."""
    return {
        "run_id": results[0].run_id if len(results) == 1 else [r.run_id for r in results],
        "counts": {r.campaign: r.counts for r in results},
        "paths": {r.campaign: str(r.folder) for r in results},
        "status": {r.campaign: r.status for r in results},
        "rules_sha256": {r.campaign: r.rules_sha256 for r in results if r.rules_sha256},
    }


@app.command()
def export(
    ctx: typer.Context,
    name: CampaignArg,
    output: OutputFileOpt,
    fmt: FormatOpt = None,
    control: ControlOpt = False,
    as_of: AsOfOpt = None,
    wave: WaveOpt = 1,
    engine: EngineOpt = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    wait: WaitOpt = 0.0,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Write the campaign's target list to a file or stdout; records nothing.

    Formats: csv, tsv, jsonl, parquet, xlsx (default: the file's extension, else csv).

    Example: crmlist export winback -o winback.xlsx
    """
    from crmlist.campaign.export import STDOUT, ListExport, export_list

    ws = workspace_from(ctx, workspace, db)
    watch = Stopwatch()
    rows = export_list(ws, ListExport(name, output, fmt, control, as_of, wave, engine), wait, watch.lap)
    printer = Printer(quiet, json_ and output != STDOUT)
    if output != STDOUT:
        printer.notice(f"{name}: {rows} rows written to {output}")
    printer.result("export", counts={"rows": rows}, paths={"list": output}, timings=watch.timings())


@app.command()
def letters(
    ctx: typer.Context,
    name: CampaignArg,
    out: OutOpt = None,
    resume: ResumeOpt = None,
    as_of: AsOfOpt = None,
    letters_format: LettersFormatOpt = "files",
    jobs: JobsOpt = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    wait: WaitOpt = 0.0,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Render the letters of the campaign's current targets into a folder; records nothing.

    With --resume RUN_ID, render the letters a recorded run could not write (see its failed.csv) into
    that run's folder and record them.

    Example: crmlist letters winback --out proofs
    """
    ws = workspace_from(ctx, workspace, db)
    printer = Printer(quiet, json_)
    if resume:
        _resume_letters(ws, resume, jobs, wait, printer)
        return
    if out is None:
        raise UsageError("letters", "--out is required (or --resume RUN_ID)", "pass --out DIR")
    from crmlist.campaign.proofs import render_proofs

    guard_output(ws, out, "--out")
    result = render_proofs(ws, name, out, as_of, letters_format, jobs, wait)
    written, failed = len(result.written), len(result.failed)
    printer.notice(f"{name}: {written} letters written to {out}, {failed} failed")
    printer.result("letters", ok=not failed, counts={"letters": written, "failed": failed}, paths={"out": str(out)})
    if failed:
        raise typer.Exit(EXIT_PARTIAL if written else EXIT_ERROR)


def _resume_letters(ws: Workspace, run_id: str, jobs: int | None, wait: float, printer: Printer) -> None:
    """letters --resume RUN_ID: the run's missing letters into its folder, recorded; exit 3 if some still fail."""
    from crmlist.campaign.resume import resume_letters
    from crmlist.cli.render import show_run

    with store.writer(ws.db_path, f"letters --resume {run_id}", wait=wait) as con:
        result = resume_letters(con, ws, run_id, jobs)
    show_run(printer, result)
    printer.result(
        "letters",
        ok=result.status != "partial",
        run_id=run_id,
        counts=result.counts,
        paths={"run": str(result.folder)},
    )
    if result.status == "partial":
        raise typer.Exit(EXIT_PARTIAL)
