"""PDF letters: one page per letter, text in every script, Typst escaping, failures, atomic byte-identical bundle."""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import textwrap
from pathlib import Path

import pypdf
import pytest
import typst
from test_letters import job, make_db, make_ws

from crmlist.errors import BadInputError, UsageError
from crmlist.letters import LetterFailure, check_templates, render_letters
from crmlist.letters.pdf import text_as_markup, typst_markup, typst_string
from crmlist.letters.pdfmerge import PdfConcatenator, PdfError

CUSTOMERS = """\
    customer_id,first_name,last_name,gender,language,street,postal_code,city,country
    C1,Jan,Kowalski,M,pl,ul. Długa 1,30-001,Kraków,PL
    C2,Jana,Nováková,F,cs,Václavské náměstí 2,110 00,Praha,CZ
    C3,Иван,Петров,M,ru,ул. Тверская 3,125009,Москва,RU
    C4,Alex,Smith,X,en,1 High Street,SW1A 1AA,London,GB
"""
CONFIG = """\
    currency = "PLN"
    [sender]
    name = "Sklep Łódź"
    street = "ul. Piotrkowska 1"
    postal_code = "90-001"
    city = "Łódź"
    country = "PL"
"""
LETTER = "{{ customer|salutation }},\n\n{{ offer }}: {{ customer.monetary|money }}.\n{{ sender.name }}\n"


def pages(path: Path) -> list[list[str]]:
    """Each page's text lines, as a PDF reader extracts them."""
    reader = pypdf.PdfReader(path, strict=True)
    return [page.extract_text().splitlines() for page in reader.pages]


def test_one_page_per_letter_with_sender_address_window_and_text_in_every_script(tmp_path: Path) -> None:
    ws = make_ws(tmp_path, {"winback.txt.j2": LETTER}, CONFIG)
    result = render_letters(make_db(tmp_path, CUSTOMERS), ws, job("pdf"), tmp_path / "out")
    assert result.written == ["C1", "C2", "C3", "C4"]
    assert result.paths == [tmp_path / "out" / "letters.pdf"]
    sender = [
        "Sklep Łódź",
        "ul. Piotrkowska 1",
        "90-001 Łódź",
        "PL",
        "Sklep Łódź · ul. Piotrkowska 1 · 90-001 Łódź · PL",
    ]
    assert pages(result.paths[0]) == [
        [*sender, "Jan Kowalski", "ul. Długa 1", "30-001 Kraków", "Szanowny Panie Kowalski,", "STD10: 499,00\xa0zł.",
         "Sklep Łódź"],
        [*sender, "Jana Nováková", "Václavské náměstí 2", "110 00 Praha", "CZ", "Vážená paní Nováková,",
         "STD10: 1\xa0234,50\xa0PLN.", "Sklep Łódź"],
        [*sender, "Иван Петров", "ул. Тверская 3", "125009 Москва", "RU", "Уважаемый Иван Петров,",
         "STD10: 20,00\xa0PLN.", "Sklep Łódź"],
        [*sender, "Alex Smith", "1 High Street", "SW1A 1AA London", "GB", "Dear Alex Smith,", "STD10: PLN45.50.",
         "Sklep Łódź"],
    ]  # fmt: skip
    reader = pypdf.PdfReader(result.paths[0])
    assert {tuple(round(float(v)) for v in page.mediabox) for page in reader.pages} == {(0, 0, 595, 842)}  # A4
    assert reader.metadata == {
        "/Title": "winback",
        "/Creator": "crmlist",
        "/Producer": "crmlist",
        "/CreationDate": "D:20261101000000Z",
        "/ModDate": "D:20261101000000Z",
    }


def test_bundle_is_byte_identical_across_runs_and_jobs_and_written_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_ws(tmp_path, {"winback.txt.j2": LETTER}, CONFIG)
    seen: list[list[str]] = []
    finish = PdfConcatenator.finish

    def finish_and_look(self: PdfConcatenator) -> None:
        seen.append(sorted(os.listdir(tmp_path / "a")))
        finish(self)

    monkeypatch.setattr(PdfConcatenator, "finish", finish_and_look)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "letters.pdf").write_bytes(b"old")
    one = render_letters(make_db(tmp_path, CUSTOMERS), ws, job("pdf"), tmp_path / "a").paths[0].read_bytes()
    assert seen == [[f".letters.pdf.tmp-{os.getpid()}", "letters.pdf"]]  # hidden while written, then renamed
    assert (tmp_path / "a" / "letters.pdf").read_bytes() == one
    again = render_letters(make_db(tmp_path, CUSTOMERS), ws, job("pdf"), tmp_path / "b").paths[0].read_bytes()
    assert again == one
    # one letter per Typst document, workers replaced: pieces are merged in order into the same pages
    pooled = job("pdf")
    pooled.jobs, pooled.batch_rows = 2, 1
    monkeypatch.setattr("crmlist.letters.stream.PDF_BATCHES_PER_WORKER", 1)  # a fresh pair of workers after 2
    split = render_letters(make_db(tmp_path, CUSTOMERS), ws, pooled, tmp_path / "c").paths[0]
    assert [p[5] for p in pages(split)] == ["Jan Kowalski", "Jana Nováková", "Иван Петров", "Alex Smith"]
    pooled.jobs = 1
    assert render_letters(make_db(tmp_path, CUSTOMERS), ws, pooled, tmp_path / "d").paths[0].read_bytes() == (
        split.read_bytes()
    )


def test_failed_run_leaves_the_old_bundle_and_no_temporary_file(tmp_path: Path) -> None:
    templates = {
        "winback.txt.j2": "{{ customer.first_name }}{% include 'broken.txt.j2' %}",
        "broken.txt.j2": "{% if %}",
    }
    ws = make_ws(tmp_path, templates, CONFIG)
    out = tmp_path / "out"
    out.mkdir()
    (out / "letters.pdf").write_bytes(b"old")
    with pytest.raises(BadInputError, match="template syntax error"):
        render_letters(make_db(tmp_path, CUSTOMERS), ws, job("pdf"), out)
    assert sorted(os.listdir(out)) == ["letters.pdf"]
    assert (out / "letters.pdf").read_bytes() == b"old"


TYP = """\
    #set text(size: 12pt)
    *{{ customer|salutation }}*, #text(fill: blue)[{{ customer.last_name }}]
    #link({{ customer.first_name|typst_str }})[{{ offer }}]
    {% if customer.customer_id == 'C4' %}#no-such-function(){% endif %}
"""


def test_typ_template_escapes_customer_data_and_a_typst_error_fails_only_its_letter(tmp_path: Path) -> None:
    hostile = '#pagebreak() ] $x$ <l> @r \\ "q" // c'
    field = '"' + hostile.replace('"', '""') + '"'  # as a CSV field
    customers = CUSTOMERS.replace("Jan,Kowalski,M", f"{field},Kowalski,M").replace("Jana,Nováková,F", f"Jana,{field},F")
    ws = make_ws(tmp_path, {"winback.txt.j2": LETTER, "winback.typ.j2": TYP, "winback.ru.typ.j2": "ru"}, CONFIG)
    out = tmp_path / "out"
    result = render_letters(make_db(tmp_path, customers), ws, job("pdf"), out)
    assert result.written == ["C1", "C2", "C3"]
    assert result.failed == [LetterFailure("C4", "winback.typ.j2", None, "typst: unknown variable: no-such-function")]
    texts = pages(result.paths[0])
    assert len(texts) == 3  # the data's #pagebreak() stayed text
    assert texts[0][5:] == [
        f"{hostile} Kowalski",
        "ul. Długa 1",
        "30-001 Kraków",
        "Szanowny Panie Kowalski, Kowalski STD10",
    ]
    assert texts[1][5:] == [f"Jana {hostile}", "Václavské náměstí 2", "110 00 Praha", "CZ",
                            f"Vážená paní {hostile}, {hostile} STD10"]  # fmt: skip
    assert texts[2][5:] == ["Иван Петров", "ул. Тверская 3", "125009 Москва", "RU", "ru"]
    assert (out / "failed.csv").read_text(encoding="utf-8") == textwrap.dedent("""\
        customer_id,template,line,error
        C4,winback.typ.j2,,typst: unknown variable: no-such-function
    """)


def test_an_html_letter_without_typ_template_is_a_usage_error(tmp_path: Path) -> None:
    ws = make_ws(tmp_path, {"winback.html.j2": "<p>x</p>"}, CONFIG)
    with pytest.raises(UsageError) as caught:
        render_letters(make_db(tmp_path, CUSTOMERS, template="winback.html"), ws, job("pdf"), tmp_path / "out")
    assert caught.value.message == "--letters-format pdf: templates/winback: an html letter cannot be laid out as PDF"
    assert not (tmp_path / "out").exists()


def test_typst_escapes() -> None:
    assert (
        typst_markup("a#b $c$ *d* _e_ `f` <g> @h [i] ~j")
        == "a\\#b \\$c\\$ \\*d\\* \\_e\\_ \\`f\\` \\<g\\> \\@h \\[i\\] \\~j"
    )
    assert typst_markup("// k\\ = - + 1. 'l' \"m\" é") == "\\/\\/ k\\\\ \\= \\- \\+ 1\\. \\'l\\' \\\"m\\\" é"
    assert typst_string('say "hi"\\\n\x01') == '"say \\"hi\\"\\\\\\n\\u{1}"'
    assert text_as_markup("Dear Ann,\n\n  two  lines\nhere\n") == "Dear Ann\\, \\\n\ntwo  lines \\\nhere \\\n"


def _piece(*texts: str) -> bytes:
    source = '#set page(paper: "a5")\n' + "\n#pagebreak()\n".join(typst_markup(t) for t in texts)
    stamp = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    pdf: bytes = typst.compile(source.encode(), format="pdf", ignore_system_fonts=True, pdf_tags=False, timestamp=stamp)
    return pdf


def test_concatenator_keeps_pages_in_order_and_renumbers_objects() -> None:
    out = io.BytesIO()
    merged = PdfConcatenator(out, title="Łódź (1 0 R)", date=dt.date(2026, 11, 1))
    merged.add(_piece("a 1 0 R", "b"))
    merged.add(_piece("c (2 0 R)"))
    merged.finish()
    data = out.getvalue()
    reader = pypdf.PdfReader(io.BytesIO(data), strict=True)
    assert [page.extract_text() for page in reader.pages] == ["a 1 0 R", "b", "c (2 0 R)"]
    assert reader.metadata is not None and reader.metadata.title == "Łódź (1 0 R)"
    assert len(re.findall(rb"/Type\s*/Page\b", data)) == 3
    with pytest.raises(PdfError, match="no startxref"):
        merged.add(b"not a pdf")


def test_check_compiles_typ_templates_with_typst(tmp_path: Path) -> None:
    templates = {
        "winback.txt.j2": LETTER,
        "winback.typ.j2": '#text(weight: "bold")[{{ customer|salutation }}]',
        "winback.pl.typ.j2": "#unknown-thing[{{ customer.first_name }}]",
        "winback.cs.typ.j2": "{{ customer.no_such_fact }}",
    }
    ws = make_ws(tmp_path, templates, CONFIG)
    assert [e.message for e in check_templates(ws, ["winback"])] == [
        "templates/winback.cs.typ.j2:1: undefined variable: 'dict object' has no attribute 'no_such_fact'",
        "templates/winback.pl.typ.j2: typst: unknown variable: unknown-thing",
    ]
