"""The load progress bar: only on a terminal, never with --quiet or --json, and never into a pipe or file."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import duckdb
import pytest
from typer.testing import CliRunner

from crmlist.cli import data
from crmlist.cli.app import app

CUSTOMERS = "customer_id,first_name,email\n001,Anna,anna@example.pl\n002,Jan,jan@example.pl\n"


@pytest.fixture
def terminal() -> Iterator[tuple[TextIO, int]]:
    """A pseudo-terminal: the writing end as a text stream, and the reading end's descriptor."""
    reader, writer = os.openpty()
    stream = open(writer, "w", encoding="utf-8")  # noqa: SIM115  (closed below)
    try:
        yield stream, reader
    finally:
        stream.close()
        os.close(reader)


def test_progress_is_wanted_only_on_a_terminal_without_quiet_or_json(
    terminal: tuple[TextIO, int], tmp_path: Path
) -> None:
    tty, _ = terminal
    with (tmp_path / "stderr.txt").open("w", encoding="utf-8") as file:
        decisions = {
            (quiet, as_json, name): data.wants_progress(quiet, as_json, stream)
            for quiet in (False, True)
            for as_json in (False, True)
            for name, stream in (("terminal", tty), ("file", file))
        }
    assert decisions == {
        (False, False, "terminal"): True,
        (False, False, "file"): False,
        (False, True, "terminal"): False,
        (False, True, "file"): False,
        (True, False, "terminal"): False,
        (True, False, "file"): False,
        (True, True, "terminal"): False,
        (True, True, "file"): False,
    }


def test_a_load_writes_only_its_summary_to_stderr_when_it_is_not_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(data, "PROGRESS_DELAY", 0.0)  # a bar, were one drawn, would start at once
    (tmp_path / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    runner = CliRunner()
    shown = runner.invoke(app, ["load", "customers", "customers.csv"])
    summary = "customers: 2 rows loaded, 0 rejected, from 1 file(s)\n"
    assert (shown.exit_code, shown.stdout, shown.stderr) == (0, "", summary)
    quiet = runner.invoke(app, ["load", "customers", "customers.csv", "-q"])
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")


def test_the_bar_draws_on_a_terminal_and_clears_itself(terminal: tuple[TextIO, int]) -> None:
    tty, reader = terminal
    stop = threading.Event()
    stop.set()  # the load is over at once: the bar still draws its first frame, then clears it
    with duckdb.connect() as con:
        data.draw_progress(con, "loading customers", stop, 0.0, tty)
    tty.flush()
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", os.read(reader, 65536).decode("utf-8"))  # colours, cursor
    *frames, end = shown.split("\r\n")
    assert end == "\r"  # the bar is erased: the cursor goes back up to the start of its line
    # DuckDB has no statement running, so the bar pulses over its whole width: the label, 40 segments, time.
    assert {re.sub("0:00:0[0-9]", "TIME", frame) for frame in "".join(frames).split("\r")} == {
        "",
        "loading customers " + "━" * 40 + "  TIME",
    }
