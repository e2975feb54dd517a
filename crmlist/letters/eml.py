"""eml letters as real MIME messages: the header block a template renders becomes structured fields of
Python's email package, and a value that would break a header line (CR, LF, NUL) fails its letter.

A value printed by an eml template has its line breaks swapped for private-use marks while the letter
renders (the eml environment's finalize), so that after rendering a line break in the header block is
known to be the template's own, and a mark there is a value trying to start a header of its own.
"""

from __future__ import annotations

import email.policy
import re
from typing import Any

from markupsafe import Markup

POLICY = email.policy.default.clone(linesep="\n")  # refuses CR and LF in header values
_MARKS = {"\n": "\ue000", "\r": "\ue001", "\0": "\ue002"}
_TO_MARKS = str.maketrans(_MARKS)
_FROM_MARKS = str.maketrans({v: k for k, v in _MARKS.items()})
_BREAKING = ("\n", "\r", "\0", *_MARKS.values())
_FIELD_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 field-name: printable ASCII but the colon
_MIME_FIELDS = frozenset({"content-type", "content-transfer-encoding", "mime-version"})
_TEXT_SUBTYPE = re.compile(r"^\s*text/([A-Za-z0-9.+-]+)", re.IGNORECASE)
MAX_LINE_BYTES = 900  # longer body lines are sent quoted-printable (SMTP allows 998)


class HeaderError(ValueError):
    """A rendered eml header block that cannot be a message's headers."""


def mark_line_breaks(value: Any) -> Any:
    """The eml environment's finalize: CR, LF and NUL of a printed value swapped for marks."""
    if isinstance(value, str) and ("\n" in value or "\r" in value or "\0" in value):
        marked = str.translate(value, _TO_MARKS)
        return Markup(marked) if isinstance(value, Markup) else marked
    return value


def _headers(block: str) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for number, line in enumerate(block.split("\n"), start=1):
        if line[:1] in (" ", "\t") and headers:  # the template's own folding: one field
            name, value = headers[-1]
            headers[-1] = (name, value + line)
            continue
        name, colon, value = line.partition(":")
        if not colon or not _FIELD_NAME.match(name):
            raise HeaderError(f"line {number} of the header block is not a header (Name: value)")
        headers.append((name, value.strip()))
    for name, value in headers:
        if any(c in value for c in _BREAKING):
            raise HeaderError(f"header {name}: a value holds a line break or NUL (CR, LF or NUL)")
    return headers


def set_body(msg: Any, text: str, subtype: str) -> None:
    """The message's body as UTF-8 text: 8bit, or quoted-printable when a line is too long for SMTP."""
    long_lines = any(len(line.encode("utf-8")) > MAX_LINE_BYTES for line in text.split("\n"))
    msg.set_content(text, subtype=subtype, charset="utf-8", cte="quoted-printable" if long_lines else "8bit")


def eml_message(text: str, mime: bool = True) -> str:
    """A rendered eml letter as a MIME message (mime), or as rendered once its headers are checked.

    Raises HeaderError when the header block is not headers, or a value in it holds CR, LF or NUL.
    """
    head, sep, body = text.partition("\n\n")
    headers = _headers(head)
    body = body.translate(_FROM_MARKS)
    if not mime:
        return f"{head}{sep}{body}"
    from email.message import EmailMessage

    msg = EmailMessage(policy=POLICY)
    subtype = "plain"
    for name, value in headers:
        if name.lower() in _MIME_FIELDS:  # set from the body below; a text subtype is kept
            found = _TEXT_SUBTYPE.match(value) if name.lower() == "content-type" else None
            subtype = found.group(1).lower() if found else subtype
            continue
        try:
            msg[name] = value
        except (ValueError, TypeError, IndexError) as exc:  # the email package refuses it
            raise HeaderError(f"header {name}: {exc}") from None
    set_body(msg, body, subtype)
    return msg.as_bytes().decode("utf-8")  # as_string() would turn the 8bit body into base64
