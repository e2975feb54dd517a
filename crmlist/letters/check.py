"""`crmlist check` for templates: existence, ambiguity, syntax, and a render against a sample customer."""

from __future__ import annotations

import datetime as dt
import traceback
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError

from crmlist.errors import BadInputError, CrmlistError
from crmlist.letters.environment import (
    LetterSandbox,
    build_environment,
    build_typst_environment,
    compile_template,
    split_template_name,
    template_ext,
    template_index,
)
from crmlist.letters.filters import resolve_locale
from crmlist.letters.job import LetterJob, RenderedLetter
from crmlist.letters.limits import LETTER_ERRORS, LetterClock, letter_seconds
from crmlist.letters.pdf import TYPST_EXT, PdfEncoder
from crmlist.workspace import Workspace

_SAMPLE_DATE = dt.date(2026, 1, 5)
_SAMPLE_CUSTOMER: dict[str, Any] = {
    "customer_id": "C-0001",
    "first_name": "Anna",
    "last_name": "Nowak",
    "gender": "F",
    "birth_date": dt.date(1980, 5, 17),
    "email": "anna@example.com",
    "phone": "+48600000000",
    "street": "ul. Długa 1",
    "city": "Kraków",
    "postal_code": "30-001",
    "country": "PL",
    "language": "en",
    "household_id": "H-0001",
    "signup_date": dt.date(2020, 3, 1),
    "email_opt_in": True,
    "sms_opt_in": True,
    "mail_opt_in": True,
    "phone_opt_in": True,
    "recency_days": 200,
    "frequency": 3,
    "monetary": Decimal("1234.50"),
    "frequency_365": 1,
    "monetary_365": Decimal("99.90"),
    "avg_order_value": Decimal("411.50"),
    "first_purchase_date": dt.date(2021, 6, 1),
    "last_purchase_date": dt.date(2025, 6, 19),
    "tenure_days": 2136,
    "age": 46,
    "categories": ["bags"],
}
_SAMPLE_RECOMMENDATION = {
    "product_id": "P-0001",
    "name": "Folder",
    "category": "folders",
    "color": "black",
    "price": Decimal("49.00"),
    "reason": "complement",
    "because_id": "P-0000",
    "because": "Briefcase",
    "because_color": "black",
    "because_category": "bags",
    "same_color": True,
    "why": "matches your Briefcase (black)",
}


def sample_context(ws: Workspace, language: str | None, extra_columns: Iterable[str] = ()) -> dict[str, Any]:
    """A letter context with a made-up customer speaking `language` (the workspace locale when None)."""
    customer = dict(_SAMPLE_CUSTOMER)
    customer.update({column: "sample" for column in extra_columns if column not in customer})
    customer["language"] = language or ws.locale
    return {
        "customer": customer,
        "campaign": "sample",
        "cell": "sample",
        "offer": "SAMPLE10",
        "channel": "email",
        "as_of": _SAMPLE_DATE,
        "sender": ws.sender,
        "recommendations": [dict(_SAMPLE_RECOMMENDATION)],
        "locale": resolve_locale(customer["language"], ws.locale),
    }


def _sample_render_error(
    env: LetterSandbox, ws: Workspace, path: Path, language: str | None, extra: Iterable[str]
) -> CrmlistError | None:
    template, context = compile_template(env, ws, path), sample_context(ws, language, extra)
    try:
        LetterClock(letter_seconds(ws.section("letters"))).render(template, context)
    except TemplateSyntaxError as exc:  # from an included template
        return BadInputError(f"templates/{path.name}", f"included template: {exc.message}", "fix its syntax")
    except (UndefinedError, SecurityError) as exc:
        kind = "sandbox violation" if isinstance(exc, SecurityError) else "undefined variable"
        location = _template_location(ws, path, exc)
        return BadInputError(location, f"{kind}: {exc}", "use the variables of DESIGN section 6: customer, ...")
    except RecursionError as exc:  # a loop through a computed name, or a macro calling itself for ever
        return BadInputError(
            _template_location(ws, path, exc),
            "the sample letter recurses without end",
            "a macro calling itself needs a condition that stops it; an include must not lead back to its template",
        )
    except LETTER_ERRORS:  # a filter that chokes on made-up sample values says nothing about real data
        return None
    return None


def _template_location(ws: Workspace, path: Path, exc: BaseException) -> str:
    """templates/FILE:LINE of the innermost template frame of a failure (the file alone without one)."""
    where, line = path.name, None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename.startswith(str(ws.templates_dir)):
            where, line = Path(frame.f_code.co_filename).name, lineno
    return f"templates/{where}:{line}" if line is not None else f"templates/{where}"


def _check_name(env: LetterSandbox, ws: Workspace, name: str, extra: Iterable[str]) -> list[CrmlistError]:
    try:
        stem, explicit_ext = split_template_name(name)
    except BadInputError as exc:
        return [exc]
    index = template_index(ws, stem)
    errors: list[CrmlistError] = []
    ext: str | None = None
    try:
        ext = template_ext(ws, name)
    except CrmlistError as exc:
        errors.append(exc)
        if not index or explicit_ext:
            return errors  # nothing of the format asked for; when ambiguous, every file is checked
    for (language, file_ext), path in sorted(index.items(), key=lambda item: item[1].name):
        if ext is not None and file_ext != ext:
            continue
        errors.extend(_check_file(env, ws, path, language, extra))
    typst_env = build_typst_environment(env)
    for (language, _), path in sorted(template_index(ws, stem, (TYPST_EXT,)).items(), key=lambda i: i[1].name):
        errors.extend(_check_file(typst_env, ws, path, language, extra))
    return errors


def _check_file(
    env: LetterSandbox, ws: Workspace, path: Path, language: str | None, extra: Iterable[str]
) -> list[CrmlistError]:
    try:
        compile_template(env, ws, path)
    except BadInputError as exc:
        return [exc]
    problem = _sample_render_error(env, ws, path, language, extra)
    if problem is None and path.name.endswith(f".{TYPST_EXT}.j2"):
        problem = _sample_typst_error(env, ws, path, language, extra)
    return [problem] if problem is not None else []


def _sample_typst_error(
    env: LetterSandbox, ws: Workspace, path: Path, language: str | None, extra: Iterable[str]
) -> CrmlistError | None:
    """A .typ.j2 template's sample letter compiled by Typst: its markup must be valid."""
    context = sample_context(ws, language, extra)
    template = compile_template(env, ws, path)
    try:
        text = LetterClock(letter_seconds(ws.section("letters"))).render(template, context)
    except LETTER_ERRORS:  # reported by _sample_render_error, or a filter choking on sample values
        return None
    as_of = context["as_of"]
    encoder = PdfEncoder(LetterJob("sample", as_of, "pdf"), ws.sender, ws.templates_dir)
    letter = RenderedLetter("C-0001", "sample", None, None, context["customer"]["language"], path.name, TYPST_EXT, text)
    _, errors = encoder.encode([letter])
    if errors:
        return BadInputError(f"templates/{path.name}", errors[0], "fix the Typst markup; see https://typst.app/docs/")
    return None


def check_templates(ws: Workspace, names: list[str], extra_columns: Iterable[str] = ()) -> list[CrmlistError]:
    """Every problem of these templates: missing, ambiguous, syntax, undefined variables (with lines).

    Each file of a name is rendered against a sample customer in the file's language; `extra_columns`
    names the extra customer columns the data has, so that templates using them are not flagged.
    """
    env = build_environment(ws)
    extra = tuple(extra_columns)
    errors: list[CrmlistError] = []
    for name in dict.fromkeys(names):
        errors.extend(_check_name(env, ws, name, extra))
    return errors
