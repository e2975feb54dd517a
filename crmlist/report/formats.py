"""A report as data: CSV text and the JSON document, one row per scope, numbers at full precision."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

from crmlist.report.measure import COLUMNS, Report


def report_csv(report: Report) -> str:
    """CSV with a header: money sums as exact decimals, floats as Python writes them back losslessly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in report.rows():
        writer.writerow([_csv_value(row[c]) for c in COLUMNS])
    return buffer.getvalue()


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, (Decimal, str, int)) else repr(value)


def report_document(report: Report) -> dict[str, Any]:
    """The fields of `crmlist report --json` after command and ok; Decimals become JSON numbers."""
    rows = [{k: float(v) if isinstance(v, Decimal) else v for k, v in row.items()} for row in report.rows()]
    overall = rows[0] if rows else {}
    return {
        "campaign": report.campaign,
        "run_id": report.run_id,
        "as_of": report.as_of.isoformat() if report.as_of else None,
        "window_days": report.settings.window_days,
        "runs": [r.run_id for r in report.runs],
        "response_source": report.source,
        "counts": {"targets": overall.get("n_targets", 0), "control": overall.get("n_control", 0)},
        "rows": rows,
    }


def report_lines(report: Report) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """A human view: one column per scope, one line per measure, formatted for a table or a page."""
    rows = report.rows()
    lines: list[tuple[str, list[str]]] = []

    def add(label: str, cell: Any) -> None:
        lines.append((label, [cell(row) for row in rows]))

    add("targets / control", lambda r: f"{r['n_targets']:,} / {r['n_control']:,}")
    add("responders", lambda r: f"{r['responders_t']:,} / {r['responders_c']:,}")
    add("response rate", lambda r: f"{_pct(r['rate_t'])} / {_pct(r['rate_c'])}")
    add("uplift, points [95%]", lambda r: _interval(r, "uplift", _points))
    add("relative uplift", lambda r: _pct(r["relative_uplift"], sign=True))
    add("p-value", lambda r: _num(r["p_value"], ".4f"))
    add(
        "revenue per head",
        lambda r: f"{_num(r['revenue_per_head_t'], ',.2f')} / {_num(r['revenue_per_head_c'], ',.2f')}",
    )
    add("difference [95%]", lambda r: _interval(r, "revenue_per_head_diff", lambda v: _num(v, "+,.2f")))
    add("incremental responders", lambda r: _interval(r, "incremental_responders", lambda v: _num(v, "+,.1f")))
    add("incremental revenue", lambda r: _interval(r, "incremental_revenue", lambda v: _num(v, "+,.2f")))
    add("cost", lambda r: _num(r["cost"], ",.2f"))
    add("ROI", lambda r: _pct(r["roi"], sign=True))
    add("note", lambda r: r["note"])
    return [str(r["scope"]) for r in rows], lines


def _num(value: Any, spec: str) -> str:
    return "-" if value is None else format(float(value), spec)


def _pct(value: float | None, sign: bool = False) -> str:
    return "-" if value is None else format(100 * value, "+.1f" if sign else ".1f") + "%"


def _points(value: float | None) -> str:
    """A difference of rates in percentage points."""
    return "-" if value is None else f"{100 * value:+.1f}"


def _interval(row: dict[str, Any], key: str, show: Any) -> str:
    if row[key] is None:
        return "-"
    if row[f"{key}_low"] is None:
        return str(show(row[key]))
    return f"{show(row[key])} [{show(row[f'{key}_low'])}, {show(row[f'{key}_high'])}]"
