"""Shared fixtures: a workspace folder on tmp_path with a real DuckDB file."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from crmlist.workspace import Workspace, open_workspace

# The JVMs the Spark tests start run for seconds, not hours: the quick JIT tier only and one GC thread
# spend less of the two cores on compiling and collecting (the Spark module takes 72 s, not 85 s).
os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Groups for pytest-xdist's loadgroup (make pytest): a module's tests on one worker, so that its
    module fixtures are made once, and every test marked spark on one worker, so that one JVM starts and
    warms up for them all and two never compete for the two cores."""
    for item in items:
        group = "spark" if item.get_closest_marker("spark") else item.nodeid.partition("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))


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
