"""Campaign commands: campaigns, check, preview, run, export, letters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crmlist import store
from crmlist.cli.app import app, workspace_from
from crmlist.cli.options import (
    AsOfOpt,
    DbOpt,
    EngineOpt,
    JobsOpt,
    JsonOpt,
    LettersFormatOpt,
    OutOpt,
    QuietOpt,
    WaitOpt,
    WaveOpt,
    WorkspaceOpt,
)
from crmlist.cli.output import Printer, Stopwatch, stdout_console
from crmlist.errors import EXIT_ERROR, EXIT_PARTIAL, MultipleErrors, UsageError
from crmlist.workspace import Workspace, guard_output, parse_as_of

CampaignArg = Annotated[str, typer.Argument(help="Campaign name: the stem of queries/NAME.toml.")]


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
    import tomllib

    from crmlist.campaign.model import campaign_names, campaign_path

    ws = workspace_from(ctx, workspace, db)
    rows = []
    for name in campaign_names(ws):
        try:
            description = str(tomllib.loads(campaign_path(ws, name).read_text("utf-8")).get("description", ""))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            description = "(rule file does not parse: run crmlist check)"
        rows.append({"campaign": name, "description": description})
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
    sample: Annotated[int, typer.Option("--sample", help="Sample rows to show.")] = 5,
    show_personal: Annotated[bool, typer.Option("--show-personal", help="Show names and contacts.")] = False,
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
    out = Printer(quiet, json_)
    plan = result.plan
    out.result(
        "preview",
        campaign=name,
        as_of=result.selection.as_of.isoformat(),
        counts=result.selection.counts(),
        sample={"columns": result.sample_columns, "rows": [list(map(str, r)) for r in result.sample]},
        plan=None
        if plan is None
        else {
            "run_id": plan.run_id,
            "entering": plan.entering,
            "leaving": plan.leaving,
            "steps": plan.steps,
            "cells": plan.cells,
        },
        run=None
        if result.verdict is None
        else {
            "action": result.verdict.action,
            "run_id": result.verdict.run_id,
            "recorded": result.verdict.recorded,
            "changes": result.verdict.changes,
        },
        timings=watch.timings(),
    )
    if not (quiet or json_):
        from crmlist.cli.render import show_preview

        show_preview(result)


@app.command()
def run(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Campaigns to run.")],
    out: OutOpt = None,
    as_of: AsOfOpt = None,
    rerun: Annotated[
        bool, typer.Option("--rerun", help="Recompute the wave's recorded run and replace its contacts and folder.")
    ] = False,
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
    printer.result(
        "run",
        ok=not partial,
        run_id=results[0].run_id if len(results) == 1 else [r.run_id for r in results],
        counts={r.campaign: r.counts for r in results},
        paths={r.campaign: str(r.folder) for r in results},
        status={r.campaign: r.status for r in results},
        rules_sha256={r.campaign: r.rules_sha256 for r in results if r.rules_sha256},
        timings=watch.timings(),
    )
    if partial:
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
def export(
    ctx: typer.Context,
    name: CampaignArg,
    output: Annotated[str, typer.Option("--output", "-o", help="File to write; - for stdout.")],
    fmt: Annotated[str | None, typer.Option("--format", help="csv, tsv, jsonl, parquet, xlsx.")] = None,
    control: Annotated[bool, typer.Option("--control", help="Export the control group instead.")] = False,
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

    Example: crmlist export winback -o winback.xlsx
    """
    from crmlist.campaign.evaluate import list_query, resolve_as_of
    from crmlist.campaign.execute import evaluate_on
    from crmlist.campaign.identity import recorded_wave
    from crmlist.campaign.model import load_campaign
    from crmlist.outputs import format_from_path, write_output

    ws = workspace_from(ctx, workspace, db)
    kind = format_from_path(output if output != "-" else "", fmt)
    if output != "-":
        guard_output(ws, output, "-o")
    watch = Stopwatch()
    with store.reader(ws.db_path, "export", wait=wait) as con:
        watch.lap("open")
        campaign = load_campaign(ws, name)
        as_of_date = resolve_as_of(campaign, parse_as_of(as_of) if as_of else None)
        # A recorded wave's own contacts do not count in its cap: the export gives the list `run` gave.
        recorded = recorded_wave(con, name, as_of_date, wave)
        exclude = recorded.run_id if recorded else None
        selection = evaluate_on(
            con, ws, campaign, as_of_date, exclude_run=exclude, columns=(), engine=engine, once=True
        )
        sql, params = list_query(selection, control=control)
        watch.lap("evaluate")
        rows = write_output(con, sql, params, output, kind)
        watch.lap("write")
    printer = Printer(quiet, json_ and output != "-")
    if output != "-":
        printer.notice(f"{name}: {rows} rows written to {output}")
    printer.result("export", counts={"rows": rows}, paths={"list": output}, timings=watch.timings())


@app.command()
def letters(
    ctx: typer.Context,
    name: CampaignArg,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for the letters.")] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Render only the letters missing from this recorded run.")
    ] = None,
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
        from crmlist.campaign.resume import resume_letters
        from crmlist.cli.render import show_run

        with store.writer(ws.db_path, f"letters --resume {resume}", wait=wait) as con:
            run_result = resume_letters(con, ws, resume, jobs)
        show_run(printer, run_result)
        printer.result(
            "letters",
            ok=run_result.status != "partial",
            run_id=resume,
            counts=run_result.counts,
            paths={"run": str(run_result.folder)},
        )
        if run_result.status == "partial":
            raise typer.Exit(EXIT_PARTIAL)
        return
    if out is None:
        raise UsageError("letters", "--out is required (or --resume RUN_ID)", "pass --out DIR")
    guard_output(ws, out, "--out")
    written, failed = _proof_letters(ws, name, out, as_of, letters_format, wait, jobs)
    printer.notice(f"{name}: {written} letters written to {out}, {failed} failed")
    printer.result("letters", ok=not failed, counts={"letters": written, "failed": failed}, paths={"out": str(out)})
    if failed:
        raise typer.Exit(EXIT_PARTIAL if written else EXIT_ERROR)


def _proof_letters(
    ws: Workspace, name: str, out: Path, as_of: str | None, letters_format: str, wait: float, jobs: int | None
) -> tuple[int, int]:
    from crmlist.campaign.evaluate import evaluate, resolve_as_of
    from crmlist.campaign.model import load_campaign
    from crmlist.campaign.runner import prepare_letter_targets
    from crmlist.letters import LetterJob, render_letters

    with store.reader(ws.db_path, "letters", wait=wait) as con:
        campaign = load_campaign(ws, name)
        selection = evaluate(con, ws, campaign, resolve_as_of(campaign, parse_as_of(as_of) if as_of else None))
        prepare_letter_targets(con, selection)
        result = render_letters(con, ws, LetterJob(name, selection.as_of, letters_format, jobs=jobs), out)
    return len(result.written), len(result.failed)
