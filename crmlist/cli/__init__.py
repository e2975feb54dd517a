"""The command line: one boundary that turns errors into messages and exit codes."""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
import time
from types import FrameType

from crmlist.errors import EXIT_ERROR, EXIT_SIGINT, EXIT_SIGTERM, CrmlistError

_stopped_by: list[int] = []  # the signal that stopped the command, if one did
Outcome = tuple[int, str | None]  # exit code, and the error message for the log


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _stopped_by:  # already stopping: let the clean-up finish (SIGKILL still ends it)
        return
    _stopped_by.append(signum)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(EXIT_SIGTERM)


def _install_signal_handlers() -> None:
    """SIGTERM and SIGINT unwind the command like an error: transactions roll back, temp files go.

    DuckDB runs a query without returning to Python, which would hold the handler back until the query
    ends; so the signal also wakes a thread that interrupts the queries running on crmlist's connections.
    """
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    threading.Thread(target=_interrupt_queries, args=(read_fd,), name="crmlist-signals", daemon=True).start()


def _interrupt_queries(read_fd: int) -> None:
    while os.read(read_fd, 1):
        store = sys.modules.get("crmlist.store")
        if store is not None:
            store.interrupt_queries()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `crmlist` script."""
    _install_signal_handlers()
    sys.exit(run(sys.argv[1:] if argv is None else argv))


def run(args: list[str]) -> int:
    """One crmlist command, as the script runs it but for the signal handlers: its exit code. Everything it
    says goes to sys.stdout and sys.stderr; it reads sys.stdin, os.environ and the current folder."""
    os.umask(0o077)  # owner-only until the workspace's file_mode says otherwise (workspace_from)
    if args == ["--version"]:  # answer before importing DuckDB, sqlglot and the commands
        from crmlist import __version__

        sys.stdout.write(f"crmlist {__version__}\n")
        return 0
    started = time.monotonic()
    code, error = _run(args)
    _log(args, code, time.monotonic() - started, error)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return code


def _run(args: list[str]) -> Outcome:
    import typer

    from crmlist.cli import admin, campaigns, data, report  # noqa: F401  (commands register on import)
    from crmlist.cli.app import app
    from crmlist.cli.options import add_log_file_option
    from crmlist.cli.output import forget_summary

    as_json = "--json" in args
    forget_summary()  # the summary is this command's, not an earlier one's in the same process
    command = typer.main.get_command(app)
    add_log_file_option(command)
    outcome: Outcome = (EXIT_ERROR, None)
    try:
        result = command.main(args=args, prog_name="crmlist", standalone_mode=False)
        outcome = (result if isinstance(result, int) else 0), None
    except BaseException as exc:  # the boundary: every way a command can end becomes an exit code
        if not _stopped_by:
            outcome = _failure(exc, as_json)
    if _stopped_by:  # whatever the signal surfaced as (DuckDB reports an interrupted query as its own error)
        outcome = _report_stop(as_json)
    return outcome


def _failure(exc: BaseException, as_json: bool) -> Outcome:
    from typer import Abort, TyperException

    from crmlist.cli.output import json_failure, report_error

    if isinstance(exc, CrmlistError):
        return report_error(exc, as_json), exc.message
    if isinstance(exc, TyperException):  # a usage error found while reading the arguments
        _show_usage_error(exc)
        if as_json:
            json_failure(exc.exit_code, exc.format_message())
        return exc.exit_code, exc.format_message()
    if isinstance(exc, BrokenPipeError) or (isinstance(exc, SystemExit) and _after_broken_pipe(exc)):
        _silence_stdout()  # the reader closed the pipe (| head -1); Typer turns that into exit 1
        return 0, None
    if isinstance(exc, (Abort, KeyboardInterrupt)):
        return EXIT_SIGINT, "interrupted"
    if isinstance(exc, SystemExit):
        return (exc.code if isinstance(exc.code, int) else EXIT_ERROR), None
    if os.environ.get("CRMLIST_DEBUG"):
        raise exc
    what = f"internal error: {type(exc).__name__}" + (f": {exc.strerror}" if isinstance(exc, OSError) else "")
    report_error(CrmlistError("", what, "a bug in crmlist: CRMLIST_DEBUG=1 shows the traceback (with data)"), as_json)
    return EXIT_ERROR, what


def _show_usage_error(exc: BaseException) -> None:
    """Typer's own words for it: usage, the help hint and `Error: ...` on stderr (its exceptions carry show())."""
    show = getattr(exc, "show", None)
    if callable(show):
        show()
    else:
        sys.stderr.write(f"Error: {exc}\n")


def _after_broken_pipe(exc: SystemExit) -> bool:
    """Typer ends a command whose output hit a closed pipe with sys.exit(1) while it handles the OSError."""
    cause = exc.__context__
    return isinstance(cause, OSError) and cause.errno == errno.EPIPE


def _report_stop(as_json: bool) -> Outcome:
    from crmlist.cli.output import json_failure

    code = EXIT_SIGINT if _stopped_by[0] == signal.SIGINT else EXIT_SIGTERM
    message = f"stopped by {signal.Signals(_stopped_by[0]).name}"
    sys.stderr.write(f"crmlist: {message}\n")
    if as_json:
        json_failure(code, message)
    return code, message


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush into a closed pipe stays quiet."""
    if sys.__stdout__ is not None:
        sys.stdout = sys.__stdout__
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _log(args: list[str], code: int, seconds: float, error: str | None) -> None:
    from crmlist import logs

    path = logs.log_path(args)
    if path is None:
        return
    from crmlist.cli.output import last_summary

    try:
        logs.append_record(path, logs.command_record(args, code, seconds, last_summary(), error))
    except OSError as exc:
        sys.stderr.write(f"crmlist: warning: cannot write the log {path}: {exc.strerror}\n")
