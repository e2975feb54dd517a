"""Typed values and bad-row checks as one SQL projection over a file's columns (text or typed).

Every canonical column a file gives is typed strictly; a row is bad when a non-blank value does not
parse, a required value is blank, or a table rule fails (purchases without an amount, suppressions
without any key). The projection names each row's first problem in __crm_bad ('kind:k', k the column's
position in the file's plan) and its raw text in __crm_value, so one pass types and checks everything.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from crmlist.errors import BadInputError
from crmlist.ingest import keys, phones
from crmlist.ingest.columns import ADDRESS, REQUIRED, Column, Plan
from crmlist.ingest.source import Source

# Blank means whitespace as spreadsheets write it, no-break spaces included.
WHITESPACE = " \t\r\n\u00a0\u202f"
BOOL_TRUE = ("true", "yes", "tak", "ano", "да", "1", "y", "t")
BOOL_FALSE = ("false", "no", "nie", "ne", "нет", "0", "n", "f")
CHANNELS = ("all", "email", "sms", "mail", "phone")
GENDERS = ("F", "M", "X")
INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
FLOATS = ("FLOAT", "DOUBLE", "REAL")
# Babel's territories include groupings and private-use codes that ISO 3166-1 does not assign.
NOT_COUNTRIES = ("EU", "EZ", "UN", "QO", "XA", "XB", "ZZ")
OFFSET_AT_END = "'[0-9](Z|[+-][0-9][0-9](:?[0-9][0-9])?)$'"
# Decimals are compared at this precision with the column's own: more decimals than it keeps is a reject.
EXACT_DECIMAL = "DECIMAL(38,20)"
# Plausible dates (crmlist.toml [dates] earliest / latest); a birth date is never after the day of the load.
EARLIEST_DATE = "1900-01-01"
LATEST_DATE = "2100-12-31"
# Line breaks and NUL in a one-line field would end an e-mail header or a CSV line early.
_CONTROL = "contains({v}, chr(10)) OR contains({v}, chr(13)) OR contains({v}, chr(0))"


@dataclass(frozen=True)
class TypeContext:
    """How text becomes typed values in this load."""

    decimal_comma: bool
    date_formats: tuple[str, ...]
    timezone: str
    phone_region: str
    earliest: str = EARLIEST_DATE
    latest: str = LATEST_DATE

    def params(self) -> dict[str, Any]:
        return {
            "earliest": self.earliest,
            "latest": self.latest,
            "ws": WHITESPACE,
            "tz": self.timezone,
            "date_formats": list(self.date_formats),
            "countries": lambda: list(countries()),  # Babel's territory list, loaded only when needed
            "phone_region": self.phone_region.upper(),
        }


@dataclass(frozen=True)
class Validated:
    """SELECTs of a file's typed `columns`: `sql` adds __crm_file, __crm_line, __crm_bad and __crm_value
    for the staging table; `fast_sql` gives the columns alone and stops at the first bad row."""

    sql: str
    fast_sql: str
    columns: dict[str, str]


@functools.cache
def countries() -> tuple[str, ...]:
    """ISO 3166-1 alpha-2 codes, from Babel's CLDR territory list."""
    from babel import Locale

    codes = (str(c) for c in Locale("en").territories if re.fullmatch("[A-Z]{2}", str(c)))
    return tuple(sorted(c for c in codes if c not in NOT_COUNTRIES))


def _literals(values: tuple[str, ...]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def text_sql(ref: str) -> str:
    """The value as text: trimmed of whitespace at both ends, and NULL when blank.

    trim() with a set of characters is slow, so values that plainly need none skip it: those that start
    with a visible ASCII character and do not end in a space. (A value ending in a tab or no-break space
    after a visible first character keeps it; such values have not been seen in real exports.)
    """
    plain = f"{ref} >= '!' AND {ref} < '\u00a0' AND {ref} NOT LIKE '% '"
    return f"CASE WHEN {plain} THEN {ref} ELSE nullif(trim({ref}, $ws), '') END"


def _date(t: str, ctx: TypeContext) -> str:
    iso = (
        f"CASE WHEN strlen({t}) <= 10 THEN TRY_CAST({t} AS DATE) "
        f"WHEN regexp_matches({t}, {OFFSET_AT_END}) "
        f"THEN CAST(timezone($tz, TRY_CAST({t} AS TIMESTAMPTZ)) AS DATE) "
        f"ELSE CAST(TRY_CAST({t} AS TIMESTAMP) AS DATE) END"
    )
    return f"coalesce(CAST(try_strptime({t}, $date_formats) AS DATE), {iso})" if ctx.date_formats else iso


def _timestamp(t: str, ctx: TypeContext) -> str:
    iso = (
        f"CASE WHEN strlen({t}) > 10 AND regexp_matches({t}, {OFFSET_AT_END}) "
        f"THEN timezone($tz, TRY_CAST({t} AS TIMESTAMPTZ)) ELSE TRY_CAST({t} AS TIMESTAMP) END"
    )
    return f"coalesce(CAST(try_strptime({t}, $date_formats) AS TIMESTAMP), {iso})" if ctx.date_formats else iso


def _decimal(t: str, ctype: str, ctx: TypeContext) -> str:
    if not ctx.decimal_comma:
        return f"TRY_CAST({t} AS {ctype})"
    # "1 234,50": group separators are spaces; a '.' would be ambiguous, so it makes the value bad.
    plain = f"replace(regexp_replace({t}, '[ \\x{{00A0}}\\x{{202F}}]', '', 'g'), ',', '.')"
    return f"CASE WHEN NOT contains({t}, '.') THEN TRY_CAST({plain} AS {ctype}) END"


def _list(t: str) -> str:
    """Product id lists: a JSON array, or ids separated by '|'."""
    items = f"CASE WHEN starts_with({t}, '[') THEN try(from_json({t}, '[\"VARCHAR\"]')) ELSE string_split({t}, '|') END"
    return f"list_filter(list_transform({items}, lambda x: nullif(trim(x, $ws), '')), lambda x: x IS NOT NULL)"


def _text_value(table: str, column: Column, t: str, ctx: TypeContext) -> str:
    name, ctype = column.name, column.target_type
    if column.canonical and name == "customer_id":  # "José" in NFC and NFD is one customer
        return f"nfc_normalize({t})"
    if column.canonical and name == "gender":
        return f"CASE WHEN upper({t}) IN ({_literals(GENDERS)}) THEN upper({t}) END"
    if column.canonical and name == "country":
        return f"CASE WHEN list_contains($countries, upper({t})) THEN upper({t}) END"
    if column.canonical and name == "language":
        return f"CASE WHEN regexp_full_match(lower({t}), '[a-z]{{2,3}}(-[a-z0-9]{{2,8}})*') THEN lower({t}) END"
    if column.canonical and name == "channel" and table == "suppressions":
        return f"CASE WHEN {t} IS NULL THEN 'all' WHEN lower({t}) IN ({_literals(CHANNELS)}) THEN lower({t}) END"
    if ctype == "DATE":
        return _date(t, ctx)
    if ctype == "TIMESTAMP":
        return _timestamp(t, ctx)
    if ctype == "BOOLEAN":
        return (
            f"CASE WHEN lower({t}) IN ({_literals(BOOL_TRUE)}) THEN true "
            f"WHEN lower({t}) IN ({_literals(BOOL_FALSE)}) THEN false END"
        )
    if ctype.startswith("DECIMAL"):
        return _decimal(t, ctype, ctx)
    if ctype == "VARCHAR[]":
        return _list(t)
    return t if ctype == "VARCHAR" else f"TRY_CAST({t} AS {ctype})"


def _typed_value(column: Column, ref: str) -> str | None:
    """A typed source column (Parquet) converted without a detour through text, where one exists."""
    source, target = column.source_type.upper(), column.target_type
    zoned = source in ("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE")
    if source == target and target not in ("VARCHAR", "VARCHAR[]"):
        return ref
    if target in ("DATE", "TIMESTAMP") and (zoned or source.startswith("TIMESTAMP") or source == "DATE"):
        return f"CAST(timezone($tz, {ref}) AS {target})" if zoned else f"CAST({ref} AS {target})"
    if target.startswith("DECIMAL") and (source in INTEGERS or source.startswith("DECIMAL")):
        return f"TRY_CAST({ref} AS {target})"
    if target.startswith("DECIMAL") and source in FLOATS:
        # The shortest text that reads back as the same double is the number the writer meant.
        return f"TRY_CAST(CAST({ref} AS VARCHAR) AS {target})"
    if target == "VARCHAR[]" and source.endswith("[]"):
        return f"list_filter(CAST({ref} AS VARCHAR[]), lambda x: x IS NOT NULL)"
    return None


def _typed_source(column: Column, ref: str, ctx: TypeContext, table: str) -> tuple[str, str]:
    """(typed value, raw text) of a typed source column (Parquet); the raw text is NULL when blank."""
    raw = f"CAST({ref} AS VARCHAR)"
    if column.source_type.upper() in FLOATS and column.target_type == "VARCHAR":
        # ids written by spreadsheets as 7.0 are the id 7
        raw = f"CASE WHEN {ref} = trunc({ref}) THEN CAST(CAST({ref} AS HUGEINT) AS VARCHAR) ELSE {raw} END"
    typed = _typed_value(column, ref)
    if typed is not None:
        return typed, raw
    return _text_value(table, column, text_sql(raw), ctx), text_sql(raw)


def _layers(table: str, column: Column, k: int, ctx: TypeContext) -> tuple[str, str, str, bool]:
    """SQL of column k at each step: text t{k}, value v{k} (with t{k} carried), raw text r{k}, and whether
    the value can be bad. Text columns are trimmed up front; typed ones parse the untrimmed text first
    (casts ignore spaces, and trimming is slow) and trim only what fails to parse."""
    t = f"t{k}"
    if column.source_type != "VARCHAR":
        value, raw = _typed_source(column, t, ctx, table)
        return f"{column.ref} AS {t}", f"{value} AS v{k}, {raw} AS r{k}", f"r{k}", value != raw
    plain = _text_value(table, column, t, ctx)
    if plain in (t, f"nfc_normalize({t})"):  # text that cannot be bad: computed from the trimmed text
        return f"{text_sql(column.ref)} AS {t}", f"{plain} AS v{k}, {t} AS r{k}", f"r{k}", False
    value = f"coalesce({_text_value(table, column, t, ctx)}, {_text_value(table, column, text_sql(t), ctx)})"
    raw = f"CASE WHEN v{k} IS NULL THEN {text_sql(t)} ELSE {t} END"
    return f"{column.ref} AS {t}", f"{value} AS v{k}, {t}", raw, True


Check = tuple[str, str, str]  # (condition, code, raw value shown)


@dataclass
class _Layers:
    """A file's columns as texts (t), typed values (v) and raw texts (r), the checks, and the outputs."""

    texts: list[str] = field(default_factory=list)
    typed: list[str] = field(default_factory=list)
    raws: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    outputs: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (expression, type)


def validated_select(table: str, source: Source, plan: Plan, ctx: TypeContext) -> Validated:
    """The projection that types a file's columns and names each row's first problem, in four steps:
    texts (t), typed values (v), raw texts (r), then checks and derived columns."""
    position = {c.name: k for k, c in enumerate(plan.columns)}
    layers = _column_layers(table, plan, position, ctx)
    carried = ", __crm_line" if source.has_line else ""
    typed_rows = (
        f"(SELECT {', '.join(layers.raws)}{carried} FROM (SELECT {', '.join(layers.typed)}{carried} FROM "
        f"(SELECT {', '.join(layers.texts)}{carried} FROM {source.relation}) AS src) AS typed)"
    )
    if phones.uses_phone_keys(table, position):
        typed_rows = _phone_key_layers(typed_rows, position, layers.outputs, layers.checks, ctx)
    if table == "purchases":
        _purchase_rules(position, layers.outputs, layers.checks)
    if table == "suppressions":
        _suppression_rules(position, layers.outputs, layers.checks)
    return _validated(table, source, position, layers, typed_rows)


def _column_layers(table: str, plan: Plan, position: dict[str, int], ctx: TypeContext) -> _Layers:
    """Each column's layers and checks; required columns are checked first, e-mail syntax last."""
    layers = _Layers()
    layers.checks = [(f"r{position[n]} IS NULL", f"missing:{position[n]}", "NULL") for n in REQUIRED[table]]
    for k, column in enumerate(plan.columns):
        text, value, raw, checked = _layers(table, column, k, ctx)
        layers.texts.append(text)
        layers.typed.append(value)
        layers.raws.append(f"v{k}, {raw} AS r{k}")
        layers.outputs[column.name] = (f"v{k}", column.target_type)
        if checked:
            layers.checks.append((f"r{k} IS NOT NULL AND v{k} IS NULL", f"type:{k}", f"r{k}"))
        layers.checks += _exactness_checks(column, k, ctx)
    if table in ("customers", "suppressions") and "email" in position:
        e = f"v{position['email']}"
        layers.checks.append((f"{e} IS NOT NULL AND NOT {keys.email_ok_sql(e)}", f"email:{position['email']}", "NULL"))
    return layers


def _validated(table: str, source: Source, position: dict[str, int], layers: _Layers, typed_rows: str) -> Validated:
    """The checked query (each row's first problem named) and the fast one (any bad row aborts it)."""
    line = "__crm_line" if source.has_line else "CAST(NULL AS BIGINT)"
    values = [f"{expr} AS {quote(name)}" for name, (expr, _) in layers.outputs.items()]
    select = [f"{source.index} AS __crm_file", f"{line} AS __crm_line", *_bad_columns(layers.checks), *values]
    # The fast path needs no reasons: any bad row (or, for purchases, a missing order_id) aborts it.
    bad = [cond for cond, _, _ in layers.checks]
    if table == "purchases" and "order_id" in position:
        bad.append(f"v{position['order_id']} IS NULL")
    guard = f"CASE WHEN {' OR '.join(f'({b})' for b in bad)} THEN error('crmlist: bad row') ELSE true END"
    return Validated(
        sql=f"SELECT {', '.join(select)} FROM {typed_rows} AS typed",
        fast_sql=f"SELECT {', '.join(values)} FROM {typed_rows} AS typed" + (f" WHERE {guard}" if bad else ""),
        columns={name: ctype for name, (_, ctype) in layers.outputs.items()},
    )


def _exactness_checks(column: Column, k: int, ctx: TypeContext) -> list[tuple[str, str, str]]:
    """Values that typed without an error but not exactly: decimals rounded, implausible dates, line breaks."""
    if not column.canonical:
        return []
    v, r, ctype = f"v{k}", f"r{k}", column.target_type
    if ctype.startswith("DECIMAL"):
        typed = column.source_type != "VARCHAR"
        exact = f"TRY_CAST({r} AS {EXACT_DECIMAL})" if typed else _decimal(r, EXACT_DECIMAL, ctx)
        return [(f"{v} IS NOT NULL AND {exact} <> {v}", f"digits:{k}", r)]
    if ctype in ("DATE", "TIMESTAMP"):
        latest = "CAST($latest AS DATE)"
        if column.name == "birth_date":
            latest = f"least({latest}, current_date)"
        outside = f"CAST({v} AS DATE) < CAST($earliest AS DATE) OR CAST({v} AS DATE) > {latest}"
        return [(f"{v} IS NOT NULL AND ({outside})", f"range:{k}", r)]
    if ctype == "VARCHAR":
        return [(f"{v} IS NOT NULL AND ({_CONTROL.format(v=v)})", f"control:{k}", "NULL")]
    return []


def _phone_key_layers(
    rows: str,
    position: dict[str, int],
    outputs: dict[str, tuple[str, str]],
    checks: list[tuple[str, str, str]],
    ctx: TypeContext,
) -> str:
    """The rows with their phone's digits, then its key (ingest.phones), in layers of their own so that each
    is computed once; a phone that is not a possible number in its country makes the row bad."""
    if not phones.is_region(ctx.phone_region):
        raise BadInputError(
            "crmlist.toml", f"phone_region {ctx.phone_region!r} is not a country code", "write one such as PL"
        )
    phone = f"v{position['phone']}"
    region = f"coalesce(v{position['country']}, $phone_region)" if "country" in position else "$phone_region"
    regions = phones.shortcut_regions(ctx.phone_region)
    key = phones.phone_key_sql(phone, "__crm_phone_digits", region, regions)
    outputs["phone_key"] = ("__crm_phone_key", "VARCHAR")
    checks.append((f"{phone} IS NOT NULL AND __crm_phone_key IS NULL", f"phone:{position['phone']}", region))
    digits = f"(SELECT *, {phones.digits_sql(phone)} AS __crm_phone_digits FROM {rows} AS d)"
    return f"(SELECT *, {key} AS __crm_phone_key FROM {digits} AS p)"


def _bad_columns(checks: list[tuple[str, str, str]]) -> list[str]:
    """__crm_bad ('kind:k' of the first failing check) and __crm_value (its raw text)."""
    if not checks:
        return ["CAST(NULL AS VARCHAR) AS __crm_bad", "CAST(NULL AS VARCHAR) AS __crm_value"]
    bad = " ".join(f"WHEN {cond} THEN '{code}'" for cond, code, _ in checks)
    shown = " ".join(f"WHEN {cond} THEN {raw}" for cond, _, raw in checks)
    return [f"CASE {bad} END AS __crm_bad", f"CASE {shown} END AS __crm_value"]


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _purchase_rules(
    position: dict[str, int], outputs: dict[str, tuple[str, str]], checks: list[tuple[str, str, str]]
) -> None:
    """quantity defaults to 1; amount, when blank, is quantity x unit_price rounded half away from zero."""
    quantity = f"coalesce(v{position['quantity']}, 1)" if "quantity" in position else "1"
    outputs["quantity"] = (f"CAST({quantity} AS DECIMAL(18,3))", "DECIMAL(18,3)")
    amount = f"v{position['amount']}" if "amount" in position else "CAST(NULL AS DECIMAL(18,2))"
    if "unit_price" in position:
        product = f"CAST({quantity} AS DECIMAL(38,3)) * CAST(v{position['unit_price']} AS DECIMAL(38,4))"
        amount = f"coalesce({amount}, TRY_CAST(round({product}, 2) AS DECIMAL(18,2)))"
    outputs["amount"] = (amount, "DECIMAL(18,2)")
    checks.append((f"{amount} IS NULL", "noamount:", "NULL"))


def _suppression_rules(
    position: dict[str, int], outputs: dict[str, tuple[str, str]], checks: list[tuple[str, str, str]]
) -> None:
    """Channel defaults to 'all'; a row must name someone by email, phone, customer_id or full address."""
    if "channel" not in position:
        outputs["channel"] = ("'all'", "VARCHAR")
    keys = [f"v{position[k]} IS NOT NULL" for k in ("email", "customer_id") if k in position]
    if "phone" in position:
        keys.append(f"regexp_matches(v{position['phone']}, '[0-9]')")
    if set(ADDRESS) <= set(position):
        keys.append(" AND ".join(f"v{position[k]} IS NOT NULL" for k in ADDRESS))
    checks.append((f"NOT coalesce({' OR '.join(f'({k})' for k in keys) or 'false'}, false)", "nokey:", "NULL"))
