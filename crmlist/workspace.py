"""The workspace: its folder, crmlist.toml settings, database path and the as-of date."""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crmlist.errors import BadInputError, OutputError, UsageError

CONFIG_NAME = "crmlist.toml"
DB_NAME = "crmlist.duckdb"
# The packaged workspace (crmlist.toml, queries/, templates/) that `crmlist init` copies.
SKELETON = Path(__file__).resolve().parent / "skeleton"
DEFAULT_FILE_MODE = 0o600  # files crmlist writes (database, lists, letters, exports): owner-only


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

    @property
    def file_mode(self) -> int:
        """crmlist.toml `file_mode` ("0640"): the mode of the files crmlist creates; folders get x where
        the mode gives r. Owner-only (0600, folders 0700) unless widened; never wider than 0666."""
        value = self.config.get("file_mode", DEFAULT_FILE_MODE)
        try:
            mode = int(value, 8) if isinstance(value, str) else value
        except ValueError:
            mode = None
        if isinstance(mode, bool) or not isinstance(mode, int) or mode & ~0o666 or mode & 0o600 != 0o600:
            raise BadInputError(
                f"{CONFIG_NAME}: file_mode",
                f"{value!r} is not a file mode crmlist can use",
                'give octal text with owner read-write and no execute bits, e.g. file_mode = "0640"',
            )
        return mode

    @property
    def umask(self) -> int:
        """The process umask that gives file_mode to new files and its folder mode to new folders."""
        mode = self.file_mode
        return 0o777 & ~(mode | (mode & 0o444) >> 2)

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


def protected_paths(ws: Workspace) -> tuple[dict[Path, str], dict[Path, str]]:
    """The files and the folders of the workspace an output must never replace or land in."""
    db = ws.db_path
    files = {
        db: "database",
        db.with_name(db.name + ".wal"): "database's write-ahead log",
        db.with_name(db.name + ".lock"): "database's lock file",
        ws.root / CONFIG_NAME: "configuration",
    }
    folders = {ws.queries_dir: "queries/ folder", ws.templates_dir: "templates/ folder"}
    return files, folders


def _spellings(path: Path) -> set[Path]:
    """A path as written (made absolute) and with every link resolved."""
    return {Path(os.path.abspath(path)), path.resolve()}


def guard_output(ws: Workspace, path: str | Path, option: str) -> None:
    """Refuse (exit 73) an output path that is, or is inside, what the workspace runs on: the database,
    its .wal and .lock, crmlist.toml, queries/ and templates/ (resolved paths compared, links too)."""
    files, folders = protected_paths(ws)
    targets = _spellings(Path(path).expanduser())
    for protected, what in files.items():
        if targets & _spellings(protected):
            raise _protected(path, what, option)
    for protected, what in folders.items():
        for folder in _spellings(protected):
            if any(t == folder or t.is_relative_to(folder) for t in targets):
                raise _protected(path, what, option)


def _protected(path: str | Path, what: str, option: str) -> OutputError:
    return OutputError(
        str(path), f"is the workspace's {what}; crmlist never writes over it", f"choose another {option}, e.g. in out/"
    )


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
