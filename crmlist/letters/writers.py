"""Letter outputs: one file per target, or a jsonl, mbox, zip or pdf bundle; byte-identical across runs."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import zipfile
from email.message import EmailMessage
from email.parser import HeaderParser
from functools import lru_cache
from json.encoder import encode_basestring
from pathlib import Path
from typing import IO, Any

from crmlist.letters.eml import POLICY, MessageDefaults, set_body
from crmlist.letters.job import LetterFailure, LetterJob, RenderedLetter
from crmlist.letters.pdfmerge import PdfConcatenator
from crmlist.newfiles import NewFile, refuse_link, write_error, write_file, write_in

_UNSAFE_RE = re.compile(r"[^A-Za-z0-9._-]")
_DEVICE_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))]
)
MAX_NAME_BYTES = 200
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # fixed so that zips are byte-identical across runs
_POLICY = POLICY
_FROM_LINE_RE = re.compile(r"^(>*From )", re.MULTILINE)
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


_LONE_LF = re.compile(r"(?<!\r)\n")


def safe_file_name(customer_id: str) -> str:
    """A file name for a customer_id that never leaves the folder nor collides with another id's.

    Every character outside [A-Za-z0-9._-] becomes `_`, a leading dot and a Windows device name
    (CON, NUL, COM1, ... also before an extension) get a `_`, the name is cut to 200 bytes; a name that
    was changed gets `-` and the first 8 hex digits of the id's sha256, so two ids never share a name.
    """
    name = _UNSAFE_RE.sub("_", customer_id)
    if name.startswith("."):
        name = "_" + name[1:]
    if name.split(".")[0].upper() in _DEVICE_NAMES or not name:
        name = "_" + name
    name = name[:MAX_NAME_BYTES]  # ASCII by now: characters are bytes
    if name != customer_id:
        name += "-" + hashlib.sha256(customer_id.encode("utf-8")).hexdigest()[:8]
    return name


def eml_subject(text: str) -> str | None:
    """The decoded Subject header of a rendered eml message, None when it has none."""
    subject = HeaderParser(policy=_POLICY).parsestr(text, headersonly=True)["Subject"]
    return None if subject is None else str(subject)


class LetterEncoder:
    """Turns a batch's rendered letters into what its writer stores; pure, so it runs in the workers."""

    def __init__(self, job: LetterJob, sender: dict[str, str]) -> None:
        self.fmt = job.letters_format
        day = job.as_of
        self.from_line = (
            f"From crmlist {_DAYS[day.weekday()]} {_MONTHS[day.month - 1]} {day.day:2d} 00:00:00 {day.year}\n"
        )
        defaults = MessageDefaults(sender, day)
        self.date, self.sender = defaults.date, defaults.sender

    def encode(self, letters: list[RenderedLetter]) -> Any:
        """files and zip: (name, bytes) per letter; jsonl and mbox: the bundle's next bytes."""
        if self.fmt in ("files", "zip"):
            prefix = "letters/" if self.fmt == "zip" else ""
            return [(f"{prefix}{safe_file_name(x.customer_id)}.{x.ext}", _file_bytes(x)) for x in letters]
        if self.fmt == "jsonl":
            return "".join(map(_jsonl_line, letters)).encode("utf-8")
        if self.fmt == "mbox":
            return "".join(map(self._mbox_message, letters)).encode("utf-8")
        raise ValueError(f"no encoder for letters format {self.fmt!r}")

    def _mbox_message(self, letter: RenderedLetter) -> str:
        tags = {
            "X-Crmlist-Customer-Id": letter.customer_id,
            "X-Crmlist-Campaign": letter.campaign,
            "X-Crmlist-Cell": letter.cell or "",
            "X-Crmlist-Offer": letter.offer or "",
        }
        text = (letter.text or "").replace("\r\n", "\n")
        if letter.ext == "eml":
            message = "".join(f"{k}: {_one_line(v)}\n" for k, v in tags.items()) + text
        else:
            message = self._wrap(letter, text, tags)
        message = _FROM_LINE_RE.sub(r">\1", message)
        if not message.endswith("\n"):
            message += "\n"
        return self.from_line + message + "\n"

    def _wrap(self, letter: RenderedLetter, text: str, tags: dict[str, str]) -> str:
        msg = EmailMessage(policy=_POLICY)
        if self.sender:
            msg["From"] = self.sender
        if letter.email:
            msg["To"] = _one_line(letter.email)
        msg["Date"] = self.date
        for key, value in tags.items():
            msg[key] = _one_line(value)
        set_body(msg, text, "html" if letter.ext == "html" else "plain")
        return msg.as_bytes().decode("utf-8")  # as_string() would turn the 8bit body into base64


def _file_bytes(letter: RenderedLetter) -> bytes:
    """A letter file's bytes; an .eml file is a message as mail systems exchange it, its lines ending in CRLF."""
    text = letter.text or ""
    if letter.ext == "eml":
        text = _LONE_LF.sub("\r\n", text)
    return text.encode("utf-8")


def _json_text(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


@lru_cache(maxsize=4096)  # campaign, cell, offer, language and template repeat on every line
def _json_labels(campaign: str, cell: str | None, offer: str | None, language: str | None, template: str) -> str:
    return (
        f'"campaign": {_json_text(campaign)}, "cell": {_json_text(cell)}, "offer": {_json_text(offer)}, '
        f'"language": {_json_text(language)}, "template": {_json_text(template)}, '
    )


def _jsonl_line(letter: RenderedLetter) -> str:
    """The letter's JSON object, byte for byte what json.dumps(record, ensure_ascii=False) writes."""
    text = letter.text or ""
    subject = _json_text(eml_subject(text)) if letter.ext == "eml" else "null"
    labels = _json_labels(letter.campaign, letter.cell, letter.offer, letter.language, letter.template)
    return (
        f'{{"customer_id": {encode_basestring(letter.customer_id)}, {labels}'
        f'"subject": {subject}, "text": {encode_basestring(text)}}}\n'
    )


def _one_line(value: str) -> str:
    return " ".join(value.split()) if value else ""


class LetterWriter:
    """Stores encoded batches in order; close() returns the paths written, abort() leaves nothing new."""

    def write(self, payload: Any) -> None:
        raise NotImplementedError

    def close(self) -> list[Path]:
        raise NotImplementedError

    def abort(self) -> None:
        """Nothing to undo by default: the run folder around the letters is temporary."""


def write_letter_files(folder: Path, files: list[tuple[str, bytes]]) -> None:
    """Each (name, bytes) as folder/name, a file made anew (newfiles.write_in: O_EXCL, O_NOFOLLOW, never
    through a link; one already there is replaced by a new one renamed over it). The renderer that made
    them writes them (in a worker process, beside the others), so the parent never touches a letter."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise write_error(folder, exc) from None
    try:
        for name, data in files:
            try:
                write_in(dir_fd, name, data)
            except OSError as exc:
                raise write_error(folder / name, exc) from None
    finally:
        os.close(dir_fd)


class FileLetters(LetterWriter):
    """letters/<safe id>.<ext>, one file per letter: this makes the folder; a renderer given the run
    folder writes its files itself (write_letter_files) and hands over nothing, any other hands them here."""

    def __init__(self, out_dir: Path) -> None:
        self.folder = letters_folder(out_dir)
        refuse_link(self.folder, "--out")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(self.folder, exc) from None

    def write(self, payload: list[tuple[str, bytes]] | None) -> None:
        if payload:
            write_letter_files(self.folder, payload)

    def close(self) -> list[Path]:
        return [self.folder]


def letters_folder(out_dir: Path) -> Path:
    """Where --letters-format files puts the letters of a run folder."""
    return out_dir / "letters"


class _Bundle(LetterWriter):
    """One file written as a NewFile (`.NAME.tmp-PID` beside its target) and put in place on close."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.new = NewFile(target)
        self.fh: IO[bytes] = self.new.file

    def write(self, payload: Any) -> None:
        try:
            self.store(payload)
        except OSError as exc:
            self.abort()
            raise write_error(self.target, exc) from None

    def store(self, payload: Any) -> None:
        self.fh.write(payload)

    def finish(self) -> None:
        """Write what ends the bundle (a zip's central directory, a PDF's page tree and xref)."""

    def close(self) -> list[Path]:
        try:
            self.finish()
        except OSError as exc:
            self.abort()
            raise write_error(self.target, exc) from None
        self.new.commit()
        return [self.target]

    def abort(self) -> None:
        self.new.discard()


class ZipBundle(_Bundle):
    """letters.zip with letters/<safe id>.<ext> entries of a fixed date."""

    def __init__(self, target: Path) -> None:
        super().__init__(target)
        self.zip = zipfile.ZipFile(self.fh, "w", compression=zipfile.ZIP_DEFLATED)

    def store(self, payload: list[tuple[str, bytes]]) -> None:
        for name, data in payload:
            info = zipfile.ZipInfo(name, ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            self.zip.writestr(info, data)

    def finish(self) -> None:
        self.zip.close()


class PdfBundle(_Bundle):
    """letters.pdf: the workers' PDF pieces concatenated as they come into one document."""

    def __init__(self, target: Path, job: LetterJob) -> None:
        super().__init__(target)
        self.pdf = PdfConcatenator(self.fh, title=job.campaign, date=job.as_of)

    def store(self, payload: list[bytes]) -> None:
        for piece in payload:
            self.pdf.add(piece)

    def finish(self) -> None:
        self.pdf.finish()


def open_writer(out_dir: Path, job: LetterJob) -> LetterWriter:
    """The writer for the job's letters format."""
    fmt = job.letters_format
    if fmt == "files":
        return FileLetters(out_dir)
    if fmt in ("jsonl", "mbox"):
        return _Bundle(out_dir / f"letters.{fmt}")
    if fmt == "zip":
        return ZipBundle(out_dir / "letters.zip")
    if fmt == "pdf":
        return PdfBundle(out_dir / "letters.pdf", job)
    raise ValueError(f"unknown letters format {fmt!r}")


def write_failed_csv(out_dir: Path, failures: list[LetterFailure]) -> Path:
    """failed.csv: customer_id, template, line, error, one row per failed letter."""
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    out.writerow(["customer_id", "template", "line", "error"])
    rows: list[list[Any]] = [[f.customer_id, f.template, f.line or "", f.error] for f in failures]
    out.writerows(rows)
    target = out_dir / "failed.csv"
    write_file(target, buffer.getvalue().encode("utf-8"))
    return target
