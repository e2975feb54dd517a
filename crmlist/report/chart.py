"""Report charts: uplift per scope with its 95% interval and the run's waterfall, as PNG, SVG or HTML."""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

from crmlist.errors import UsageError
from crmlist.outputs import atomic_file
from crmlist.report.formats import report_lines
from crmlist.report.measure import Report

CHART_FORMATS = ("png", "svg", "html")


def chart_format(path: Path) -> str:
    """The chart's format from its extension; UsageError for anything else."""
    kind = path.suffix.lower().lstrip(".")
    if kind not in CHART_FORMATS:
        raise UsageError("--chart", f"cannot draw {path.name!r}", "name a .png, .svg or .html file")
    return kind


def write_chart(report: Report, path: Path) -> None:
    """Draw the report into path (format by extension), atomically."""
    import matplotlib

    kind = chart_format(path)
    # Text stays text in SVG (smaller, searchable) and ids are salted, so the same report gives the same bytes.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "crmlist", "font.size": 9}):
        figure = _figure(report)
        with atomic_file(path) as tmp:
            if kind == "html":
                tmp.write_text(_page(report, _svg(figure)), encoding="utf-8")
            else:
                figure.savefig(tmp, format=kind, metadata={"Date": None} if kind == "svg" else None)


def _figure(report: Report) -> Any:
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    steps = report.waterfall or []
    height = 1.6 + 0.35 * max(len(report.scopes), len(steps))
    figure = Figure(figsize=(11 if steps else 6, height), layout="constrained")
    axes = figure.subplots(1, 2 if steps else 1, squeeze=False)[0]
    _uplift(axes[0], report)
    if steps:
        _waterfall(axes[1], steps, report.runs[0].run_id)
    return figure


def _uplift(ax: Any, report: Report) -> None:
    names = [s.name for s in report.scopes]
    positions = list(range(len(names)))
    for y, scope in zip(positions, report.scopes, strict=True):
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
    ax.set_ylim(len(names) - 0.5, -0.5)  # overall on top, cells below in order
    ax.set_xlabel("uplift, percentage points (95% interval)")
    ax.set_title(f"{report.campaign}: response uplift, {report.settings.window_days}-day window (grey: small sample)")


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


def _page(report: Report, svg: str) -> str:
    """A self-contained page: the chart as inline SVG and the report's numbers as a table."""
    scopes, lines = report_lines(report)
    head = "".join(f"<th>{html.escape(s)}</th>" for s in scopes)
    body = "".join(
        f"<tr><th>{html.escape(label)}</th>{''.join(f'<td>{html.escape(v)}</td>' for v in values)}</tr>"
        for label, values in lines
    )
    run = report.run_id or f"all {len(report.runs)} runs"
    as_of = report.as_of.isoformat() if report.as_of else "several dates"
    title = html.escape(f"crmlist report: {report.campaign}")
    facts = html.escape(
        f"{run}, as of {as_of}; responses within {report.settings.window_days} days, from {report.source}"
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "th,td{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}"
        "tr>th:first-child{text-align:left}</style>\n</head>\n<body>\n"
        f"<h1>{title}</h1>\n<p>{facts}</p>\n{svg}\n"
        f"<table>\n<tr><th></th>{head}</tr>\n{body}\n</table>\n</body>\n</html>\n"
    )
