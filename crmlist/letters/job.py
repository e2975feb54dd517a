"""What a letters run is asked to do and what it gives back."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

LETTER_FORMATS = ("files", "jsonl", "mbox", "zip")


@dataclass
class LetterJob:
    """One campaign's letters: its name, as-of date, output format and, on resume, the ids to render."""

    campaign: str
    as_of: dt.date
    letters_format: str = "files"  # files | jsonl | mbox | zip (pdf: not yet)
    only_ids: set[str] | None = None  # render just these (resume); None = all


@dataclass
class LetterFailure:
    """A letter whose template failed; `error` never holds personal data."""

    customer_id: str
    template: str
    line: int | None
    error: str


@dataclass
class LetterResult:
    """The customer_ids written (in order), the failures and every file or bundle written."""

    written: list[str]
    failed: list[LetterFailure]
    paths: list[Path]


@dataclass(frozen=True)
class RenderedLetter:
    """One target's letter as a renderer hands it to a writer (text is None when it failed)."""

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
