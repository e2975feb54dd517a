"""`crmlist init`: a new workspace, a copy of the packaged skeleton and its sample data.

The skeleton's sample_data/ is the seeded generation of scripts/make_sample_data.py, responses.csv
included (it answers the demo's win-back run), so README's tour runs as written in a new workspace; it
is copied rather than generated again because the responses come from running the sample campaigns.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from crmlist.errors import OutputError
from crmlist.workspace import SKELETON


def init_workspace(target: Path) -> tuple[list[Path], list[Path]]:
    """Copy crmlist.toml, queries/, templates/ and sample_data/ (five CSVs); existing files are kept."""
    written: list[Path] = []
    skipped: list[Path] = []
    try:
        target.mkdir(parents=True, exist_ok=True)
        sources = [p for p in sorted(SKELETON.rglob("*")) if p.is_file() and "__pycache__" not in p.parts]
        for source in sources:
            dest = target / source.relative_to(SKELETON)
            if dest.exists():
                skipped.append(dest)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
            written.append(dest)
    except OSError as exc:
        raise OutputError(str(target), f"cannot write the workspace: {exc.strerror}", "check the path") from None
    return written, skipped
