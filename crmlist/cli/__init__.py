"""The command line: one boundary that turns errors into messages and exit codes."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

from crmlist.errors import EXIT_SIGINT, EXIT_SIGTERM, CrmlistError


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(EXIT_SIGTERM)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `crmlist` script."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args
    if args == ["--version"]:  # answer before importing DuckDB, sqlglot and the commands
        from crmlist import __version__

        sys.stdout.write(f"crmlist {__version__}\n")
        sys.exit(0)
    from typer import Abort
    from typer._click.exceptions import ClickException

    from crmlist.cli import admin, campaigns, data  # noqa: F401  (commands register on import)
    from crmlist.cli.app import app
    from crmlist.cli.output import report_error

    try:
        result = app(args=args, prog_name="crmlist", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except CrmlistError as exc:
        code = report_error(exc, as_json)
    except ClickException as exc:
        exc.show()
        code = exc.exit_code
    except (Abort, KeyboardInterrupt):
        code = EXIT_SIGINT
    except BrokenPipeError:
        # The reader closed the pipe (| head -1): stop quietly; point stdout at devnull so the
        # interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(code)
