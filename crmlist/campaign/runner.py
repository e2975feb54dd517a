"""Runs: the run id, the run folder protocol (temp folder, manifest last, history, rename) and recovery."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from crmlist.campaign.evaluate import SELECTED_TABLE, Selection, list_query, resolve_as_of
from crmlist.campaign.execute import evaluate_on
from crmlist.campaign.model import Campaign, load_campaign
from crmlist.campaign.views import discover_views
from crmlist.engines import data_fingerprint
from crmlist.errors import CrmlistError, OutputError
from crmlist.outputs import sha256_file, write_json, write_query, write_rows_csv
from crmlist.testing_hooks import pause_point
from crmlist.workspace import CONFIG_NAME, Workspace


@dataclass
class RunResult:
    """What a run did (or found already done)."""

    run_id: str
    campaign: str
    as_of: dt.date
    folder: Path
    status: str  # complete | partial | existing
    counts: dict[str, Any] = field(default_factory=dict)
    failed: int = 0
    folder_exists: bool = True
    failed_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LetterSettings:
    """How a run renders its letters."""

    letters_format: str = "files"
    jobs: int | None = None


def run_id_for(
    con: duckdb.DuckDBPyConnection, ws: Workspace, campaign: Campaign, as_of: dt.date, engine: str | None = None
) -> str:
    """campaign-asof-hash: the hash covers the rule file, templates, views, config and the data."""
    digest = hashlib.sha256()
    digest.update(campaign.path.read_bytes())
    names = {campaign.template, *(c.template for c in campaign.cells if c.template)}
    if ws.templates_dir.is_dir():
        for path in sorted(ws.templates_dir.iterdir()):
            if any(path.name.startswith(f"{n.split('.')[0]}.") for n in names) and path.is_file():
                digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for view in discover_views(ws):
        digest.update(view.sql.encode())
    config = ws.root / CONFIG_NAME
    if config.exists():
        digest.update(config.read_bytes())
    for row in data_fingerprint(con, ws, engine):
        digest.update(repr(row).encode())
    return f"{campaign.name}-{as_of.isoformat()}-{digest.hexdigest()[:8]}"


def run_campaign(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    name: str,
    as_of: dt.date | None,
    out_root: Path | None = None,
    rerun: bool = False,
    letters_format: str = "files",
    jobs: int | None = None,
    engine: str | None = None,
) -> RunResult:
    """Evaluate, write the run folder, record contact history and the runs row, rename into place."""
    out_root = (out_root or ws.out_dir).resolve()  # runs.out_dir must not depend on the current folder
    recover(con, out_root)
    campaign = load_campaign(ws, name)
    as_of = resolve_as_of(campaign, as_of)
    run_id = run_id_for(con, ws, campaign, as_of, engine)
    existing = con.execute("SELECT out_dir, status, counts FROM runs WHERE run_id = ?", [run_id]).fetchone()
    if existing and not rerun:
        folder = Path(existing[0])
        return RunResult(run_id, name, as_of, folder, "existing", json.loads(existing[2] or "{}"), 0, folder.is_dir())
    # Letters may read any fact; a list-only run computes just the facts its rules and list read.
    columns = None if wants_letters(ws, campaign) else ()
    exclude = run_id if rerun else None
    selection = evaluate_on(con, ws, campaign, as_of, exclude_run=exclude, columns=columns, engine=engine)
    final = out_root / name / run_id
    tmp = final.with_name(f".{run_id}.tmp-{os.getpid()}")
    committed = False
    try:
        result = _write_run(con, ws, selection, run_id, tmp, final, LetterSettings(letters_format, jobs))
        pause_point("run:after-manifest")
        _record(con, selection, run_id, final, result)
        committed = True
        pause_point("run:after-commit")
    except BaseException:
        if committed:  # stopped (SIGTERM, Ctrl-C) after the history was recorded: its folder lands too
            swap_into_place(tmp, final)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_into_place(tmp, final)
    return result


def _write_run(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    selection: Selection,
    run_id: str,
    tmp: Path,
    final: Path,
    settings: LetterSettings,
) -> RunResult:
    from crmlist.letters import LetterJob, LetterResult, render_letters  # Jinja2 and Babel load here

    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise OutputError(str(tmp.parent), f"cannot create the run folder: {exc.strerror}", "check --out") from None
    campaign = selection.campaign
    sql, params = list_query(selection)
    write_query(con, sql, params, tmp / "targets.csv", "csv")
    sql, params = list_query(selection, control=True)
    write_query(con, sql, params, tmp / "control.csv", "csv")
    write_rows_csv(
        tmp / "waterfall.csv",
        ["step", "remaining", "removed"],
        [[s.step, s.remaining, s.removed] for s in selection.waterfall],
    )
    if wants_letters(ws, campaign):
        prepare_letter_targets(con, selection)
        job = LetterJob(campaign.name, selection.as_of, settings.letters_format, jobs=settings.jobs)
        letters = render_letters(con, ws, job, tmp)
    else:
        letters = LetterResult(written=[], failed=[], paths=[])
    counts = selection.counts() | {"letters": len(letters.written), "failed": len(letters.failed)}
    if letters.failed and not letters.written:
        raise CrmlistError(
            f"queries/{campaign.path.name}",
            f"every letter failed ({len(letters.failed)}); nothing was recorded",
            f"see the first failure: {letters.failed[0].template}: {letters.failed[0].error}"
            if letters.failed
            else None,
        )
    status = "partial" if letters.failed else "complete"
    files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
    manifest = {
        "run_id": run_id,
        "campaign": campaign.name,
        "as_of": selection.as_of.isoformat(),
        "status": status,
        "channel": campaign.channel,
        "counts": counts,
        "rules_sha256": sha256_file(campaign.path),
        "files": files,
        "letters_format": settings.letters_format,
        "engine": selection.engine,
    }
    pause_point("run:before-manifest")
    write_json(tmp / "manifest.json", manifest)
    failed_ids = [f.customer_id for f in letters.failed]
    return RunResult(run_id, campaign.name, selection.as_of, final, status, counts, len(failed_ids), True, failed_ids)


def wants_letters(ws: Workspace, campaign: Campaign) -> bool:
    """A campaign has letters when its rule file names a template or templates/NAME.*.j2 exist."""
    if campaign.template_given or any(cell.template for cell in campaign.cells):
        return True
    folder = ws.templates_dir
    return folder.is_dir() and any(folder.glob(f"{campaign.template}.*j2"))


def prepare_letter_targets(con: duckdb.DuckDBPyConnection, selection: Selection) -> None:
    """The letter_targets table the renderer reads: facts of each target plus campaign, cell, offer, template."""
    campaign = selection.campaign
    extras = "".join(f', "x_{c}"' for c in selection.extra_relations)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE letter_targets AS SELECT * EXCLUDE (crm_is_target, crm_cell_idx, crm_rank, "
        f"crm_cell_template{extras}), $campaign AS crm_campaign, $channel AS crm_channel, "
        f"coalesce(crm_cell_template, $template) AS crm_template FROM {SELECTED_TABLE} "
        "WHERE crm_is_target ORDER BY customer_id",
        {"campaign": campaign.name, "channel": campaign.channel, "template": campaign.template},
    )


def _record(con: duckdb.DuckDBPyConnection, selection: Selection, run_id: str, final: Path, result: RunResult) -> None:
    """Contact history for targets whose letter was written and for every control, with the runs row."""
    failed = result.failed_ids
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM contact_history WHERE run_id = ?", [run_id])
        con.execute("DELETE FROM runs WHERE run_id = ?", [run_id])
        con.execute(
            f"INSERT INTO contact_history SELECT $run_id, $campaign, crm_cell, customer_id, $channel, crm_offer, "
            f"NOT crm_is_target, $as_of FROM {SELECTED_TABLE} "
            "WHERE NOT crm_is_target OR NOT list_contains($failed, customer_id)",
            {
                "run_id": run_id,
                "campaign": selection.campaign.name,
                "channel": selection.campaign.channel,
                "as_of": selection.as_of,
                "failed": failed,
            },
        )
        now = dt.datetime.now()
        con.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, 'crmlist', ?, ?, ?, ?, ?)",
            [
                run_id,
                selection.campaign.name,
                selection.as_of,
                result.status,
                str(final),
                sha256_file(selection.campaign.path),
                json.dumps(result.counts),
                now,
                now,
            ],
        )
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise


def swap_into_place(tmp: Path, final: Path) -> None:
    """Rename the finished folder into place; an older folder of the same run is moved aside first."""
    aside = final.with_name(f".{final.name}.old-{os.getpid()}")
    try:
        if final.exists():
            os.replace(final, aside)
        os.replace(tmp, final)
    except OSError as exc:
        raise OutputError(str(final), f"cannot move the run folder into place: {exc.strerror}", None) from None
    shutil.rmtree(aside, ignore_errors=True)


def recover(con: duckdb.DuckDBPyConnection, out_root: Path) -> list[str]:
    """Roll forward finished temp folders of committed runs, roll back every other temp folder."""
    actions: list[str] = []
    if not out_root.is_dir():
        return actions
    for tmp in sorted(out_root.glob("*/.*.tmp-*")):
        if not tmp.is_dir():  # a file's temp copy (an export into the out folder) is not a run
            continue
        run_id = tmp.name[1:].rsplit(".tmp-", 1)[0]
        final = tmp.with_name(run_id)
        if _committed(con, tmp, run_id, final):
            swap_into_place(tmp, final)
            actions.append(f"rolled forward {final}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
            actions.append(f"rolled back {tmp}")
    for old in out_root.glob("*/.*.old-*"):
        shutil.rmtree(old, ignore_errors=True)
    return actions


def _committed(con: duckdb.DuckDBPyConnection, tmp: Path, run_id: str, final: Path) -> bool:
    """A temp folder is committed when its manifest's counts are the ones recorded for its run."""
    manifest = tmp / "manifest.json"
    row = con.execute("SELECT out_dir, counts FROM runs WHERE run_id = ?", [run_id]).fetchone()
    if not manifest.is_file() or row is None or Path(row[0]) != final:
        return False
    try:
        counts = json.loads(manifest.read_text(encoding="utf-8")).get("counts")
    except (OSError, ValueError):
        return False
    return bool(counts == json.loads(row[1] or "null"))
