"""`crmlist letters --resume RUN_ID`: finish a recorded run's letters on what it read, then record them.

A resume finishes the run that was started: its rules (the run folder's rules.toml), its facts as of its
as-of date and the targets, cells and offers its targets.csv records. Only the templates (the fix a
resume is for) and crmlist.toml may differ; when anything else the run read has changed, or its targets
would change, it refuses and names what changed.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from crmlist.campaign.evaluate import Selection, letter_targets, list_query, scoped
from crmlist.campaign.execute import evaluate_on
from crmlist.campaign.identity import changes, run_inputs
from crmlist.campaign.model import Campaign, campaign_path, load_campaign
from crmlist.campaign.runner import RULES_COPY, RunResult, recover, swap_into_place
from crmlist.errors import CrmlistError, NotFoundError
from crmlist.logs import rule_free_counts
from crmlist.outputs import sha256_file, write_json, write_query
from crmlist.workspace import Workspace

# What may change between a run and its resume: how its letters are written, not whom they go to.
FIXABLE = frozenset({"templates", "config"})


@dataclass(frozen=True)
class RecordedRun:
    """A run's `runs` row: what a resume must finish."""

    run_id: str
    campaign: str
    as_of: dt.date
    wave: int
    folder: Path
    counts: dict[str, Any]
    inputs: dict[str, str]
    started_at: dt.datetime
    rules_sha256: str

    @property
    def engine(self) -> str:
        return self.inputs.get("engine", "duckdb")

    def refusal(self, what: str, where: str | None = None) -> CrmlistError:
        """A resume refused (exit 1), with the way out: recompute the run."""
        return CrmlistError(
            where or self.run_id,
            f"cannot resume: {what}",
            "a resume finishes a run on what it read; recompute it instead: "
            f"crmlist run {self.campaign} --as-of {self.as_of.isoformat()} --rerun",
        )


def resume_letters(con: duckdb.DuckDBPyConnection, ws: Workspace, run_id: str, jobs: int | None = None) -> RunResult:
    """Retry the failed letters of a run in a copy of its folder; commit their history; swap the copy in."""
    run = recorded_run(con, run_id)
    recover(con, run.folder.parent.parent)
    if not run.folder.is_dir():
        raise NotFoundError(
            str(run.folder), "the run's folder is gone", f"recompute it: crmlist run {run.campaign} --rerun"
        )
    failed = _failed_ids(run.folder / "failed.csv")
    if not failed:
        return RunResult(run_id, run.campaign, run.as_of, run.folder, "complete", run.counts)
    campaign = rules_as_run(ws, run)
    fixed = require_same_inputs(con, ws, campaign, run)
    selection = evaluate_on(con, ws, campaign, run.as_of, exclude_run=run_id, engine=run.engine)
    manifest = json.loads((run.folder / "manifest.json").read_text(encoding="utf-8"))
    tmp = run.folder.with_name(f".{run_id}.tmp-{os.getpid()}")
    try:
        with scoped(con, selection):
            # links are copied as links: crmlist never reads or writes through one planted in a run folder
            ignored = shutil.ignore_patterns("manifest.json", "failed.csv")
            shutil.copytree(run.folder, tmp, symlinks=True, ignore=ignored)
            sql, params = list_query(selection)
            write_query(con, sql, params, tmp / "targets.csv", "csv")
            _require_recorded_targets(con, run, manifest, tmp / "targets.csv", fixed)
            result = _render_and_record(con, ws, run, selection, manifest, failed, tmp, jobs)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_into_place(tmp, run.folder)
    return result


def recorded_run(con: duckdb.DuckDBPyConnection, run_id: str) -> RecordedRun:
    """The `runs` row of a run crmlist recorded; NotFoundError when there is none."""
    row = con.execute(
        "SELECT campaign, as_of, coalesce(wave, 1), out_dir, counts, inputs, started_at, rules_sha256 FROM runs "
        "WHERE run_id = ? AND source = 'crmlist'",
        [run_id],
    ).fetchone()
    if row is None:
        raise NotFoundError(run_id, "no recorded run with this id", "see the runs with: crmlist sql 'FROM runs'")
    name, as_of, wave, out_dir, counts, inputs, started_at, rules_sha256 = row
    loaded = (json.loads(counts or "{}"), json.loads(inputs or "{}"))
    return RecordedRun(run_id, name, as_of, wave, Path(out_dir), *loaded, started_at, rules_sha256 or "")


def rules_as_run(ws: Workspace, run: RecordedRun) -> Campaign:
    """The rule file the run read: its folder's copy, else queries/NAME.toml while it is still the same."""
    copy = run.folder / RULES_COPY
    if copy.is_symlink():
        raise run.refusal("the run folder's rules.toml is a link, not the copy the run wrote", str(copy))
    if copy.is_file():
        if sha256_file(copy) != run.rules_sha256:
            raise run.refusal("this is not the rule file the run read (its sha256 differs)", str(copy))
        return load_campaign(ws, run.campaign, copy)
    if sha256_file(campaign_path(ws, run.campaign)) != run.rules_sha256:
        raise run.refusal("the rule file changed since the run, and the run folder keeps no copy of it (rules.toml)")
    return load_campaign(ws, run.campaign)


def require_same_inputs(
    con: duckdb.DuckDBPyConnection, ws: Workspace, campaign: Campaign, run: RecordedRun
) -> list[str]:
    """Refuse unless the run's inputs are unchanged but for FIXABLE ones; returns the FIXABLE ones changed.

    The digests are the run id's (identity.run_inputs), as of the run's as-of date, without the
    contacts of runs recorded after it (the run's consequences, or other campaigns' later runs).
    """
    if not run.inputs:
        raise run.refusal("the run predates input digests, so what it read cannot be compared")
    now = run_inputs(con, ws, campaign, run.as_of, run.wave, run.engine, since=run.started_at)
    kept = changes(_without(run.inputs, FIXABLE), _without(now, FIXABLE))
    if kept:
        raise run.refusal(f"since the run, {', '.join(kept)}")
    return [key for key in sorted(FIXABLE) if run.inputs.get(key) != now.get(key)]


def _without(inputs: dict[str, str], keys: frozenset[str]) -> dict[str, str]:
    return {k: v for k, v in inputs.items() if k not in keys}


def _require_recorded_targets(
    con: duckdb.DuckDBPyConnection, run: RecordedRun, manifest: dict[str, Any], written: Path, fixed: list[str]
) -> None:
    """Refuse unless the list evaluated now is, byte for byte, the targets.csv the run recorded."""
    recorded = manifest.get("files", {}).get("targets.csv")
    if sha256_file(written) == recorded:
        return
    with (
        (run.folder / "targets.csv").open(encoding="utf-8", newline="") as before,
        written.open(encoding="utf-8") as now,
    ):
        lost = len(set(before) - set(now))  # the recorded rows evaluating now does not give again
    causes = ["crmlist.toml changed since the run"] if "config" in fixed else []
    if _contacted_since(con, run):
        causes.append("contacts recorded since the run count against them")
    targets = run.counts.get("targets", 0)
    raise run.refusal(
        f"{lost} of its {targets} targets would no longer get the cell and offer targets.csv records: "
        + (" or ".join(causes) or "the campaign selects them differently now")
    )


def _contacted_since(con: duckdb.DuckDBPyConnection, run: RecordedRun) -> bool:
    """Contacts (not controls) as of the run's date or before, of runs recorded after it."""
    row = con.execute(
        "SELECT count(*) FROM contact_history WHERE NOT is_control AND as_of <= ? "
        "AND run_id IN (SELECT run_id FROM runs WHERE started_at > ?)",
        [run.as_of, run.started_at],
    ).fetchone()
    return bool(row and row[0])


def _render_and_record(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    run: RecordedRun,
    selection: Selection,
    manifest: dict[str, Any],
    failed: list[str],
    tmp: Path,
    jobs: int | None,
) -> RunResult:
    """Render the letters into the copy `tmp`, write its manifest, record the new letters' history."""
    from crmlist.letters import LetterJob, render_letters

    fmt = manifest.get("letters_format", "files")
    # A bundle is one file: it is rendered again whole; letter files: only the missing ones.
    wanted = set(failed)
    only = wanted if fmt == "files" else None
    offers = selection.campaign.letter_offers(ws)
    job = LetterJob(run.campaign, run.as_of, fmt, only_ids=only, jobs=jobs, offers=offers)
    with letter_targets(con, selection) as targets:
        letters = render_letters(con, ws, job, tmp, targets)
    new = [cid for cid in letters.written if cid in wanted]
    counts = run.counts | {"letters": run.counts.get("letters", 0) + len(new), "failed": len(letters.failed)}
    status = "partial" if letters.failed else "complete"
    manifest |= {"status": status, "counts": rule_free_counts(counts)}
    manifest["files"] = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
    write_json(tmp / "manifest.json", manifest)
    _record_resumed(con, selection, run, new, status, counts)
    failed_ids = [f.customer_id for f in letters.failed]
    return RunResult(run.run_id, run.campaign, run.as_of, run.folder, status, counts, len(failed_ids), True, failed_ids)


def _failed_ids(path: Path) -> list[str]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as fh:
        return [row["customer_id"] for row in csv.DictReader(fh)]


def _record_resumed(
    con: duckdb.DuckDBPyConnection,
    selection: Selection,
    run: RecordedRun,
    written: list[str],
    status: str,
    counts: dict[str, object],
) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "INSERT INTO contact_history (run_id, campaign, cell, customer_id, channel, offer, is_control, as_of) "
            f"SELECT $run_id, $campaign, crm_cell, customer_id, $channel, crm_offer, "
            f"FALSE, $as_of FROM {selection.rows} WHERE crm_is_target AND list_contains($ids, customer_id)",
            {
                "run_id": run.run_id,
                "campaign": selection.campaign.name,
                "channel": selection.campaign.channel,
                "as_of": run.as_of,
                "ids": written,
            },
        )
        con.execute(
            "UPDATE runs SET status = ?, counts = ?, finished_at = ? WHERE run_id = ?",
            [status, json.dumps(counts), dt.datetime.now(), run.run_id],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
