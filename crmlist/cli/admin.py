"""Workspace commands: init."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crmlist.cli.app import app
from crmlist.cli.options import JsonOpt, QuietOpt
from crmlist.cli.output import Printer


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
