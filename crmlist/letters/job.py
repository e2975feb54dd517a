"""What a letters run is asked to do and what it gives back."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

LETTER_FORMATS = ("files", "jsonl", "mbox", "zip", "pdf")
BATCH_ROWS = 2048  # rows per Arrow batch handed to a renderer (DuckDB's vector size)


@dataclass
class LetterJob:
    """One campaign's letters: its name, as-of date, output format and, on resume, the ids to render."""

    campaign: str
    as_of: dt.date
    letters_format: str = "files"  # files | jsonl | mbox | zip | pdf
    only_ids: set[str] | None = None  # render just these (resume); None = all
    jobs: int | None = None  # worker processes; None = every core this process may use, 1 = no pool
    batch_rows: int = BATCH_ROWS


@dataclass
class LetterFailure:
    """A letter whose template failed; `error` never holds personal data."""

    customer_id: str
    template: str
    line: int | None
    error: str


@dataclass
class LetterResult:
    """The customer_ids written (in order), the failures and the files written.

    `paths` holds the bundle file, or for one file per letter the letters/ folder (a million paths
    would not keep memory flat), then failed.csv when some letters failed.
    """

    written: list[str]
    failed: list[LetterFailure]
    paths: list[Path]


class RenderedLetter(NamedTuple):
    """One target's letter as a renderer hands it to an encoder (text is None when it failed)."""

    customer_id: str
    campaign: str
    cell: str | None
    offer: str | None
    language: str | None
    template: str  # the template file name used, or the rule file's name when none was found
    ext: str
    text: str | None
    email: str | None = None
    failure: LetterFailure | None = None
    address: tuple[str, ...] = ()  # the address window's lines (pdf only)


@dataclass
class RenderedChunk:
    """One batch's result as a worker sends it back: ids written in order, failures, encoded output."""

    written: list[str] = field(default_factory=list)
    failed: list[LetterFailure] = field(default_factory=list)
    payload: Any = None
