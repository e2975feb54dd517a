"""Outputs: list files in every format, written atomically (hidden temp file, fsync, rename)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from crmlist.errors import OutputError, UsageError
from crmlist.newfiles import create_new
from crmlist.testing_hooks import pause_point

FORMATS = ("csv", "tsv", "jsonl", "parquet", "xlsx")
# A text cell that a spreadsheet would run as a formula (OWASP CSV injection) gets a leading quote;
# plain numbers and phone numbers such as "+48 600 123 456" or "-12.50" cannot be formulas and stay as they are.
_FORMULA = r"^[=+\-@\t\r]"
_HARMLESS = r"^[+-]?[0-9][0-9 ()./-]*$"
_BATCH_ROWS = 100_000  # rows per Arrow batch from the evaluating session to the file writer


def format_from_path(path: str, given: str | None) -> str:
    """The output format: --format, else the file extension, else csv."""
    if given:
        fmt = given.lower()
    else:
        suffix = Path(path).suffix.lower().lstrip(".")
        fmt = {"ndjson": "jsonl", "txt": "csv", "": "csv"}.get(suffix, suffix)
    if fmt not in FORMATS:
        raise UsageError("--format", f"unknown format {fmt!r}", f"use one of: {', '.join(FORMATS)}")
    return fmt


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a hidden temp file made anew beside target (create_new); on success fsync and rename it
    over target. A link at target is replaced, never followed."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(str(target.parent), f"cannot create folder: {exc.strerror}", "check the path") from None
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        os.close(create_new(tmp))
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        pause_point("output:before-rename")
        os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(str(target), f"cannot write: {exc.strerror}", "check the path and free space") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_query(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any], target: Path, fmt: str) -> int:
    """Write a query's rows to target in fmt, atomically; returns the row count.

    The rows stream straight from the query into the file; COPY reports how many it wrote.
    """
    query = _select_safe(con, sql, params, neutralise=fmt in {"csv", "tsv", "xlsx"})
    with atomic_file(target) as tmp:
        try:
            if fmt == "xlsx":
                return _write_xlsx(con, query, params, tmp)
            return _copy(con, query, params, tmp, fmt)
        except duckdb.IOException:
            # DuckDB's message names only the file; it is rephrased rather than passed through.
            raise OutputError(str(target), "cannot write the file", "check the folder is writable") from None


def _select_safe(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any], neutralise: bool) -> str:
    """The query with every text column neutralised against formula injection, when asked."""
    if not neutralise:
        return sql
    description = con.execute(f"SELECT * FROM ({sql}) LIMIT 0", params).description or []
    parts = []
    for name, ctype, *_ in description:
        ident = '"' + name.replace('"', '""') + '"'
        if str(ctype) == "VARCHAR":
            parts.append(
                f"CASE WHEN regexp_matches({ident}, '{_FORMULA}') AND NOT regexp_matches({ident}, '{_HARMLESS}') "
                f"THEN '''' || {ident} ELSE {ident} END AS {ident}"
            )
        else:
            parts.append(ident)
    return f"SELECT {', '.join(parts)} FROM ({sql})"


def _copy(con: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any], tmp: Path, fmt: str) -> int:
    options = {
        "csv": "FORMAT csv, HEADER true",
        "tsv": "FORMAT csv, HEADER true, DELIMITER '\t'",
        "jsonl": "FORMAT json",
        "parquet": "FORMAT parquet",
    }[fmt]
    # The session that evaluated the campaign is sandboxed (store.sandbox: no file access), so its rows
    # stream as Arrow batches into a private in-memory database, whose COPY alone touches the file.
    rows = con.sql(query, params=params).to_arrow_reader(_BATCH_ROWS)
    with duckdb.connect() as writer:
        writer.execute("SET enable_progress_bar_print = false")
        writer.register("crm_output_rows", rows)
        row = writer.execute(f"COPY crm_output_rows TO '{_sql_path(tmp)}' ({options})").fetchone()
    return int(row[0]) if row else 0


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _write_xlsx(con: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any], tmp: Path) -> int:
    import xlsxwriter  # only exports to Excel pay for this import
    from xlsxwriter.exceptions import FileCreateError

    result = con.execute(query, params)
    names = [d[0] for d in result.description]
    workbook = xlsxwriter.Workbook(str(tmp), {"constant_memory": True, "strings_to_formulas": False})
    sheet = workbook.add_worksheet("list")
    sheet.write_row(0, 0, names)
    row_index = 1
    while batch := result.fetchmany(10_000):
        for row in batch:
            sheet.write_row(row_index, 0, [_cell(v) for v in row])
            row_index += 1
    try:
        workbook.close()
    except FileCreateError as exc:  # wraps the OSError, which atomic_file turns into exit 73
        cause = exc.args[0] if exc.args and isinstance(exc.args[0], OSError) else OSError("cannot create the file")
        raise cause from None
    return row_index - 1


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def write_output(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any], output: str, fmt: str) -> int:
    """write_query to a file, or with output "-" through a private temp file to stdout."""
    if output != "-":
        return write_query(con, sql, params, Path(output), fmt)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="crmlist-") as tmp:
        target = Path(tmp) / f"list.{fmt}"
        rows = write_query(con, sql, params, target, fmt)
        copy_to_stdout(target)
    return rows


def copy_to_stdout(path: Path) -> None:
    """Stream a finished file to stdout (for `-o -`)."""
    with open(path, "rb") as fh:
        shutil.copyfileobj(fh, sys.stdout.buffer)
    sys.stdout.buffer.flush()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_json(path: Path, data: Any) -> None:
    """Write a JSON document (sorted keys, stable bytes) atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def write_rows_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    """A small CSV (waterfall, failures) written atomically with the csv module."""
    import csv

    with atomic_file(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
