"""Docs are tested: every command has help with an example, and README.md documents it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from crmlist.cli import admin, campaigns, data, report  # noqa: F401  (commands register on import)
from crmlist.cli.app import app

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_the_contract_commands_exist() -> None:
    contract = {"init", "load", "status", "campaigns", "check", "preview", "run", "export", "letters", "sql"}
    assert contract <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_an_example_and_a_readme_entry(name: str) -> None:
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    assert re.search(rf"Example: crmlist {name}\b", command.help or ""), name
    assert f"`crmlist {name}" in README, name


def test_readme_opens_with_the_two_commands() -> None:
    head = README.splitlines()[:12]
    assert "make demo" in "\n".join(head) and "make test" in "\n".join(head)
