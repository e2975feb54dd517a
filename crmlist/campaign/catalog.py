"""The campaigns of a workspace with their descriptions, read from the rule files without compiling them."""

from __future__ import annotations

import tomllib

from crmlist.campaign.model import campaign_names, campaign_path
from crmlist.workspace import Workspace

UNPARSED = "(rule file does not parse: run crmlist check)"


def describe_campaigns(ws: Workspace) -> list[dict[str, str]]:
    """One {"campaign", "description"} per rule file, sorted by name; a file that does not parse says so."""
    rows = []
    for name in campaign_names(ws):
        try:
            description = str(tomllib.loads(campaign_path(ws, name).read_text("utf-8")).get("description", ""))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            description = UNPARSED
        rows.append({"campaign": name, "description": description})
    return rows
