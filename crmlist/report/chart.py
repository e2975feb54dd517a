"""Report charts: uplift per scope (or campaign) with its 95% interval and the run's waterfall; PNG, SVG, HTML."""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

from crmlist.errors import UsageError
from crmlist.outputs import atomic_file
from crmlist.report.compare import Comparison
from crmlist.report.formats import report_table, report_title
from crmlist.report.measure import Report, Scope

CHART_FORMATS = ("png", "svg", "html")


def chart_format(path: Path) -> str:
    """The chart's format from its extension; UsageError for anything else."""
    kind = path.suffix.lower().lstrip(".")
    if kind not in CHART_FORMATS:
        raise UsageError("--chart", f"cannot draw {path.name!r}", "name a .png, .svg or .html file")
    return kind


def write_chart(subject: Report | Comparison, path: Path) -> None:
    """Draw the report, or the comparison of campaigns, into path (format by extension), atomically."""
    import matplotlib

    kind = chart_format(path)
    # Text stays text in SVG (smaller, searchable) and ids are salted, so the same report gives the same bytes.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "crmlist", "font.size": 9}):
        figure = _figure(subject)
        with atomic_file(path) as tmp:
            if kind == "html":
                tmp.write_text(_page(subject, _svg(figure)), encoding="utf-8")
            else:
                figure.savefig(tmp, format=kind, metadata={"Date": None} if kind == "svg" else None)


def _figure(subject: Report | Comparison) -> Any:
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    if isinstance(subject, Comparison):
        lines = [(r.campaign, r.overall) for r in subject.reports]
        title = f"response uplift by campaign, runs as of {subject.period} (grey: small sample)"
        steps = []
    else:
        lines = [(s.name, s) for s in subject.scopes]
        title = f"{subject.campaign}: response uplift, {subject.settings.window_days}-day window (grey: small sample)"
        steps = subject.waterfall or []
    height = 1.6 + 0.35 * max(len(lines), len(steps))
    figure = Figure(figsize=(11 if steps else 6, height), layout="constrained")
    axes = figure.subplots(1, 2 if steps else 1, squeeze=False)[0]
    _uplift(axes[0], lines, title)
    if isinstance(subject, Report) and steps:
        _waterfall(axes[1], steps, subject.runs[0].run_id)
    return figure


def _uplift(ax: Any, lines: list[tuple[str, Scope]], title: str) -> None:
    """One line per scope or campaign, top to bottom: the uplift and its interval, in percentage points."""
    names = [name for name, _ in lines]
    positions = list(range(len(names)))
    for y, (_, scope) in zip(positions, lines, strict=True):
        if scope.uplift is None:
            ax.annotate("no control group", (0, y), ha="center", va="center", color="grey")
            continue
        lift = scope.uplift.absolute
        low = lift.estimate if lift.low is None else lift.low
        high = lift.estimate if lift.high is None else lift.high
        colour = "grey" if scope.small_sample else "tab:blue"
        ax.errorbar(
            [100 * lift.estimate],
            [y],
            xerr=[[100 * (lift.estimate - low)], [100 * (high - lift.estimate)]],
            fmt="o",
            color=colour,
            capsize=4,
        )
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(positions, names)
    ax.set_ylim(len(names) - 0.5, -0.5)  # the first line (overall, or the first campaign) on top
    ax.set_xlabel("uplift, percentage points (95% interval)")
    ax.set_title(title)


def _waterfall(ax: Any, steps: list[tuple[str, int, int]], run_id: str) -> None:
    labels = [step for step, _, _ in steps]
    remaining = [count for _, count, _ in steps]
    bars = ax.barh(range(len(steps)), remaining, color="tab:green")
    ax.bar_label(bars, labels=[f"{n:,}" for n in remaining], padding=3)
    ax.set_yticks(range(len(steps)), labels)
    ax.set_ylim(len(steps) - 0.5, -0.5)
    ax.set_xlim(0, max(max(remaining), 1) * 1.15)  # room for the largest bar's label
    ax.set_xlabel("customers remaining")
    ax.set_title(f"waterfall of {run_id}")


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # inline: no XML declaration or doctype


def _page(subject: Report | Comparison, svg: str) -> str:
    """A self-contained page: the chart as inline SVG and the numbers as a table."""
    header, rows = report_table(subject)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        f"<tr><th>{html.escape(first)}</th>{''.join(f'<td>{html.escape(v)}</td>' for v in values)}</tr>"
        for first, *values in rows
    )
    name = "all campaigns" if isinstance(subject, Comparison) else subject.campaign
    title = html.escape(f"crmlist report: {name}")
    facts = html.escape(report_title(subject))
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "th,td{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}"
        "tr>th:first-child{text-align:left}</style>\n</head>\n<body>\n"
        f"<h1>{title}</h1>\n<p>{facts}</p>\n{svg}\n"
        f"<table>\n<tr>{head}</tr>\n{body}\n</table>\n</body>\n</html>\n"
    )
