"""Engine settings (--engine, crmlist.toml [engine]) and the prerequisites of each engine."""

from __future__ import annotations

import difflib
import importlib.util
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crmlist.errors import BadInputError, UsageError
from crmlist.workspace import Workspace

ENGINES = ("duckdb", "spark")
DEFAULT_ENGINE = "duckdb"
# The canonical tables `crmlist export-parquet` writes to a lake.
SOURCE_TABLES = ("customers", "purchases", "products", "suppressions", "responses", "contact_history")
# The ones a Spark run reads from Parquet (a missing optional one reads as empty). Contact history is not
# among them: every run records it in the workspace database, so caps read it there, never a stale copy.
SPARK_TABLES = tuple(t for t in SOURCE_TABLES if t != "contact_history")
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
    if name:
        chosen = engine_name(name, "--engine")
    else:
        chosen = engine_name(str(section.get("name") or DEFAULT_ENGINE), "crmlist.toml: engine.name")
    conf = {str(k): _conf_value(v) for k, v in ws.section("engine", "conf").items()}
    return EngineSettings(chosen, str(section.get("master", "")), conf, _sources(ws, section))


def engine_name(value: str, where: str = "--engine") -> str:
    """The engine named `value` (any case); an unknown one is a usage error with the closest name."""
    chosen = value.lower()
    if chosen not in ENGINES:
        close = difflib.get_close_matches(chosen, ENGINES, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"use one of: {', '.join(ENGINES)}"
        raise UsageError(where, f"unknown engine {chosen!r}", hint)
    return chosen


def _sources(ws: Workspace, section: dict[str, Any]) -> dict[str, str]:
    """Each table's location: [engine.sources] TABLE, else the folder `lake/TABLE` when lake is set."""
    named = ws.section("engine", "sources")
    if "contact_history" in named:
        raise BadInputError(
            "crmlist.toml",
            "engine.sources.contact_history: contact history is read from the workspace database",
            "remove the key: every run records its contacts there, and caps must count the latest ones",
        )
    _check_keys(named.keys(), set(SPARK_TABLES), "engine.sources")
    sources = {table: _location(ws, str(named[table])) for table in SPARK_TABLES if table in named}
    lake = section.get("lake")
    if lake:
        for table in SPARK_TABLES:
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
