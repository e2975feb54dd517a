"""Rendering letters from Arrow record batches streamed out of DuckDB, and the letters run itself."""

from __future__ import annotations

import datetime as dt
import re
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from jinja2 import Template, TemplateSyntaxError

from crmlist.errors import BadInputError, NotFoundError, UsageError
from crmlist.letters.environment import (
    build_environment,
    compile_template,
    pick_template,
    split_template_name,
    syntax_error,
    template_ext,
    template_index,
)
from crmlist.letters.filters import resolve_locale
from crmlist.letters.job import LETTER_FORMATS, LetterFailure, LetterJob, LetterResult, RenderedLetter
from crmlist.letters.recommend import compute_recommendations
from crmlist.letters.writers import LetterWriter, open_writer, write_failed_csv
from crmlist.workspace import Workspace

BATCH_ROWS = 2048
RECS_COLUMN = "crm_recommendations"
# Columns of a facts row whose values may appear in an error message (DESIGN section 7).
_NON_PERSONAL = frozenset(
    {"customer_id", "gender", "language", "country", "household_id", "email_opt_in", "sms_opt_in"}
    | {"mail_opt_in", "phone_opt_in", "categories"}
)
_FACT_COLUMNS = frozenset(
    {"recency_days", "frequency", "monetary", "frequency_365", "monetary_365", "avg_order_value"}
    | {"first_purchase_date", "last_purchase_date", "tenure_days", "age"}
)
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_ERROR = 300


class Renderer:
    """Renders letters for one workspace and job; a worker process would build one of its own."""

    def __init__(self, ws: Workspace, job: LetterJob) -> None:
        self.ws = ws
        self.job = job
        self.env = build_environment(ws)
        self.sender = ws.sender
        self._templates_dir = str(ws.templates_dir)
        self._indexes: dict[str, tuple[str, str, dict[tuple[str | None, str], Path]]] = {}
        self._chosen: dict[tuple[str, str | None], tuple[Template, str, str] | NotFoundError] = {}

    def prepare(self, names: Iterable[str]) -> None:
        """Resolve and compile every template file of these names before any letter (syntax: exit 65)."""
        for name in names:
            stem, _ = split_template_name(name)
            ext = template_ext(self.ws, name)
            index = template_index(self.ws, stem)
            self._indexes[name] = (stem, ext, index)
            for (_, file_ext), path in index.items():
                if file_ext == ext:
                    compile_template(self.env, self.ws, path)

    def _template_for(self, name: str, language: str | None) -> tuple[Template, str, str] | NotFoundError:
        key = (name, language)
        chosen = self._chosen.get(key)
        if chosen is None:
            if name not in self._indexes:
                self.prepare([name])
            stem, ext, index = self._indexes[name]
            try:
                path = pick_template(index, stem, ext, language)
                chosen = (compile_template(self.env, self.ws, path), path.name, ext)
            except NotFoundError as exc:
                chosen = exc
            self._chosen[key] = chosen
        return chosen

    def render_batch(self, batch: pa.RecordBatch) -> list[RenderedLetter]:
        """Render every row of a batch of targets; pure apart from the compiled-template cache."""
        columns = batch.to_pydict()
        customer_keys = [c for c in batch.schema.names if not c.startswith("crm_")]
        recs = columns.get(RECS_COLUMN) or [None] * batch.num_rows
        meta = {k: columns.get(f"crm_{k}") or [None] * batch.num_rows for k in _META}
        letters = []
        for i in range(batch.num_rows):
            customer = {key: columns[key][i] for key in customer_keys}
            row_meta = {k: meta[k][i] for k in _META}
            letters.append(self.render_one(customer, row_meta, recs[i] or []))
        return letters

    def render_one(
        self, customer: dict[str, Any], meta: Mapping[str, Any], recommendations: list[dict[str, Any]]
    ) -> RenderedLetter:
        """One letter; a template failure comes back as a LetterFailure, never raised."""
        customer_id = str(customer["customer_id"])
        language = customer.get("language")
        name = str(meta["template"])
        campaign = str(meta["campaign"] or self.job.campaign)
        chosen = self._template_for(name, language)

        def letter(template: str, ext: str, text: str | None, failure: LetterFailure | None) -> RenderedLetter:
            return RenderedLetter(
                customer_id, campaign, meta["cell"], meta["offer"], language, template, ext, text,
                customer.get("email"), failure,
            )  # fmt: skip

        if isinstance(chosen, NotFoundError):
            failure = LetterFailure(customer_id, name, None, f"{chosen.message}; {chosen.hint}")
            return letter(name, "", None, failure)
        template, file_name, ext = chosen
        context = {
            "customer": customer,
            "campaign": campaign,
            "cell": meta["cell"],
            "offer": meta["offer"],
            "channel": meta["channel"],
            "as_of": self.job.as_of,
            "sender": self.sender,
            "recommendations": recommendations,
            "locale": resolve_locale(language, self.ws.locale),
        }
        try:
            return letter(file_name, ext, template.render(context), None)
        except TemplateSyntaxError as exc:  # an included template: bad input, stops the run
            raise syntax_error(exc, file_name) from None
        except Exception as exc:
            where, line = self._template_line(exc, file_name)
            error = scrub_message(f"{type(exc).__name__}: {exc}", customer)
            return letter(file_name, ext, None, LetterFailure(customer_id, where, line, error))

    def _template_line(self, exc: BaseException, file_name: str) -> tuple[str, int | None]:
        """The innermost template frame of a failure: its file name and line."""
        found: tuple[str, int | None] = (file_name, None)
        for frame, line in traceback.walk_tb(exc.__traceback__):
            filename = frame.f_code.co_filename
            if filename.startswith(self._templates_dir):
                found = (Path(filename).name, line)
        return found


_META = ("campaign", "cell", "offer", "channel", "template")


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


def _check_format(fmt: str) -> None:
    if fmt == "pdf":
        raise UsageError("--letters-format", "pdf letters are not available yet", "use files, jsonl, mbox or zip")
    if fmt not in LETTER_FORMATS:
        raise UsageError("--letters-format", f"unknown format {fmt!r}", f"use one of: {', '.join(LETTER_FORMATS)}")


def _template_names(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute(f"SELECT DISTINCT crm_template FROM {table} ORDER BY 1 NULLS FIRST").fetchall()
    if rows and rows[0][0] is None:
        raise BadInputError(table, "a target has no template", 'set template = "NAME" in the rule file')
    return [str(r[0]) for r in rows]


def _targets_query(table: str, recs: str, only_ids: set[str] | None) -> tuple[str, dict[str, Any]]:
    keys = "product_id := r.product_id, name := r.name, category := r.category, color := r.color, "
    keys += "price := r.price, reason := r.reason"
    sql = f"""
        SELECT t.*, coalesce(r.recs, []) AS {RECS_COLUMN}
        FROM {table} AS t
        LEFT JOIN (
            SELECT r.customer_id, list(struct_pack({keys}) ORDER BY r.rank) AS recs
            FROM {recs} AS r GROUP BY r.customer_id
        ) AS r ON r.customer_id = t.customer_id
        {"WHERE t.customer_id IN (SELECT unnest(CAST($ids AS VARCHAR[])))" if only_ids is not None else ""}
        ORDER BY t.customer_id
    """
    return sql, ({"ids": sorted(only_ids)} if only_ids is not None else {})


def render_letters(
    con: duckdb.DuckDBPyConnection, ws: Workspace, job: LetterJob, out_dir: Path, table: str = "letter_targets"
) -> LetterResult:
    """Render the letters of every target in `table` (or job.only_ids) into out_dir, streaming batches."""
    _check_format(job.letters_format)
    if not _IDENT_RE.match(table):
        raise ValueError(f"not a table name: {table!r}")
    renderer = Renderer(ws, job)
    renderer.prepare(_template_names(con, table))
    recs = compute_recommendations(con, ws, table)
    sql, params = _targets_query(table, recs, job.only_ids)
    writer: LetterWriter = open_writer(out_dir, job, ws.sender)
    written: list[str] = []
    failed: list[LetterFailure] = []
    try:
        for batch in con.sql(sql, params=params or None).to_arrow_reader(BATCH_ROWS):
            for letter in renderer.render_batch(batch):
                if letter.failure is not None:
                    failed.append(letter.failure)
                else:
                    writer.add(letter)
                    written.append(letter.customer_id)
    except BaseException:
        writer.abort()
        raise
    paths = writer.close()
    if failed:
        paths.append(write_failed_csv(out_dir, failed))
    return LetterResult(written=written, failed=failed, paths=paths)
