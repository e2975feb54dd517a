"""Data commands: load, status, rejects, export-parquet, sql."""

from __future__ import annotations

import contextlib
import csv
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from crmlist import store
from crmlist.cli.app import app, workspace_from
from crmlist.cli.options import (
    AsOfOpt,
    DbOpt,
    FormatOpt,
    JsonOpt,
    OptionalOutputFileOpt,
    QuietOpt,
    TablesOpt,
    WaitOpt,
    WorkspaceOpt,
)
from crmlist.cli.output import Printer, Stopwatch, stdout_console
from crmlist.errors import UsageError
from crmlist.newfiles import leftovers_below

if TYPE_CHECKING:
    import duckdb

    from crmlist.ingest import LoadOptions, LoadResult
    from crmlist.workspace import Workspace


PROGRESS_DELAY = 1.0  # seconds a load runs before its bar appears: quicker loads stay silent
# DuckDB's memory for a load; beyond it, it evicts the pages it has written and spills to <db>.tmp. Without
# a limit it would keep every page written (80% of RAM), and a 100 M row load would hold gigabytes.
LOAD_MEMORY_LIMIT = "1536MiB"

# The arguments and options of one command each; those of several are in crmlist/cli/options.py.
TableArg = Annotated[str, typer.Argument(help=f"One of: {', '.join(store.LOADABLE)}.")]
FilesArg = Annotated[list[str], typer.Argument(help="Files to load in one transaction; - reads stdin.")]
MapOpt = Annotated[list[str], typer.Option("--map", help="canonical=source column (repeatable).")]
ReplaceOpt = Annotated[bool, typer.Option("--replace", help="Swap the whole table for these files.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Load files already loaded (same sha256).")]
OnErrorOpt = Annotated[str, typer.Option("--on-error", help="strict (default) or skip bad rows.")]
MaxRejectsOpt = Annotated[int | None, typer.Option("--max-rejects", help="With skip: fail past N.")]
EncodingOpt = Annotated[str | None, typer.Option("--encoding", help="cp1250, cp1251, latin-1, ...")]
DelimiterOpt = Annotated[str | None, typer.Option("--delimiter", help="Field separator, e.g. ';'.")]
DecimalCommaOpt = Annotated[bool, typer.Option("--decimal-comma", help="Numbers like 1 234,50.")]
DateFormatOpt = Annotated[str | None, typer.Option("--date-format", help="e.g. %d.%m.%Y")]
NoHeaderOpt = Annotated[bool, typer.Option("--no-header", help="The files have no header row.")]
ColumnsOpt = Annotated[str | None, typer.Option("--columns", help="Column names, comma-separated.")]
LakeArg = Annotated[Path, typer.Argument(help="Lake folder: one Parquet folder per table is written under it.")]
QueryArg = Annotated[str, typer.Argument(help="One read-only query (SELECT, WITH, VALUES, FROM, DESCRIBE, SHOW).")]


def wants_progress(quiet: bool, as_json: bool, stream: TextIO) -> bool:
    """A progress bar is for a person watching a terminal: never with --quiet or --json, or into a file."""
    return not (quiet or as_json) and stream.isatty()


@contextlib.contextmanager
def load_progress(con: duckdb.DuckDBPyConnection, label: str, show: bool) -> Iterator[None]:
    """While the block runs, a bar on stderr with the progress DuckDB reports for the statement running on
    `con`, drawn from a thread once PROGRESS_DELAY seconds have passed; nothing when `show` is false."""
    if not show:
        yield
        return
    stop = threading.Event()
    args = (con, label, stop, PROGRESS_DELAY, sys.stderr)
    thread = threading.Thread(target=draw_progress, args=args, name="crmlist-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def draw_progress(
    con: duckdb.DuckDBPyConnection, label: str, stop: threading.Event, delay: float, stream: TextIO
) -> None:
    """Draw until `stop` is set, after waiting `delay` seconds (none: at least one frame). Between
    statements, and while Python reads a file, DuckDB reports no progress and the bar pulses."""
    import duckdb
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    if delay and stop.wait(delay):
        return
    console = Console(file=stream, highlight=False)
    columns = (TextColumn(label), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)
        while True:
            with contextlib.suppress(duckdb.Error):  # the connection may be between statements or closing
                done = con.query_progress()
                bar.update(task, total=100 if done >= 0 else None, completed=max(done, 0.0))
            if stop.wait(0.1):
                return


def _mapping(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        canonical, sep, source = pair.partition("=")
        if not sep or not canonical.strip() or not source.strip():
            raise UsageError("--map", f"{pair!r} is not canonical=source", "write e.g. --map customer_id=KlientID")
        mapping[canonical.strip()] = source.strip()
    return mapping


@app.command()
def load(
    ctx: typer.Context,
    table: TableArg,
    files: FilesArg,
    map_: MapOpt = [],  # noqa: B006
    replace: ReplaceOpt = False,
    force: ForceOpt = False,
    on_error: OnErrorOpt = "strict",
    max_rejects: MaxRejectsOpt = None,
    encoding: EncodingOpt = None,
    delimiter: DelimiterOpt = None,
    decimal_comma: DecimalCommaOpt = False,
    date_format: DateFormatOpt = None,
    file_format: FormatOpt = None,
    no_header: NoHeaderOpt = False,
    columns: ColumnsOpt = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    wait: WaitOpt = 0.0,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Load files into a table, all or nothing.

    Formats: csv, tsv, parquet, jsonl, json, xlsx (default: each file's extension).

    Example: crmlist load customers sample_data/customers.csv
    """
    options = _load_options(ctx.params)  # --map ... --columns, read by name
    ws = workspace_from(ctx, workspace, db)
    watch = Stopwatch()
    with store.writer(ws.db_path, f"load {table}", wait=wait) as con:
        watch.lap("open")
        notices, result = _load_in(con, ws, table, files, options, wants_progress(quiet, json_, sys.stderr))
        watch.lap("load")
    _show_load(Printer(quiet, json_), ws, table, notices, result, watch)


def _load_options(given: dict[str, Any]) -> LoadOptions:
    """The load options as the library takes them; an unknown table or --on-error is a usage error."""
    from crmlist.ingest import LoadOptions

    table, on_error, columns = given["table"], given["on_error"], given["columns"]
    if table not in store.LOADABLE:
        raise UsageError("load", f"unknown table {table!r}", f"use one of: {', '.join(store.LOADABLE)}")
    if on_error not in {"strict", "skip"}:
        raise UsageError("--on-error", f"unknown mode {on_error!r}", "use strict or skip")
    return LoadOptions(
        mapping=_mapping(given["map_"]),
        replace=given["replace"],
        force=given["force"],
        on_error=on_error,
        max_rejects=given["max_rejects"],
        encoding=given["encoding"],
        delimiter=given["delimiter"],
        decimal_comma=given["decimal_comma"],
        date_format=given["date_format"],
        file_format=given["file_format"],
        no_header=given["no_header"],
        columns=[c.strip() for c in columns.split(",")] if columns else None,
    )


def _load_in(
    con: duckdb.DuckDBPyConnection, ws: Workspace, table: str, files: list[str], options: LoadOptions, progress: bool
) -> tuple[list[str], LoadResult]:
    """Inside the writer: DuckDB's memory capped, a killed run's folders recovered, then the files loaded
    (with a bar when `progress`); the notices to print and the result."""
    from crmlist.ingest import load_files

    con.execute(f"SET memory_limit = '{LOAD_MEMORY_LIMIT}'")
    recovered = _recover_runs(con, ws)
    with load_progress(con, f"loading {table}", progress):
        result = load_files(con, ws, table, files, options)
    return [*recovered, *result.notices], result


def _show_load(
    out: Printer, ws: Workspace, table: str, notices: list[str], result: LoadResult, watch: Stopwatch
) -> None:
    for notice in notices:
        out.notice(notice)
    loaded = sum(f.rows_loaded for f in result.files)
    rejected = sum(f.rows_rejected for f in result.files)
    out.notice(f"{table}: {loaded} rows loaded, {rejected} rejected, from {len(result.files)} file(s)")
    out.result(
        "load",
        counts={"loaded": loaded, "rejected": rejected},
        files=[vars(f) for f in result.files],
        paths={"db": str(ws.db_path)},
        timings=watch.timings(),
    )


def _recover_runs(con: duckdb.DuckDBPyConnection, ws: Workspace) -> list[str]:
    """Every writer finishes or removes the run folders a killed run left in the out folder (DESIGN 7a)."""
    out = ws.out_dir
    if not leftovers_below(out):
        return []  # the usual case, without importing the campaign machinery
    from crmlist.campaign.runner import recover

    return [f"recovered a stopped run: {action}" for action in recover(con, out)]


@app.command()
def status(
    ctx: typer.Context,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    wait: WaitOpt = 0.0,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Tables, row counts, the last loads and rejects.

    Example: crmlist status
    """
    from rich.table import Table

    from crmlist.status import database_status

    ws = workspace_from(ctx, workspace, db)
    out = Printer(quiet, json_)
    if not ws.db_path.exists():
        out.notice(f"no database yet at {ws.db_path}; load data with: crmlist load customers FILE")
        out.result("status", counts={}, paths={"db": str(ws.db_path)}, database=False)
        return
    with store.reader(ws.db_path, "status", wait=wait) as con:
        result = database_status(con)
    out.result("status", counts=result.tables, last_loads=result.last_loads, paths={"db": str(ws.db_path)})
    if quiet or json_:
        return
    tables = Table("table", "rows", title=str(ws.db_path))
    for name, n in result.tables.items():
        tables.add_row(name, f"{n:,}")
    loads = Table("table", "file", "loaded", "rejected", "at", title="last loads")
    for row in result.last_loads:
        loads.add_row(
            row["table"], row["file"], str(row["rows_loaded"]), str(row["rows_rejected"]), str(row["loaded_at"])[:19]
        )
    console = stdout_console()
    console.print(tables)
    console.print(loads)


@app.command()
def rejects(
    ctx: typer.Context,
    tables: TablesOpt = [],  # noqa: B006
    output: OptionalOutputFileOpt = None,
    fmt: FormatOpt = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    wait: WaitOpt = 0.0,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """List the rows loads rejected (file, line, column, reason), or export them with their raw lines.

    With -o FILE (- for stdout), every reject with its raw line; formats: csv, tsv, jsonl, parquet, xlsx.

    Example: crmlist rejects --table customers -o customers-to-fix.csv
    """
    from crmlist.ingest.reject_list import HEADER, export_rejects, list_rejects

    ws = workspace_from(ctx, workspace, db)
    with store.reader(ws.db_path, "rejects", wait=wait) as con:
        if output is None:
            rows = list_rejects(con, tables)
            Printer(quiet, json_).result("rejects", counts={"rejects": len(rows)}, rejects=[list(r) for r in rows])
            if not (quiet or json_):
                writer = csv.writer(sys.stdout, lineterminator="\n")
                writer.writerow(HEADER)
                writer.writerows(rows)
            return
        n = export_rejects(con, ws, tables, output, fmt)
    printer = Printer(quiet, json_ and output != "-")
    if output != "-":
        printer.notice(f"{n} rejects written to {output}")
    printer.result("rejects", counts={"rejects": n}, paths={"rejects": output})


@app.command("export-parquet")
def export_parquet(
    ctx: typer.Context,
    folder: LakeArg,
    tables: TablesOpt = [],  # noqa: B006
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    wait: WaitOpt = 0.0,
    quiet: QuietOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Write the canonical tables as Parquet for a lake, for `--engine spark`.

    Example: crmlist export-parquet lake
    """
    from crmlist.engines import SOURCE_TABLES
    from crmlist.engines.lake import export_parquet as write_lake
    from crmlist.workspace import guard_output

    unknown = [t for t in tables if t not in SOURCE_TABLES]
    if unknown:
        raise UsageError("--table", f"unknown table {unknown[0]!r}", f"use one of: {', '.join(SOURCE_TABLES)}")
    ws = workspace_from(ctx, workspace, db)
    guard_output(ws, folder, "the lake folder")
    with store.reader(ws.db_path, "export-parquet", wait=wait) as con:
        rows = write_lake(con, folder, tuple(tables) or SOURCE_TABLES)
    printer = Printer(quiet, json_)
    for table, n in rows.items():
        printer.notice(f"{table}: {n} rows -> {folder / table}")
    printer.notice(f'hint: set [engine] lake = "{folder}" in crmlist.toml to run campaigns there with --engine spark')
    printer.result("export-parquet", counts=rows, paths={"lake": str(folder)})


@app.command()
def sql(
    ctx: typer.Context,
    query: QueryArg,
    fmt: FormatOpt = None,
    as_of: AsOfOpt = None,
    workspace: WorkspaceOpt = None,
    db: DbOpt = None,
    wait: WaitOpt = 0.0,
) -> None:
    """Run one read-only query; customer_facts and the views of queries/ are available. The query sees
    the database only: no files, no settings, no statement that writes (exit 65).

    Formats: table, csv, tsv, jsonl (default: table on a terminal, else csv). The facts and views are as of
    --as-of (default: today).

    Example: crmlist sql "SELECT language, count(*) FROM customers GROUP BY 1"
    """
    from crmlist.status import read_only_query
    from crmlist.workspace import parse_as_of

    ws = workspace_from(ctx, workspace, db)
    fmt = fmt or ("table" if sys.stdout.isatty() else "csv")
    if fmt not in {"table", "csv", "tsv", "jsonl"}:
        raise UsageError("--format", f"unknown format {fmt!r}", "use table, csv, tsv or jsonl")
    with store.reader(ws.db_path, "sql", wait=wait) as con:
        result = read_only_query(con, ws, query, parse_as_of(as_of))
        names = [d[0] for d in result.description or []]
        _print_rows(result, names, fmt)


def _print_rows(result: object, names: list[str], fmt: str) -> None:
    import json

    fetch = result.fetchmany  # type: ignore[attr-defined]
    if fmt == "table":
        from rich.table import Table

        table = Table(*names)
        while batch := fetch(10_000):
            for row in batch:
                table.add_row(*["" if v is None else str(v) for v in row])
        stdout_console().print(table)
        return
    if fmt == "jsonl":
        while batch := fetch(10_000):
            for row in batch:
                sys.stdout.write(json.dumps(dict(zip(names, row, strict=True)), default=str, ensure_ascii=False) + "\n")
        return
    writer = csv.writer(sys.stdout, delimiter="\t" if fmt == "tsv" else ",", lineterminator="\n")
    writer.writerow(names)
    while batch := fetch(10_000):
        writer.writerows(["" if v is None else v for v in row] for row in batch)
