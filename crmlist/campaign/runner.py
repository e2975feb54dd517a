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
from typing import TYPE_CHECKING, Any

import duckdb

from crmlist.campaign.evaluate import (
    Selection,
    create_letter_targets,
    global_control_members,
    letter_targets,
    list_query,
    resolve_as_of,
    scoped,
)
from crmlist.campaign.execute import evaluate_on
from crmlist.campaign.identity import RecordedRun, changes, recorded_wave, run_id_for, run_inputs
from crmlist.campaign.model import Campaign, load_campaign
from crmlist.engines import engine_settings
from crmlist.errors import CrmlistError, OutputError, WaveRecordedError
from crmlist.logs import rule_free_counts
from crmlist.newfiles import (
    ASIDE,
    TEMPORARY,
    create_new,
    leftovers_below,
    refuse_link,
    remove,
    replace_folder,
    roll_back,
)
from crmlist.newfiles import move_aside as move_folder_aside
from crmlist.outputs import sha256_file, write_json, write_query, write_rows_csv
from crmlist.testing_hooks import pause_point
from crmlist.workspace import Workspace

if TYPE_CHECKING:
    from crmlist.letters import LetterResult


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
    rules_sha256: str = ""


@dataclass(frozen=True)
class LetterSettings:
    """How a run renders its letters."""

    letters_format: str = "files"
    jobs: int | None = None


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
    wave: int = 1,
) -> RunResult:
    """Evaluate, write the run folder, record contact history and the runs row, rename into place.

    A wave already recorded on the same inputs is reported (status "existing"); on other inputs it is
    refused unless `rerun`, which replaces that run: its contacts, its runs row and its folder.
    """
    out_root = (out_root or ws.out_dir).resolve()  # runs.out_dir must not depend on the current folder
    engine_settings(ws, engine)  # an unknown engine is a usage error before anything is read or written
    recover(con, out_root)
    campaign = load_campaign(ws, name)
    as_of = resolve_as_of(campaign, as_of)
    letters = wants_letters(ws, campaign)
    if letters:
        _require_templates(ws, campaign)  # a missing template is the error, before "already ran"
    earlier = recorded_wave(con, name, as_of, wave)
    since = earlier.recorded_at if earlier and not rerun else None
    inputs = run_inputs(con, ws, campaign, as_of, wave, engine, since)
    record = RunRecord(run_id_for(campaign, as_of, wave, inputs), wave, inputs, earlier.run_id if earlier else None)
    if earlier and not rerun:
        return _recorded_already(campaign, as_of, earlier, record)
    # Letters may read any fact; a list-only run computes just the facts its rules and list read.
    columns = None if letters else ()
    selection = evaluate_on(con, ws, campaign, as_of, exclude_run=record.replaces, columns=columns, engine=engine)
    # The folder of a run this one replaces (--rerun on other inputs) is moved aside before the commit, so
    # that a kill leaves it where recover() puts it back (not committed) or removes it (committed).
    replaced = Path(earlier.out_dir) if earlier and earlier.run_id != record.run_id else None
    with scoped(con, selection):
        folders = _RunFolders(out_root / name / record.run_id, replaced)
        return _write_and_commit(con, ws, selection, record, folders, LetterSettings(letters_format, jobs))


def _recorded_already(campaign: Campaign, as_of: dt.date, earlier: RecordedRun, record: RunRecord) -> RunResult:
    """The wave's recorded run when it read the same inputs (status "existing"); else the refusal."""
    if earlier.run_id != record.run_id:
        raise _wave_recorded(campaign, as_of, record.wave, earlier, record.inputs)
    folder = Path(earlier.out_dir)
    return RunResult(record.run_id, campaign.name, as_of, folder, "existing", earlier.counts, 0, folder.is_dir())


@dataclass(frozen=True)
class _RunFolders:
    """Where a run's folder goes, the temporary folder it is written in, and the folder of a run it replaces."""

    final: Path
    replaced: Path | None = None

    @property
    def tmp(self) -> Path:
        return self.final.with_name(f".{self.final.name}.tmp-{os.getpid()}")


def _write_and_commit(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    selection: Selection,
    record: RunRecord,
    folders: _RunFolders,
    settings: LetterSettings,
) -> RunResult:
    """The run folder protocol: write the temporary folder, move a replaced run's folder aside, commit
    history and the runs row, rename into place; a failure before the commit leaves things as they were."""
    tmp, final, replaced = folders.tmp, folders.final, folders.replaced
    aside: Path | None = None
    committed = False
    try:
        result = _write_run(con, ws, selection, record.run_id, tmp, final, settings)
        pause_point("run:after-manifest")
        aside = move_aside(replaced)
        _record(con, selection, record, final, result)
        committed = True
        pause_point("run:after-commit")
    except BaseException:
        if committed:  # stopped (SIGTERM, Ctrl-C) after the history was recorded: its folder lands too
            swap_into_place(tmp, final)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
            if aside is not None and replaced is not None:
                os.replace(aside, replaced)
            aside = None
        raise
    finally:
        if aside is not None and committed:
            shutil.rmtree(aside, ignore_errors=True)
    swap_into_place(tmp, final)
    return result


def _require_templates(ws: Workspace, campaign: Campaign) -> None:
    from crmlist.letters.environment import template_ext

    for name in sorted({campaign.template, *(c.template for c in campaign.cells if c.template)}):
        template_ext(ws, name)


def _wave_recorded(
    campaign: Campaign, as_of: dt.date, wave: int, earlier: RecordedRun, inputs: dict[str, str]
) -> WaveRecordedError:
    what = ", ".join(changes(earlier.inputs, inputs)) or "its inputs changed"
    label = f"as of {as_of.isoformat()}" + (f", wave {wave}," if wave > 1 else "")
    return WaveRecordedError(
        campaign.rule_file,
        f"{campaign.name} {label} already ran as {earlier.run_id}; since then {what}",
        f"running it again would contact its customers twice: pass --rerun to replace run {earlier.run_id} "
        f"(its contacts and folder), or --wave {wave + 1} to contact the new audience as another wave",
    )


def _write_run(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    selection: Selection,
    run_id: str,
    tmp: Path,
    final: Path,
    settings: LetterSettings,
) -> RunResult:
    """Everything of the run folder in `tmp`: lists, waterfall, letters, rules.toml, the manifest last."""
    _make_folder(tmp)
    _write_lists(con, selection, tmp)
    letters = _write_letters(con, ws, selection, tmp, settings)
    counts = selection.counts() | {"letters": len(letters.written), "failed": len(letters.failed)}
    members = global_control_members(con, selection)
    if members:  # global control members who would have been targets: recorded as such
        counts["global_control"] = members
    if letters.failed and not letters.written:
        raise _every_letter_failed(selection, letters)
    status = "partial" if letters.failed else "complete"
    rules = _copy_rules(selection.campaign.path, tmp / RULES_COPY)
    _write_manifest(tmp, run_id, selection, status, counts, rules, settings)
    failed_ids = [f.customer_id for f in letters.failed]
    return RunResult(
        run_id,
        selection.campaign.name,
        selection.as_of,
        final,
        status,
        counts,
        len(failed_ids),
        True,
        failed_ids,
        rules,
    )


def _make_folder(tmp: Path) -> None:
    refuse_link(tmp.parent, "--out")  # out/CAMPAIGN planted as a link to another folder
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise OutputError(str(tmp.parent), f"cannot create the run folder: {exc.strerror}", "check --out") from None


def _write_lists(con: duckdb.DuckDBPyConnection, selection: Selection, tmp: Path) -> None:
    """targets.csv, control.csv and waterfall.csv."""
    for name, control in (("targets.csv", False), ("control.csv", True)):
        sql, params = list_query(selection, control=control)
        write_query(con, sql, params, tmp / name, "csv")
    write_rows_csv(
        tmp / "waterfall.csv",
        ["step", "remaining", "removed"],
        [[s.step, s.remaining, s.removed] for s in selection.waterfall],
    )


def _write_letters(
    con: duckdb.DuckDBPyConnection, ws: Workspace, selection: Selection, tmp: Path, settings: LetterSettings
) -> LetterResult:
    """The targets' letters, when the campaign has letters (none written otherwise)."""
    from crmlist.letters import LetterJob, LetterResult, render_letters  # Jinja2 and Babel load here

    campaign = selection.campaign
    if not wants_letters(ws, campaign):
        return LetterResult(written=[], failed=[], paths=[])
    offers = campaign.letter_offers(ws)
    job = LetterJob(campaign.name, selection.as_of, settings.letters_format, jobs=settings.jobs, offers=offers)
    with letter_targets(con, selection) as targets:
        return render_letters(con, ws, job, tmp, targets)


def _every_letter_failed(selection: Selection, letters: LetterResult) -> CrmlistError:
    """The error of a run none of whose letters rendered: the count and the first failure (its customer
    id, template, line and error; never other personal data)."""
    first = letters.failed[0]
    line = f", line {first.line}" if first.line else ""
    return CrmlistError(
        selection.campaign.rule_file,
        f"every letter failed ({len(letters.failed)}); nothing was recorded",
        f"the first, of customer {first.customer_id}, in templates/{first.template}{line}: {first.error}",
    )


def _write_manifest(
    tmp: Path,
    run_id: str,
    selection: Selection,
    status: str,
    counts: dict[str, Any],
    rules_sha256: str,
    settings: LetterSettings,
) -> None:
    """manifest.json, written last: the sha256 of every file already in the folder."""
    campaign = selection.campaign
    manifest = {
        "run_id": run_id,
        "campaign": campaign.name,
        "as_of": selection.as_of.isoformat(),
        "status": status,
        "channel": campaign.channel,
        "counts": rule_free_counts(counts),  # a rule's text may quote personal data: rules.toml keeps it
        "rules_sha256": rules_sha256,
        "files": {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()},
        "letters_format": settings.letters_format,
        "engine": selection.engine,
    }
    pause_point("run:before-manifest")
    write_json(tmp / "manifest.json", manifest)


RULES_COPY = "rules.toml"  # the rule file as the run read it, owner-only whatever file_mode says


def _copy_rules(source: Path, target: Path) -> str:
    """Copy the rule file into the run folder (0600); returns its sha256."""
    data = source.read_bytes()
    try:
        fd = create_new(target)
        os.fchmod(fd, 0o600)
        with open(fd, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise OutputError(str(target), f"cannot write: {exc.strerror}", "check the path and free space") from None
    return hashlib.sha256(data).hexdigest()


def wants_letters(ws: Workspace, campaign: Campaign) -> bool:
    """A campaign has letters when its rule file names a template or templates/NAME.*.j2 exist."""
    if campaign.template_given or any(cell.template for cell in campaign.cells):
        return True
    folder = ws.templates_dir
    return folder.is_dir() and any(folder.glob(f"{campaign.template}.*j2"))


def prepare_letter_targets(con: duckdb.DuckDBPyConnection, selection: Selection) -> str:
    """The letter_targets table the renderer reads, kept for the session (letters without a run); its name."""
    return create_letter_targets(con, selection)


@dataclass(frozen=True)
class RunRecord:
    """What the runs row keeps of a run: its id, wave, input digests and the run it replaces."""

    run_id: str
    wave: int
    inputs: dict[str, str]
    replaces: str | None = None


_HISTORY_INSERT = """
INSERT INTO contact_history (run_id, campaign, cell, customer_id, channel, offer, is_control, as_of, control_group)
SELECT $run_id, $campaign, crm_cell, customer_id, $channel, crm_offer, NOT crm_is_target, $as_of,
       CASE crm_group WHEN 'control' THEN 'campaign' WHEN 'global' THEN 'global' END
FROM {selected} WHERE NOT crm_is_target OR NOT list_contains($failed, customer_id)
"""


def _record(
    con: duckdb.DuckDBPyConnection, selection: Selection, record: RunRecord, final: Path, result: RunResult
) -> None:
    """Contact history for targets whose letter was written and for every control, with the runs row;
    the run it replaces (--rerun of a wave recorded on other inputs) goes in the same transaction."""
    replaced = [record.run_id, *([record.replaces] if record.replaces else [])]
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM contact_history WHERE list_contains($ids, run_id)", {"ids": replaced})
        con.execute("DELETE FROM runs WHERE list_contains($ids, run_id)", {"ids": replaced})
        con.execute(
            _HISTORY_INSERT.format(selected=selection.rows),
            {
                "run_id": record.run_id,
                "campaign": selection.campaign.name,
                "channel": selection.campaign.channel,
                "as_of": selection.as_of,
                "failed": result.failed_ids,
            },
        )
        now = dt.datetime.now()
        con.execute(
            "INSERT INTO runs (run_id, campaign, as_of, status, source, out_dir, rules_sha256, counts, started_at, "
            "finished_at, wave, inputs) VALUES (?, ?, ?, ?, 'crmlist', ?, ?, ?, ?, ?, ?, ?)",
            [
                record.run_id,
                selection.campaign.name,
                selection.as_of,
                result.status,
                str(final),
                result.rules_sha256 or sha256_file(selection.campaign.path),
                json.dumps(result.counts),
                now,
                now,
                record.wave,
                json.dumps(record.inputs, sort_keys=True),
            ],
        )
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise


def move_aside(folder: Path | None) -> Path | None:
    """A run folder renamed to `.RUN_ID.old-PID` beside it (None when there is none to move)."""
    if folder is None or not folder.is_dir():
        return None
    return move_folder_aside(folder)


# A finished run folder goes in place as newfiles puts any folder: an older folder of the same run is moved
# aside, the new one renamed in and the older one removed, or put back when the new one cannot go in.
swap_into_place = replace_folder


def recover(con: duckdb.DuckDBPyConnection, out_root: Path) -> list[str]:
    """Roll forward finished temp folders of committed runs, roll back every other temp folder; then put
    back a folder a stopped rerun moved aside while its run is still recorded, and remove the others.
    What a process still running left (a reader's export-parquet into the out folder) is left alone."""
    found = [f for f in leftovers_below(out_root) if f.is_folder and f.stopped()]
    actions: list[str] = []
    for tmp in (f for f in found if f.kind == TEMPORARY):
        if _committed(con, tmp.path, tmp.target.name, tmp.target):
            swap_into_place(tmp.path, tmp.target)
            actions.append(f"rolled forward {tmp.target}")
        else:
            actions.append(roll_back(tmp))
    for old in (f for f in found if f.kind == ASIDE):
        recorded = con.execute("SELECT 1 FROM runs WHERE run_id = ?", [old.target.name]).fetchone()
        if recorded and not os.path.lexists(old.target):  # moved aside by a run stopped before its commit
            actions.append(roll_back(old))
        else:
            remove(old.path)
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
    recorded = json.loads(row[1] or "null")
    return bool(counts in (rule_free_counts(recorded), recorded))  # earlier manifests kept the rule text
