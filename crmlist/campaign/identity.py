"""What a run reads, as digests: its run id, its wave, and what changed since a wave was recorded.

A wave is one contact of a campaign for an as-of date (`--wave N`, default 1). Its run id hashes the
content the campaign reads, never load events: the rule file, its templates and in_list() files, the
views, crmlist.toml and, per table, the rows as of the as-of date (customers signed up by then,
purchases and responses up to then, every product and suppression, contacts up to then). Contacts
recorded after the wave's own run, and the wave's own contacts, are left out: they are the wave's
consequences, not its inputs, so a job that runs two campaigns twice finds both recorded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import duckdb

from crmlist.campaign.expressions import ExpressionError
from crmlist.campaign.helpers import list_path
from crmlist.campaign.model import Campaign
from crmlist.campaign.views import View, discover_views
from crmlist.engines import data_fingerprint, engine_settings
from crmlist.store import table_digest
from crmlist.workspace import CONFIG_NAME, Workspace

# Rows of each table a campaign as of $as_of reads (see the module docstring).
_TABLE_ROWS = {
    "customers": "signup_date IS NULL OR signup_date <= $as_of",
    "purchases": "order_date <= $as_of",
    "products": "TRUE",
    "suppressions": "TRUE",
    "responses": "responded_at <= $as_of",
}
# Contact history as of the date, without the wave's own runs and without runs recorded after it.
_HISTORY_ROWS = """
    as_of <= $as_of AND run_id NOT IN (SELECT run_id FROM runs WHERE campaign = $campaign AND as_of = $as_of
        AND coalesce(wave, 1) = $wave)
    AND ($since IS NULL OR run_id NOT IN (SELECT run_id FROM runs WHERE started_at > $since))
"""
_IN_LIST = re.compile(r"in_list\s*\(\s*'([^']*)'", re.IGNORECASE)
_LABELS = {
    "rules": "the rule file",
    "templates": "its templates",
    "lists": "its in_list() files",
    "views": "the views (queries/*.sql)",
    "config": "crmlist.toml",
    "lake": "the Parquet sources",
    "duckdb": "the DuckDB version (data digests cannot be compared)",
}


@dataclass(frozen=True)
class RecordedRun:
    """A run recorded for a campaign wave, with the digests of what it read."""

    run_id: str
    out_dir: str
    status: str
    counts: dict[str, Any]
    inputs: dict[str, str]
    recorded_at: dt.datetime | None  # when the run first ran (a resume keeps it)


def recorded_wave(con: duckdb.DuckDBPyConnection, campaign: str, as_of: dt.date, wave: int) -> RecordedRun | None:
    """The run recorded by crmlist for this campaign, as-of date and wave, if any."""
    row = con.execute(
        "SELECT run_id, out_dir, status, counts, inputs, started_at FROM runs WHERE campaign = ? AND as_of = ? "
        "AND coalesce(wave, 1) = ? AND source = 'crmlist' ORDER BY started_at DESC, run_id DESC LIMIT 1",
        [campaign, as_of, wave],
    ).fetchone()
    if row is None:
        return None
    return RecordedRun(row[0], row[1], row[2], json.loads(row[3] or "{}"), json.loads(row[4] or "{}"), row[5])


def run_inputs(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    campaign: Campaign,
    as_of: dt.date,
    wave: int = 1,
    engine: str | None = None,
    since: dt.datetime | None = None,
) -> dict[str, str]:
    """Digests of everything the run reads; `since`: leave out contacts of runs recorded after it."""
    inputs = {"rules": _sha(campaign.path.read_bytes())}
    inputs["templates"] = _sha(*_template_parts(ws, campaign))
    inputs["lists"] = _sha(*_list_parts(ws, campaign))
    views = discover_views(ws)
    inputs["views"] = _sha(*(view.sql.encode() for view in views))
    config = ws.root / CONFIG_NAME
    inputs["config"] = _sha(config.read_bytes() if config.exists() else b"")
    inputs["engine"] = engine_settings(ws, engine).name
    if inputs["engine"] == "spark":
        inputs["lake"] = _sha(*(repr(row).encode() for row in data_fingerprint(con, ws, engine)))
    else:
        inputs["duckdb"] = duckdb.__version__
        for table, rows in _TABLE_ROWS.items():
            if table != "responses" or _reads_responses(campaign, views):
                inputs[table] = _table_digest(con, table, rows, {"as_of": as_of})
    params = {"as_of": as_of, "campaign": campaign.name, "wave": wave, "since": since}
    inputs["contact_history"] = _table_digest(con, "contact_history", _HISTORY_ROWS, params)
    return inputs


def run_id_for(campaign: Campaign, as_of: dt.date, wave: int, inputs: dict[str, str]) -> str:
    """campaign-asof-hash for the first wave, campaign-asof-wN-hash for a later one."""
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode())
    if wave == 1:
        return f"{campaign.name}-{as_of.isoformat()}-{digest.hexdigest()[:8]}"
    digest.update(f"wave {wave}".encode())
    return f"{campaign.name}-{as_of.isoformat()}-w{wave}-{digest.hexdigest()[:8]}"


def changes(before: dict[str, str], now: dict[str, str]) -> list[str]:
    """What differs between two runs' inputs, in words ("customers changed", "crmlist.toml changed")."""
    if not before:
        return ["the recorded run predates input digests"]
    if before.get("engine", "duckdb") != now.get("engine"):
        return [f"the engine changed ({before.get('engine', 'duckdb')} then, {now.get('engine')} now)"]
    if before.get("duckdb", now.get("duckdb")) != now.get("duckdb"):
        return [f"{_LABELS['duckdb']}: {before.get('duckdb')} then, {now.get('duckdb')} now"]
    keys = [k for k in now if k != "duckdb"] + [k for k in before if k not in now and k != "duckdb"]
    return [f"{_LABELS.get(k, k)} changed" for k in keys if before.get(k) != now.get(k)]


def _sha(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def _template_parts(ws: Workspace, campaign: Campaign) -> list[bytes]:
    names = {campaign.template, *(c.template for c in campaign.cells if c.template)}
    stems = {n.split(".")[0] for n in names}
    folder = ws.templates_dir
    if not folder.is_dir():
        return []
    return [
        path.name.encode() + b"\0" + path.read_bytes()
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name.split(".")[0] in stems
    ]


def _list_parts(ws: Workspace, campaign: Campaign) -> list[bytes]:
    parts = []
    for name in sorted(set(_IN_LIST.findall(campaign.path.read_text(encoding="utf-8")))):
        try:  # the rule's own check of the path; a path it refuses is reported when the rule compiles
            path = list_path(ws.root, name, campaign.rule_file, "in_list")
        except ExpressionError:
            parts.append(name.encode() + b"\0")
            continue
        parts.append(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b""))
    return parts


def _reads_responses(campaign: Campaign, views: list[View]) -> bool:
    """responded() in the rule file, or a view that names the responses table."""
    if "responded" in campaign.path.read_text(encoding="utf-8").lower():
        return True
    return any(re.search(r"\bresponses\b", view.sql, re.IGNORECASE) for view in views)


def _table_digest(con: duckdb.DuckDBPyConnection, table: str, rows: str, params: dict[str, Any]) -> str:
    count, total = table_digest(con, table, rows, {k: v for k, v in params.items() if f"${k}" in rows})
    return f"{count}:{total}"
