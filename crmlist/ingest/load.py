"""`crmlist load`: every file of one command in one transaction, strict or keeping bad rows aside.

Clean files go straight from the file into the table in one statement that aborts at the first bad row:
appends (purchases with order ids, responses) and upserts (customers, products; one aggregate then checks
that no key came twice, and the older rows of the keys loaded go). Any abort rolls everything back and
the load runs again through a staging table, which types every row, finds the bad ones and their lines,
and writes the good ones; a file DuckDB cannot read at all is scanned by Python (records.repair) and the
load runs once more. Any error leaves every table, `loads` and `load_rejects` as they were.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import duckdb

from crmlist import store
from crmlist.errors import BadInputError, MissingInputError
from crmlist.ingest import phones, rejects, write
from crmlist.ingest.columns import Plan, check_required, plan_columns
from crmlist.ingest.options import FileLoad, LoadOptions, LoadResult, check_options, read_settings, type_context
from crmlist.ingest.readers import open_source
from crmlist.ingest.reasons import plural
from crmlist.ingest.records import repair
from crmlist.ingest.source import Source, bind
from crmlist.ingest.validate import TypeContext, quote, validated_select
from crmlist.workspace import Workspace

# Columns one file may have: past a few hundred, DuckDB's ALTER TABLE per new column grows with the
# table's width, so a load of thousands of columns would take minutes (10,000 hung).
MAX_COLUMNS = 1000
# Files wider than this are planned without DuckDB's common-subexpression pass, which grows with the
# square of a projection's width (2,000 columns: 10 s of planning) and saves nothing on text columns.
WIDE_FILE = 200
ONCE_ONLY = ("purchases", "responses", "contacts")  # a file whose sha256 is in `loads` is skipped
FAST = ("purchases", "responses")
Stats = dict[int, tuple[int, int, int]]


class _ReadFailed(Exception):
    """DuckDB stopped on a file: a bad row on the fast path, or a file it cannot read."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


@dataclass
class _Job:
    con: duckdb.DuckDBPyConnection
    table: str
    options: LoadOptions
    ctx: TypeContext
    date_format: str | None
    sources: list[Source]
    plans: list[Plan]
    skipped: dict[int, str]
    tmp: Path
    load_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    notices: list[str] = field(default_factory=list)
    # --replace: the rows' digest before the swap, and for contacts the loaded runs there were.
    replaced: tuple[int, int] | None = None
    runs_before: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return store.table_for(self.table)

    @property
    def strict(self) -> bool:
        return self.options.on_error == "strict"

    def params(self, source: Source | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {**self.ctx.params(), **(source.params if source else {}), **(extra or {})}


def load_files(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    table: str,
    files: list[str],
    options: LoadOptions,
    stdin: BinaryIO | None = None,
) -> LoadResult:
    """Load `files` into `table` in one transaction; see DESIGN.md section 2 for the semantics."""
    check_options(table, files, options)
    settings, mapping = read_settings(ws, table, options)
    date_format = options.date_format or ws.section("load", table).get("date_format")
    decimal_comma = options.decimal_comma or bool(ws.section("load", table).get("decimal_comma"))
    ctx = type_context(con, ws, date_format, decimal_comma)
    con.execute("SET enable_progress_bar_print = false")  # a library never prints: callers may show progress
    ((row_order,),) = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()
    sources: list[Source] = []
    with tempfile.TemporaryDirectory(prefix="crmlist-load-") as tmp:
        try:
            for index, given in enumerate(files):
                sources.append(open_source(con, given, index, settings, Path(tmp), stdin))
            plans = _plans(con, table, sources, mapping)
            if any(phones.uses_phone_keys(table, plan.names()) for plan in plans):
                phones.register(con)  # phonenumbers, for the numbers the SQL shortcut leaves to it
            skipped = _skipped(con, table, sources, options)
            job = _Job(con, table, options, ctx, date_format, sources, plans, skipped, Path(tmp))
            wide = max(len(plan.columns) for plan in plans) > WIDE_FILE
            with store.setting(con, "disabled_optimizers", "common_subexpressions", when=wide):
                return _result(job, _run(job))
        finally:
            for source in sources:
                if source.arrow_name:
                    con.unregister(source.arrow_name)
            with contextlib.suppress(duckdb.Error):  # a stopped load may have lost its connection
                write.keep_row_order(con, bool(row_order))


def _plans(con: duckdb.DuckDBPyConnection, table: str, sources: list[Source], mapping: dict[str, str]) -> list[Plan]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main'",
        [store.table_for(table)],
    ).fetchall()
    existing = {str(name).lower(): (str(name), str(ctype)) for name, ctype in rows}
    plans = []
    for source in sources:
        if len(source.names) > MAX_COLUMNS:
            raise BadInputError(
                source.display,
                f"{len(source.names):,} columns, more than crmlist loads from one file ({MAX_COLUMNS:,})",
                f"keep the columns the campaigns need (at most {MAX_COLUMNS:,}), or split the file by columns and "
                "load the parts one after the other",
            )
        plan = plan_columns(table, source, mapping, existing)
        check_required(table, source, plan)
        for column in plan.columns:
            existing.setdefault(column.name.lower(), (column.name, column.target_type))
        plans.append(plan)
    return plans


def _skipped(con: duckdb.DuckDBPyConnection, table: str, sources: list[Source], options: LoadOptions) -> dict[int, str]:
    """Files of append-once tables loaded before (same sha256), or given twice: index -> notice."""
    if table not in ONCE_ONLY or options.force or options.replace:
        return {}
    shas = [s.sha256 for s in sources]
    rows = con.execute(
        "SELECT DISTINCT sha256 FROM loads WHERE table_name = ? AND list_contains(?, sha256)", [table, shas]
    ).fetchall()
    loaded, seen, skipped = {r[0] for r in rows}, set(), {}
    for source in sources:
        if source.sha256 in loaded:
            skipped[source.index] = (
                f"{source.display}: already loaded (sha256 {source.sha256[:12]}); skipped. "
                "Pass --force to load it again"
            )
        elif source.sha256 in seen:
            skipped[source.index] = f"{source.display}: the same content as an earlier file; skipped"
        seen.add(source.sha256)
    return skipped


def _run(job: _Job) -> dict[int, tuple[int, int]]:
    """Attempts in one transaction each: fast, then staged, then staged after repairing a file."""
    fast = _can_go_fast(job)
    repaired: set[int] = set()
    while True:
        job.notices = [n for plan in job.plans for n in plan.notices] + list(job.skipped.values())
        job.con.execute("BEGIN TRANSACTION")
        try:
            counts = _attempt(job, fast)
            job.con.execute("COMMIT")
            return counts
        except _ReadFailed as failed:
            _rollback(job.con)
            if not fast:
                _repair(job, failed.index, repaired)
            fast = False
        except BaseException:
            _rollback(job.con)
            raise
        finally:
            write.drop_stage(job.con)


def _can_go_fast(job: _Job) -> bool:
    """Upserts, and appends of files that give every id (purchases without order ids number them)."""
    if job.table in FAST:
        return all(job.table != "purchases" or "order_id" in plan.names() for plan in job.plans)
    return job.target in write.UPSERT_KEYS


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):  # nothing to roll back: the transaction is already gone
        con.execute("ROLLBACK")


def _repair(job: _Job, index: int, repaired: set[int]) -> None:
    source = job.sources[index]
    fixed = None if index in repaired else repair(source, job.strict, job.tmp)
    if fixed is None:
        raise BadInputError(
            source.display,
            f"could not be read as {source.fmt.upper()}",
            "check the format, --delimiter and the quoting; or save the file again from its program",
        )
    job.sources[index] = fixed
    repaired.add(index)


def _attempt(job: _Job, fast: bool) -> dict[int, tuple[int, int]]:
    _add_extra_columns(job)
    if job.options.replace:
        _clear(job)
    active = [s for s in job.sources if s.index not in job.skipped]
    counts = {} if not active else _fast(job, active) if fast else _staged(job, active)
    _replace_notice(job)
    loaded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for s in job.sources:  # skipped files too, with no rows: the record shows the file came again
        job.con.execute(
            "INSERT INTO loads VALUES (?, ?, ?, ?, ?, ?, ?)",
            [job.load_id, job.table, s.given, s.sha256, *counts.get(s.index, (0, 0)), loaded_at],
        )
    return counts


def _add_extra_columns(job: _Job) -> None:
    """Extra source columns become columns of the table (the same transaction, so a failure undoes them).

    An empty table with many new columns is created again with all of them in one statement: DuckDB's
    ALTER TABLE costs more the wider the table is, so a thousand ALTERs grow with the square of the width.
    """
    con, target = job.con, quote(job.target)
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main' "
        "ORDER BY ordinal_position",
        [job.target],
    ).fetchall()
    have = {str(name).lower() for name, _ in rows}
    new: dict[str, str] = {}
    for plan in job.plans:
        for column in plan.columns:
            if not column.canonical and column.name.lower() not in have:
                have.add(column.name.lower())
                new[column.name] = column.target_type
    empty = con.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {target})").fetchone()
    if len(new) > 8 and empty and empty[0]:
        columns = [f"{quote(str(n))} {t}" for n, t in rows] + [f"{quote(n)} {t}" for n, t in new.items()]
        con.execute(f"CREATE OR REPLACE TABLE {target} ({', '.join(columns)})")
        return
    for name, ctype in new.items():
        con.execute(f"ALTER TABLE {target} ADD COLUMN IF NOT EXISTS {quote(name)} {ctype}")


_LOADED_HISTORY = "run_id IN (SELECT run_id FROM runs WHERE source = 'loaded')"


def _replaced_digest(job: _Job) -> tuple[int, int]:
    """What --replace swaps (the table; for contacts, loaded runs' rows) as store.table_digest."""
    return store.table_digest(job.con, job.target, _LOADED_HISTORY if job.table == "contacts" else "TRUE")


def _replace_notice(job: _Job) -> None:
    """What --replace really did: nothing when the files hold the rows the table had."""
    if job.replaced is None:
        return
    after = _replaced_digest(job)
    if after == job.replaced:
        job.notices.append(f"{job.table}: the files hold exactly the rows the table had; nothing changed")
    else:
        job.notices.append(f"{job.table}: replaced {plural(job.replaced[0], 'row')} with {after[0]:,}")


def _clear(job: _Job) -> None:
    """--replace: the table's rows go (for contacts, only loaded runs' history), and with them its loads."""
    con = job.con
    job.replaced = _replaced_digest(job)
    if job.table == "contacts":
        rows = con.execute("SELECT run_id, started_at, finished_at FROM runs WHERE source = 'loaded'").fetchall()
        job.runs_before = {r[0]: (r[1], r[2]) for r in rows}
        con.execute("DELETE FROM contact_history WHERE run_id IN (SELECT run_id FROM runs WHERE source = 'loaded')")
        con.execute("DELETE FROM runs WHERE source = 'loaded'")
    else:
        con.execute(f"DELETE FROM {quote(job.target)}")
    con.execute("DELETE FROM loads WHERE table_name = ?", [job.table])


def _no_rows(source: Source) -> MissingInputError:
    return MissingInputError(source.display, "no data rows", "load a file with a header and data rows")


def _fast(job: _Job, active: list[Source]) -> dict[int, tuple[int, int]]:
    """Each file straight into the table; any bad row aborts the statement (and the attempt). Upserts then
    delete the older rows of the keys loaded, unless a key came twice: that aborts too, and the staged
    attempt reports it."""
    upsert = job.target in write.UPSERT_KEYS
    first_new = write.next_rowid(job.con, job.target) if upsert else 0
    counts = {}
    for source in active:
        checked = validated_select(job.table, source, job.plans[source.index], job.ctx)
        write.keep_row_order(job.con, False)
        try:
            loaded = write.insert_checked(job.con, job.target, checked, job.params(source))
        except duckdb.Error:
            raise _ReadFailed(source.index) from None
        if loaded == 0:
            raise _no_rows(source)
        counts[source.index] = (loaded, 0)
    if upsert and not write.replace_older(job.con, job.target, first_new, sum(n for n, _ in counts.values())):
        raise _ReadFailed(active[0].index)
    return counts


def _staged(job: _Job, active: list[Source]) -> dict[int, tuple[int, int]]:
    """Every file typed into the staging table, bad rows found and handled, good rows written."""
    checked = {s.index: validated_select(job.table, s, job.plans[s.index], job.ctx) for s in active}
    columns: dict[str, str] = {}
    for validated in checked.values():
        for name, ctype in validated.columns.items():
            columns.setdefault(name, ctype)
    write.create_stage(job.con, columns)
    for source in active:
        sql = write.insert_stage_sql(checked[source.index])
        write.keep_row_order(job.con, True)
        try:
            job.con.execute(sql, bind(sql, job.params(source)))
        except duckdb.Error:
            raise _ReadFailed(source.index) from None
    stats = write.stage_stats(job.con)
    for source in active:
        if source.index not in stats and not source.pre_rejects:
            raise _no_rows(source)
    found = rejects.BadRows(job.con, job.table, job.sources, job.plans, job.date_format, job.ctx.decimal_comma)
    if job.strict:
        found.raise_first(active, stats)
    found.check_duplicates(job.strict, stats)
    stats = write.stage_stats(job.con)
    bad = found.collect(active, stats) if not job.strict else {}
    _check_max_rejects(job, active, bad)
    write.keep_row_order(job.con, False)
    _write(job, list(columns), active, stats)
    found.store(job.load_id, bad)
    job.notices += found.notices(active, bad)
    return {
        s.index: (stats.get(s.index, (0, 0, 0))[1] - stats.get(s.index, (0, 0, 0))[2], len(bad.get(s.index, [])))
        for s in active
    }


def _check_max_rejects(job: _Job, active: list[Source], bad: dict[int, list[rejects.BadRow]]) -> None:
    limit, total = job.options.max_rejects, sum(len(rows) for rows in bad.values())
    if limit is None or total <= limit:
        return
    source = next(s for s in active if bad.get(s.index))
    first = bad[source.index][0]
    raise BadInputError(
        source.display,
        f"{total} bad rows, more than --max-rejects {limit} (the first, line {first.line}: {first.reason})",
        "fix the files, or raise --max-rejects",
    )


def _write(job: _Job, columns: list[str], active: list[Source], stats: dict[int, tuple[int, int, int]]) -> None:
    con, target = job.con, job.target
    if target in write.UPSERT_KEYS:
        write.upsert(con, target, columns, job.params())
    elif target == "suppressions":
        good = sum(stats[s.index][1] - stats[s.index][2] for s in active if s.index in stats)
        added = write.add_suppressions(con, columns, job.params())
        if good > added:
            job.notices.append(
                f"{plural(good - added, 'suppression row')} repeat a key and channel already suppressed; not added"
            )
    elif target == "contact_history":
        _write_contacts(job, columns, active, stats)
    else:
        for source in active:
            if source.index in stats:
                extra = {"id_prefix": source.sha256[:16], "id_base": stats[source.index][0]}
                write.append(con, target, columns, source.index, job.params(None, extra))


def _write_contacts(
    job: _Job, columns: list[str], active: list[Source], stats: dict[int, tuple[int, int, int]]
) -> None:
    good = sum(stats[s.index][1] - stats[s.index][2] for s in active if s.index in stats)
    added, runs, unknown = write.add_contacts(job.con, columns)
    if good > added:
        job.notices.append(
            f"{plural(good - added, 'contact row')} repeat a run_id and customer_id already recorded; not added"
        )
    if job.replaced is not None:  # --replace recorded every run again: new are those that were not there
        now = {r[0] for r in job.con.execute("SELECT run_id FROM runs WHERE source = 'loaded'").fetchall()}
        runs = len(now - set(job.runs_before))
        for run_id in now & set(job.runs_before):  # a run loaded again keeps when it was first recorded
            job.con.execute(
                "UPDATE runs SET started_at = ?, finished_at = ? WHERE run_id = ?", [*job.runs_before[run_id], run_id]
            )
        if set(job.runs_before) - now:
            gone = len(set(job.runs_before) - now)
            job.notices.append(f"{plural(gone, 'loaded run')} no longer in the files: removed")
    if runs:
        job.notices.append(f"{plural(runs, 'new run')} recorded from loaded contacts")
    if unknown:
        job.notices.append(f"{plural(unknown, 'contacted customer id')} not in customers (their contacts are kept)")


def _result(job: _Job, counts: dict[int, tuple[int, int]]) -> LoadResult:
    files = []
    for source in job.sources:
        loaded, rejected = counts.get(source.index, (0, 0))
        files.append(FileLoad(source.given, source.sha256, loaded, rejected, source.index in job.skipped))
    return LoadResult(job.table, files, job.notices)
