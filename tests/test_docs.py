"""Docs are tested: every command and option is in README.md, every example parses, the exit codes are errors.py's.

README's tour and "Measuring a campaign" blocks are run for real by tests/promises/test_sample_workspace.py;
here every `crmlist` command line of README's shell blocks (and of each command's help example) is parsed
by the command's own option parser, so an option renamed in the code but not in README fails; every option
of every command's help must be named where README speaks of that command; README's exit codes are read
back against crmlist/errors.py.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from crmlist import errors
from crmlist.cli import admin, campaigns, data, report  # noqa: F401  (commands register on import)
from crmlist.cli.app import app
from crmlist.cli.options import add_log_file_option

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
GROUP: Any = typer.main.get_command(app)
add_log_file_option(GROUP)  # as the CLI boundary does: --log-file on the group and every command
COMMANDS = sorted(GROUP.commands)
GLOBAL = {opt for param in GROUP.params for opt in param.opts if param.name != "version"}  # take a value
# README's "Commands" paragraph documents these once for every command that has them.
SHARED = {"--workspace", "--db", "--as-of", "--quiet", "--json", "--wait", "--log-file", "--engine", "--wave", "--help"}


def long_options(command: Any) -> set[str]:
    return {o for p in command.params if p.param_type_name == "option" for o in [*p.opts, *p.secondary_opts]} | {
        "--help"
    }


def test_the_contract_commands_exist() -> None:
    contract = {"init", "load", "status", "campaigns", "check", "preview", "run", "export", "letters", "sql"}
    assert contract <= set(COMMANDS)


# --- Every command and option of `--help` is in README -----------------------------------------------------


def documented_in() -> list[tuple[str | None, str]]:
    """README's paragraphs, list items and table rows (the unit in which a command and its option are named),
    each with the command its section is about: the one its first paragraph introduces (`crmlist load ...`)."""
    units = []
    for section in re.split(r"\n(?=#{2,3} )", README):
        parts = [p for p in re.split(r"\n\s*\n|\n(?=\s*[-|] )", section) if p.strip()]
        lead = re.match(r"`crmlist ([\w-]+)", parts[1].strip()) if len(parts) > 1 else None
        units += [(lead[1] if lead else None, part) for part in parts]
    return units


def names_command(text: str, name: str) -> bool:
    return re.search(rf"(crmlist |`){re.escape(name)}(?![\w-])", text) is not None


def option_named(text: str, option: str) -> bool:
    return re.search(rf"{re.escape(option)}(?![\w-])", text) is not None


def command_options() -> list[Any]:
    """(command, option) for every option of every command's --help but the shared ones."""
    return [
        pytest.param(name, option)
        for name in COMMANDS
        for option in sorted(
            p.opts[0] for p in GROUP.commands[name].params if p.param_type_name == "option" and p.opts[0] not in SHARED
        )
    ]


@pytest.mark.parametrize(("name", "option"), command_options())
def test_every_option_of_a_commands_help_is_in_the_readme_where_it_speaks_of_the_command(
    name: str, option: str
) -> None:
    (param,) = [p for p in GROUP.commands[name].params if p.opts[:1] == [option]]
    spellings = [*param.opts, *param.secondary_opts]
    assert any(
        any(option_named(text, o) for o in spellings) and (lead == name or names_command(text, name))
        for lead, text in documented_in()
    ), f"README.md mentions none of {spellings} where it speaks of `crmlist {name}`"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_and_a_readme_entry(name: str) -> None:
    command = GROUP.commands[name]
    assert f"`crmlist {name}" in README, name  # the Commands table, or the command's own section
    assert command.help and command.help.strip(), name


def test_the_shared_options_are_the_ones_readme_lists_and_the_commands_have() -> None:
    head = README[README.index("## Commands") : README.index("| command | does | example |")]
    assert sorted(o for o in SHARED - {"--help"} if not option_named(head, o)) == []
    used = set().union(*(long_options(GROUP.commands[name]) for name in COMMANDS)) | long_options(GROUP)
    assert used >= SHARED  # none of them is a leftover of an option that no longer exists


# --- Every example parses ------------------------------------------------------------------------------------


def parse(argv: list[str]) -> str | None:
    """Why `crmlist argv...` would be refused while its options are read (None: it parses), as the CLI reads it."""
    args = list(argv)
    while args and args[0] in GLOBAL:  # --workspace DIR, --db PATH, --log-file FILE before the command
        args = args[2:]
    if args[:1] in (["--version"], ["--help"], ["-h"]):
        return None
    if not args or args[0] not in GROUP.commands:
        return f"no command {args[:1]}"
    try:
        GROUP.commands[args[0]].make_context(args[0], args[1:])
    except Exception as exc:  # Typer's usage errors: an unknown option, a missing argument, a bad value
        return f"{type(exc).__name__}: {exc}"
    return None


def crmlist_commands(line: str) -> Iterator[list[str]]:
    """The argument lists of the crmlist commands in a shell line (pipes, &&, ; and redirections split it)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words: list[str] = []
    redirected = False
    for token in [*lexer, ";"]:
        if set(token) <= set("|&;<>()"):
            if words and (words[0] == "crmlist" or words[0].endswith("/crmlist")):
                yield words[1:]
            words, redirected = [], token in (">", ">>", "<")
        elif redirected:  # the file a redirection names
            redirected = False
        else:
            words.append(token)


def shell_lines() -> Iterator[str]:
    """The command lines of README's shell blocks (`$ ` lines of plain blocks, commands of crontab lines)."""
    language: str | None = None
    body: list[str] = []
    for line in README.splitlines():
        if not line.lstrip().startswith("```"):
            body.append(line)
        elif language is None:
            language, body = line.strip()[3:], []
        else:
            text = re.sub(r"\\\n\s*", " ", "\n".join(body))  # continued lines
            for row in text.splitlines():
                if language in ("sh", "bash"):
                    yield row
                elif language == "" and row.strip().startswith("$ "):
                    yield row.strip()[2:]
                elif language == "crontab" and not row.startswith("#"):
                    yield row.split(maxsplit=5)[5]
            language = None


def test_every_crmlist_line_of_readmes_shell_blocks_parses() -> None:
    found = [(line, args) for line in shell_lines() for args in crmlist_commands(line)]
    assert len(found) > 35  # the tour, the error examples, measuring, cron, pipelines, Spark
    assert {args[0] for _, args in found if args[0] in COMMANDS} >= {"init", "load", "run", "report", "export"}
    assert [(line, parse(args)) for line, args in found if parse(args)] == []


def test_every_crmlist_code_span_names_a_command_and_its_options() -> None:
    """Inline `crmlist CMD ...` spans are templates (`crmlist load ... --replace`, `[--from DATE]`): each names
    a command, and every option it names is one of that command's or a global one."""
    spans = [span.replace(r"\|", "|") for span in re.findall(r"`(crmlist [^`\n]+)`", README)]
    assert len(spans) > 30
    wrong = []
    for span in spans:
        words = [w for w in re.split(r"[\s\[\]]+", span.split("|")[0]) if w][1:]
        while words and words[0] in GLOBAL:
            words = words[2:]
        if not words or words[0] in ("--version", "--help"):
            continue
        command = GROUP.commands.get(words[0])
        options = {w.split("=")[0] for w in words[1:] if w.startswith("-") and w != "-"}
        if command is None or options - long_options(command) - {"-o", "-q", "-w", "-h"}:
            wrong.append(span)
    assert wrong == []


@pytest.mark.parametrize("name", COMMANDS)
def test_every_commands_help_has_an_example_that_parses(name: str) -> None:
    command = GROUP.commands[name]
    examples = re.findall(r"Example: (crmlist .+)", command.help or "")
    assert examples, f"crmlist {name} --help has no 'Example: crmlist {name} ...' line"
    assert all(re.match(rf"crmlist {re.escape(name)}\b", e) for e in examples), examples
    for example in examples:
        for args in crmlist_commands(example):
            assert parse(args) is None, (example, parse(args))


def test_readme_opens_with_the_two_commands() -> None:
    head = README.splitlines()[:12]
    assert "make demo" in "\n".join(head) and "make test" in "\n".join(head)


# --- Exit codes ----------------------------------------------------------------------------------------------


def readme_exit_table() -> dict[int, str]:
    """README's table of exit codes (the "Using crmlist in pipelines" section): code -> meaning."""
    table = README[README.index("| code | meaning | what a script does |") :].split("\n\n")[0]
    rows: dict[int, str] = {}
    for line in table.splitlines()[2:]:
        codes, meaning = line.split("|")[1:3]
        rows |= {int(code): meaning.strip() for code in codes.split("/")}
    return rows


def test_readmes_exit_codes_are_those_of_errors_py() -> None:
    table = readme_exit_table()
    constants = {v: k for k, v in vars(errors).items() if k.startswith("EXIT_")}
    assert sorted(table) == sorted(constants) == [0, 1, 2, 3, 65, 66, 73, 75, 130, 143]
    # each error class's code is the row that names what the class is for
    meaning_of = {
        errors.UsageError: "usage",
        errors.BadInputError: "bad input",
        errors.MultipleErrors: "bad input",
        errors.MissingInputError: "missing or empty input",
        errors.OutputError: "cannot write output",
        errors.BusyError: "database busy",
        errors.NotFoundError: "error (unknown campaign",
        errors.WaveRecordedError: "error",
        errors.CrmlistError: "error",
    }
    classes = {c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.CrmlistError)}
    assert classes == set(meaning_of)
    assert {c.__name__: table[c.exit_code] for c in classes if not table[c.exit_code].startswith(meaning_of[c])} == {}
    stopped = "stopped by SIGINT / SIGTERM; nothing half done is left"
    assert table[errors.EXIT_SIGINT] == table[errors.EXIT_SIGTERM] == stopped
    assert table[errors.EXIT_PARTIAL].startswith("partial: some letters failed")
    # and a class's docstring that gives its exit code gives that one
    said = {c.__name__: re.findall(r"\(exit (\d+)\)", c.__doc__ or "") for c in classes}
    assert {name: codes for name, codes in said.items() if codes} == {
        c.__name__: [str(c.exit_code)] for c in classes if said[c.__name__]
    }
    # the summary under "Errors and exit codes" lists the same codes
    summary = README[README.index("## Errors and exit codes") :].split("\n## ")[0]
    listed = re.search(r"above: (.+?)\.", summary.replace("\n", " "))
    assert listed
    assert sorted(int(c) for c in re.findall(r"\b(\d+)\b", listed[1])) == sorted(table)


def test_every_exit_code_readme_mentions_is_in_the_table() -> None:
    table = readme_exit_table()
    mentioned = {int(c) for c in re.findall(r"\bexit(?:s| code| with)? (\d+)", README)}
    mentioned |= {int(c) for c in re.findall(r"^\s+(\d+)\) ", README, re.M)}  # the cron script's `case` labels
    assert mentioned - set(table) == set()
    assert {1, 2, 3, 65, 66, 73, 75} <= mentioned
