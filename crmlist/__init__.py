"""crmlist: campaign lists and one-to-one letters from customer files, on one machine.

The public API, imported lazily so that `crmlist --version` and small commands start fast:
load_files, load_campaign, compile_campaign, evaluate, run_campaign, render_letters.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "load_files": "crmlist.ingest",
    "LoadOptions": "crmlist.ingest",
    "load_campaign": "crmlist.campaign.model",
    "compile_campaign": "crmlist.campaign.compiler",
    "evaluate": "crmlist.campaign.evaluate",
    "run_campaign": "crmlist.campaign.runner",
    "render_letters": "crmlist.letters",
    "open_workspace": "crmlist.workspace",
    "report_campaign": "crmlist.report",
}
__all__ = [*_API, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'crmlist' has no attribute {name!r}")
