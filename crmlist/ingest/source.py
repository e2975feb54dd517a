"""What the ingest modules share about an input: how to read it, the opened file, and early rejects."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ReadSettings:
    """How to read a table's files: explicit options over crmlist.toml `[load.TABLE]` defaults."""

    file_format: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    no_header: bool = False
    columns: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Reject:
    """A bad record found while reading, before any column was typed (wrong number of fields, bad JSON)."""

    line: int
    reason: str
    raw: str


@dataclass
class Source:
    """One input file, ready to read: `relation` yields its columns as c0..cN (and __crm_line if known)."""

    index: int
    given: str
    display: str
    fmt: str
    path: Path
    sha256: str
    names: list[str]
    types: list[str]
    relation: str
    params: dict[str, Any]
    has_line: bool = False
    header: bool = True
    delimiter: str = ","
    kept: list[int] | None = None  # after a repair: the original record index of each record read
    scan_path: Path | None = None  # after a repair: the file whose lines messages count
    pre_rejects: list[Reject] = field(default_factory=list)
    arrow_name: str | None = None


def quote_ident(name: str) -> str:
    """A SQL identifier for any column name a file may carry."""
    return '"' + name.replace('"', '""') + '"'


def bind(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """The named parameters a statement uses (DuckDB refuses unused ones); a callable value is computed
    only when the statement uses it."""
    used = set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", sql))
    return {k: v() if callable(v) else v for k, v in params.items() if k in used}
