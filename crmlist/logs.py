"""The command log: one JSON line per command (`--log-file FILE` or $CRMLIST_LOG_FILE), never personal data.

A line holds when, which command, its arguments (file and campaign names, options and their values; the
text of a `crmlist sql` query is left out, since it may quote a customer's email or name), the exit code,
the duration, the counts of the command's summary, its run id and the sha256 of the rule files it ran.
A rule's text never goes in (`email <> 'jan@firma.pl'` is personal data): a waterfall step of an
audience `where` or `exclude` is named by its key (`audience.where[1]`); the run folder keeps the text.
Lines are appended with one write to a file opened in append mode, so several crmlist processes (cron
jobs) can share one log.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LOG_ENV = "CRMLIST_LOG_FILE"
# Options that take a value, wherever they stand; the value is kept, but never read as the command's name.
_VALUED = {
    "-w",
    "--workspace",
    "--db",
    "--log-file",
    "--as-of",
    "--wait",
    "--format",
    "--out",
    "-o",
    "--output",
    "--map",
    "--on-error",
    "--max-rejects",
    "--encoding",
    "--delimiter",
    "--date-format",
    "--columns",
    "--letters-format",
    "--sample",
    "--resume",
    "--run",
    "--window-days",
    "--chart",
    "--jobs",
}
# Positional arguments that may carry personal data, by command: they are replaced by a placeholder.
_REDACTED = {"sql": "<query>"}


def log_path(args: list[str], environ: Mapping[str, str] = os.environ) -> Path | None:
    """The log file named by the last --log-file in args, else by $CRMLIST_LOG_FILE; None for no log."""
    path = None
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--log-file" and index + 1 < len(args):
            path = args[index + 1]
        elif arg.startswith("--log-file="):
            path = arg.split("=", 1)[1]
    path = path or environ.get(LOG_ENV)
    return Path(path).expanduser() if path else None


def command_name(args: list[str]) -> str:
    """The command's name: the first argument that is neither an option nor an option's value."""
    positional = _positional(args)
    return args[positional[0]] if positional else ""


def safe_argv(args: list[str]) -> list[str]:
    """The arguments with the ones that may hold personal data (a sql query) replaced."""
    positional = _positional(args)
    if not positional or args[positional[0]] not in _REDACTED:
        return list(args)
    placeholder = _REDACTED[args[positional[0]]]
    hidden = set(positional[1:])
    return [placeholder if i in hidden else arg for i, arg in enumerate(args)]


def _positional(args: list[str]) -> list[int]:
    indexes, skip, options_done = [], False, False
    for index, arg in enumerate(args):
        if skip:
            skip = False
        elif arg == "--" and not options_done:
            options_done = True
        elif arg.startswith("-") and arg != "-" and not options_done:
            skip = arg in _VALUED
        else:
            indexes.append(index)
    return indexes


_RULE_STEP = re.compile(r"^(where|exclude): ")


def rule_free_counts(counts: Any) -> Any:
    """Counts with every waterfall step that quotes a rule's text named by its key instead: the step
    "where: email <> 'jan@firma.pl'" becomes "audience.where[0]" (the index in the rule file)."""
    if isinstance(counts, dict):
        return {k: _rule_free_steps(v) if k == "waterfall" else rule_free_counts(v) for k, v in counts.items()}
    return counts


def _rule_free_steps(steps: Any) -> Any:
    if not isinstance(steps, list):
        return steps
    seen = {"where": 0, "exclude": 0}
    out = []
    for step in steps:
        name = step[0] if isinstance(step, list | tuple) and step else None
        found = _RULE_STEP.match(name) if isinstance(name, str) else None
        if found:
            kind = found.group(1)
            step = [f"audience.{kind}[{seen[kind]}]", *step[1:]]
            seen[kind] += 1
        out.append(step)
    return out


def command_record(
    args: list[str], exit_code: int, seconds: float, summary: dict[str, Any], error: str | None = None
) -> dict[str, Any]:
    """One log line: only names, options, counts, ids and the error (messages carry no personal data)."""
    record: dict[str, Any] = {
        "timestamp": dt.datetime.now(dt.UTC).astimezone().isoformat(timespec="seconds"),
        "command": command_name(args),
        "argv": safe_argv(args),
        "exit_code": exit_code,
        "duration_s": round(seconds, 3),
        "pid": os.getpid(),
    }
    if isinstance(summary.get("counts"), dict):
        record["counts"] = rule_free_counts(summary["counts"])
    if summary.get("run_id"):
        record["run_id"] = summary["run_id"]
    if summary.get("rules_sha256"):
        record["rules_sha256"] = summary["rules_sha256"]
    if error:
        record["error"] = error
    return record


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append the record as one line; raises OSError when the log cannot be written."""
    line = (json.dumps(record, ensure_ascii=False, default=str, sort_keys=False) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # a new log is 0640 whatever the umask (crmlist's is owner-only): it holds no personal data
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o640)
        os.fchmod(fd, 0o640)
    except FileExistsError:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
