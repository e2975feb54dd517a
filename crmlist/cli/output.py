"""Printing: data to stdout, messages to stderr, --quiet and --json honoured in one place."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from crmlist.errors import CrmlistError, MultipleErrors


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False, no_color="NO_COLOR" in os.environ, soft_wrap=True)


def stdout_console() -> Console:
    return Console(highlight=False, no_color="NO_COLOR" in os.environ, soft_wrap=True)


@dataclass
class Printer:
    """Where a command's words go: nothing on --quiet, one JSON document on --json."""

    quiet: bool = False
    as_json: bool = False

    def notice(self, text: str) -> None:
        if not (self.quiet or self.as_json):
            stderr_console().print(text, markup=False)

    def show(self, renderable: Any) -> None:
        """Human output (tables, summaries) goes to stderr unless it is the command's data."""
        if not (self.quiet or self.as_json):
            stderr_console().print(renderable)

    def result(self, command: str, **fields: Any) -> None:
        if self.as_json:
            doc = {"command": command, "ok": True, **fields}
            sys.stdout.write(json.dumps(doc, default=str, ensure_ascii=False, sort_keys=False) + "\n")
            sys.stdout.flush()


def report_error(exc: CrmlistError, as_json: bool) -> int:
    """The one error boundary's output: message and hint on stderr, JSON on stdout with --json."""
    console = stderr_console()
    for error in exc.errors if isinstance(exc, MultipleErrors) else [exc]:
        console.print(f"crmlist: error: {error.message}", markup=False)
        if error.hint:
            console.print(f"hint: {error.hint}", markup=False)
    if as_json:
        doc = {"ok": False, "exit_code": exc.exit_code, "error": exc.message}
        sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    return exc.exit_code
