"""The Typer application, its callback (options before the command) and the workspace it resolves."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from crmlist import __version__
from crmlist.cli.options import DbOpt, WorkspaceOpt
from crmlist.workspace import Workspace, open_workspace, parse_as_of

app = typer.Typer(
    name="crmlist",
    help="Campaign lists and one-to-one letters from customer files: load, check, preview, run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"crmlist {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """crmlist: load customer files, segment them with rule files, write lists and letters."""
    ctx.obj = {"workspace": workspace, "db": db}


def workspace_from(ctx: typer.Context, workspace: Path | None, db: Path | None) -> Workspace:
    """The workspace from the command's options, else the ones given before the command."""
    root = ctx.find_root().obj or {}
    ws = open_workspace(workspace or root.get("workspace"), db or root.get("db"))
    os.umask(ws.umask)  # every file and folder the command creates, the database too, gets file_mode
    return ws


__all__ = ["app", "parse_as_of", "workspace_from"]
