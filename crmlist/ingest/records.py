"""Records of text files as Python sees them: exact start lines and raw text of bad rows, and repairs.

DuckDB reads the files; Python scans one only when it has bad rows, to give their physical line (the
header is line 1; blank lines and newlines inside quoted values count) and their raw text.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from crmlist.errors import BadInputError
from crmlist.ingest import encodings
from crmlist.ingest.reasons import plural
from crmlist.ingest.source import Reject, Source, bind

QUOTE_HINT = 'close the quote; a quote inside a quoted value is written twice ("")'


@dataclass(frozen=True)
class Record:
    """A record's first physical line, its raw text and its fields (None when it is not valid JSON)."""

    line: int
    raw: str
    fields: list[str] | dict[str, object] | None


class _QuoteError(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def csv_records(path: Path, delimiter: str, header: bool) -> Iterator[Record]:
    """Every non-blank record after the header; _QuoteError at a quote that is never closed."""
    consumed: list[str] = []

    def lines(fh: Iterator[str]) -> Iterator[str]:
        for line in fh:
            consumed.append(line)
            yield line

    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(lines(fh), delimiter=delimiter, quotechar='"', strict=True)
        previous, skip_header = 0, header
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error:
                raise _QuoteError(previous + 1) from None
            start, previous = previous + 1, reader.line_num
            raw = "".join(consumed).rstrip("\r\n")
            consumed.clear()
            if not fields:
                continue
            if skip_header:
                skip_header = False
                continue
            yield Record(start, raw, fields)


def jsonl_records(path: Path) -> Iterator[Record]:
    """Every non-blank line of a JSON Lines file, parsed (fields None when it is not a JSON object)."""
    with path.open(encoding="utf-8-sig", newline="\n") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            raw = line.rstrip("\r\n")
            try:
                value = json.loads(raw)
            except ValueError:
                value = None
            yield Record(number, raw, value if isinstance(value, dict) else None)


def json_array_records(path: Path) -> Iterator[Record]:
    """Every element of a JSON array with the line it starts on."""
    text = path.read_text(encoding="utf-8-sig")
    decoder = json.JSONDecoder()
    at = text.index("[") + 1
    line, counted = 1, 0
    while True:
        while at < len(text) and text[at] in " \t\r\n,":
            at += 1
        if at >= len(text) or text[at] == "]":
            return
        value, end = decoder.raw_decode(text, at)
        line += text.count("\n", counted, at)
        counted = at
        yield Record(line, text[at:end], value if isinstance(value, dict) else None)
        at = end


def records(source: Source) -> Iterator[Record]:
    """The records of a text source in the order DuckDB reads them."""
    path = source.scan_path or source.path
    if source.fmt in ("csv", "tsv"):
        return csv_records(path, source.delimiter, source.header)
    if source.fmt == "jsonl":
        return jsonl_records(path)
    return json_array_records(path)


def locate(source: Source, wanted: Collection[int]) -> dict[int, Record]:
    """The records with the given 0-based indices (indices of the original file, before any repair)."""
    todo, found = set(wanted), dict[int, Record]()
    if not todo:
        return found
    try:
        for index, record in enumerate(records(source)):
            if index in todo:
                found[index] = record
                if len(found) == len(todo):
                    break
    except (_QuoteError, ValueError, UnicodeDecodeError):
        pass  # only reachable for files DuckDB read without complaint; their records before it are found
    return found


def repair(source: Source, strict: bool, tmp: Path) -> Source | None:
    """Take the records DuckDB could not read out of a text file (wrong field count, not JSON objects).

    Strict mode raises at the first; skip mode returns a source over the good records with the bad ones
    as pre_rejects. Problems that leave no record boundaries (bad encoding, an unclosed quote, a broken
    JSON array) raise in both modes. None when Python finds nothing wrong.
    """
    encodings.check_utf8(source.path, source.display)
    if source.fmt == "json":
        raise json_problem(source)
    width = len(source.names)
    bad: list[Reject] = []
    kept: list[int] = []
    out_path = tmp / f"{source.index}.repaired"
    try:
        with out_path.open("w", encoding="utf-8", newline="") as out:
            if source.fmt in ("csv", "tsv") and source.header:
                out.write(_header_raw(source) + "\n")
            for index, record in enumerate(records(source)):
                reason = _record_problem(record, width)
                if reason is None:
                    kept.append(index)
                    out.write(record.raw + "\n")
                else:
                    bad.append(Reject(record.line, reason, record.raw))
    except _QuoteError as exc:
        raise BadInputError(f"{source.display}:{exc.line}", "a quoted value is never closed", QUOTE_HINT) from None
    if not bad:
        return None
    if strict:
        first = bad[0]
        more = f"; {plural(len(bad) - 1, 'more bad row')} in this file" if len(bad) > 1 else ""
        hint = f"{_shape_hint(source)}; or pass --on-error skip to load the good rows"
        raise BadInputError(f"{source.display}:{first.line}", f"{first.reason}{more}", hint)
    params = dict(source.params, src_path=str(out_path), src_skip=0)
    return dataclasses.replace(source, path=out_path, scan_path=source.path, params=params, kept=kept, pre_rejects=bad)


def _record_problem(record: Record, width: int) -> str | None:
    if isinstance(record.fields, list):
        found = len(record.fields)
        return None if found == width else f"expected {width} fields, found {found}"
    return None if record.fields is not None else "not a JSON object"


def _shape_hint(source: Source) -> str:
    if source.fmt == "jsonl":
        return "write one JSON object per line"
    shown = "tab" if source.delimiter == "\t" else repr(source.delimiter)
    return f"check the delimiter ({shown}, --delimiter) and the quotes on that line"


def _header_raw(source: Source) -> str:
    with source.path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=source.delimiter, quotechar='"')
        for fields in reader:
            if fields:
                return _join(fields, source.delimiter)
    return ""


def _join(fields: list[str], delimiter: str) -> str:
    def quoted(value: str) -> str:
        if any(ch in value for ch in (delimiter, '"', "\n", "\r")):
            return '"' + value.replace('"', '""') + '"'
        return value

    return delimiter.join(quoted(v) for v in fields)


def typed_raw(con: duckdb.DuckDBPyConnection, source: Source, lines: Collection[int]) -> dict[int, str]:
    """Rows of a typed source (Parquet, Excel) as JSON text, by line, for load_rejects.raw_line."""
    pairs = ", ".join(f"'{n.replace(chr(39), chr(39) * 2)}', c{j}" for j, n in enumerate(source.names) if n)
    sql = f"SELECT __crm_line, CAST(json_object({pairs}) AS VARCHAR) FROM {source.relation} AS s "
    sql += "WHERE __crm_line IN (SELECT unnest($lines))"
    rows = con.execute(sql, bind(sql, {**source.params, "lines": sorted(lines)})).fetchall()
    return {int(line): str(raw) for line, raw in rows}


def json_problem(source: Source) -> BadInputError:
    """The first place where a JSON file stops being JSON, for a file DuckDB could not read."""
    hint = "fix the JSON there" if source.fmt == "json" else "write one JSON object per line"
    try:
        for record in records(source):
            if record.fields is None:
                return BadInputError(f"{source.display}:{record.line}", "not a JSON object", hint)
    except json.JSONDecodeError as exc:
        return BadInputError(f"{source.display}:{exc.lineno}", "not valid JSON", hint)
    except ValueError:
        return BadInputError(source.display, "not a JSON array of objects", hint)
    return BadInputError(source.display, "could not be read as JSON", hint)
