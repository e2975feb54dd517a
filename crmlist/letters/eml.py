"""eml letters as real MIME messages: the header block a template renders becomes structured fields of
Python's email package, and a value that would break a header line (CR, LF, NUL) fails its letter.

A value printed by an eml template has its line breaks swapped for private-use marks while the letter
renders (the eml environment's finalize), so that after rendering a line break in the header block is
known to be the template's own, and a mark there is a value trying to start a header of its own.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import hashlib
import re
from collections.abc import Mapping, Sequence
from email.utils import format_datetime, formataddr
from html import unescape
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


def _cte(text: str) -> str:
    """A text part's transfer encoding: 8bit, or quoted-printable when a line is too long for SMTP."""
    long_lines = any(len(line.encode("utf-8")) > MAX_LINE_BYTES for line in text.split("\n"))
    return "quoted-printable" if long_lines else "8bit"


def set_body(msg: Any, text: str, subtype: str) -> None:
    """The message's body as UTF-8 text (8bit or quoted-printable, _cte)."""
    msg.set_content(text, subtype=subtype, charset="utf-8", cte=_cte(text))


def eml_message(text: str, mime: bool = True, defaults: Sequence[tuple[str, str]] = (), html: str | None = None) -> str:
    """A rendered eml letter as a MIME message (mime), or as rendered once its headers are checked.
    `defaults`: headers the message gets when its template sets no header of that name (From, To, Date,
    Message-ID, List-Unsubscribe). `html`: an HTML alternative of the body (multipart/alternative, the
    text first, as RFC 2046 orders them: the last is the richest).

    Raises HeaderError when the header block is not headers, or a value in it holds CR, LF or NUL.
    """
    head, sep, body = text.partition("\n\n")
    headers = _headers(head)
    body = body.translate(_FROM_MARKS)
    if not mime:
        return f"{head}{sep}{body}"
    from email.message import EmailMessage

    msg = EmailMessage(policy=POLICY)
    subtype = next((_subtype(v) for n, v in headers if n.lower() == "content-type"), "plain")
    given = {name.lower() for name, _ in headers}
    for name, value in [*headers, *((n, v) for n, v in defaults if n.lower() not in given)]:
        if name.lower() in _MIME_FIELDS:  # set from the body below
            continue
        try:  # an HTML body's template escaped every value, its headers' too: a header is not HTML
            msg[name] = unescape(value) if subtype == "html" else value
        except (ValueError, TypeError, IndexError) as exc:  # the email package refuses it
            raise HeaderError(f"header {name}: {exc}") from None
    set_body(msg, body, subtype)
    if html is not None:
        msg.add_alternative(html, subtype="html", charset="utf-8", cte=_cte(html))
    return msg.as_bytes().decode("utf-8")  # as_string() would turn the 8bit body into base64


def _subtype(content_type: str) -> str:
    found = _TEXT_SUBTYPE.match(content_type)
    return found.group(1).lower() if found else "plain"


class MessageDefaults:
    """The headers every message has unless its template writes them: From (the sender) and Date (the
    as-of day, 00:00 UTC), the same for the whole run, and per customer To (name and e-mail), a
    Message-ID the same on every run, and List-Unsubscribe (+ List-Unsubscribe-Post for a web address,
    RFC 8058) when [sender] unsubscribe is set ({customer_id} in it is the customer's id)."""

    def __init__(self, sender: Mapping[str, str], as_of: dt.date) -> None:
        address = sender.get("email") or ""
        self.sender = formataddr((sender.get("name") or "", address)) if address else ""
        self.date = format_datetime(dt.datetime(as_of.year, as_of.month, as_of.day, tzinfo=dt.UTC))
        self._from = [("From", self.sender)] if address else []
        self._as_of = as_of
        self._domain = address.rpartition("@")[2] or "crmlist.invalid"
        self._unsubscribe = sender.get("unsubscribe") or ""

    def for_customer(self, customer: Mapping[str, Any], campaign: str) -> list[tuple[str, str]]:
        found = list(self._from)
        email = customer.get("email")
        if isinstance(email, str) and email.strip():
            name = " ".join(str(customer[k]) for k in ("first_name", "last_name") if customer.get(k))
            found.append(("To", formataddr((name, email.strip()))))
        found.append(("Date", self.date))
        customer_id = str(customer.get("customer_id"))
        digest = hashlib.sha256(f"{campaign}\0{self._as_of}\0{customer_id}".encode()).hexdigest()[:32]
        found.append(("Message-ID", f"<{digest}@{self._domain}>"))
        if self._unsubscribe:
            link = self._unsubscribe.replace("{customer_id}", customer_id)
            found.append(("List-Unsubscribe", f"<{link}>"))
            if link.startswith(("https://", "http://")):
                found.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
        return found
