"""A report or a comparison of campaigns as data: CSV text, the JSON document and a table for people."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from crmlist.report.compare import COMPARISON_COLUMNS, Comparison
from crmlist.report.measure import COLUMNS, Report

TextTable = tuple[list[str], list[list[str]]]  # header, then rows; the first column names the row


def report_csv(subject: Report | Comparison) -> str:
    """CSV with a header, one row per scope (or campaign): money sums as exact decimals, floats lossless."""
    columns = COMPARISON_COLUMNS if isinstance(subject, Comparison) else COLUMNS
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in subject.rows():
        writer.writerow([_csv_value(row[c]) for c in columns])
    return buffer.getvalue()


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value) if isinstance(value, (Decimal, str, int)) else repr(value)


def report_document(subject: Report | Comparison) -> dict[str, Any]:
    """The fields of `crmlist report --json` after command and ok; Decimals become JSON numbers."""
    if isinstance(subject, Comparison):
        return _comparison_document(subject)
    rows = [_json_row(row) for row in subject.rows()]
    overall = rows[0] if rows else {}
    return {
        "campaign": subject.campaign,
        "run_id": subject.run_id,
        "as_of": subject.as_of.isoformat() if subject.as_of else None,
        "window_days": subject.settings.window_days,
        "runs": [r.run_id for r in subject.runs],
        "response_source": subject.source,
        "counts": {"targets": overall.get("n_targets", 0), "control": overall.get("n_control", 0)},
        "rows": rows,
    }


def _comparison_document(comparison: Comparison) -> dict[str, Any]:
    """One entry per campaign: its CSV row, plus its run ids after n_runs."""
    campaigns = []
    for report, row in zip(comparison.reports, comparison.rows(), strict=True):
        entry = _json_row(row)
        runs = [r.run_id for r in report.runs]
        campaigns.append({"campaign": entry.pop("campaign"), "n_runs": entry.pop("n_runs"), "runs": runs} | entry)
    return {
        "from": comparison.start.isoformat() if comparison.start else None,
        "to": comparison.end.isoformat() if comparison.end else None,
        "response_source": comparison.source,
        "counts": {
            "campaigns": len(campaigns),
            "targets": sum(c["n_targets"] for c in campaigns),
            "control": sum(c["n_control"] for c in campaigns),
        },
        "campaigns": campaigns,
    }


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: float(v) if isinstance(v, Decimal) else v.isoformat() if isinstance(v, dt.date) else v
        for k, v in row.items()
    }


def report_title(subject: Report | Comparison) -> str:
    """What a table shows: the runs, the as-of dates, the response window and where responses came from."""
    if isinstance(subject, Comparison):
        windows = sorted({r.settings.window_days for r in subject.reports})
        window = f"{windows[0]} days" if len(windows) == 1 else f"{windows[0]} to {windows[-1]} days by campaign"
        return (
            f"campaigns with runs as of {subject.period}, each one's runs pooled: responses within {window} "
            f"(from {subject.source}); targets / control"
        )
    run = subject.run_id or f"all {len(subject.runs)} runs"
    as_of = subject.as_of.isoformat() if subject.as_of else "several dates"
    return (
        f"{subject.campaign}: {run}, as of {as_of}, responses within {subject.settings.window_days} days "
        f"(from {subject.source}); targets / control"
    )


def report_table(subject: Report | Comparison) -> TextTable:
    """A view for people: a column per scope (or campaign), a line per measure, formatted."""
    rows = subject.rows()
    if isinstance(subject, Comparison):
        names = [str(r["campaign"]) for r in rows]
        head = [["runs", *(str(r["n_runs"]) for r in rows)], ["as of", *(_dates(r) for r in rows)]]
    else:
        names, head = [str(r["scope"]) for r in rows], []
    return ["", *names], head + [[label, *(show(r) for r in rows)] for label, show in MEASURES]


def _dates(row: dict[str, Any]) -> str:
    first, last = row["first_as_of"], row["last_as_of"]
    return str(first) if first == last else f"{first} to {last}"


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


# One line of the table per measure, from a row keyed by COLUMNS.
MEASURES: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("targets / control", lambda r: f"{r['n_targets']:,} / {r['n_control']:,}"),
    ("responders", lambda r: f"{r['responders_t']:,} / {r['responders_c']:,}"),
    ("response rate", lambda r: f"{_pct(r['rate_t'])} / {_pct(r['rate_c'])}"),
    ("uplift, points [95%]", lambda r: _interval(r, "uplift", _points)),
    ("relative uplift", lambda r: _pct(r["relative_uplift"], sign=True)),
    ("p-value", lambda r: _num(r["p_value"], ".4f")),
    (
        "revenue per head",
        lambda r: f"{_num(r['revenue_per_head_t'], ',.2f')} / {_num(r['revenue_per_head_c'], ',.2f')}",
    ),
    ("difference [95%]", lambda r: _interval(r, "revenue_per_head_diff", lambda v: _num(v, "+,.2f"))),
    ("incremental responders", lambda r: _interval(r, "incremental_responders", lambda v: _num(v, "+,.1f"))),
    ("incremental revenue", lambda r: _interval(r, "incremental_revenue", lambda v: _num(v, "+,.2f"))),
    ("cost", lambda r: _num(r["cost"], ",.2f")),
    ("ROI", lambda r: _pct(r["roi"], sign=True)),
    ("note", lambda r: r["note"]),
]
