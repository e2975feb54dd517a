"""Markdown letters as PDF: laid out from their Markdown (markdown-it-py), never printed as raw markup."""

from __future__ import annotations

from pathlib import Path

import pypdf
from test_letters import job, make_db, make_ws

from crmlist.letters import render_letters
from crmlist.letters.markdown import markdown_as_markup

CUSTOMERS = """\
    customer_id,first_name,last_name,gender,language,street,postal_code,city,country
    C1,Jan,Kowalski,M,pl,ul. Długa 1,30-001,Kraków,PL
    C2,Anna_*x*,Nowak,F,pl,ul. Krótka 2,30-002,Kraków,PL
"""
LETTER = """\
# Oferta dla {{ customer.first_name }}

Szanowny Panie, **20% rabatu** z kodem `{{ offer }}`,
*tylko* w [naszym sklepie](https://shop.example/pl).

- teczka
- folder
  - czarny

1. zamów
2. odbierz

> Do zobaczenia!

---
"""


def page_text(path: Path) -> list[list[str]]:
    return [page.extract_text().splitlines() for page in pypdf.PdfReader(path, strict=True).pages]


def fonts(path: Path) -> set[str]:
    reader = pypdf.PdfReader(path)
    found = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            found.add(str(font.get_object()["/BaseFont"]).split("+")[-1])
    return found


def test_a_markdown_letter_is_laid_out_not_printed_as_markup(tmp_path: Path) -> None:
    ws = make_ws(tmp_path, {"winback.md.j2": LETTER})
    result = render_letters(make_db(tmp_path, CUSTOMERS), ws, job("pdf"), tmp_path / "out")
    assert result.written == ["C1", "C2"]
    first, second = page_text(result.paths[0])
    body = first[first.index("Oferta dla Jan") :]
    assert body == [
        "Oferta dla Jan",
        "Szanowny Panie, 20% rabatu z kodem STD10, tylko w naszym sklepie.",
        "• teczka",
        "• folder",
        "‣ czarny",
        "1. zamów",
        "2. odbierz",
        "Do zobaczenia!",
    ]
    assert "Oferta dla Anna_*x*" in second  # a value is only words: its stars are no emphasis
    bold_italic_regular = {f"LibertinusSerif-{style}-Identity-H" for style in ("Bold", "Italic", "Regular")}
    assert bold_italic_regular <= fonts(result.paths[0])
    links = [a.get_object()["/A"]["/URI"] for a in pypdf.PdfReader(result.paths[0]).pages[0]["/Annots"]]
    assert links == ["https://shop.example/pl"]


def test_markdown_structure_becomes_typst_calls_and_text_is_escaped() -> None:
    assert markdown_as_markup("## Hi *you*\n\na # b, $5 <x> @y\n") == "== Hi #emph[you]\n\na \\# b\\, \\$5 \\<x\\> \\@y"
    assert markdown_as_markup("3. x\n4. y\n") == "#enum(start: 3, [x], [y])"
    assert markdown_as_markup("<b>raw</b>\n") == "\\<b\\>raw\\<\\/b\\>"
    assert markdown_as_markup("![a logo](http://x.example/l.png)\n") == "a logo"


def test_a_value_in_a_markdown_letter_is_only_words(tmp_path: Path) -> None:
    ws = make_ws(tmp_path, {"winback.md.j2": LETTER})
    result = render_letters(make_db(tmp_path, CUSTOMERS), ws, job("pdf"), tmp_path / "out")
    assert "Oferta dla Anna_*x*" in page_text(result.paths[0])[1]
