"""Sample responses to the demo's win-back run as of 2026-11-01, drawn with a known true uplift."""

from __future__ import annotations

import csv
import datetime as dt
import random
import tempfile
from decimal import Decimal
from pathlib import Path

from crmlist.errors import OutputError
from crmlist.sample.data import AS_OF, CENT

CAMPAIGN = "winback"
# The true rates the draw uses: `crmlist report winback` should find an uplift near 4 points.
TARGET_RATE = 0.12
CONTROL_RATE = 0.08
WINDOW_DAYS = 30
LATE_RATE = 0.05  # non-responders who buy after the window: not responses
# `make demo` runs these in this order; the earlier runs' contacts feed win-back's contact cap.
DEMO_RUNS = ("digital_tv", "briefcase_crosssell", "winback")
FIELDS = ("customer_id", "responded_at", "campaign", "offer_code", "revenue")


def write_sample_responses(folder: Path, seed: int = 20261101) -> int:
    """Write folder/responses.csv for the win-back run over folder's sample data; returns rows written.

    In each cell, round(TARGET_RATE x targets) targets respond with the campaign and their cell's offer
    code and round(CONTROL_RATE x controls) controls buy on their own (no campaign): with win-back's few
    controls, exact counts show the true uplift where coin flips would mostly show noise. A few
    non-responders buy after the 30-day window, which the report must ignore.
    """
    rng = random.Random(seed)
    groups: dict[tuple[str, bool], list[str]] = {}
    for customer_id, offer, is_control in winback_contacts(folder):
        groups.setdefault((offer, is_control), []).append(customer_id)
    rows: list[dict[str, str]] = []
    for (offer, is_control), members in sorted(groups.items()):
        rate = CONTROL_RATE if is_control else TARGET_RATE
        chosen = set(rng.sample(members, int(rate * len(members) + 0.5)))
        for customer_id in sorted(chosen):
            for _ in range(2 if rng.random() < 0.2 else 1):  # some come back twice: revenue adds up
                day = rng.randint(0, WINDOW_DAYS)
                campaign, code = ("", "") if is_control else (CAMPAIGN, offer)
                rows.append(_response(rng, customer_id, day, campaign, code))
        others = [m for m in members if m not in chosen]
        for customer_id in sorted(rng.sample(others, int(LATE_RATE * len(others) + 0.5))):
            rows.append(_response(rng, customer_id, rng.randint(WINDOW_DAYS + 1, 90), "", ""))
    rows.sort(key=lambda r: (r["responded_at"], r["customer_id"], r["revenue"]))
    try:
        with (folder / "responses.csv").open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, FIELDS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    except OSError as exc:
        raise OutputError(str(folder), f"cannot write responses.csv: {exc.strerror}", "check the folder") from None
    return len(rows)


def _response(rng: random.Random, customer_id: str, day: int, campaign: str, offer: str) -> dict[str, str]:
    revenue = Decimal(rng.lognormvariate(5.0, 0.7)).quantize(CENT)  # median near 150
    responded_at = (AS_OF + dt.timedelta(days=day)).isoformat()
    return {"customer_id": customer_id, "responded_at": responded_at, "campaign": campaign, "offer_code": offer,
            "revenue": str(revenue)}  # fmt: skip


def winback_contacts(folder: Path) -> list[tuple[str, str, bool]]:
    """(customer_id, offer, is_control) of the win-back run, sorted: the demo's runs in a temporary database."""
    from crmlist import store
    from crmlist.campaign.runner import run_campaign
    from crmlist.ingest import LoadOptions, load_files
    from crmlist.workspace import SKELETON, open_workspace

    with tempfile.TemporaryDirectory(prefix="crmlist-sample-") as tmp:
        ws = open_workspace(SKELETON, Path(tmp) / "sample.duckdb")
        with store.writer(ws.db_path, "sample responses") as con:
            for table in ("customers", "products", "purchases", "suppressions"):
                load_files(con, ws, table, [str(folder / f"{table}.csv")], LoadOptions())
            for name in DEMO_RUNS:
                run_campaign(con, ws, name, AS_OF, Path(tmp) / "out")
            rows = con.execute(
                "SELECT customer_id, coalesce(offer, ''), is_control FROM contact_history "
                "WHERE campaign = ? ORDER BY customer_id",
                [CAMPAIGN],
            ).fetchall()
    return [(str(c), str(o), bool(k)) for c, o, k in rows]
