"""An option several commands take is defined once, in crmlist/cli/options.py: one name, one help, one type."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path
from typing import Any

import typer.main

from crmlist.cli import admin, campaigns, data, report  # noqa: F401  (commands register on import)
from crmlist.cli.app import app
from crmlist.cli.options import add_log_file_option

CLI = Path(__file__).resolve().parents[1] / "crmlist" / "cli"


def command_tree() -> dict[str, Any]:
    """The group (its options go before the command) and every command, as Click sees them."""
    group: Any = typer.main.get_command(app)
    add_log_file_option(group)
    return {"crmlist": group, **group.commands}


def option_uses() -> dict[str, list[tuple[str, Any]]]:
    """Each option's long name -> (command, option) for every command that takes it."""
    uses: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for name, command in command_tree().items():
        for param in command.params:
            if param.param_type_name == "option":
                uses[next(o for o in param.opts if o.startswith("--"))].append((name, param))
    return uses


def shared_options() -> dict[str, list[tuple[str, Any]]]:
    return {option: uses for option, uses in option_uses().items() if len(uses) > 1}


def spelling(param: Any) -> dict[str, Any]:
    """What a user sees of an option, apart from its default: flags, help, type and bounds."""
    return {
        "opts": sorted(param.opts),
        "help": param.help,
        "type": param.type_descriptor.annotation,
        "multiple": param.multiple,
        "flag": param.is_flag,
        "range": (param.min, param.max),
        "metavar": param.metavar,
    }


def option_definitions(path: Path) -> list[tuple[str, int]]:
    """(option name, line) for each `typer.Option("--name", ...)` written in the module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name != "Option":
            continue
        for arg in node.args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("--"):
                found.append((arg.value, node.lineno))
    return found


def test_the_walk_sees_the_shared_options() -> None:
    shared = shared_options()
    assert {"--workspace", "--db", "--as-of", "--format", "--out", "--output", "--table", "--json"} <= set(shared)
    assert {command for command, _ in shared["--format"]} == {"load", "rejects", "export", "report", "sql"}


def test_a_shared_option_has_one_help_and_one_type_everywhere() -> None:
    drifted = {}
    for option, uses in shared_options().items():
        spellings: dict[str, list[str]] = defaultdict(list)
        for command, param in uses:
            spellings[repr(spelling(param))].append(command)
        if len(spellings) > 1:
            drifted[option] = dict(spellings)
    assert drifted == {}


def test_a_shared_option_has_one_default_where_it_is_optional() -> None:
    drifted = {}
    for option, uses in shared_options().items():
        defaults: dict[str, list[str]] = defaultdict(list)
        for command, param in uses:
            if not param.required:
                defaults[repr(param.default)].append(command)
        if len(defaults) > 1:
            drifted[option] = dict(defaults)
    assert drifted == {}


def test_a_shared_option_is_defined_once_in_options_py() -> None:
    shared = set(shared_options())
    where: dict[str, list[str]] = defaultdict(list)
    for path in sorted(CLI.glob("*.py")):
        for option, line in option_definitions(path):
            if option in shared:
                where[option].append(f"{path.name}:{line}")
    assert {option: places for option, places in where.items() if len(places) != 1} == {}
    assert {option: places[0].split(":")[0] for option, places in where.items()} == dict.fromkeys(shared, "options.py")


def test_the_definition_check_sees_both_spellings(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import typer\nfrom typer import Option\n"
        'A = typer.Option("--format", help="x")\n'
        'B = Option("--table", "-t")\n'
        'C = typer.Argument("--not-an-option")\n',
        encoding="utf-8",
    )
    assert option_definitions(module) == [("--format", 3), ("--table", 4)]
