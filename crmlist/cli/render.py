"""Human views of library results: waterfall and cell tables, run summaries."""

from __future__ import annotations

from rich.table import Table

from crmlist.campaign.preview import Preview
from crmlist.campaign.runner import RunResult
from crmlist.cli.output import Printer, stdout_console


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def show_preview(result: Preview) -> None:
    selection = result.selection
    console = stdout_console()
    total = selection.waterfall[0].remaining if selection.waterfall else 0
    title = f"{selection.campaign.name} as of {selection.as_of.isoformat()}"
    plan = result.plan
    waterfall = Table("step", "remaining", "%", "removed", title=title)
    if plan:
        waterfall.add_column(f"last run {plan.as_of}")
    before = {s[0]: s[1] for s in plan.steps} if plan else {}
    for step in selection.waterfall:
        row = [step.step, f"{step.remaining:,}", _pct(step.remaining, total), f"{step.removed:,}"]
        if plan:
            was = before.get(step.step)
            row.append("-" if was is None else f"{was:,} ({step.remaining - was:+,})")
        waterfall.add_row(*row)
    console.print(waterfall)
    cells = Table("cell", "offer", "targets", "control", title="cells")
    for cell in selection.cells:
        cells.add_row(cell.name, cell.offer or "", f"{cell.targets:,}", f"{cell.control:,}")
    console.print(cells)
    if result.sample:
        sample = Table(*result.sample_columns, title="sample targets")
        for sample_row in result.sample:
            sample.add_row(*["" if v is None else str(v) for v in sample_row])
        console.print(sample)
    if plan:
        console.print(
            f"against run {plan.run_id}: {plan.entering:,} customers enter, {plan.leaving:,} leave", markup=False
        )
    else:
        console.print("no recorded run of this campaign yet", markup=False)
    if result.verdict:
        console.print(result.verdict.describe(), markup=False)


def show_run(printer: Printer, result: RunResult) -> None:
    if result.status == "existing":
        where = str(result.folder) if result.folder_exists else f"{result.folder} (folder gone)"
        printer.notice(f"{result.campaign}: run {result.run_id} is already recorded: {where}")
        printer.notice("hint: pass --rerun to compute it again and replace it")
        return
    counts = result.counts
    printer.notice(
        f"{result.campaign}: run {result.run_id}: {counts.get('targets', 0)} targets, "
        f"{counts.get('control', 0)} control, {counts.get('letters', 0)} letters -> {result.folder}"
    )
    if result.status == "partial":
        printer.notice(f"{result.failed} letters failed; see {result.folder / 'failed.csv'}")
