"""`crmlist init`: a new workspace from the packaged skeleton plus freshly generated sample data.

The sample data is the same seeded generation as the repository's sample_data/, responses.csv included
(it answers the demo's win-back run), so README's tour runs as written in a new workspace.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from crmlist.errors import OutputError
from crmlist.workspace import SKELETON


def init_workspace(target: Path) -> tuple[list[Path], list[Path]]:
    """Copy crmlist.toml, queries/ and templates/, and write sample_data/ (five CSVs); existing files are kept."""
    from crmlist.sample import write_sample_data
    from crmlist.sample.responses import write_sample_responses

    written: list[Path] = []
    skipped: list[Path] = []
    try:
        target.mkdir(parents=True, exist_ok=True)
        sources = [p for p in sorted(SKELETON.rglob("*")) if p.is_file() and "__pycache__" not in p.parts]
        with tempfile.TemporaryDirectory(prefix="crmlist-init-") as tmp:
            write_sample_data(Path(tmp))
            write_sample_responses(Path(tmp))
            samples = sorted(Path(tmp).iterdir())
            pairs = [(p, target / p.relative_to(SKELETON)) for p in sources]
            pairs += [(p, target / "sample_data" / p.name) for p in samples]
            for source, dest in pairs:
                if dest.exists():
                    skipped.append(dest)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, dest)
                written.append(dest)
    except OSError as exc:
        raise OutputError(str(target), f"cannot write the workspace: {exc.strerror}", "check the path") from None
    return written, skipped
