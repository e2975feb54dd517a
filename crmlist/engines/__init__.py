"""Where compiled campaigns run: the engine named by --engine or crmlist.toml [engine], chosen here alone."""

from __future__ import annotations

import difflib
import importlib.util
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmlist.errors import BadInputError, UsageError
from crmlist.workspace import Workspace

if TYPE_CHECKING:
    import datetime as dt

    import duckdb

    from crmlist.campaign.evaluate import Selection
    from crmlist.campaign.model import Campaign

ENGINES = ("duckdb", "spark")
DEFAULT_ENGINE = "duckdb"
# The canonical tables a Spark run reads from Parquet; a missing optional one reads as empty.
SOURCE_TABLES = ("customers", "purchases", "products", "suppressions", "responses", "contact_history")
ENGINE_KEYS = {"name", "master", "conf", "sources", "lake"}
INSTALL_HINT = "install it with: pip install 'crmlist[spark]' (Spark needs Java 17 or later: java -version)"
MIN_JAVA = 17


@dataclass(frozen=True)
class EngineSettings:
    """crmlist.toml [engine]: the engine, Spark's master URL and settings, and the Parquet sources."""

    name: str = DEFAULT_ENGINE
    master: str = ""  # empty: spark-submit's --master or spark-defaults.conf, else local[*]
    conf: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # table -> folder, file or URL


def engine_settings(ws: Workspace, name: str | None = None) -> EngineSettings:
    """The engine to use: `name` (from --engine) wins over crmlist.toml [engine] name; duckdb by default."""
    section = ws.section("engine")
    _check_keys(section.keys(), ENGINE_KEYS, "engine")
    chosen = str(name or section.get("name") or DEFAULT_ENGINE).lower()
    if chosen not in ENGINES:
        close = difflib.get_close_matches(chosen, ENGINES, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"use one of: {', '.join(ENGINES)}"
        raise UsageError("--engine" if name else "crmlist.toml: engine.name", f"unknown engine {chosen!r}", hint)
    conf = {str(k): _conf_value(v) for k, v in ws.section("engine", "conf").items()}
    return EngineSettings(chosen, str(section.get("master", "")), conf, _sources(ws, section))


def _sources(ws: Workspace, section: dict[str, Any]) -> dict[str, str]:
    """Each table's location: [engine.sources] TABLE, else the folder `lake/TABLE` when lake is set."""
    named = ws.section("engine", "sources")
    _check_keys(named.keys(), set(SOURCE_TABLES), "engine.sources")
    sources = {table: _location(ws, str(named[table])) for table in SOURCE_TABLES if table in named}
    lake = section.get("lake")
    if lake:
        for table in SOURCE_TABLES:
            sources.setdefault(table, _location(ws, f"{str(lake).rstrip('/')}/{table}"))
    return sources


def _location(ws: Workspace, value: str) -> str:
    """URLs (s3a://, hdfs://, file:/...) as given; local paths relative to the workspace."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", value):
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else ws.root / path)


def _conf_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_keys(keys: Any, allowed: set[str], section: str) -> None:
    for key in keys:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"did you mean `{close[0]}`?" if close else f"keys: {', '.join(sorted(allowed))}"
            raise BadInputError("crmlist.toml", f"{section}.{key}: unknown key", hint)


def require_spark(master: str = "") -> None:
    """UsageError unless pyspark is installed and (for a JVM-backed session) Java 17+ is on PATH."""
    if importlib.util.find_spec("pyspark") is None:
        raise UsageError("--engine spark", "pyspark is not installed", INSTALL_HINT)
    if master.startswith("sc://"):  # Spark Connect: the JVM runs on the server
        return
    java = shutil.which("java")
    if java is None:
        raise UsageError("--engine spark", "Java is not installed (no java on PATH)", INSTALL_HINT)
    version = java_version(java)
    if version is not None and version < MIN_JAVA:
        raise UsageError("--engine spark", f"Java {version} is too old for Spark", INSTALL_HINT)


def java_version(java: str) -> int | None:
    """The major version `java -version` reports (8 for "1.8.0_392"), or None when it cannot say."""
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def evaluate_on(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    campaign: Campaign,
    as_of: dt.date,
    exclude_run: str | None = None,
    columns: Iterable[str] | None = None,
    engine: str | None = None,
    once: bool = False,
) -> Selection:
    """Evaluate a campaign on the chosen engine, leaving crm_selected in `con` either way (see evaluate)."""
    from crmlist.campaign.evaluate import evaluate

    if engine_settings(ws, engine).name != "spark":
        return evaluate(con, ws, campaign, as_of, exclude_run, columns, once)
    from crmlist.campaign.views import prepare_session
    from crmlist.engines.spark import spark_evaluate

    prepare_session(con, ws, as_of, exclude_run)  # letters' recommendations read run_params
    history = con.sql("SELECT * FROM contact_history").to_arrow_table()
    return spark_evaluate(ws, campaign, as_of, exclude_run, columns=columns, history=history).into(con)


def data_fingerprint(con: duckdb.DuckDBPyConnection, ws: Workspace, engine: str | None = None) -> list[tuple[Any, ...]]:
    """What a run id hashes of the data: the loads (DuckDB) or the Parquet sources' listing (Spark)."""
    if engine_settings(ws, engine).name == "spark":
        from crmlist.engines.spark import spark_source_listing

        return [tuple(row) for row in spark_source_listing(ws)]
    # Loads of no rows (a skipped reload) do not change the data, so they do not change the run id.
    loads = "SELECT table_name, sha256, rows_loaded FROM loads WHERE rows_loaded > 0 OR rows_rejected > 0"
    return con.execute(f"{loads} ORDER BY ALL").fetchall()
