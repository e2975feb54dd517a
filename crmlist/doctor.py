"""`crmlist doctor`: check a workspace and say what to fix: config, campaigns, views, database, leftovers, lock."""

from __future__ import annotations

import datetime as dt
import difflib
import os
import tomllib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb

from crmlist import store
from crmlist.engines import ENGINE_KEYS, SPARK_TABLES
from crmlist.errors import BadInputError, BusyError, CrmlistError, MultipleErrors
from crmlist.letters.offers import KEYS as OFFER_KEYS
from crmlist.newfiles import ASIDE, TEMPORARY, leftover
from crmlist.workspace import CONFIG_NAME, DB_NAME, Workspace, open_workspace

OK, WARNING, ERROR = "ok", "warning", "error"
_LOAD_KEYS = {"delimiter", "encoding", "decimal_comma", "date_format", "format", "map"}
# Every key crmlist.toml may hold: None for a value, a set for a table's keys, a dict for nested tables.
KNOWN_KEYS: dict[str, Any] = {
    "locale": None,
    "currency": None,
    "timezone": None,
    "phone_region": None,
    "output": None,
    "sender": {"name", "street", "postal_code", "city", "country", "email", "phone", "unsubscribe"},
    "load": {table: _LOAD_KEYS for table in store.LOADABLE},
    "contact_cap": {"max", "days"},
    "control": {"global_percent", "global_salt"},
    "offers": set(OFFER_KEYS),
    "costs": {"email", "sms", "mail", "phone"},
    "response": {"window_days"},
    "report": {"margin"},
    "dates": {"earliest", "latest"},
    "file_mode": None,
    "letters": {"max_seconds"},
    # [engine.conf] holds any Spark setting, so its keys are free-form (None).
    "engine": {key: (set(SPARK_TABLES) if key == "sources" else None) for key in ENGINE_KEYS},
}
_STOPPED = {
    (True, TEMPORARY): "temporary folder of a stopped run",
    (True, ASIDE): "folder a rerun moved aside and did not remove",
    (False, TEMPORARY): "temporary file of a stopped command",
    (False, ASIDE): "file a stopped command moved aside",
}


@dataclass
class Finding:
    """One thing doctor looked at: ok, a warning (works, but look), or an error (must be fixed)."""

    level: str
    where: str
    what: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def diagnose(workspace: Path | None = None, db: Path | None = None, wait: float = 0.0) -> list[Finding]:
    """Every finding about the workspace (arguments as for open_workspace); reads only."""
    try:
        ws = open_workspace(workspace, db)
        findings = check_config(ws.root / CONFIG_NAME)
        rules = True
    except BadInputError as exc:  # crmlist.toml does not parse: check what does not depend on it
        ws, rules = _without_config(workspace, db), False
        findings = [Finding(ERROR, exc.where, exc.what, exc.hint)]
        findings.append(Finding(WARNING, "queries", "views and campaigns not checked", "fix crmlist.toml first"))
    holder = store.lock_holder(ws.db_path)
    findings.append(_lock_finding(ws.db_path, holder))
    if not ws.db_path.exists():
        findings += check_leftovers(output_roots(ws), holder, ws.out_dir)
        findings.append(Finding(WARNING, str(ws.db_path), "no database yet", "load data: crmlist load customers FILE"))
        con = duckdb.connect(":memory:")
        store.ensure_schema(con)
        findings += check_rules(con, ws) if rules else []
        con.close()
        return findings
    leftovers: list[Finding] | None = None
    try:
        with store.reader(ws.db_path, "doctor", wait=wait) as con:
            leftovers = check_leftovers(output_roots(ws, con), holder, ws.out_dir)
            checked = check_database(con, str(ws.db_path))
            checked += check_rules(con, ws) if rules else []
    except BusyError as exc:
        checked = [Finding(WARNING, exc.where, f"{exc.what}; database, views and campaigns not checked", exc.hint)]
    except CrmlistError as exc:  # not a DuckDB file, or one DuckDB cannot open
        checked = [Finding(ERROR, exc.where, exc.what, "restore the database from a backup, or check --db")]
    if leftovers is None:  # the database could not be read: the recorded output folders are unknown
        leftovers = check_leftovers(output_roots(ws), holder, ws.out_dir)
    return findings + leftovers + checked


def check_config(path: Path) -> list[Finding]:
    """Unknown keys of crmlist.toml, each with the closest known names."""
    if not path.is_file():
        return [Finding(OK, CONFIG_NAME, "none: every setting has its default")]
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    unknown = list(_unknown_keys(data, KNOWN_KEYS, ""))
    findings = [Finding(WARNING, CONFIG_NAME, f"{key}: unknown key, ignored", fix) for key, fix in unknown]
    return findings or [Finding(OK, CONFIG_NAME, "parses; every key is known")]


def _unknown_keys(data: dict[str, Any], known: Any, prefix: str) -> Any:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(known, dict) and key in known:
            if isinstance(value, dict) and known[key] is not None:
                yield from _unknown_keys(value, known[key], f"{name}.")
        elif isinstance(known, set) and key in known:
            continue  # a value, or a free-form table such as [load.customers.map]
        else:
            close = difflib.get_close_matches(key, sorted(known), n=2, cutoff=0.6)
            choices = ", ".join(f"{prefix}{c}" for c in close)
            yield name, (f"did you mean {choices}?" if close else f"known keys here: {', '.join(sorted(known))}")


def check_database(con: duckdb.DuckDBPyConnection, where: str) -> list[Finding]:
    """Schema version, every table readable (a count of its rows), every canonical table present."""
    tables = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_type = 'BASE TABLE' ORDER BY table_name"
        ).fetchall()
    ]
    if "crmlist_meta" not in tables:
        return [Finding(ERROR, where, "not a crmlist database: no crmlist_meta table", "check --db")]
    row = con.execute("SELECT value FROM crmlist_meta WHERE key = 'schema_version'").fetchone()
    findings = []
    if row is None or row[0] != str(store.SCHEMA_VERSION):
        found = "none" if row is None else row[0]
        fix = "use the crmlist version that wrote this database"
        findings.append(Finding(ERROR, where, f"schema version {found}, expected {store.SCHEMA_VERSION}", fix))
    for table in tables:
        try:
            con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
        except duckdb.Error as exc:
            fix = "restore the database from a backup, or load the table again"
            findings.append(Finding(ERROR, f"{where}: {table}", f"cannot be read: {type(exc).__name__}", fix))
    missing = sorted(set(store.CANONICAL) - set(tables))
    if missing:
        what = f"tables missing: {', '.join(missing)}"
        findings.append(Finding(WARNING, where, what, "any writer creates them: crmlist load TABLE FILE"))
    return findings or [Finding(OK, where, f"schema version {store.SCHEMA_VERSION}; {len(tables)} tables readable")]


def check_rules(con: duckdb.DuckDBPyConnection, ws: Workspace) -> list[Finding]:
    """Views build and bind; every campaign passes `crmlist check`."""
    from crmlist.campaign.check import check_campaigns
    from crmlist.campaign.views import prepare_session

    try:
        views = prepare_session(con, ws, dt.date.today())
        for view in views:
            con.execute(f'SELECT * FROM "{view.name}" LIMIT 0').fetchall()
        checked, problems = check_campaigns(con, ws, [], dt.date.today())
    except CrmlistError as exc:
        errors = exc.errors if isinstance(exc, MultipleErrors) else [exc]
        return [Finding(ERROR, e.where, e.what, e.hint) for e in errors]
    findings = [Finding(OK, "queries", f"views build: {', '.join(v.name for v in views)}")]
    if problems:  # a template shared by several campaigns reports its problem once
        unique = {(p.where, p.what): Finding(ERROR, p.where, p.what, p.hint) for p in problems}
        return findings + list(unique.values())
    return [*findings, Finding(OK, "queries", f"campaigns pass check: {', '.join(checked) or 'none'}")]


def output_roots(ws: Workspace, con: duckdb.DuckDBPyConnection | None = None) -> list[Path]:
    """The workspace's output folder and every --out folder a recorded run wrote to (OUT/CAMPAIGN/RUN_ID)."""
    roots = [ws.out_dir.resolve()]
    if con is not None:
        try:
            rows = con.execute(
                "SELECT DISTINCT out_dir FROM runs WHERE out_dir IS NOT NULL AND trim(out_dir) <> '' ORDER BY 1"
            ).fetchall()
        except duckdb.Error:  # no runs table: check_database reports it
            rows = []
        for (out_dir,) in rows:
            root = Path(out_dir).parent.parent
            if root.is_absolute() and root not in roots:
                roots.append(root)
    return roots


def check_leftovers(roots: Path | list[Path], holder: str | None, default_out: Path | None = None) -> list[Finding]:
    """Hidden temporary folders and files (`.NAME.tmp-PID`, `.NAME.old-PID`) that a stopped command left.

    Each output folder is searched through, except inside a leftover itself and a run's letters/ folder,
    which holds one file per letter and nothing temporary of its own.
    """
    seen: dict[Path, Finding] = {}
    for root in [roots] if isinstance(roots, Path) else roots:
        default = default_out is None or root == default_out.resolve()
        for path, is_dir, pid, kind in _leftovers(root):
            if path not in seen:
                seen[path] = _leftover_finding(path, is_dir, pid, kind, holder, None if default else root)
    return [seen[path] for path in sorted(seen)]


def _leftovers(root: Path) -> Iterator[tuple[Path, bool, str, str]]:
    if not root.is_dir():
        return
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        found = {name: leftover(here / name) for name in sorted([*dirs, *files])}
        for name, left in found.items():
            if left is not None:
                yield left.path, name in dirs, str(left.pid), left.kind
        is_run = "manifest.json" in files
        dirs[:] = [d for d in dirs if found[d] is None and not (is_run and d == "letters")]


def _leftover_finding(path: Path, is_dir: bool, pid: str, kind: str, holder: str | None, root: Path | None) -> Finding:
    where = str(path)
    if holder and holder.startswith(f"PID {pid} "):
        return Finding(OK, where, f"being written by {holder}")
    what = _STOPPED[(is_dir, kind)]
    if not is_dir:
        return Finding(WARNING, where, what, "delete it")
    if root is None:
        return Finding(WARNING, where, what, "the next writer (crmlist load, run) finishes or removes it; or delete it")
    return Finding(WARNING, where, what, f"the next crmlist run --out {root} finishes or removes it; or delete it")


def _lock_finding(db_path: Path, holder: str | None) -> Finding:
    lock_file = store.lock_path(db_path)
    if holder:
        return Finding(OK, str(lock_file), f"held by {holder}: a write is in progress")
    try:
        last = lock_file.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        last = ""
    if last:  # a writer that ends cleanly empties the file; the kernel released this one's lock
        return Finding(OK, str(lock_file), f"free; the last writer ({last}) was stopped before it could clean up")
    return Finding(OK, str(lock_file), "free: no writer is running")


def _without_config(workspace: Path | None, db: Path | None) -> Workspace:
    """The workspace with default settings, as open_workspace finds it, when crmlist.toml cannot be read."""
    root = Path(workspace or os.environ.get("CRMLIST_WORKSPACE") or ".").expanduser().resolve()
    value = db or os.environ.get("CRMLIST_DB")
    return Workspace(root, Path(value).expanduser().resolve() if value else root / DB_NAME, {})
