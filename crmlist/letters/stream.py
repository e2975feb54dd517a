"""The letters run: targets streamed out of DuckDB in Arrow batches, rendered by workers, written in order."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from crmlist import store
from crmlist.errors import BadInputError, UsageError
from crmlist.letters.ahead import Ahead
from crmlist.letters.job import LETTER_FORMATS, CustomerIds, LetterFailure, LetterJob, LetterResult, RenderedChunk
from crmlist.letters.offers import Offers
from crmlist.letters.pdf import PDF_BATCH_ROWS, PDF_BATCHES_PER_WORKER
from crmlist.letters.pool import WorkerPool, pool_size
from crmlist.letters.recommend import (
    Lift,
    co_purchase_lift,
    range_bounds,
    range_condition,
    range_starts,
    recs_ctes,
    workspace_offers,
)
from crmlist.letters.render import RECS_COLUMN, Renderer
from crmlist.letters.worker import WorkerError, render_in_worker, start_renderer
from crmlist.letters.writers import LetterWriter, open_writer, write_failed_csv
from crmlist.workspace import Workspace

_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
AUTO_POOL_BATCHES = 8


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


def _only(only_ids: set[str] | None, column: str) -> tuple[str, dict[str, Any]]:
    if only_ids is None:
        return "", {}
    return f" AND {column} IN (SELECT unnest(CAST($ids AS VARCHAR[])))", {"ids": sorted(only_ids)}


def _range_query(table: str, columns: list[str], only_ids: set[str] | None, last: bool, lift: Lift | None) -> str:
    """Targets from $lo (to $hi) in customer_id order ($ids when only_ids is given); with a lift, each
    with its recommendations (a list of structs), which the same statement computes for just these targets."""
    only, _ = _only(only_ids, "customer_id")
    t_only, _ = _only(only_ids, "t.customer_id")
    selected = ", ".join(f"t.{_quoted(c)}" for c in columns)
    if lift is None:
        return f"SELECT {selected} FROM {table} AS t WHERE {range_condition('t', last)}{t_only} ORDER BY t.customer_id"
    ctes = recs_ctes(table, range_condition("", last) + only, lift)
    return f"""
        WITH {ctes}
        SELECT {selected}, coalesce(r.recs, []) AS {RECS_COLUMN}
        FROM {table} AS t LEFT JOIN recs AS r ON r.customer_id = t.customer_id
        WHERE {range_condition("t", last)}{t_only}
        ORDER BY t.customer_id
    """


def range_batches(
    con: duckdb.DuckDBPyConnection,
    offers: Offers,
    table: str,
    columns: list[str],
    only_ids: set[str] | None,
    rows: int,
    threads: int | None = None,
    recommend: bool = True,
) -> Iterator[list[pa.RecordBatch]]:
    """Targets in customer_id order (with recommend, with their recommendations): a range of RANGE_ROWS
    targets per statement, so that DuckDB's memory stays bounded however many there are, as Arrow
    batches of `rows`. DuckDB computes the lift with all its threads, the ranges with `threads` (the
    cores the workers leave); the lift is dropped and the threads are put back once the ranges are done."""
    lifted = co_purchase_lift(con, offers) if recommend else contextlib.nullcontext(None)
    with lifted as lift, store.setting(con, "threads", int(threads or 0), when=threads is not None):
        params = lift.params if lift else {}
        where, ids = _only(only_ids, "t.customer_id")
        for bounds in range_bounds(range_starts(con, table, where, ids)):
            sql = _range_query(table, columns, only_ids, last="hi" not in bounds, lift=lift)
            yield list(con.sql(sql, params=params | ids | bounds).to_arrow_reader(rows))


def _count(con: duckdb.DuckDBPyConnection, table: str, only_ids: set[str] | None) -> int:
    if only_ids is None:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
    where = "WHERE customer_id IN (SELECT unnest(CAST($ids AS VARCHAR[])))"
    return int(con.execute(f"SELECT count(*) FROM {table} {where}", {"ids": sorted(only_ids)}).fetchall()[0][0])


def _pool(
    renderer: Renderer, names: list[str], jobs: int, batches: int, out_dir: Path
) -> contextlib.AbstractContextManager[Any]:
    """The worker pool for this run, or None to render here: one job, unless PDF batches outnumber one
    worker's share (only a replaced worker gives Typst's memory back)."""
    pdf = renderer.job.letters_format == "pdf"
    if jobs == 1 and not (pdf and batches > PDF_BATCHES_PER_WORKER):
        return contextlib.nullcontext(None)
    args = (renderer.ws, renderer.job, names, out_dir)
    return WorkerPool(jobs, start_renderer, args, tasks_per_worker=PDF_BATCHES_PER_WORKER if pdf else None)


def _workers(job: LetterJob, jobs: int, batches: int) -> int:
    """Worker processes for this many batches: none (1) for a few, since starting one costs ~0.5 s."""
    if job.jobs is None and batches < (2 if job.letters_format == "pdf" else AUTO_POOL_BATCHES):
        return 1
    return max(1, min(jobs, batches))


def _write_all(chunks: Iterator[RenderedChunk | WorkerError], writer: LetterWriter, out_dir: Path) -> LetterResult:
    """Every rendered batch into the writer in order; on any error or signal, nothing half-written stays."""
    written = CustomerIds()
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
    # DuckDB would draw on stderr: a library prints nothing
    with store.setting(con, "enable_progress_bar_print", False):
        return _render(con, ws, job, out_dir, table, jobs)


def _render(
    con: duckdb.DuckDBPyConnection, ws: Workspace, job: LetterJob, out_dir: Path, table: str, jobs: int
) -> LetterResult:
    """render_letters' work: templates, batches, workers, and the ranges' queries running ahead."""
    renderer = Renderer(ws, job, out_dir)
    names = _template_names(con, table)
    renderer.prepare(names)
    rows = min(job.batch_rows, PDF_BATCH_ROWS) if job.letters_format == "pdf" else job.batch_rows
    batches = -(-_count(con, table, job.only_ids) // rows)
    columns = renderer.columns(con.table(table).columns)
    workers = _workers(job, jobs, batches)
    threads = max(1, pool_size(None) - workers)  # renderers on every core: DuckDB takes what is left
    recommend = renderer.wants_recommendations
    offers = job.offers or workspace_offers(ws)
    ranges = Ahead(con, lambda: range_batches(con, offers, table, columns, job.only_ids, rows, threads, recommend))
    # The ranges' thread sets DuckDB's threads; a stopped run may leave before it puts them back: here they are.
    with store.restored(con, "threads"), _pool(renderer, names, workers, batches, out_dir) as pool, ranges:
        # the next range's query runs while the workers render this one's
        reader = (batch for batches in ranges for batch in batches)
        chunks = pool.map_in_order(render_in_worker, reader) if pool else map(renderer.render_chunk, reader)
        # an error or a signal anywhere in here leaves the `with` block, which stops the query and the workers
        return _write_all(chunks, open_writer(out_dir, job), out_dir)
