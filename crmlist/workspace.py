"""The workspace: its folder, crmlist.toml settings, database path and the as-of date."""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crmlist.errors import BadInputError, UsageError

CONFIG_NAME = "crmlist.toml"
DB_NAME = "crmlist.duckdb"


@dataclass(frozen=True)
class Workspace:
    """A folder with crmlist.toml, queries/ and templates/, and the database it works on."""

    root: Path
    db_path: Path
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def queries_dir(self) -> Path:
        return self.root / "queries"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def out_dir(self) -> Path:
        return self.root / str(self.config.get("output", "out"))

    @property
    def locale(self) -> str:
        return str(self.config.get("locale", "en"))

    @property
    def currency(self) -> str:
        return str(self.config.get("currency", "EUR"))

    @property
    def timezone(self) -> str:
        return str(self.config.get("timezone", "UTC"))

    @property
    def phone_region(self) -> str:
        return str(self.config.get("phone_region", "PL"))

    @property
    def sender(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.config.get("sender", {}).items()}

    def section(self, *path: str) -> dict[str, Any]:
        """A nested table of crmlist.toml (`section("load", "customers")`), empty when absent."""
        node: Any = self.config
        for key in path:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        return node if isinstance(node, dict) else {}


def open_workspace(workspace: str | Path | None = None, db: str | Path | None = None) -> Workspace:
    """Find the workspace (argument, CRMLIST_WORKSPACE, or the current folder) and read its config."""
    root = Path(workspace or os.environ.get("CRMLIST_WORKSPACE") or ".").expanduser()
    if not root.is_dir():
        raise UsageError(str(root), "workspace folder does not exist", "create one with: crmlist init DIR")
    root = root.resolve()
    config = read_config(root / CONFIG_NAME)
    db_value = db or os.environ.get("CRMLIST_DB")
    db_path = Path(db_value).expanduser() if db_value else root / DB_NAME
    # Resolved, so that a symlinked path to the same database takes the same lock (`<real db>.lock`).
    db_path = (Path.cwd() / db_path).resolve()
    return Workspace(root=root, db_path=db_path, config=config)


def read_config(path: Path) -> dict[str, Any]:
    """Parse crmlist.toml; a missing file means all defaults."""
    if not path.exists():
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise BadInputError(str(path), f"not valid TOML: {exc}", "fix the syntax of crmlist.toml") from None
    except UnicodeDecodeError:
        raise BadInputError(str(path), "not UTF-8 text", "save crmlist.toml as UTF-8") from None


def parse_as_of(value: str | dt.date | None) -> dt.date:
    """The run's as-of date: the given ISO date, else today in local time (TZ respected)."""
    if value is None or value == "":
        return dt.date.today()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError("--as-of", f"{value!r} is not a date", "write it as YYYY-MM-DD") from None
