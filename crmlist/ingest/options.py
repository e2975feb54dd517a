"""Options of `crmlist load` and what a load returns, with crmlist.toml `[load.TABLE]` defaults."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb

from crmlist import store
from crmlist.errors import BadInputError, UsageError
from crmlist.ingest.columns import check_mapping
from crmlist.ingest.source import ReadSettings
from crmlist.ingest.validate import EARLIEST_DATE, LATEST_DATE, TypeContext
from crmlist.workspace import Workspace


@dataclass
class LoadOptions:
    """Options of `crmlist load`; None and False fall back to crmlist.toml `[load.TABLE]`."""

    mapping: dict[str, str] = field(default_factory=dict)
    replace: bool = False
    force: bool = False
    on_error: str = "strict"
    max_rejects: int | None = None
    encoding: str | None = None
    delimiter: str | None = None
    decimal_comma: bool = False
    date_format: str | None = None
    file_format: str | None = None
    no_header: bool = False
    columns: list[str] | None = None


@dataclass
class FileLoad:
    """What happened to one file: rows loaded and rejected, or skipped as loaded before."""

    file: str
    sha256: str
    rows_loaded: int
    rows_rejected: int
    skipped: bool


@dataclass
class LoadResult:
    """A finished load: the table, each file's counts, and notices (sentences without personal data)."""

    table: str
    files: list[FileLoad]
    notices: list[str]


def check_options(table: str, files: list[str], options: LoadOptions) -> None:
    """UsageError for a call that cannot work, before any file is read."""
    if table not in store.LOADABLE:
        raise UsageError("load", f"unknown table {table!r}", f"load one of: {', '.join(store.LOADABLE)}")
    if not files:
        raise UsageError("load", "no files given", "name one or more files, or - for stdin")
    if files.count("-") > 1:
        raise UsageError("load", "stdin (-) given twice", "name - once")
    if options.on_error not in ("strict", "skip"):
        raise UsageError("--on-error", f"unknown mode {options.on_error!r}", "use strict or skip")
    if options.max_rejects is not None and (options.on_error != "skip" or options.max_rejects < 0):
        raise UsageError("--max-rejects", "needs --on-error skip and a count of 0 or more", "pass both")
    if options.columns and not options.no_header:
        raise UsageError("--columns", "names columns of a file without a header", "add --no-header")


def type_context(
    con: duckdb.DuckDBPyConnection, ws: Workspace, date_format: str | None, decimal_comma: bool
) -> TypeContext:
    """How this load types text: --date-format (checked), decimal comma, time zone, phone region."""
    formats: tuple[str, ...] = ()
    if date_format:
        formats = (date_format, f"{date_format} %H:%M:%S", f"{date_format} %H:%M")
        try:
            con.execute("SELECT try_strptime('2000-01-01', ?)", [list(formats)]).fetchall()
        except duckdb.Error:
            raise UsageError(
                "--date-format", f"{date_format!r} is not a date format", "use strftime codes, e.g. '%d.%m.%Y'"
            ) from None
    try:
        con.execute("SELECT timezone(?, TIMESTAMPTZ '2000-01-01 00:00:00+00')", [ws.timezone]).fetchall()
    except duckdb.Error:
        raise BadInputError(
            "crmlist.toml", f"timezone {ws.timezone!r} is not a time zone", "use a name such as Europe/Warsaw"
        ) from None
    return TypeContext(decimal_comma, formats, ws.timezone, ws.phone_region, *_plausible_dates(ws))


def _plausible_dates(ws: Workspace) -> tuple[str, str]:
    """crmlist.toml [dates] earliest and latest (YYYY-MM-DD): dates outside them are rejects."""
    section = ws.section("dates")
    bounds = []
    for key, default in (("earliest", EARLIEST_DATE), ("latest", LATEST_DATE)):
        value = str(section.get(key, default))
        try:
            bounds.append(dt.date.fromisoformat(value).isoformat())
        except ValueError:
            raise BadInputError("crmlist.toml", f"dates.{key}: {value!r} is not a date", "write YYYY-MM-DD") from None
    if bounds[0] > bounds[1]:
        raise BadInputError("crmlist.toml", "dates.earliest is after dates.latest", "swap them")
    return bounds[0], bounds[1]


def read_settings(ws: Workspace, table: str, options: LoadOptions) -> tuple[ReadSettings, dict[str, str]]:
    """How to read the files and the column map: explicit options over crmlist.toml `[load.TABLE]`."""
    section = ws.section("load", table)
    mapping = check_mapping(table, {**section.get("map", {}), **options.mapping})
    settings = ReadSettings(
        file_format=options.file_format or section.get("format"),
        delimiter=options.delimiter or section.get("delimiter"),
        encoding=options.encoding or section.get("encoding"),
        no_header=options.no_header,
        columns=tuple(options.columns) if options.columns else None,
    )
    return settings, mapping
