"""Input files as DuckDB relations: stdin, formats, compression, encodings and headers."""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path
from typing import BinaryIO

import duckdb

from crmlist.errors import BadInputError, MissingInputError, UsageError
from crmlist.ingest import encodings
from crmlist.ingest.records import json_problem
from crmlist.ingest.source import ReadSettings, Source, quote_ident

FORMATS = ("csv", "tsv", "parquet", "jsonl", "json", "xlsx")
TEXT_FORMATS = ("csv", "tsv", "jsonl", "json")
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".xls": "xlsx",
}
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}
CSV_READ = (
    "read_csv($src_path, header = $src_header, skip = $src_skip, delim = $src_delim, quote = '\"', escape = '\"', "
    "auto_detect = false, columns = $src_columns, strict_mode = true, null_padding = false)"
)


def open_source(
    con: duckdb.DuckDBPyConnection,
    given: str,
    index: int,
    settings: ReadSettings,
    tmp: Path,
    stdin: BinaryIO | None,
) -> Source:
    """Check, fingerprint and convert one input so DuckDB can read it; nothing is written to the database."""
    original, display = _original(given, index, tmp, stdin)
    fmt, compression = _format_of(given, original, settings)
    recode = fmt in TEXT_FORMATS and not encodings.is_utf8(settings.encoding)
    check_nul = fmt in TEXT_FORMATS and not compression and not recode
    fp = encodings.fingerprint(original, check_nul)
    path = original
    if compression:
        path = tmp / f"{index}.plain"
        encodings.decompress(original, path, compression, display)
        if path.stat().st_size == 0:
            raise MissingInputError(display, "the file is empty", "load a file with a header and data rows")
    if recode:
        assert settings.encoding is not None
        path, source_path = tmp / f"{index}.utf8", path
        encodings.transcode(source_path, path, settings.encoding, display)
    elif fmt in TEXT_FORMATS:
        nul = fp.nul_offset if not compression else encodings.first_nul(path)
        if nul is not None:
            raise encodings.nul_error(path, display, nul)
    base = Source(index, given, display, fmt, path, fp.sha256, [], [], "", {})
    if fmt in ("csv", "tsv"):
        return _csv_source(base, settings)
    if fmt in ("jsonl", "json"):
        return _json_source(con, base)
    if fmt == "parquet":
        return _parquet_source(con, base)
    return _excel_source(con, base)


def _original(given: str, index: int, tmp: Path, stdin: BinaryIO | None) -> tuple[Path, str]:
    if given == "-":
        path = tmp / f"{index}.stdin"
        with path.open("wb") as out:
            shutil.copyfileobj(stdin if stdin is not None else sys.stdin.buffer, out, encodings.CHUNK)
        if path.stat().st_size == 0:
            raise MissingInputError("stdin", "no data on stdin", "pipe a file in: crmlist load TABLE - < FILE")
        return path, "stdin"
    path = Path(given).expanduser()
    if not path.exists():
        raise MissingInputError(given, "no such file", "check the path")
    if not path.is_file():
        raise MissingInputError(given, "not a file", "name a file, or - for stdin")
    if path.stat().st_size == 0:
        raise MissingInputError(given, "the file is empty", "load a file with a header and data rows")
    return path, given


def _format_of(given: str, path: Path, settings: ReadSettings) -> tuple[str, str | None]:
    suffixes = [s.lower() for s in Path(given).suffixes] if given != "-" else []
    compression = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes = suffixes[:-1]
    if settings.file_format:
        fmt = settings.file_format.lower()
        if fmt not in FORMATS:
            raise UsageError("--format", f"unknown input format {fmt!r}", f"use one of: {', '.join(FORMATS)}")
        return fmt, compression or _magic_compression(path)
    if suffixes and suffixes[-1] in EXTENSIONS:
        return EXTENSIONS[suffixes[-1]], compression
    return _sniff(path), compression or _magic_compression(path)


def _magic_compression(path: Path) -> str | None:
    with path.open("rb") as fh:
        head = fh.read(4)
    return "gzip" if head[:2] == b"\x1f\x8b" else "zstd" if head == b"\x28\xb5\x2f\xfd" else None


def _sniff(path: Path) -> str:
    """The format of a file without a known extension (stdin), from its first bytes; CSV by default."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        return "xlsx"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return "jsonl" if text.startswith(b"{") else "json" if text.startswith(b"[") else "csv"


def _csv_source(src: Source, settings: ReadSettings) -> Source:
    delimiter = settings.delimiter or ("\t" if src.fmt == "tsv" else ",")
    if delimiter in ("\\t", "tab", "TAB"):
        delimiter = "\t"
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise UsageError("--delimiter", f"{delimiter!r} cannot separate columns", "use one character: , ; | or tab")
    first, skip = read_first_record(src.path, delimiter, src.display)
    if first is None:
        raise MissingInputError(src.display, "the file is empty", "load a file with a header and data rows")
    if settings.no_header:
        if not settings.columns:
            raise UsageError("--no-header", "needs the column names", "pass --columns a,b,c")
        names = list(settings.columns)
    else:
        names = first
    src.names, src.types = names, ["VARCHAR"] * len(names)
    src.header, src.delimiter = not settings.no_header, delimiter
    src.relation = CSV_READ
    src.params = {
        "src_path": str(src.path),
        "src_header": not settings.no_header,
        "src_skip": skip,  # blank lines before the header, which DuckDB would take for it
        "src_delim": delimiter,
        "src_columns": {f"c{j}": "VARCHAR" for j in range(len(names))},
    }
    return src


def read_first_record(path: Path, delimiter: str, display: str) -> tuple[list[str] | None, int]:
    """The first non-blank CSV record (the header), BOM stripped, and the number of blank lines before it;
    None for a file of blank lines."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, delimiter=delimiter, quotechar='"', strict=True)
            blank = 0
            for fields in reader:
                if fields:
                    return fields, blank
                blank = reader.line_num
    except UnicodeDecodeError:
        encodings.check_utf8(path, display)
        raise
    except csv.Error:
        raise BadInputError(
            f"{display}:1", "the header line has a quote that is not closed", "close the quote in the header"
        ) from None
    return None, 0


def _json_source(con: duckdb.DuckDBPyConnection, src: Source) -> Source:
    with src.path.open("rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    layout = "array" if head.startswith(b"[") else "newline_delimited"
    try:
        # Keys are gathered from every record: a key first seen late would otherwise be dropped.
        describe = "DESCRIBE SELECT * FROM read_json(?, format = ?, sample_size = -1)"
        rows = con.execute(describe, [str(src.path), layout]).fetchall()
    except duckdb.Error:
        raise json_problem(src) from None
    names = [str(r[0]) for r in rows]
    select = ", ".join(f"{quote_ident(n)} AS c{j}" for j, n in enumerate(names))
    src.names, src.types = names, ["VARCHAR"] * len(names)
    src.relation = f"(SELECT {select} FROM read_json($src_path, format = $src_layout, columns = $src_columns))"
    src.params = {"src_path": str(src.path), "src_layout": layout, "src_columns": dict.fromkeys(names, "VARCHAR")}
    src.fmt = "json" if layout == "array" else "jsonl"
    return src


def _parquet_source(con: duckdb.DuckDBPyConnection, src: Source) -> Source:
    try:
        rows = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(src.path)]).fetchall()
    except duckdb.Error:
        raise BadInputError(src.display, "not a readable Parquet file", "check the file or pass --format") from None
    src.names, src.types = [str(r[0]) for r in rows], [str(r[1]) for r in rows]
    select = ", ".join(f"{quote_ident(n)} AS c{j}" for j, n in enumerate(src.names))
    src.relation = (
        f"(SELECT {select}, file_row_number + 1 AS __crm_line FROM read_parquet($src_path, file_row_number = true))"
    )
    src.params = {"src_path": str(src.path)}
    src.has_line = True
    return src


def _excel_source(con: duckdb.DuckDBPyConnection, src: Source) -> Source:
    import fastexcel  # imported here: only Excel loads pay for it
    import pyarrow as pa

    try:
        batch = fastexcel.read_excel(str(src.path)).load_sheet(0, dtypes="string").to_arrow()
    except Exception:  # fastexcel raises its own hierarchy for every unreadable workbook
        raise BadInputError(src.display, "not a readable Excel workbook", "save it as .xlsx or CSV") from None
    table = pa.Table.from_batches([batch])
    names = [n if not n.startswith("__UNNAMED__") else "" for n in table.column_names]
    # Sheet row of each record: the header is row 1. Rows left blank in the sheet are dropped below.
    table = table.append_column("__crm_line", pa.array(range(2, table.num_rows + 2), pa.int64()))
    src.arrow_name = f"__crm_sheet_{src.index}"
    con.register(src.arrow_name, table)
    columns = [quote_ident(n) for n in table.column_names[:-1]]
    select = ", ".join(f"{c} AS c{j}" for j, c in enumerate(columns))
    blank = " AND ".join(f"{c} IS NULL" for c in columns) or "false"
    src.names, src.types = names, ["VARCHAR"] * len(names)
    src.relation = f"(SELECT {select}, __crm_line FROM {src.arrow_name} WHERE NOT ({blank}))"
    src.has_line = True
    return src
