"""Proof letters: a campaign's letters for its current targets rendered into a folder, recording nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from crmlist import store
from crmlist.campaign.evaluate import evaluate, resolve_as_of
from crmlist.campaign.model import load_campaign
from crmlist.campaign.runner import prepare_letter_targets
from crmlist.workspace import Workspace, parse_as_of

if TYPE_CHECKING:
    from crmlist.letters import LetterResult


def render_proofs(
    ws: Workspace,
    name: str,
    out: Path,
    as_of: str | dt.date | None = None,
    letters_format: str = "files",
    jobs: int | None = None,
    wait: float = 0.0,
) -> LetterResult:
    """Render the letters of the campaign's targets as of `as_of` (None: the rule file's, else today) into
    `out`, reading the database only; the caller checks `out` (guard_output) before."""
    from crmlist.letters import LetterJob, render_letters  # Jinja2 and Babel load here

    with store.reader(ws.db_path, "letters", wait=wait) as con:
        campaign = load_campaign(ws, name)
        selection = evaluate(con, ws, campaign, resolve_as_of(campaign, parse_as_of(as_of) if as_of else None))
        prepare_letter_targets(con, selection)
        job = LetterJob(name, selection.as_of, letters_format, jobs=jobs, offers=campaign.letter_offers(ws))
        return render_letters(con, ws, job, out)
