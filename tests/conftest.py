"""Shared fixtures: a workspace folder on tmp_path with a real DuckDB file."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from crmlist.workspace import Workspace, open_workspace


@pytest.fixture
def make_ws(tmp_path: Path) -> Callable[..., Workspace]:
    """Write crmlist.toml, rule files and templates (dedented) into tmp_path and open it."""

    def make(
        config: str = "", queries: dict[str, str] | None = None, templates: dict[str, str] | None = None
    ) -> Workspace:
        (tmp_path / "queries").mkdir(exist_ok=True)
        (tmp_path / "templates").mkdir(exist_ok=True)
        (tmp_path / "crmlist.toml").write_text(textwrap.dedent(config), encoding="utf-8")
        for name, text in (queries or {}).items():
            (tmp_path / "queries" / name).write_text(textwrap.dedent(text), encoding="utf-8")
        for name, text in (templates or {}).items():
            (tmp_path / "templates" / name).write_text(textwrap.dedent(text), encoding="utf-8")
        return open_workspace(tmp_path)

    return make
