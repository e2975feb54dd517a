"""What a letters run is asked to do and what it gives back."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, overload

from crmlist.letters.offers import Offers

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
    offers: Offers | None = None  # what its letters may recommend: the campaign's; None: crmlist.toml's


@dataclass
class LetterFailure:
    """A letter whose template failed; `error` never holds personal data."""

    customer_id: str
    template: str
    line: int | None
    error: str


class CustomerIds(Sequence[str]):
    """Customer ids in order, kept as one text per batch: a million ids as Python strings would hold
    70 MB of the parent's memory until the run ends. Compares equal to a list of the same ids."""

    _SEP = "\0"

    def __init__(self, ids: Sequence[str] = ()) -> None:
        self._parts: list[str | list[str]] = []
        self._ends: list[int] = []  # the number of ids up to and including each part
        self.extend(ids)

    def extend(self, ids: Sequence[str]) -> None:
        """Add a batch's ids at the end."""
        if isinstance(ids, CustomerIds):  # a worker's batch: its texts as they are
            for index, part in enumerate(ids._parts):
                self._parts.append(part)
                self._ends.append(len(self) + ids._ends[index] - (ids._ends[index - 1] if index else 0))
        elif ids:
            joined = self._SEP.join(ids)
            plain = joined.count(self._SEP) == len(ids) - 1  # no id holds the separator itself
            self._parts.append(joined if plain else list(ids))
            self._ends.append(len(self) + len(ids))

    def _part(self, index: int) -> list[str]:
        part = self._parts[index]
        return part.split(self._SEP) if isinstance(part, str) else part

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return list(self)[index]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("customer id index out of range")
        part = bisect.bisect_right(self._ends, index)
        return self._part(part)[index - (self._ends[part - 1] if part else 0)]

    def __iter__(self) -> Iterator[str]:
        for index in range(len(self._parts)):
            yield from self._part(index)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __hash__(self) -> int:  # equal to lists, which have none
        raise TypeError("unhashable type: 'CustomerIds'")

    def __repr__(self) -> str:
        return repr(list(self))


@dataclass
class LetterResult:
    """The customer_ids written (in order), the failures and the files written.

    `paths` holds the bundle file, or for one file per letter the letters/ folder (a million paths
    would not keep memory flat), then failed.csv when some letters failed.
    """

    written: Sequence[str]
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

    written: CustomerIds = field(default_factory=CustomerIds)
    failed: list[LetterFailure] = field(default_factory=list)
    payload: Any = None
