"""Streaming concatenation of PDF pieces into one document, written as each piece arrives."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import re
from array import array
from collections.abc import Callable
from typing import IO

# Typst writes plain PDF 1.7: numbered objects, one classic xref table, no object streams. A piece's
# objects are copied with new numbers; its page tree becomes a child of the document's own.
_HEADER = b"%PDF-1.7\n%\x80\x80\x80\x80\n"
_STARTXREF_RE = re.compile(rb"startxref\s+(\d+)\s+%%EOF\s*$")
_SUBSECTION_RE = re.compile(rb"(\d+) (\d+)\s*\r?\n")
_ENTRY_RE = re.compile(rb"(\d{10}) (\d{5}) ([nf])")
_TRAILER_REF_RE = {key: re.compile(rb"/" + key + rb"\s*(\d+) 0 R") for key in (b"Root", b"Info")}
_OBJ_HEAD_RE = re.compile(rb"\s*(\d+) 0 obj\s*")
# A reference `N G R`: R must be a whole token (PDF delimiters or whitespace after it).
_REF_RE = re.compile(rb"(?<![0-9.+-])(\d+) (\d+) R(?=[\s/\[\]<>()%]|$)")
_STREAM_RE = re.compile(rb">>\s*stream\r?\n")
_COUNT_RE = re.compile(rb"/Count\s+(\d+)")
_CATALOG_RES = (re.compile(rb"/Pages\s*(\d+) 0 R"), re.compile(rb"/Metadata\s*(\d+) 0 R"))
ROOT_PAGES, CATALOG, INFO = 1, 2, 3  # the document's own objects, written last


class PdfError(ValueError):
    """A piece that is not the plain PDF this concatenator understands."""


def _objects(pdf: bytes) -> tuple[dict[int, bytes], int, int | None]:
    """Every in-use object of a piece by number (its bytes after `N 0 obj`), the catalog and the info."""
    found = _STARTXREF_RE.search(pdf, max(0, len(pdf) - 64))
    if not found:
        raise PdfError("no startxref")
    xref = int(found.group(1))
    if pdf[xref : xref + 4] != b"xref":
        raise PdfError("not a classic xref table")
    trailer_at = pdf.index(b"trailer", xref)
    offsets: dict[int, int] = {}
    pos = xref + 4
    while pdf[pos : pos + 1] in (b" ", b"\r", b"\n"):
        pos += 1
    while (sub := _SUBSECTION_RE.match(pdf, pos)) is not None and sub.start() < trailer_at:
        first, count = int(sub.group(1)), int(sub.group(2))
        pos = sub.end()
        for i, entry in enumerate(_ENTRY_RE.finditer(pdf, pos, pos + 20 * count)):
            if entry.group(3) == b"n":
                offsets[first + i] = int(entry.group(1))
        pos += 20 * count
        while pdf[pos : pos + 1] in (b" ", b"\r", b"\n"):
            pos += 1
    trailer = pdf[trailer_at : found.start()]
    root, info = (_TRAILER_REF_RE[key].search(trailer) for key in (b"Root", b"Info"))
    if root is None:
        raise PdfError("no /Root")
    next_offset = dict(itertools.pairwise([*sorted(offsets.values()), xref]))
    bodies = {}
    for number, offset in offsets.items():
        head = _OBJ_HEAD_RE.match(pdf, offset)
        if head is None or int(head.group(1)) != number:
            raise PdfError(f"object {number} is not where the xref says")
        bodies[number] = pdf[head.end() : next_offset[offset]]
    return bodies, int(root.group(1)), int(info.group(1)) if info else None


def _skip_string(data: bytes, pos: int) -> int:
    """The position after the literal string that starts at data[pos] == '('."""
    depth = 0
    while pos < len(data):
        char = data[pos]
        if char == 0x5C:  # backslash: the next byte is escaped
            pos += 2
            continue
        depth += (char == 0x28) - (char == 0x29)
        pos += 1
        if depth == 0:
            return pos
    raise PdfError("unterminated string")


def _renumber(body: bytes, remap: Callable[[re.Match[bytes]], bytes]) -> bytes:
    """The object with every reference renumbered, its stream data (and literal strings) untouched."""
    stream = _STREAM_RE.search(body)
    head_end = stream.end() if stream else len(body)
    if b"(" not in body[:head_end]:
        return _REF_RE.sub(remap, body[:head_end]) + body[head_end:]
    out, pos, plain = [], 0, 0  # slow path: step over literal strings, which may hold anything
    while pos < len(body):
        if body[pos] == 0x28:
            out.append(_REF_RE.sub(remap, body[plain:pos]))
            end = _skip_string(body, pos)
            out.append(body[pos:end])
            pos = plain = end
        elif (stream := _STREAM_RE.match(body, pos)) is not None:
            out.append(_REF_RE.sub(remap, body[plain : stream.end()]))
            return b"".join(out) + body[stream.end() :]
        else:
            pos += 1
    out.append(_REF_RE.sub(remap, body[plain:]))
    return b"".join(out)


def pdf_text(value: str) -> bytes:
    """A PDF text string: UTF-16BE with a byte order mark, as hex, so nothing needs escaping."""
    return b"<FEFF" + value.encode("utf-16-be").hex().upper().encode("ascii") + b">"


class PdfConcatenator:
    """Writes one PDF to `fh` from pieces added in order; memory holds only the xref offsets."""

    def __init__(self, fh: IO[bytes], title: str, date: dt.date) -> None:
        self.fh = fh
        self.title = title
        self.date = date
        self.offsets = array("Q", [0, 0, 0, 0])  # [0] is the free head; 1-3 are written by finish()
        self.kids: list[int] = []
        self.count = 0
        self.pos = 0
        self.digest = hashlib.sha256()
        self._emit(_HEADER)

    def _emit(self, data: bytes) -> None:
        self.fh.write(data)
        self.digest.update(data)
        self.pos += len(data)

    def _object(self, number: int, body: bytes) -> None:
        self.offsets[number] = self.pos
        self._emit(b"%d 0 obj\n" % number + body)

    def add(self, pdf: bytes) -> None:
        """Append every page of a piece, each page's objects renumbered after those written so far."""
        bodies, catalog, info = _objects(pdf)
        catalog_body = bodies[catalog]
        pages_ref, metadata = (regex.search(catalog_body) for regex in _CATALOG_RES)
        if pages_ref is None:
            raise PdfError("catalog without /Pages")
        pages = int(pages_ref.group(1))
        skip = {catalog, info, int(metadata.group(1)) if metadata else None}
        kept = [n for n in sorted(bodies) if n not in skip]
        base = len(self.offsets)
        numbers = {old: base + i for i, old in enumerate(kept)}
        self.offsets.extend([0] * len(kept))

        def remap(ref: re.Match[bytes]) -> bytes:
            new = numbers.get(int(ref.group(1))) if ref.group(2) == b"0" else None
            return b"null" if new is None else b"%d 0 R" % new  # null: the piece's catalog, info, metadata

        for old in kept:
            body = _renumber(bodies[old], remap)
            if old == pages:  # the piece's page tree now hangs under the document's root
                body = body.replace(b"<<", b"<</Parent %d 0 R" % ROOT_PAGES, 1)
                count = _COUNT_RE.search(body)
                self.count += int(count.group(1)) if count else 0
                self.kids.append(numbers[old])
            self._object(numbers[old], body)

    def finish(self) -> None:
        """The document's page tree root, catalog, info, xref table and trailer."""
        kids = b" ".join(b"%d 0 R" % k for k in self.kids)
        self._object(ROOT_PAGES, b"<</Type/Pages/Count %d/Kids[%s]>>\nendobj\n" % (self.count, kids))
        self._object(CATALOG, b"<</Type/Catalog/Pages %d 0 R>>\nendobj\n" % ROOT_PAGES)
        stamp = b"(D:%04d%02d%02d000000Z)" % (self.date.year, self.date.month, self.date.day)
        info = b"<</Title %s/Creator (crmlist)/Producer (crmlist)/CreationDate %s/ModDate %s>>\nendobj\n"
        self._object(INFO, info % (pdf_text(self.title), stamp, stamp))
        doc_id = self.digest.hexdigest()[:32].encode("ascii")
        xref_at = self.pos
        self._emit(b"xref\n0 %d\n0000000000 65535 f\r\n" % len(self.offsets))
        for start in range(1, len(self.offsets), 8192):  # in slices: a million letters have ~4M objects
            self._emit(b"".join(b"%010d 00000 n\r\n" % offset for offset in self.offsets[start : start + 8192]))
        trailer = b"trailer\n<</Size %d/Root %d 0 R/Info %d 0 R/ID[<%s><%s>]>>\nstartxref\n%d\n%%%%EOF\n"
        self._emit(trailer % (len(self.offsets), CATALOG, INFO, doc_id, doc_id, xref_at))
