"""Bad rows of a staged load: the first as an error (strict), or every one into load_rejects (skip)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import duckdb

from crmlist import store
from crmlist.errors import BadInputError
from crmlist.ingest import write
from crmlist.ingest.columns import Plan
from crmlist.ingest.reasons import SKIP_HINT, clip, describe, plural
from crmlist.ingest.records import locate, typed_raw
from crmlist.ingest.source import Source

Stats = dict[int, tuple[int, int, int]]


@dataclass(frozen=True)
class BadRow:
    """A rejected record: where it starts, the column at fault, why (no personal data), its raw text."""

    line: int
    column: str | None
    reason: str
    raw: str | None


class BadRows:
    """Finds, explains and records the bad rows of the staging table."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        sources: list[Source],
        plans: list[Plan],
        date_format: str | None,
        decimal_comma: bool,
    ) -> None:
        self.con, self.table, self.sources, self.plans = con, table, sources, plans
        self.date_format, self.decimal_comma = date_format, decimal_comma
        self.target = store.table_for(table)

    def raise_first(self, active: list[Source], stats: Stats) -> None:
        """Strict mode: BadInputError for the first bad row of the first file that has any."""
        for source in active:
            bad = stats.get(source.index, (0, 0, 0))[2]
            if not bad:
                continue
            row = self.con.execute(
                f"SELECT rowid, __crm_bad, __crm_value FROM {write.STAGE} "
                "WHERE __crm_file = ? AND __crm_bad IS NOT NULL ORDER BY rowid LIMIT 1",
                [source.index],
            ).fetchone()
            assert row is not None
            line = self._positions({source.index: {row[0]}}, stats)[(source.index, row[0])][0]
            what, _, hint = describe(
                self.table, self.plans[source.index], row[1], row[2], self.date_format, self.decimal_comma
            )
            more = f"; {plural(bad - 1, 'more bad row')} in this file" if bad > 1 else ""
            raise BadInputError(f"{source.display}:{line}", f"{what}{more}", f"{hint}; {SKIP_HINT}")

    def check_duplicates(self, strict: bool, stats: Stats) -> None:
        """Keys given twice in one load: an error naming both places (strict), or later rows bad (skip)."""
        if self.target not in write.UPSERT_KEYS or not write.has_duplicates(self.con, self.target):
            return
        if not strict:
            write.mark_duplicates(self.con, self.target)
            return
        rows = self.con.execute(write.duplicate_sql(self.target)).fetchall()
        file, row, first_file, first_row = (int(v) for v in rows[0])
        wanted: dict[int, set[int]] = defaultdict(set)
        wanted[file].add(row)
        wanted[first_file].add(first_row)
        places = self._positions(wanted, stats)
        key = write.UPSERT_KEYS[self.target]
        value = self.con.execute(f"SELECT {key} FROM {write.STAGE} WHERE rowid = ?", [row]).fetchone()
        what = self._duplicate(file, first_file, places[(first_file, first_row)][0], value[0] if value else None)
        more = f"; {plural(len(rows) - 1, 'more duplicate')}" if len(rows) > 1 else ""
        raise BadInputError(
            f"{self.sources[file].display}:{places[(file, row)][0]}",
            f"{what}{more}",
            f"keep one row per {key} in a load (a later load replaces rows with the same {key})",
        )

    def _duplicate(self, file: int, first_file: int, first_line: int, value: str | None) -> str:
        key = write.UPSERT_KEYS[self.target]
        where = f"line {first_line}" if file == first_file else f"{self.sources[first_file].display}:{first_line}"
        return f"{key}: duplicate of {where}" + (f" ({clip(value)})" if value is not None else "")

    def collect(self, active: list[Source], stats: Stats) -> dict[int, list[BadRow]]:
        """Skip mode: every bad row of every file, with its line, reason and raw text, in line order."""
        rows = self.con.execute(
            f"SELECT __crm_file, rowid, __crm_bad, __crm_value FROM {write.STAGE} "
            "WHERE __crm_bad IS NOT NULL ORDER BY __crm_file, rowid"
        ).fetchall()
        wanted: dict[int, set[int]] = defaultdict(set)
        for file, row, code, _ in rows:
            wanted[file].add(row)
            if code.startswith("dup:"):
                wanted[int(code.split(":")[1])].add(int(code.split(":")[2]))
        places = self._positions(wanted, stats)
        found: dict[int, list[BadRow]] = defaultdict(list)
        for file, row, code, value in rows:
            line, raw = places[(file, row)]
            if code.startswith("dup:"):
                _, first_file, first_row = code.split(":")
                first_line = places[(int(first_file), int(first_row))][0]
                reason = self._duplicate(file, int(first_file), first_line, value)
                found[file].append(BadRow(line, write.UPSERT_KEYS[self.target], reason, raw))
                continue
            what, column, _ = describe(self.table, self.plans[file], code, value, self.date_format, self.decimal_comma)
            found[file].append(BadRow(line, column, what, raw))
        for source in active:
            found[source.index] += [BadRow(r.line, None, r.reason, r.raw) for r in source.pre_rejects]
            found[source.index].sort(key=lambda bad: bad.line)
        return {k: v for k, v in found.items() if v}

    def _positions(self, wanted: dict[int, set[int]], stats: Stats) -> dict[tuple[int, int], tuple[int, str | None]]:
        """(line, raw text) of staged rows: Python scans text files; typed sources carry their line."""
        places: dict[tuple[int, int], tuple[int, str | None]] = {}
        for file, rowids in wanted.items():
            source = self.sources[file]
            if source.has_line:
                rows = self.con.execute(
                    f"SELECT rowid, __crm_line FROM {write.STAGE} WHERE rowid IN (SELECT unnest(?))",
                    [sorted(rowids)],
                ).fetchall()
                raws = typed_raw(self.con, source, [int(line) for _, line in rows])
                places.update({(file, int(r)): (int(line), raws.get(int(line))) for r, line in rows})
                continue
            base = stats[file][0]
            index = {r: source.kept[r - base] if source.kept is not None else r - base for r in rowids}
            records = locate(source, set(index.values()))
            for rowid, i in index.items():
                record = records.get(i)
                places[(file, rowid)] = (record.line, record.raw) if record else (i + 1 + source.header, None)
        return places

    def store(self, load_id: str, bad: dict[int, list[BadRow]]) -> None:
        """Write the rejects to load_rejects in one statement."""
        rows = [
            (load_id, self.table, self.sources[file].given, b.line, b.column, b.reason, b.raw)
            for file, items in sorted(bad.items())
            for b in items
        ]
        if not rows:
            return
        import pyarrow as pa  # imported here: loads without rejects do not pay for it

        names = ("load_id", "table_name", "file", "line", "column_name", "reason", "raw_line")
        table = pa.table({name: [r[k] for r in rows] for k, name in enumerate(names)})
        self.con.register("__crm_rejects", table)
        try:
            self.con.execute(f"INSERT INTO load_rejects ({', '.join(names)}) SELECT * FROM __crm_rejects")
        finally:
            self.con.unregister("__crm_rejects")

    @staticmethod
    def notices(active: list[Source], bad: dict[int, list[BadRow]]) -> list[str]:
        return [
            f"{s.display}: {plural(len(bad[s.index]), 'bad row')} not loaded, kept in load_rejects "
            f"(the first, line {bad[s.index][0].line}: {bad[s.index][0].reason})"
            for s in active
            if bad.get(s.index)
        ]
