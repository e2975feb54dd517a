"""`crmlist letters --resume RUN_ID`: render the letters a recorded run could not write, then record them."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import shutil
from pathlib import Path

import duckdb

from crmlist.campaign.evaluate import SELECTED_TABLE, evaluate
from crmlist.campaign.model import Campaign, load_campaign
from crmlist.campaign.runner import RunResult, prepare_letter_targets, recover, swap_into_place
from crmlist.errors import BadInputError, NotFoundError
from crmlist.logs import rule_free_counts
from crmlist.outputs import sha256_file, write_json
from crmlist.workspace import Workspace


def resume_letters(con: duckdb.DuckDBPyConnection, ws: Workspace, run_id: str, jobs: int | None = None) -> RunResult:
    """Retry the failed letters of a run in a copy of its folder; commit their history; swap the copy in."""
    from crmlist.letters import LetterJob, render_letters

    row = con.execute(
        "SELECT campaign, as_of, out_dir, counts FROM runs WHERE run_id = ? AND source = 'crmlist'", [run_id]
    ).fetchone()
    if row is None:
        raise NotFoundError(run_id, "no recorded run with this id", "see the runs with: crmlist sql 'FROM runs'")
    name, as_of, out_dir, counts_json = row
    folder = Path(out_dir)
    recover(con, folder.parent.parent)
    if not folder.is_dir():
        raise NotFoundError(str(folder), "the run's folder is gone", f"recompute it: crmlist run {name} --rerun")
    failed = _failed_ids(folder / "failed.csv")
    counts = json.loads(counts_json or "{}")
    if not failed:
        return RunResult(run_id, name, as_of, folder, "complete", counts)
    campaign = load_campaign(ws, name)
    selection = evaluate(con, ws, campaign, as_of, exclude_run=run_id)
    prepare_letter_targets(con, selection)
    _require_targets(con, failed, folder)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    fmt = manifest.get("letters_format", "files")
    tmp = folder.with_name(f".{run_id}.tmp-{os.getpid()}")
    try:
        # links are copied as links: crmlist never reads or writes through one planted in a run folder
        ignored = shutil.ignore_patterns("manifest.json", "failed.csv")
        shutil.copytree(folder, tmp, symlinks=True, ignore=ignored)
        # A bundle is one file: it is rendered again whole; letter files: only the missing ones.
        wanted = set(failed)
        job = LetterJob(name, as_of, fmt, only_ids=wanted if fmt == "files" else None, jobs=jobs)
        letters = render_letters(con, ws, job, tmp)
        new = [cid for cid in letters.written if cid in wanted]
        counts |= {"letters": counts.get("letters", 0) + len(new), "failed": len(letters.failed)}
        status = "partial" if letters.failed else "complete"
        manifest |= {"status": status, "counts": rule_free_counts(counts)}
        manifest["files"] = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        write_json(tmp / "manifest.json", manifest)
        _record_resumed(con, campaign, run_id, as_of, new, status, counts)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_into_place(tmp, folder)
    failed_ids = [f.customer_id for f in letters.failed]
    return RunResult(run_id, name, as_of, folder, status, counts, len(failed_ids), True, failed_ids)


def _failed_ids(path: Path) -> list[str]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as fh:
        return [row["customer_id"] for row in csv.DictReader(fh)]


def _require_targets(con: duckdb.DuckDBPyConnection, failed: list[str], folder: Path) -> None:
    rows = con.execute(
        f"SELECT count(*) FROM {SELECTED_TABLE} WHERE crm_is_target AND list_contains($ids, customer_id)",
        {"ids": failed},
    ).fetchone()
    if not rows or rows[0] != len(failed):
        raise BadInputError(
            str(folder),
            "the data changed since the run: its failed customers are no longer all targets",
            "recompute the whole run with --rerun",
        )


def _record_resumed(
    con: duckdb.DuckDBPyConnection,
    campaign: Campaign,
    run_id: str,
    as_of: dt.date,
    written: list[str],
    status: str,
    counts: dict[str, object],
) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "INSERT INTO contact_history (run_id, campaign, cell, customer_id, channel, offer, is_control, as_of) "
            f"SELECT $run_id, $campaign, crm_cell, customer_id, $channel, crm_offer, "
            f"FALSE, $as_of FROM {SELECTED_TABLE} WHERE crm_is_target AND list_contains($ids, customer_id)",
            {"run_id": run_id, "campaign": campaign.name, "channel": campaign.channel, "as_of": as_of, "ids": written},
        )
        con.execute(
            "UPDATE runs SET status = ?, counts = ?, finished_at = ? WHERE run_id = ?",
            [status, json.dumps(counts), dt.datetime.now(), run_id],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
