"""Letters: templates in a Jinja2 sandbox, Babel filters, recommendations, rendering and writers."""

from __future__ import annotations

import importlib
from typing import Any

# Imported lazily: a worker process that renders letters never loads DuckDB (a tenth of a second each).
_API = {
    "LETTER_FORMATS": "crmlist.letters.job",
    "LetterFailure": "crmlist.letters.job",
    "LetterJob": "crmlist.letters.job",
    "LetterResult": "crmlist.letters.job",
    "check_templates": "crmlist.letters.check",
    "compute_recommendations": "crmlist.letters.recommend",
    "find_template": "crmlist.letters.environment",
    "render_letters": "crmlist.letters.stream",
    "safe_file_name": "crmlist.letters.writers",
    "template_ext": "crmlist.letters.environment",
}
__all__ = list(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'crmlist.letters' has no attribute {name!r}")
