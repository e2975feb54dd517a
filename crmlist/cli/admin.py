"""Workspace commands: init, doctor."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crmlist.cli.app import app
from crmlist.cli.options import DbOpt, JsonOpt, QuietOpt, WaitOpt, WorkspaceOpt
from crmlist.cli.output import Printer, stdout_console
from crmlist.errors import CrmlistError

if TYPE_CHECKING:
    from crmlist.doctor import Finding


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new workspace (created if missing).")],
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Write a new workspace: crmlist.toml, queries/, templates/ and sample data. Never overwrites.

    Example: crmlist init shop && cd shop && crmlist load customers sample_data/customers.csv
    """
    from crmlist.init import init_workspace

    written, skipped = init_workspace(directory)
    printer = Printer(quiet, json_)
    printer.notice(f"workspace {directory}: {len(written)} files written, {len(skipped)} existing files kept")
    for path in skipped:
        printer.notice(f"kept existing {path}")
    printer.notice(f"next: cd {directory} && crmlist load customers sample_data/customers.csv")
    printer.result("init", counts={"written": len(written), "kept": len(skipped)}, paths={"workspace": str(directory)})


@app.command()
def doctor(
    ctx: typer.Context,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    wait: WaitOpt = 0.0,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Check the workspace and say what to fix: crmlist.toml, views, campaigns, database, leftovers, lock.

    Exit 0 when nothing must be fixed (warnings are fine), 1 otherwise. Reads only.

    Example: crmlist doctor
    """
    from crmlist.doctor import ERROR, OK, WARNING, diagnose

    root = ctx.find_root().obj or {}
    findings = diagnose(workspace or root.get("workspace"), db or root.get("db"), wait)
    errors = [f for f in findings if f.level == ERROR]
    counts = {level: sum(f.level == level for f in findings) for level in (OK, WARNING, ERROR)}
    summary = f"{counts[ERROR]} to fix, {counts[WARNING]} warnings, {counts[OK]} ok"
    failure = {"exit_code": 1, "error": f"doctor: {summary}"} if errors else {}
    Printer(quiet, json_).result(
        "doctor", ok=not errors, **failure, counts=counts, findings=[f.as_dict() for f in findings]
    )
    if not (quiet or json_):
        _show_findings(findings)
    if errors and json_:
        raise typer.Exit(1)
    if errors:
        raise CrmlistError("doctor", summary, f"fix first: {errors[0].where}: {errors[0].what}")
    Printer(quiet, json_).notice(f"doctor: {summary}")


def _show_findings(findings: list[Finding]) -> None:
    """One line per finding, its level coloured, and the fix under each that is not ok."""
    from rich.text import Text

    from crmlist.doctor import ERROR, OK, WARNING

    console = stdout_console()
    styles = {OK: "green", WARNING: "yellow", ERROR: "bold red"}
    for finding in findings:
        console.print(Text(f"{finding.level:<8}", style=styles[finding.level]) + f" {finding.where}: {finding.what}")
        if finding.fix and finding.level != OK:
            console.print(f"         fix: {finding.fix}", markup=False)
