"""Rendering letters: a batch of targets (an Arrow record batch) in, each target's letter out."""

from __future__ import annotations

import datetime as dt
import itertools
import operator
import traceback
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
from jinja2 import Template, TemplateSyntaxError

from crmlist.errors import NotFoundError, UsageError
from crmlist.letters.eml import MessageDefaults, eml_message
from crmlist.letters.environment import (
    LetterSandbox,
    build_environment,
    build_typst_environment,
    compile_template,
    customer_columns,
    pick_template,
    reads_variable,
    split_template_name,
    syntax_error,
    template_ext,
    template_index,
)
from crmlist.letters.filters import resolve_locale
from crmlist.letters.job import CustomerIds, LetterFailure, LetterJob, RenderedChunk, RenderedLetter
from crmlist.letters.limits import LETTER_ERRORS, LetterClock, bounded_join, letter_seconds
from crmlist.letters.pdf import TYPST_EXT, PdfEncoder, address_lines
from crmlist.letters.writers import LetterEncoder, letters_folder, write_letter_files
from crmlist.workspace import Workspace

RECS_COLUMN = "crm_recommendations"
_META = ("crm_campaign", "crm_cell", "crm_offer", "crm_channel", "crm_template")
# Columns of a facts row whose values may appear in an error message (DESIGN section 7).
_NON_PERSONAL = frozenset(
    {"customer_id", "gender", "language", "country", "household_id", "email_opt_in", "sms_opt_in"}
    | {"mail_opt_in", "phone_opt_in", "categories"}
)
_FACT_COLUMNS = frozenset(
    {"recency_days", "frequency", "monetary", "frequency_365", "monetary_365", "avg_order_value"}
    | {"first_purchase_date", "last_purchase_date", "tenure_days", "age"}
)
_MAX_ERROR = 300
_ALWAYS_COLUMNS = frozenset({"customer_id", "language", "email"})  # file names, template choice, mbox To:
_ADDRESS_COLUMNS = frozenset({"first_name", "last_name", "street", "postal_code", "city", "country"})
_EPOCH = dt.date(1970, 1, 1).toordinal()
# (template, file name, ext) for a (name, language), or why there is none
_Chosen = tuple[Template, str, str] | NotFoundError
# the same with the letter's locale, as a letter needs it
_Picked = tuple[Template, str, str, str] | NotFoundError


@lru_cache(maxsize=1 << 16)
def _day(days: int) -> dt.date:
    return dt.date.fromordinal(_EPOCH + days)


def column_values(column: pa.Array) -> list[Any]:
    """A column as Python values, as to_pylist() gives them, for the dearest types a faster way: dates
    through a cache of days (10x faster), decimals through their text (2x faster, the same Decimal)."""
    kind = column.type
    if pa.types.is_date32(kind):
        return [None if d is None else _day(d) for d in column.cast(pa.int32()).to_pylist()]
    if pa.types.is_decimal(kind) and kind.scale >= 0:
        texts = column.cast(pa.string()).to_pylist()
        return list(map(Decimal, texts)) if column.null_count == 0 else [t and Decimal(t) for t in texts]
    return column.to_pylist()


# What tells two offers apart: the product, the reason, and the bought product it follows from.
_REC_KEY_FIELDS = ("product_id", "reason", "because_id")


def recommendation_lists(column: pa.ListArray, known: dict[tuple[Any, ...], dict[str, Any]]) -> list[Any]:
    """The recommendations column as lists of dicts, one dict per (product, reason, bought product it
    follows from) shared by every letter that offers it: templates cannot change them (immutable
    sandbox), and building them is the dearest part of a row."""
    start, stop = column.offsets[0].as_py(), column.offsets[-1].as_py()
    values = column.values.slice(start, stop - start)
    fields = [values.field(name) for name in _REC_KEY_FIELDS if values.type.get_field_index(name) >= 0]
    if values.null_count or any(f.null_count for f in fields):
        recs = _recommendations_by_key(values, known)
    else:
        recs = _recommendations_by_code(values, fields, known)
    offsets = column.offsets.to_pylist()
    return [recs[a - start : b - start] for a, b in itertools.pairwise(offsets)]


def _recommendations_by_code(
    values: pa.StructArray, fields: list[pa.Array], known: dict[tuple[Any, ...], dict[str, Any]]
) -> list[Any]:
    """Each row's dict, rows told apart by one integer made of the dictionary codes of its key fields:
    no string per row. (No Arrow value is made from a Python one here, nor converted to NumPy: either
    imports pandas, half a second per worker.)"""
    encoded = [f.dictionary_encode() for f in fields]
    words = [e.dictionary.to_pylist() for e in encoded]
    codes = encoded[0].indices.to_pylist()
    for e, w in zip(encoded[1:], words[1:], strict=True):
        codes = list(map(operator.add, map(operator.mul, codes, itertools.repeat(len(w))), e.indices.to_pylist()))
    by_code, first = {}, None
    for code in set(codes):
        parts, rest = [], code
        for w in reversed(words):
            rest, index = divmod(rest, len(w))
            parts.append(w[index])
        key = tuple(reversed(parts))
        rec = known.get(key)
        if rec is None:  # an offer not seen before: its dict from its first row here
            first = first or dict(zip(reversed(codes), range(len(codes) - 1, -1, -1), strict=True))
            rec = known[key] = explained(values.slice(first[code], 1).to_pylist()[0])
        by_code[code] = rec
    return list(map(by_code.__getitem__, codes))


def _recommendations_by_key(values: pa.StructArray, known: dict[tuple[Any, ...], dict[str, Any]]) -> list[Any]:
    """Each row's dict (None for a null one), looked up by its key fields."""
    rows = values.to_pylist()
    names = [name for name in _REC_KEY_FIELDS if values.type.get_field_index(name) >= 0]
    keys = [None if rec is None else tuple(rec.get(name) for name in names) for rec in rows]
    found = []
    for key, rec in zip(keys, rows, strict=True):
        if key is not None and key not in known:
            known[key] = explained(rec)
        found.append(None if key is None else known[key])
    return found


def explained(rec: dict[str, Any]) -> dict[str, Any]:
    """An offer with what a letter may say of it, once per offer (the letters share it): same_color
    (its colour is the bought product's) and why, in English ("matches your Briefcase (black)")."""
    if "because_id" not in rec:
        return rec
    color, because_color = rec.get("color"), rec.get("because_color")
    rec["same_color"] = bool(color and because_color and color.lower() == because_color.lower())
    bought = rec.get("because") or rec.get("because_id")
    if bought is None:
        rec["why"] = "often bought with what you bought"
    elif rec.get("reason") == "co-purchase":
        rec["why"] = f"often bought with your {bought}"
    elif rec["same_color"]:
        rec["why"] = f"matches your {bought} ({because_color})"
    else:
        rec["why"] = f"goes with your {bought}"
    return rec


class Renderer:
    """Renders letters for one workspace and job; every worker process builds one of its own. With
    out_dir, letters in the files format are written there (under letters/) as they are rendered."""

    def __init__(self, ws: Workspace, job: LetterJob, out_dir: Path | None = None) -> None:
        self.ws = ws
        self.job = job
        self.folder = letters_folder(out_dir) if out_dir is not None and job.letters_format == "files" else None
        self.pdf = job.letters_format == "pdf"
        self.env = build_environment(ws)
        self.typst_env: LetterSandbox | None = build_typst_environment(self.env) if self.pdf else None
        self.encoder: LetterEncoder | PdfEncoder = (
            PdfEncoder(job, ws.sender, ws.templates_dir) if self.pdf else LetterEncoder(job, ws.sender)
        )
        base = {**self.env.globals, "as_of": job.as_of, "sender": ws.sender}
        # every letter's context starts as a copy of this (a copy of a dict of the right size is cheap)
        self._context = base | dict.fromkeys(("customer", "campaign", "cell", "offer", "channel", "recommendations"))
        self._context["locale"] = None
        self._templates_dir = str(ws.templates_dir)
        self._sender_country = ws.sender.get("country", "")
        self._locale = ws.locale
        self._indexes: dict[str, tuple[str, str, dict[tuple[str | None, str], Path]]] = {}
        self._typst_indexes: dict[str, dict[tuple[str | None, str], Path]] = {}
        self._chosen: dict[tuple[str, str | None], _Picked] = {}
        self._html_parts: dict[tuple[str, str], Template | None] = {}  # (name, eml file): its HTML part
        self._recs: dict[tuple[Any, ...], dict[str, Any]] = {}
        # customer columns converted to Python for the templates: converting a value costs more than
        # rendering it, and letters read a few of the dozens of facts
        self._wanted: set[str] | None = set(_ALWAYS_COLUMNS | (_ADDRESS_COLUMNS if self.pdf else set()))
        # whether any template reads `recommendations`: if none does, no run computes them
        self.wants_recommendations = False
        self._message_defaults = MessageDefaults(ws.sender, job.as_of)  # of every eml message
        self._mime = job.letters_format != "jsonl"  # jsonl keeps an eml letter's text as rendered
        # a letter rendering too long fails: render_chunk runs the clock
        self.clock = LetterClock(letter_seconds(ws.section("letters")))

    def columns(self, available: list[str]) -> list[str]:
        """The columns of a targets table the letters need: fewer to sort, stream and convert."""
        wanted = self._wanted
        return [c for c in available if wanted is None or c in wanted or c.startswith("crm_")]

    @staticmethod
    def _recs_by_product(kind: pa.DataType) -> bool:
        """Whether a recommendations column can share one dict per product and reason."""
        if not pa.types.is_list(kind) or not pa.types.is_struct(kind.value_type):
            return False
        names = {kind.value_type.field(i).name for i in range(kind.value_type.num_fields)}
        return {"product_id", "reason"} <= names

    def prepare(self, names: Iterable[str]) -> None:
        """Resolve and compile every template file of these names before any letter (syntax: exit 65)."""
        for name in names:
            stem, _ = split_template_name(name)
            ext = template_ext(self.ws, name)
            index = template_index(self.ws, stem)
            self._indexes[name] = (stem, ext, index)
            for (_, file_ext), path in index.items():
                if file_ext == ext or (ext == "eml" and file_ext == "html"):  # an eml letter's HTML part too
                    self._compile(self.env, path)
            if self.typst_env is not None:
                self._prepare_typst(name, stem, ext)

    def _prepare_typst(self, name: str, stem: str, ext: str) -> None:
        assert self.typst_env is not None
        typst_index = template_index(self.ws, stem, (TYPST_EXT,))
        self._typst_indexes[name] = typst_index
        if ext not in ("txt", "md") and (None, TYPST_EXT) not in typst_index:
            raise UsageError(
                "--letters-format pdf",
                f"templates/{stem}: an {ext} letter cannot be laid out as PDF",
                f"add templates/{stem}.typ.j2 (Typst markup), or use a txt or md template",
            )
        for path in typst_index.values():
            self._compile(self.typst_env, path)

    def _compile(self, env: LetterSandbox, path: Path) -> None:
        """Compile a template file and note the customer columns it reads (None: any of them) and
        whether it reads the recommendations."""
        compile_template(env, self.ws, path)
        tree = env.parse(path.read_text(encoding="utf-8"))  # parsed once for both questions
        used = customer_columns(env, tree)
        self._wanted = None if used is None or self._wanted is None else self._wanted | used
        self.wants_recommendations = self.wants_recommendations or reads_variable(env, tree, "recommendations")

    def _template_for(self, name: str, language: str | None) -> _Picked:
        key = (name, language)
        picked = self._chosen.get(key)
        if picked is None:
            if name not in self._indexes:
                self.prepare([name])
            stem, ext, index = self._indexes[name]
            chosen = self._typst_template(name, stem, language)
            if chosen is None:
                try:
                    path = pick_template(index, stem, ext, language)
                    chosen = (compile_template(self.env, self.ws, path), path.name, ext)
                except NotFoundError as exc:
                    chosen = exc
            picked = chosen if isinstance(chosen, NotFoundError) else (*chosen, resolve_locale(language, self._locale))
            self._chosen[key] = picked
        return picked

    def _message(self, text: str, context: dict[str, Any], name: str, file_name: str) -> str:
        """A rendered eml letter as the message written, with the HTML alternative when there is one."""
        if not self._mime:
            return eml_message(text, mime=False)
        defaults = self._message_defaults.for_customer(context["customer"], context["campaign"])
        html = self._html_part(name, file_name)
        return eml_message(text, defaults=defaults, html=None if html is None else _render(html, context))

    def _html_part(self, name: str, file_name: str) -> Template | None:
        """For NAME[.LANG].eml.j2: NAME[.LANG].html.j2 (the same LANG, or none for both), compiled once."""
        key = (name, file_name)
        if key not in self._html_parts:
            _, _, index = self._indexes[name]
            language = next((lang for (lang, ext), path in index.items() if path.name == file_name), None)
            path = index.get((language, "html"))
            self._html_parts[key] = None if path is None else compile_template(self.env, self.ws, path)
        return self._html_parts[key]

    def _typst_template(self, name: str, stem: str, language: str | None) -> _Chosen | None:
        """For PDF: the NAME[.LANG].typ.j2 template of this language, None to lay out the txt/md letter."""
        index = self._typst_indexes.get(name)
        if not index or self.typst_env is None:
            return None
        try:
            path = pick_template(index, stem, TYPST_EXT, language)
        except NotFoundError:
            return None
        return (compile_template(self.typst_env, self.ws, path), path.name, TYPST_EXT)

    def render_batch(self, batch: pa.RecordBatch) -> tuple[list[RenderedLetter], list[dict[str, Any]]]:
        """Every row of a batch of targets rendered, with the customer rows they were rendered from."""
        wanted = self._wanted
        columns = {
            name: recommendation_lists(batch.column(i), self._recs)
            if name == RECS_COLUMN and self._recs_by_product(batch.schema.field(i).type)
            else column_values(batch.column(i))
            for i, name in enumerate(batch.schema.names)
            if wanted is None or name in wanted or name.startswith("crm_")
        }
        blank = [None] * batch.num_rows
        keys = [name for name in columns if not name.startswith("crm_")]
        metas = zip(*(columns.get(k, blank) for k in _META), strict=True)
        recs = columns.get(RECS_COLUMN, blank)
        rows = zip(*(columns[k] for k in keys), strict=True)
        customers = list(map(dict, map(zip, itertools.repeat(keys), rows)))  # C loops: no frame per row
        render_one = self.render_one
        letters = [render_one(c, meta, rec or []) for c, meta, rec in zip(customers, metas, recs, strict=True)]
        return letters, customers

    def render_one(
        self, customer: dict[str, Any], meta: tuple[Any, ...], recommendations: list[dict[str, Any]]
    ) -> RenderedLetter:
        """One letter; a template failure (limits.LETTER_ERRORS) comes back as a LetterFailure, never raised."""
        customer_id = str(customer["customer_id"])
        language = customer.get("language")
        campaign, cell, offer, channel, name = meta
        campaign = str(campaign or self.job.campaign)
        picked = self._chosen.get((name, language)) or self._template_for(str(name), language)
        if isinstance(picked, NotFoundError):
            missing = LetterFailure(customer_id, str(name), None, f"{picked.message}; {picked.hint}")
            return RenderedLetter(customer_id, campaign, cell, offer, language, str(name), "", None, None, missing)
        template, file_name, ext, locale = picked
        context = self._context.copy()
        context["customer"] = customer
        context["campaign"] = campaign
        context["cell"] = cell
        context["offer"] = offer
        context["channel"] = channel
        context["recommendations"] = recommendations
        context["locale"] = locale
        failure: LetterFailure | None = None
        clock = self.clock
        try:
            clock.letter += 1  # the clock looks at this letter while busy (LetterClock)
            clock.busy = True
            try:
                text: str | None = _render(template, context)
            finally:
                clock.busy = False
            if ext == "eml":  # headers as structured fields: a value cannot add one
                text = self._message(text, context, str(name), file_name)  # type: ignore[arg-type]
        except TemplateSyntaxError as exc:  # an included template: bad input, stops the run
            raise syntax_error(exc, file_name) from None
        except LETTER_ERRORS as exc:  # what a template and its data can do; a bug in crmlist goes up
            clock.busy = False
            where, line = self._template_line(exc, file_name)
            error = scrub_message(f"{type(exc).__name__}: {exc}", customer)
            text, failure = None, LetterFailure(customer_id, where, line, error)
        address = address_lines(customer, self._sender_country) if self.pdf else ()
        return RenderedLetter(
            customer_id, campaign, cell, offer, language, file_name, ext, text, customer.get("email"), failure, address
        )

    def render_chunk(self, batch: pa.RecordBatch) -> RenderedChunk:
        """A batch rendered and encoded for the writer: what a worker sends back to the parent."""
        with self.clock.running():
            letters, customers = self.render_batch(batch)
        chunk = RenderedChunk()
        good = [i for i, letter in enumerate(letters) if letter.failure is None]
        failed = {i: letter.failure for i, letter in enumerate(letters) if letter.failure is not None}
        if isinstance(self.encoder, PdfEncoder):
            chunk.payload, errors = self.encoder.encode([letters[i] for i in good])
            for pos, message in errors.items():
                i = good[pos]
                letter = letters[i]
                error = scrub_message(message, customers[i])
                failed[i] = LetterFailure(letter.customer_id, letter.template, None, error)
            good = [i for i in good if i not in failed]
        else:
            chunk.payload = self.encoder.encode([letters[i] for i in good])
            if self.folder is not None:
                write_letter_files(self.folder, chunk.payload)
                chunk.payload = None
        chunk.written = CustomerIds([letters[i].customer_id for i in good])
        chunk.failed = [f for _, f in sorted(failed.items()) if f is not None]
        return chunk

    def _template_line(self, exc: BaseException, file_name: str) -> tuple[str, int | None]:
        """The innermost template frame of a failure: its file name and line."""
        found: tuple[str, int | None] = (file_name, None)
        for frame, line in traceback.walk_tb(exc.__traceback__):
            filename = frame.f_code.co_filename
            if filename.startswith(self._templates_dir):
                found = (Path(filename).name, line)
        return found


def _render(template: Template, context: dict[str, Any]) -> str:
    """Template.render without copying the context again (it holds the globals already), its output
    bounded (bounded_join)."""
    env = template.environment
    try:
        return bounded_join(template.root_render_func(env.context_class(env, context, template.name, template.blocks)))
    except Exception:
        template.environment.handle_exception()  # re-raises with the template's own line numbers
        raise


def scrub_message(message: str, customer: Mapping[str, Any]) -> str:
    """An error message with every personal value of the customer blanked out, cut to a sane length."""
    for key, value in customer.items():
        if key in _NON_PERSONAL or key in _FACT_COLUMNS or value is None or isinstance(value, bool | list):
            continue
        texts = {str(value), repr(value)} if isinstance(value, dt.date) else {str(value)}
        for text in texts:
            if len(text) >= 2 and text in message:
                message = message.replace(text, "***")
    return message[:_MAX_ERROR]
