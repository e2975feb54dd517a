"""The letters run: targets streamed out of DuckDB in Arrow batches, rendered by workers, written in order."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from crmlist.errors import BadInputError, UsageError
from crmlist.letters.job import LETTER_FORMATS, LetterFailure, LetterJob, LetterResult, RenderedChunk
from crmlist.letters.pdf import PDF_BATCH_ROWS, PDF_BATCHES_PER_WORKER
from crmlist.letters.pool import WorkerPool, pool_size
from crmlist.letters.recommend import compute_recommendations
from crmlist.letters.render import RECS_COLUMN, Renderer
from crmlist.letters.worker import WorkerError, render_in_worker, start_renderer
from crmlist.letters.writers import LetterWriter, open_writer, write_failed_csv
from crmlist.workspace import Workspace

_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
AUTO_POOL_BATCHES = 8
RANGE_ROWS = 100_000  # targets joined and sorted per query


def _check_format(fmt: str) -> None:
    if fmt not in LETTER_FORMATS:
        raise UsageError("--letters-format", f"unknown format {fmt!r}", f"use one of: {', '.join(LETTER_FORMATS)}")


def _template_names(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute(f"SELECT DISTINCT crm_template FROM {table} ORDER BY 1 NULLS FIRST").fetchall()
    if rows and rows[0][0] is None:
        raise BadInputError(table, "a target has no template", 'set template = "NAME" in the rule file')
    return [str(r[0]) for r in rows]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _only(only_ids: set[str] | None) -> tuple[str, dict[str, Any]]:
    if only_ids is None:
        return "", {}
    return "AND t.customer_id IN (SELECT unnest(CAST($ids AS VARCHAR[])))", {"ids": sorted(only_ids)}


def _range_starts(con: duckdb.DuckDBPyConnection, table: str, only_ids: set[str] | None) -> list[str]:
    """The first customer_id of each RANGE_ROWS targets, in order."""
    only, params = _only(only_ids)
    sql = f"""
        SELECT customer_id FROM (
            SELECT t.customer_id, row_number() OVER (ORDER BY t.customer_id) - 1 AS i
            FROM {table} AS t WHERE t.customer_id IS NOT NULL {only}
        ) WHERE i % {RANGE_ROWS} = 0 ORDER BY customer_id
    """
    return [str(row[0]) for row in con.execute(sql, params or None).fetchall()]


def _range_query(table: str, columns: list[str], recs: str, only: str, last: bool) -> str:
    """Targets from $lo (to $hi) in customer_id order, each with its recommendations as a list of structs."""
    keys = "product_id := r.product_id, name := r.name, category := r.category, color := r.color, "
    keys += "price := r.price, reason := r.reason"
    selected = "".join(f"t.{_quoted(c)}, " for c in columns)
    within = "{0}.customer_id >= $lo" + ("" if last else " AND {0}.customer_id < $hi")
    return f"""
        SELECT {selected}coalesce(r.recs, []) AS {RECS_COLUMN}
        FROM {table} AS t
        LEFT JOIN (
            SELECT r.customer_id, list(struct_pack({keys}) ORDER BY r.rank) AS recs
            FROM {recs} AS r WHERE {within.format("r")} GROUP BY r.customer_id
        ) AS r ON r.customer_id = t.customer_id
        WHERE {within.format("t")} {only}
        ORDER BY t.customer_id
    """


def target_batches(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[str], recs: str, only_ids: set[str] | None, rows: int
) -> Iterator[pa.RecordBatch]:
    """Targets in customer_id order with their recommendations, in Arrow batches of `rows`; joined and
    sorted RANGE_ROWS targets at a time, so that DuckDB's memory stays bounded however many there are."""
    only, params = _only(only_ids)
    starts = _range_starts(con, table, only_ids)
    for lo, hi in zip(starts, [*starts[1:], None], strict=True):
        sql = _range_query(table, columns, recs, only, last=hi is None)
        bounds = {"lo": lo} if hi is None else {"lo": lo, "hi": hi}
        yield from con.sql(sql, params=params | bounds).to_arrow_reader(rows)


def _count(con: duckdb.DuckDBPyConnection, table: str, only_ids: set[str] | None) -> int:
    if only_ids is None:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
    where = "WHERE customer_id IN (SELECT unnest(CAST($ids AS VARCHAR[])))"
    return int(con.execute(f"SELECT count(*) FROM {table} {where}", {"ids": sorted(only_ids)}).fetchall()[0][0])


def _pool(renderer: Renderer, names: list[str], jobs: int, batches: int) -> contextlib.AbstractContextManager[Any]:
    """The worker pool for this run, or None to render here: one job, unless PDF batches outnumber one
    worker's share (only a replaced worker gives Typst's memory back)."""
    pdf = renderer.job.letters_format == "pdf"
    if jobs == 1 and not (pdf and batches > PDF_BATCHES_PER_WORKER):
        return contextlib.nullcontext(None)
    args = (renderer.ws, renderer.job, names)
    return WorkerPool(jobs, start_renderer, args, tasks_per_worker=PDF_BATCHES_PER_WORKER if pdf else None)


def _workers(job: LetterJob, jobs: int, batches: int) -> int:
    """Worker processes for this many batches: none (1) for a few, since starting one costs ~0.5 s."""
    if job.jobs is None and batches < (2 if job.letters_format == "pdf" else AUTO_POOL_BATCHES):
        return 1
    return max(1, min(jobs, batches))


def _write_all(chunks: Iterator[RenderedChunk | WorkerError], writer: LetterWriter, out_dir: Path) -> LetterResult:
    """Every rendered batch into the writer in order; on any error or signal, nothing half-written stays."""
    written: list[str] = []
    failed: list[LetterFailure] = []
    try:
        for chunk in chunks:
            if isinstance(chunk, WorkerError):
                raise chunk.error()
            writer.write(chunk.payload)
            written.extend(chunk.written)
            failed.extend(chunk.failed)
    except BaseException:
        writer.abort()
        raise
    paths = writer.close()
    if failed:
        paths.append(write_failed_csv(out_dir, failed))
    return LetterResult(written=written, failed=failed, paths=paths)


def render_letters(
    con: duckdb.DuckDBPyConnection, ws: Workspace, job: LetterJob, out_dir: Path, table: str = "letter_targets"
) -> LetterResult:
    """Render the letters of every target in `table` (or job.only_ids) into out_dir, streaming batches.

    Batches of job.batch_rows targets go to job.jobs worker processes (default: every core); the
    writer takes their results in customer_id order, so the output is the same whatever the jobs.
    """
    _check_format(job.letters_format)
    if not _IDENT_RE.match(table):
        raise ValueError(f"not a table name: {table!r}")
    jobs = pool_size(job.jobs)  # a bad --jobs fails before any work
    con.execute("SET enable_progress_bar = false")  # DuckDB would draw one on stderr: a library prints nothing
    renderer = Renderer(ws, job)
    names = _template_names(con, table)
    renderer.prepare(names)
    rows = min(job.batch_rows, PDF_BATCH_ROWS) if job.letters_format == "pdf" else job.batch_rows
    batches = -(-_count(con, table, job.only_ids) // rows)
    with _pool(renderer, names, _workers(job, jobs, batches), batches) as pool:
        recs = compute_recommendations(con, ws, table)  # while the workers start
        columns = renderer.columns(con.table(table).columns)
        reader = target_batches(con, table, columns, recs, job.only_ids, rows)
        chunks = pool.map_in_order(render_in_worker, reader) if pool else map(renderer.render_chunk, reader)
        # an error or a signal anywhere in here leaves the `with` block, which stops the workers at once
        return _write_all(chunks, open_writer(out_dir, job), out_dir)
