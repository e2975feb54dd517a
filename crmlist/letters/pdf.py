"""PDF letters: each letter as Typst markup on A4 with sender block and address window, compiled per batch."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from crmlist.letters.job import LetterJob, RenderedLetter
from crmlist.letters.markdown import markdown_as_markup
from crmlist.letters.typstmarkup import TypstMarkup, typst_finalize, typst_markup, typst_string

__all__ = ["TypstMarkup", "typst_finalize", "typst_markup", "typst_string"]  # for the letter environment

TYPST_EXT = "typ"
PDF_BATCH_ROWS = 128  # letters per Typst document: a failure's retry cost stays small
# Typst memoizes the layout of everything it compiled (100-200 kB a letter) and the Python binding
# offers no way to evict it, so a worker is replaced after this many batches: its memory stays bounded.
PDF_BATCHES_PER_WORKER = 8
_LANG_RE = re.compile(r"^[a-z]{2,3}$")

# Page layout for every letter: A4, a sender block top right, and the address window of a DIN 5008
# form B envelope (20 mm from the left edge, 45 mm from the top, 85 x 45 mm) with the return address
# line above the recipient. `crm-letter` starts each letter on a new page.
PREAMBLE = """\
#set page(paper: "a4", margin: (top: 20mm, bottom: 20mm, left: 25mm, right: 20mm))
#set text(font: "Libertinus Serif", size: 11pt)
#let crm-sender = {sender}
#let crm-letter(recipient, lang, body) = {{
  pagebreak(weak: true)
  set text(lang: lang)
  place(top + right, block(width: 75mm, align(right, text(size: 9pt, crm-sender.join(linebreak())))))
  place(top + left, dx: -5mm, dy: 25mm, block(width: 85mm, height: 45mm, inset: (left: 5mm, top: 5mm), {{
    text(size: 7pt, crm-sender.join(" · "))
    v(2mm)
    recipient.join(linebreak())
  }}))
  v(80mm)
  body
}}
"""


def _array(items: list[str]) -> str:
    return "(" + "".join(f"{typst_string(item)}, " for item in items) + ")"


def text_as_markup(text: str) -> str:
    """A txt letter as Typst markup: its lines kept, blank lines as paragraph breaks."""
    out = []
    for line in text.replace("\r\n", "\n").split("\n"):
        line = line.strip()
        out.append(typst_markup(line) + " \\" if line else "")
    return "\n".join(out)


def sender_lines(sender: dict[str, str]) -> list[str]:
    place = " ".join(p for p in (sender.get("postal_code", ""), sender.get("city", "")) if p)
    return [p for p in (sender.get("name", ""), sender.get("street", ""), place, sender.get("country", "")) if p]


def address_lines(customer: dict[str, Any], sender_country: str) -> tuple[str, ...]:
    """The address window: name, street, postal code and city, and the country when it is not the sender's."""

    def text(key: str) -> str:
        value = customer.get(key)
        return " ".join(str(value).split()) if value is not None else ""

    name = " ".join(p for p in (text("first_name"), text("last_name")) if p)
    place = " ".join(p for p in (text("postal_code"), text("city")) if p)
    country = text("country")
    if country.upper() == sender_country.strip().upper():
        country = ""
    return tuple(p for p in (name, text("street"), place, country) if p)


def letter_source(letter: RenderedLetter) -> str:
    """One letter's call of the page layout: a .typ.j2 letter is markup already, an md letter is laid out
    from its Markdown, and a txt letter keeps its lines with every character escaped."""
    body = letter.text or ""
    if letter.ext == "md":
        body = markdown_as_markup(body)
    elif letter.ext != TYPST_EXT:
        body = text_as_markup(body)
    primary = (letter.language or "").strip().lower().replace("_", "-").split("-")[0]
    lang = primary if _LANG_RE.match(primary) else "en"
    return f'#crm-letter({_array(list(letter.address))}, "{lang}")[\n{body}\n]\n'


class PdfEncoder:
    """Compiles a batch of letters to PDF in a worker, finding the letters Typst rejects by bisection."""

    def __init__(self, job: LetterJob, sender: dict[str, str], templates_dir: Path) -> None:
        self.preamble = PREAMBLE.format(sender=_array(sender_lines(sender)))
        self.timestamp = dt.datetime(job.as_of.year, job.as_of.month, job.as_of.day, tzinfo=dt.UTC)
        self.root = templates_dir
        fonts = templates_dir / "fonts"
        self.font_paths = [str(fonts)] if fonts.is_dir() else []
        self._compiler: Any = None

    def _compile(self, sources: list[str]) -> bytes:
        import typst  # only PDF runs need it

        if self._compiler is None:
            root = str(self.root) if self.root.is_dir() else None
            self._compiler = typst.Compiler(root=root, font_paths=self.font_paths, ignore_system_fonts=True)
        source = (self.preamble + "".join(sources)).encode("utf-8")
        pdf: bytes = self._compiler.compile(source, format="pdf", timestamp=self.timestamp, pdf_tags=False)
        return pdf

    def encode(self, letters: list[RenderedLetter]) -> tuple[list[bytes], dict[int, str]]:
        """PDF pieces of the letters in order, and the positions of letters Typst rejected with its message."""
        sources = [letter_source(letter) for letter in letters]
        pieces: list[bytes] = []
        errors: dict[int, str] = {}
        if sources:
            self._bisect(sources, 0, len(sources), pieces, errors)
        return pieces, errors

    def _bisect(self, sources: list[str], lo: int, hi: int, pieces: list[bytes], errors: dict[int, str]) -> None:
        import typst

        try:
            pieces.append(self._compile(sources[lo:hi]))
        except typst.TypstError as exc:
            if hi - lo == 1:
                errors[lo] = f"typst: {getattr(exc, 'message', None) or exc}"
                return
            mid = (lo + hi) // 2
            self._bisect(sources, lo, mid, pieces, errors)
            self._bisect(sources, mid, hi, pieces, errors)
