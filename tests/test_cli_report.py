"""`crmlist report` through the real command: loaded contacts and responses, csv, json, charts, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CONTACTS = """\
run_id,campaign,cell,customer_id,channel,offer,is_control,as_of
L1,legacy,a,t1,email,X10,false,2026-11-01
L1,legacy,a,t2,email,X10,false,2026-11-01
L1,legacy,a,t3,email,X10,false,2026-11-01
L1,legacy,a,t4,email,X10,false,2026-11-01
L1,legacy,a,c1,email,X10,true,2026-11-01
L1,legacy,a,c2,email,X10,true,2026-11-01
"""
RESPONSES = """\
customer_id,responded_at,campaign,offer_code,revenue
t1,2026-11-03,legacy,X10,10.00
t2,2026-11-10,,,20.00
t2,2026-11-12,,,0.50
t3,2026-12-15,,,100.00
t4,2026-11-05,other,,7.00
c2,2026-11-05,,,5.00
"""
HEADER = (
    "scope,n_targets,n_control,responders_t,responders_c,rate_t,rate_c,uplift,uplift_low,uplift_high,"
    "relative_uplift,p_value,revenue_t,revenue_c,revenue_per_head_t,revenue_per_head_c,revenue_per_head_diff,"
    "revenue_per_head_diff_low,revenue_per_head_diff_high,revenue_p_value,incremental_responders,"
    "incremental_responders_low,incremental_responders_high,incremental_revenue,incremental_revenue_low,"
    "incremental_revenue_high,cost,roi,small_sample,note"
)


def crmlist(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "crmlist", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace without rule files whose history and responses were loaded from files."""
    root = tmp_path_factory.mktemp("shop")
    (root / "crmlist.toml").write_text("[costs]\nemail = 0.25\n", encoding="utf-8")
    (root / "contacts.csv").write_text(CONTACTS, encoding="utf-8")
    (root / "responses.csv").write_text(RESPONSES, encoding="utf-8")
    for table in ("contacts", "responses"):
        done = crmlist("load", table, f"{table}.csv", cwd=root)
        assert done.returncode == 0, done.stderr
    return root


def test_csv_of_loaded_contacts_without_a_rule_file(shop: Path) -> None:
    done = crmlist("report", "legacy", "--format", "csv", cwd=shop)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == HEADER
    assert [line.split(",")[0] for line in lines[1:]] == ["overall", "a"]
    # t1 (own campaign) and t2 (no campaign, twice) respond; t3 is late and t4 answered another campaign
    overall = dict(zip(HEADER.split(","), lines[1].split(","), strict=True))
    assert {k: overall[k] for k in ("n_targets", "n_control", "responders_t", "responders_c")} == {
        "n_targets": "4",
        "n_control": "2",
        "responders_t": "2",
        "responders_c": "1",
    }
    assert (overall["rate_t"], overall["rate_c"], overall["uplift"], overall["relative_uplift"]) == (
        "0.5",
        "0.5",
        "0.0",
        "0.0",
    )
    assert (overall["revenue_t"], overall["revenue_c"], overall["revenue_per_head_t"]) == ("30.50", "5.00", "7.625")
    assert (overall["revenue_per_head_diff"], overall["incremental_revenue"], overall["cost"]) == (
        "5.125",
        "20.5",
        "1.00",
    )
    assert (overall["roi"], overall["small_sample"]) == ("19.5", "true")
    assert lines[2].split(",")[1:] == lines[1].split(",")[1:]  # one cell: the same numbers


def test_json_document_and_png_chart(shop: Path) -> None:
    done = crmlist("report", "legacy", "--json", "--window-days", "45", "--chart", "charts/legacy.png", cwd=shop)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    doc = json.loads(done.stdout)
    assert {k: doc[k] for k in ("command", "ok", "campaign", "run_id", "as_of", "window_days")} == {
        "command": "report",
        "ok": True,
        "campaign": "legacy",
        "run_id": "L1",
        "as_of": "2026-11-01",
        "window_days": 45,
    }
    assert [row["scope"] for row in doc["rows"]] == ["overall", "a"]
    overall = doc["rows"][0]
    assert (overall["responders_t"], overall["rate_t"], overall["revenue_t"]) == (3, 0.75, 130.5)  # t3 now counts
    assert (overall["small_sample"], doc["paths"]["chart"]) == (True, "charts/legacy.png")
    assert (shop / "charts" / "legacy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_html_chart_is_self_contained_and_other_extensions_are_refused(shop: Path) -> None:
    done = crmlist("report", "legacy", "--quiet", "--chart", "legacy.html", cwd=shop)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    page = (shop / "legacy.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "</svg>" in page
    assert "<title>crmlist report: legacy</title>" in page and "<script" not in page
    assert not list(shop.glob(".legacy.html.tmp-*"))
    refused = crmlist("report", "legacy", "--chart", "legacy.gif", cwd=shop)
    assert refused.returncode == 2
    assert (
        refused.stderr == "crmlist: error: --chart: cannot draw 'legacy.gif'\nhint: name a .png, .svg or .html file\n"
    )


def test_unknown_campaign_is_exit_1_naming_the_recorded_ones(shop: Path) -> None:
    done = crmlist("report", "legasy", cwd=shop)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        "crmlist: error: report: no contact history for campaign 'legasy'\n"
        "hint: campaigns with contact history: legacy\n"
    )


def test_table_on_request(shop: Path) -> None:
    done = crmlist("report", "legacy", "--format", "table", cwd=shop)
    assert done.returncode == 0, done.stderr
    assert "legacy: L1, as of 2026-11-01, responses within 30 days (from responses)" in done.stdout
    table = textwrap.dedent(done.stdout)
    assert "│ response rate " in table and "50.0% / 50.0%" in table
