"""Outputs: list files in every format, each put in place whole (newfiles.atomic_file)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from crmlist.errors import OutputError, UsageError
from crmlist.newfiles import atomic_file, write_file

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
    # tmp is already the temporary file: DuckDB's own (TMP.tmp, renamed over it) would be a second one,
    # named so that neither recovery nor doctor knows it, and its rename would leave tmp's inode unsynced.
    options += ", USE_TMP_FILE false"
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


# Excel's sheet holds 1,048,576 rows; the header takes one. xlsxwriter ignores rows past it without error.
XLSX_MAX_ROWS = 1_048_575
NUMBER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
NUMBER_TYPES |= {"FLOAT", "DOUBLE"}


def _write_xlsx(con: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any], tmp: Path) -> int:
    """Stream rows into a sheet in constant memory, dates as Excel dates and decimals as numbers."""
    import xlsxwriter  # only exports to Excel pay for this import
    from xlsxwriter.exceptions import FileCreateError

    count = con.execute(f"SELECT count(*) FROM ({query})", params).fetchone()
    if count and count[0] > XLSX_MAX_ROWS:
        raise UsageError(
            "--format xlsx", f"the list has {count[0]:,} rows; an Excel sheet holds {XLSX_MAX_ROWS:,}",
            "export to csv or parquet, or set a limit in the rule file",
        )  # fmt: skip
    result = con.execute(query, params)
    options = {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    workbook = xlsxwriter.Workbook(str(tmp), options | {"remove_timezone": True})
    sheet = workbook.add_worksheet("list")
    sheet.write_row(0, 0, [d[0] for d in result.description])
    writers = [_cell_writer(workbook, sheet, str(d[1])) for d in result.description]
    rows = 0
    while batch := result.fetchmany(10_000):
        for row in batch:
            rows += 1
            for col, value in enumerate(row):
                if value is not None:
                    writers[col](rows, col, value)
    try:
        workbook.close()
    except FileCreateError as exc:  # wraps the OSError, which atomic_file turns into exit 73
        cause = exc.args[0] if exc.args and isinstance(exc.args[0], OSError) else OSError("cannot create the file")
        raise cause from None
    return rows


def _cell_writer(workbook: Any, sheet: Any, column_type: str) -> Callable[[int, int, Any], Any]:
    """How one column's values become cells: typed, so Excel sorts and sums them as dates and numbers."""
    if column_type == "DATE":
        date = workbook.add_format({"num_format": "yyyy-mm-dd"})
        return lambda row, col, value: sheet.write_datetime(row, col, value, date)
    if column_type.startswith("TIMESTAMP"):
        stamp = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        return lambda row, col, value: sheet.write_datetime(row, col, value, stamp)
    if column_type.startswith("DECIMAL"):
        scale = int(column_type.rstrip(")").split(",")[-1]) if "," in column_type else 0
        number = workbook.add_format({"num_format": "0." + "0" * scale if scale else "0"})
        return lambda row, col, value: sheet.write_number(row, col, float(value), number)
    if column_type in NUMBER_TYPES:
        return lambda row, col, value: sheet.write_number(row, col, value)
    if column_type == "BOOLEAN":
        return lambda row, col, value: sheet.write_boolean(row, col, value)
    return lambda row, col, value: sheet.write_string(row, col, str(value))


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
    write_file(path, (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8"))


def write_rows_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    """A small CSV (waterfall, failures) written atomically with the csv module."""
    import csv

    with atomic_file(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
