"""Printing: data to stdout, messages to stderr, --quiet and --json honoured in one place."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from crmlist.errors import CrmlistError, MultipleErrors

# The summary of the command that ran (what --json prints), kept for the command log of the boundary.
_summary: dict[str, Any] = {}


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
        doc = {"command": command, "ok": True, **fields}
        _summary.clear()
        _summary.update(doc)
        if self.as_json:
            sys.stdout.write(json.dumps(doc, default=str, ensure_ascii=False, sort_keys=False) + "\n")
            sys.stdout.flush()


def forget_summary() -> None:
    _summary.clear()


def last_summary() -> dict[str, Any]:
    """The summary the command produced (counts, run_id, ...), empty when it produced none."""
    return dict(_summary)


class Stopwatch:
    """Seconds spent per phase of a command, for the `timings` of its --json summary."""

    def __init__(self) -> None:
        self.started = self.last = time.monotonic()
        self.phases: dict[str, float] = {}

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        self.phases[phase] = round(now - self.last, 3)
        self.last = now

    def timings(self) -> dict[str, float]:
        return {**self.phases, "total": round(time.monotonic() - self.started, 3)}


def report_error(exc: CrmlistError, as_json: bool) -> int:
    """The one error boundary's output: message and hint on stderr, JSON on stdout with --json."""
    console = stderr_console()
    for error in exc.errors if isinstance(exc, MultipleErrors) else [exc]:
        console.print(f"crmlist: error: {error.message}", markup=False)
        if error.hint:
            console.print(f"hint: {error.hint}", markup=False)
    if as_json:
        json_failure(exc.exit_code, exc.message)
    return exc.exit_code


def json_failure(exit_code: int, message: str) -> None:
    """The --json document of a failed command, on stdout."""
    doc = {"ok": False, "exit_code": exit_code, "error": message}
    sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
    sys.stdout.flush()
