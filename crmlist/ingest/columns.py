"""Source columns onto canonical ones: --map, case-insensitive names, required columns, extra columns."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from crmlist import store
from crmlist.errors import BadInputError, UsageError
from crmlist.ingest.source import Source

REQUIRED: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id",),
    "purchases": ("customer_id", "order_date"),
    "products": ("product_id",),
    "suppressions": (),
    "responses": ("customer_id", "responded_at"),
    "contacts": ("run_id", "campaign", "customer_id", "is_control", "as_of"),
}
# Written by ingest from other columns, never read from a file.
DERIVED = ("email_key", "phone_key", "address_key")
SUPPRESSION_KEYS = ("email", "phone", "customer_id")
ADDRESS = ("street", "postal_code", "city")
TEXT_TYPES = ("VARCHAR",)


@dataclass(frozen=True)
class Column:
    """One column a file gives: its name in the table, where it comes from and the types on both sides."""

    name: str
    ref: str  # SQL reference to the source column in the source relation (c0..cN)
    source_name: str
    source_type: str
    target_type: str
    canonical: bool


@dataclass
class Plan:
    """The columns of one file as they land in the table, with notices about columns left out."""

    columns: list[Column]
    notices: list[str] = field(default_factory=list)

    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def canonical_columns(table: str) -> dict[str, str]:
    """The canonical columns a file for `table` may give, with their types (derived keys excluded)."""
    columns = store.CANONICAL[store.table_for(table)]
    return {name: ctype for name, ctype in columns.items() if name not in DERIVED}


def check_mapping(table: str, mapping: dict[str, str]) -> dict[str, str]:
    """--map and [load.TABLE.map] entries, keys lower-cased; UsageError for a key that is not canonical."""
    canonical = canonical_columns(table)
    checked: dict[str, str] = {}
    for key, source in mapping.items():
        name = key.strip().lower()
        if name not in canonical:
            close = difflib.get_close_matches(name, list(canonical), n=1)
            hint = f"did you mean {close[0]}?" if close else f"columns of {table}: {', '.join(canonical)}"
            raise UsageError(f"--map {key}={source}", f"{table} has no column {key!r}", hint)
        checked[name] = str(source)
    return checked


def plan_columns(table: str, source: Source, mapping: dict[str, str], existing: dict[str, tuple[str, str]]) -> Plan:
    """Match the file's columns to the table: --map first, then names compared trimmed and case-folded.

    `existing` holds the target table's current columns (lower-cased name -> (name, type) text) so extra
    columns seen before keep their type and spelling.
    """
    canonical = canonical_columns(table)
    folded = [n.strip().lower() for n in source.names]
    chosen: dict[int, str] = {}
    for canonical_name, wanted in mapping.items():
        chosen[_find_mapped(source, folded, canonical_name, wanted)] = canonical_name
    plan = Plan([])
    for j, (raw, low) in enumerate(zip(source.names, folded, strict=True)):
        found = chosen.get(j) or (low if low in canonical and low not in mapping else None)
        if found is not None:
            plan.columns.append(Column(found, f"c{j}", raw, source.types[j], canonical[found], True))
            continue
        if _left_out(source, plan, raw, low, canonical, mapping):
            continue
        target = existing.get(low)
        target_name, target_type = target if target else (raw.strip(), _extra_type(source.types[j]))
        plan.columns.append(Column(target_name, f"c{j}", raw, source.types[j], target_type, False))
    _check_unique(source, plan)
    return plan


def _find_mapped(source: Source, folded: list[str], name: str, wanted: str) -> int:
    low = wanted.strip().lower()
    if low in folded:
        return folded.index(low)
    close = difflib.get_close_matches(low, folded, n=1)
    hint = f"did you mean --map {name}={source.names[folded.index(close[0])].strip()}?" if close else None
    raise BadInputError(
        source.display,
        f"--map {name}={wanted}: no column {wanted!r} (found: {_found(source)})",
        hint or "name a column the file has",
    )


def _left_out(
    source: Source, plan: Plan, raw: str, low: str, canonical: dict[str, str], mapping: dict[str, str]
) -> bool:
    """Columns that are not kept: unnamed ones, derived keys, and canonical names that --map replaced."""
    if not low or low.startswith("__crm"):
        if low:
            plan.notices.append(f"{source.display}: column {raw!r} ignored (names starting __crm are reserved)")
        return True
    if low in DERIVED:
        plan.notices.append(f"{source.display}: column {raw!r} ignored; crmlist computes {low} itself")
        return True
    if low in canonical and low in mapping:
        plan.notices.append(f"{source.display}: column {raw!r} ignored; --map {low}={mapping[low]} replaces it")
        return True
    return False


def _extra_type(source_type: str) -> str:
    """Extra columns keep a typed source's type (Parquet); text formats give VARCHAR."""
    return "VARCHAR" if source_type in TEXT_TYPES or source_type == "NULL" else source_type


def _check_unique(source: Source, plan: Plan) -> None:
    seen: dict[str, Column] = {}
    for column in plan.columns:
        low = column.name.lower()
        if low in seen:
            first = seen[low].source_name
            raise BadInputError(
                source.display,
                f"columns {first!r} and {column.source_name!r} both give {column.name}",
                "rename one of them, or choose one with --map",
            )
        seen[low] = column


def check_required(table: str, source: Source, plan: Plan) -> None:
    """BadInputError naming the first required column the file lacks, with the closest one it has."""
    present = set(plan.names())
    for name in REQUIRED[table]:
        if name not in present:
            raise missing_column(source, name)
    if table == "purchases" and not {"amount", "unit_price"} & present:
        raise missing_column(source, "amount", "amount (or unit_price, with quantity)")
    if table == "suppressions" and not (set(SUPPRESSION_KEYS) & present or set(ADDRESS) <= present):
        raise missing_column(source, "email", "email, phone, customer_id or street+postal_code+city")


def missing_column(source: Source, name: str, wording: str | None = None) -> BadInputError:
    """The error for a missing required column: the columns found, the closest one and a --map hint."""
    names = [n.strip() for n in source.names]
    if len(names) == 1 and source.fmt in ("csv", "tsv"):
        for sep, shown in ((";", "';'"), ("\t", "tab"), ("|", "'|'"), (",", "','")):
            if sep in names[0] and sep != source.delimiter:
                option = "'\\t'" if sep == "\t" else shown
                return BadInputError(
                    source.display,
                    f"only one column found, and its header contains {shown}",
                    f"the file is separated by {shown}: pass --delimiter {option}",
                )
    folded = [n.lower() for n in names]
    close = difflib.get_close_matches(name, folded, n=1, cutoff=0.5)
    what = f"missing required column {wording or repr(name)} (found: {_found(source)})"
    if close:
        best = names[folded.index(close[0])]
        return BadInputError(source.display, what, f"closest is {best!r}: pass --map {name}={best}")
    return BadInputError(source.display, what, f"add the column, or name the one to use: --map {name}=COLUMN")


def _found(source: Source) -> str:
    names = [n.strip() for n in source.names]
    shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
    return shown or "no columns"
