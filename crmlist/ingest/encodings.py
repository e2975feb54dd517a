"""Bytes to exact UTF-8 text: sha256 and NUL scans, decompression, transcoding, encoding guesses."""

from __future__ import annotations

import codecs
import gzip
import hashlib
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

from crmlist.errors import BadInputError, UsageError

CHUNK = 4 << 20
UTF8_NAMES = {"utf-8", "utf8", "utf_8", "utf-8-sig", "utf_8_sig"}

# Bytes that Polish and Czech text in Windows-1250 uses and Western Windows-1252 text does not
# (ą ę ł ś ź ż ć ń, č ř š ž ě ů and their capitals).
CP1250_MARKERS = frozenset(
    b"\xb9\xea\xb3\x9c\x9f\xbf\xe6\xf1\xa5\xca\xa3\x8c\x8f\xaf\xc6\xd1\xe8\xf8\x9a\x9e\xec\xf9\xc8\xd8\x8a\x8e\xcc\xd9"
)
HINTS = {
    "utf-16": "it looks like UTF-16 (Excel's 'Unicode text'): pass --encoding utf-16",
    "cp1251": "it looks like Windows-1251 (Cyrillic): pass --encoding cp1251",
    "cp1250": "it looks like Windows-1250 (Polish, Czech): pass --encoding cp1250",
    "cp1252": "it looks like Windows-1252 (Western European): pass --encoding cp1252",
}
UTF8_HINT = "drop --encoding: UTF-8 is the default"
NUL_HINT = "remove the NUL bytes; a file full of them may be UTF-16 (--encoding utf-16)"


@dataclass(frozen=True)
class Fingerprint:
    """The sha256 of a file's bytes and the offset of its first NUL byte, if any."""

    sha256: str
    nul_offset: int | None


def fingerprint(path: Path, check_nul: bool) -> Fingerprint:
    """Hash the file in one pass, noting the first NUL byte when asked (text files must have none)."""
    digest = hashlib.sha256()
    offset, nul = 0, None
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            if check_nul and nul is None and (at := chunk.find(b"\0")) >= 0:
                nul = offset + at
            offset += len(chunk)
    return Fingerprint(digest.hexdigest(), nul)


def first_nul(path: Path) -> int | None:
    """Offset of the first NUL byte of a file, or None."""
    offset = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            if (at := chunk.find(b"\0")) >= 0:
                return offset + at
            offset += len(chunk)
    return None


def line_at(path: Path, offset: int) -> int:
    """The 1-based physical line that holds byte `offset`."""
    line, done = 1, 0
    with path.open("rb") as fh:
        while done < offset and (chunk := fh.read(min(CHUNK, offset - done))):
            line += chunk.count(b"\n")
            done += len(chunk)
    return line


def guess_encoding(sample: bytes) -> str:
    """A likely legacy encoding for bytes that are not UTF-8: utf-16, cp1251, cp1250 or cp1252."""
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")) or sample[:400].count(b"\0") > 20:
        return "utf-16"
    if sample.isascii():
        return "cp1252"
    if _share_in_long_runs(sample) > 0.5:
        return "cp1251"
    return "cp1250" if any(byte in CP1250_MARKERS for byte in sample) else "cp1252"


def _share_in_long_runs(sample: bytes) -> float:
    """Share of non-ASCII bytes in runs of three or more: Cyrillic words are whole runs of them, while
    Polish and Czech words have one or two."""
    total = in_long = run = 0
    for byte in sample + b" ":
        if byte >= 0x80:
            run += 1
            continue
        total += run
        in_long += run if run >= 3 else 0
        run = 0
    return in_long / total if total else 0.0


def encoding_error(path: Path, display: str, offset: int) -> BadInputError:
    """The refusal of a file that is not UTF-8, located at its first bad byte, naming the likely encoding."""
    with path.open("rb") as fh:
        fh.seek(max(0, offset - 4096))
        sample = fh.read(1 << 20)
    where = f"{display}:{line_at(path, offset)}"
    return BadInputError(where, "not valid UTF-8 text", HINTS[guess_encoding(sample)])


def nul_error(path: Path, display: str, offset: int) -> BadInputError:
    """The refusal of a text file with a NUL byte; UTF-16 files are full of them, so say so."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    where = f"{display}:{line_at(path, offset)}"
    if guess_encoding(head) == "utf-16":
        return BadInputError(where, "not valid UTF-8 text", HINTS["utf-16"])
    return BadInputError(where, "NUL byte in the text", NUL_HINT)


def _is_utf8(path: Path) -> bool:
    try:
        check_utf8(path, "")
    except BadInputError:
        return False
    return True


def check_utf8(path: Path, display: str) -> None:
    """Raise BadInputError at the first byte that is not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(CHUNK)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                raise encoding_error(path, display, offset + max(exc.start, 0)) from None
            if not chunk:
                return
            offset += len(chunk)


def decompress(src: Path, dst: Path, kind: str, display: str) -> None:
    """Write the decompressed bytes of a .gz or .zst file to `dst`."""
    if kind == "gzip":
        try:
            with gzip.open(src, "rb") as fi, dst.open("wb") as fo:
                shutil.copyfileobj(fi, fo, CHUNK)
        except (OSError, EOFError, zlib.error):
            raise BadInputError(display, "not a valid gzip file", "check the file, or decompress it first") from None
        return
    import pyarrow as pa  # its zstd codec: Python 3.11 has none

    try:
        with pa.OSFile(str(src), "rb") as raw, pa.CompressedInputStream(raw, "zstd") as fi, dst.open("wb") as fo:
            while chunk := fi.read(CHUNK):
                fo.write(chunk)
    except OSError:
        raise BadInputError(display, "not a valid zstd file", "check the file, or decompress it first") from None


def codec_name(encoding: str) -> str:
    """The canonical codec name of an --encoding value; UsageError when Python does not know it."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise UsageError(
            "--encoding", f"unknown encoding {encoding!r}", "use e.g. utf-8, cp1250, cp1251, latin-1, utf-16"
        ) from None


def is_utf8(encoding: str | None) -> bool:
    return encoding is None or encoding.lower().replace(" ", "") in UTF8_NAMES


def transcode(src: Path, dst: Path, encoding: str, display: str) -> None:
    """Convert `src` from `encoding` to UTF-8 exactly; refuse bytes the encoding lacks, NULs, and UTF-8 input.

    A file that already is UTF-8 with non-ASCII characters would decode "successfully" as cp1250 or latin-1
    into mojibake, so it is refused instead.
    """
    name = codec_name(encoding)
    decoder = codecs.getincrementaldecoder(name)("strict")
    utf8 = codecs.getincrementaldecoder("utf-8")("strict")
    utf8_ok, non_ascii, line, first = True, False, 1, True
    with src.open("rb") as fi, dst.open("w", encoding="utf-8", newline="") as fo:
        while True:
            chunk = fi.read(CHUNK)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                if _is_utf8(src):
                    raise BadInputError(display, f"this is UTF-8 text, not {encoding}", UTF8_HINT) from None
                bad_line = line + chunk[: max(exc.start, 0)].decode(name, "replace").count("\n")
                hint = "check the file's encoding and pass the right --encoding"
                raise BadInputError(f"{display}:{bad_line}", f"not valid {encoding} text", hint) from None
            if first and text.startswith("\ufeff"):
                text = text[1:]
            first = first and not text
            if "\0" in text:
                nul_line = line + text[: text.index("\0")].count("\n")
                raise BadInputError(f"{display}:{nul_line}", "NUL byte in the text", NUL_HINT)
            if utf8_ok:
                non_ascii = non_ascii or not chunk.isascii()
                try:
                    utf8.decode(chunk, final=not chunk)
                except UnicodeDecodeError:
                    utf8_ok = False
            line += text.count("\n")
            fo.write(text)
            if not chunk:
                break
    if utf8_ok and non_ascii and name not in {"utf-8", "utf-8-sig"}:
        raise BadInputError(display, f"this is UTF-8 text, not {encoding}", UTF8_HINT)
