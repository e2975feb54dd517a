"""The one error hierarchy: every failure a user can cause, with its location, fix and exit code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_DATAERR = 65
EXIT_NOINPUT = 66
EXIT_CANTCREAT = 73
EXIT_TEMPFAIL = 75
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class CrmlistError(Exception):
    """Base of every error crmlist reports: where it happened, what went wrong, how to fix it."""

    exit_code = EXIT_ERROR

    def __init__(self, where: str, what: str, hint: str | None = None) -> None:
        super().__init__(f"{where}: {what}" if where else what)
        self.where = where
        self.what = what
        self.hint = hint

    @property
    def message(self) -> str:
        return f"{self.where}: {self.what}" if self.where else self.what


class UsageError(CrmlistError):
    """A command was called with options that do not fit together."""

    exit_code = EXIT_USAGE


class BadInputError(CrmlistError):
    """Data rows, rule files or templates that are wrong (exit 65)."""

    exit_code = EXIT_DATAERR


class MultipleErrors(BadInputError):
    """Several bad-input problems found at once, as `check` reports them."""

    def __init__(self, errors: list[CrmlistError]) -> None:
        first = errors[0]
        super().__init__(first.where, first.what, first.hint)
        self.errors = errors

    @property
    def message(self) -> str:
        return "\n".join(e.message for e in self.errors)


class MissingInputError(CrmlistError):
    """A file, stdin or database that should hold data is missing or empty (exit 66)."""

    exit_code = EXIT_NOINPUT


class OutputError(CrmlistError):
    """An output folder or file cannot be created or written (exit 73)."""

    exit_code = EXIT_CANTCREAT


class BusyError(CrmlistError):
    """Another crmlist process holds the database for writing (exit 75)."""

    exit_code = EXIT_TEMPFAIL


class NotFoundError(CrmlistError):
    """A named campaign, run, table or template does not exist (exit 1)."""

    exit_code = EXIT_ERROR


class WaveRecordedError(CrmlistError):
    """A campaign wave already ran on other inputs: running it again would contact people twice (exit 1)."""

    exit_code = EXIT_ERROR
