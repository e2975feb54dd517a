"""Options shared by every command, defined once so names and help never drift."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="Workspace folder (default: current folder or $CRMLIST_WORKSPACE)."),
]
DbOpt = Annotated[
    Path | None, typer.Option("--db", help="Database file (default: WORKSPACE/crmlist.duckdb or $CRMLIST_DB).")
]
AsOfOpt = Annotated[
    str | None, typer.Option("--as-of", help="Run as of this date, YYYY-MM-DD (default: the rule file's, else today).")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON summary on stdout.")]
WaitOpt = Annotated[
    float, typer.Option("--wait", help="Wait up to SECONDS for another crmlist to release the database.")
]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Output folder (default: the workspace's out/).")]
LettersFormatOpt = Annotated[
    str,
    typer.Option("--letters-format", help="files (one per target) or a bundle: jsonl, mbox, zip."),
]
