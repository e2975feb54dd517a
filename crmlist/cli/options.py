"""Options shared by commands, each defined once here so its name, help and type never drift.

An option that more than one command takes lives here and nowhere else (tests/test_cli_options.py checks it);
an option of one command only sits beside that command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="Workspace folder (default: current folder or $CRMLIST_WORKSPACE)."),
]
DbOpt = Annotated[
    Path | None, typer.Option("--db", help="Database file (default: WORKSPACE/crmlist.duckdb or $CRMLIST_DB).")
]
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="Work as of this date, YYYY-MM-DD (default: the rule file's as_of, else today)."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON summary on stdout.")]
WaitOpt = Annotated[
    float, typer.Option("--wait", help="Wait up to SECONDS for another crmlist to release the database.")
]
OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out", help="Output folder (run's default: the workspace's out/; letters needs one unless --resume)."
    ),
]
_OUTPUT_FILE = typer.Option("--output", "-o", help="File to write; - for stdout.")
OutputFileOpt = Annotated[str, _OUTPUT_FILE]  # where the file is the command's point (export)
OptionalOutputFileOpt = Annotated[str | None, _OUTPUT_FILE]  # where it is one way to answer (rejects)
FormatOpt = Annotated[
    str | None, typer.Option("--format", help="One of the formats listed above (the default is given there too).")
]
TablesOpt = Annotated[list[str], typer.Option("--table", help="Only these tables (repeatable).")]
JobsOpt = Annotated[
    int | None, typer.Option("--jobs", "-j", min=1, help="Letter-rendering processes (default: one per core).")
]
LettersFormatOpt = Annotated[
    str,
    typer.Option("--letters-format", help="files (one per target) or a bundle: jsonl, mbox, zip, pdf."),
]
LogFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--log-file", metavar="FILE", help="Append one JSON line about this command to FILE (or $CRMLIST_LOG_FILE)."
    ),
]


def add_log_file_option(group: Any) -> None:
    """Give the group and each of its commands --log-file; the CLI boundary reads it from the arguments.

    Added here rather than to each command's signature so that every command, whoever writes it, has it.
    """
    for command in [group, *group.commands.values()]:
        probe = typer.Typer(add_completion=False)
        probe.command()(_log_file_probe)
        (param,) = typer.main.get_command(probe).params
        param.expose_value = False  # the commands never see it
        command.params.append(param)


def _log_file_probe(log_file: LogFileOpt = None) -> None:
    """Only here so Typer builds the --log-file option the way it builds every other one."""


def _engine_name(value: str | None) -> str | None:
    """An unknown --engine is a usage error (exit 2) while the options are read, before the command starts."""
    from crmlist.engines import engine_name

    return None if value is None else engine_name(value)


EngineOpt = Annotated[
    str | None,
    typer.Option("--engine", callback=_engine_name, help="Where the campaign runs: duckdb (default) or spark."),
]
WaveOpt = Annotated[
    int,
    typer.Option(
        "--wave",
        min=1,
        help="The campaign's wave for this as-of date (default 1): a later wave contacts the audience again.",
    ),
]
