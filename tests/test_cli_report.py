"""`crmlist report` through the real command: loaded contacts and responses, csv, json, charts, --all, errors."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import textwrap
from pathlib import Path

import outsider
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
    return outsider.crmlist(*args, cwd=cwd, env={"COLUMNS": "200"})


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


# --- crmlist report --all: every campaign in a period, one line each --------------------------------------

CHAIN_CONTACTS = """\
run_id,campaign,cell,customer_id,channel,offer,is_control,as_of
A1,autumn,,a1,email,,false,2026-11-01
A1,autumn,,a2,email,,false,2026-11-01
A1,autumn,,a3,email,,false,2026-11-01
A1,autumn,,a4,email,,false,2026-11-01
A1,autumn,,ac1,email,,true,2026-11-01
A1,autumn,,ac2,email,,true,2026-11-01
A2,autumn,,a5,email,,false,2026-11-15
A2,autumn,,a6,email,,false,2026-11-15
A2,autumn,,ac3,email,,true,2026-11-15
K1,clearance,,k1,sms,,false,2026-11-30
K1,clearance,,k2,sms,,false,2026-11-30
K1,clearance,,k3,sms,,false,2026-11-30
S0,spring,,s1,email,,false,2026-10-31
S0,spring,,sc1,email,,true,2026-10-31
S1,spring,,s2,email,,false,2026-12-01
S2,spring,,s3,email,,false,2026-11-20
S2,spring,,s4,email,,false,2026-11-20
S2,spring,,sc2,email,,true,2026-11-20
S2,spring,,sc3,email,,true,2026-11-20
"""
CHAIN_RESPONSES = """\
customer_id,responded_at,campaign,offer_code,revenue
a1,2026-11-03,,,10.00
a2,2026-11-10,,,20.00
a5,2026-11-20,,,30.00
ac1,2026-11-05,,,6.00
k1,2026-12-05,,,15.00
s1,2026-11-02,,,99.00
s3,2026-11-21,,,12.50
"""
ALL_HEADER = "campaign,n_runs,first_as_of,last_as_of,window_days," + HEADER.split(",", 1)[1]
NOVEMBER = ("--from", "2026-11-01", "--to", "2026-11-30")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three loaded campaigns: autumn (two runs), clearance (no controls, sms at no cost), spring (Oct to Dec)."""
    root = tmp_path_factory.mktemp("chain")
    (root / "crmlist.toml").write_text("[costs]\nemail = 0.25\n", encoding="utf-8")
    (root / "contacts.csv").write_text(CHAIN_CONTACTS, encoding="utf-8")
    (root / "responses.csv").write_text(CHAIN_RESPONSES, encoding="utf-8")
    for table in ("contacts", "responses"):
        done = crmlist("load", table, f"{table}.csv", cwd=root)
        assert done.returncode == 0, done.stderr
    return root


def test_all_in_a_period_by_hand(chain: Path) -> None:
    done = crmlist("report", "--all", *NOVEMBER, "--format", "csv", cwd=chain)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[0] == ALL_HEADER
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    picked = ("campaign", "n_runs", "first_as_of", "last_as_of", "n_targets", "n_control", "responders_t")
    assert [[row[k] for k in picked] for row in rows] == [
        ["autumn", "2", "2026-11-01", "2026-11-15", "6", "3", "3"],
        ["clearance", "1", "2026-11-30", "2026-11-30", "3", "0", "1"],
        ["spring", "1", "2026-11-20", "2026-11-20", "2", "2", "1"],  # S0 (10-31) and S1 (12-01) are outside
    ]
    autumn, clearance, spring = rows
    # autumn: a1, a2 (run A1) and a5 (run A2) of 6 targets respond with 60.00; ac1 of 3 controls with 6.00
    money = ("rate_t", "rate_c", "uplift", "revenue_t", "revenue_c", "revenue_per_head_diff", "incremental_revenue")
    assert [autumn[k] for k in money] == [repr(3 / 6), repr(1 / 3), repr(3 / 6 - 1 / 3), "60.00", "6.00", "8.0", "48.0"]
    assert (autumn["cost"], autumn["roi"], autumn["small_sample"]) == ("1.50", repr((48 - 1.5) / 1.5), "true")
    # clearance: no controls, so counts and blank uplift fields; sms has no cost per contact
    assert [clearance[k] for k in money] == [repr(1 / 3), "", "", "15.00", "0.00", "", ""]
    assert (clearance["cost"], clearance["roi"], clearance["note"]) == (
        "0",
        "",
        "no cost per contact for channel sms: counted as 0; no control group: nothing to measure against",
    )
    # spring in November is run S2 alone: s1's 99.00 answered S0, before the period
    assert [spring[k] for k in money] == ["0.5", "0.0", "0.5", "12.50", "0.00", "6.25", "12.5"]
    assert (spring["relative_uplift"], spring["cost"], spring["roi"]) == ("", "0.50", repr((12.5 - 0.5) / 0.5))


def test_each_campaigns_line_is_its_own_all_runs_report(chain: Path) -> None:
    done = crmlist("report", "--all", "--format", "json", cwd=chain)
    assert (done.returncode, done.stderr) == (0, "")
    doc = json.loads(done.stdout)
    assert {k: doc[k] for k in ("command", "ok", "from", "to", "response_source", "counts")} == {
        "command": "report",
        "ok": True,
        "from": None,
        "to": None,
        "response_source": "responses",
        "counts": {"campaigns": 3, "targets": 13, "control": 6},
    }
    assert [(c["campaign"], c["runs"]) for c in doc["campaigns"]] == [
        ("autumn", ["A2", "A1"]),
        ("clearance", ["K1"]),
        ("spring", ["S1", "S2", "S0"]),
    ]
    for line in doc["campaigns"]:
        own = json.loads(crmlist("report", line["campaign"], "--all-runs", "--json", cwd=chain).stdout)
        overall = {k: v for k, v in own["rows"][0].items() if k != "scope"}
        assert {k: line[k] for k in overall} == overall
        assert (line["runs"], line["window_days"]) == (own["runs"], own["window_days"])
        assert list(line) == ["campaign", "n_runs", "runs", *ALL_HEADER.split(",")[2:]]


def test_all_in_november_json_matches_the_campaigns_wholly_inside_it(chain: Path) -> None:
    done = crmlist("report", "--all", *NOVEMBER, "--json", "--window-days", "45", cwd=chain)
    assert (done.returncode, done.stderr) == (0, "")
    doc = json.loads(done.stdout)
    assert (doc["from"], doc["to"], doc["counts"]) == (
        "2026-11-01",
        "2026-11-30",
        {"campaigns": 3, "targets": 11, "control": 5},
    )
    for line in doc["campaigns"][:2]:  # autumn and clearance have every run in November
        own = json.loads(
            crmlist("report", line["campaign"], "--all-runs", "--window-days", "45", "--json", cwd=chain).stdout
        )
        assert {k: line[k] for k in own["rows"][0] if k != "scope"} == {
            k: v for k, v in own["rows"][0].items() if k != "scope"
        }
    assert [line["window_days"] for line in doc["campaigns"]] == [45, 45, 45]


@pytest.mark.parametrize(
    ("period", "runs"),
    [
        (("--from", "2026-10-31", "--to", "2026-12-01"), [("autumn", 2), ("clearance", 1), ("spring", 3)]),
        (("--from", "2026-11-02", "--to", "2026-11-29"), [("autumn", 1), ("spring", 1)]),
        (("--from", "2026-12-01"), [("spring", 1)]),
        (("--to", "2026-10-31"), [("spring", 1)]),
        (("--from", "2026-11-15", "--to", "2026-11-15"), [("autumn", 1)]),
    ],
)
def test_period_boundaries_are_inclusive(chain: Path, period: tuple[str, ...], runs: list[tuple[str, int]]) -> None:
    done = crmlist("report", "--all", *period, "--format", "csv", cwd=chain)
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert (lines[0], len(lines)) == (ALL_HEADER, 1 + len(runs))
    assert [(line.split(",")[0], int(line.split(",")[1])) for line in lines[1:]] == runs


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("autumn", "--all"),
            "crmlist: error: report: give a CAMPAIGN or --all, not both (got 'autumn' and --all)\n"
            "hint: crmlist report CAMPAIGN measures one campaign; crmlist report --all compares them all\n",
        ),
        (
            (),
            "crmlist: error: report: missing CAMPAIGN\n"
            "hint: crmlist report CAMPAIGN measures one campaign; crmlist report --all compares them all\n",
        ),
        (
            ("--all", "--all-runs"),
            "crmlist: error: report: --run and --all-runs are for one campaign; --all pools each campaign's runs "
            "in the period\nhint: choose the period with --from and --to\n",
        ),
        (
            ("autumn", "--from", "2026-11-01"),
            "crmlist: error: report: --from and --to go with --all\n"
            "hint: compare campaigns with --all, or pick a run of autumn with --run\n",
        ),
        (
            ("--all", "--to", "2026-11-31"),
            "crmlist: error: --to: '2026-11-31' is not a date\nhint: write it as YYYY-MM-DD\n",
        ),
        (
            ("--all", "--from", "2026-12-01", "--to", "2026-11-01"),
            "crmlist: error: --from: 2026-12-01 is after --to 2026-11-01\nhint: give the earlier date to --from\n",
        ),
    ],
)
def test_all_usage_errors_are_exit_2(chain: Path, args: tuple[str, ...], message: str) -> None:
    done = crmlist("report", *args, cwd=chain)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", message)


def test_a_period_without_runs_is_exit_1(chain: Path) -> None:
    done = crmlist("report", "--all", "--from", "2026-12-02", "--to", "2026-12-31", cwd=chain)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "crmlist: error: report: no campaign has a run as of 2026-12-02 to 2026-12-31\n"
        "hint: the recorded runs are as of 2026-10-31 to 2026-12-01: widen --from / --to\n"
    )
    as_json = crmlist("report", "--all", "--from", "2027-01-01", "--json", cwd=chain)
    assert (as_json.returncode, json.loads(as_json.stdout)) == (
        1,
        {"ok": False, "exit_code": 1, "error": "report: no campaign has a run as of 2027-01-01 or later"},
    )


def test_all_as_a_table_and_an_svg_chart(chain: Path) -> None:
    done = crmlist("report", "--all", *NOVEMBER, "--format", "table", "--chart", "november.svg", cwd=chain)
    assert (done.returncode, done.stderr) == (0, "chart written to november.svg\n")
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "campaigns with runs as of 2026-11-01 to 2026-11-30, each one's runs pooled: responses within 30 days "
        "(from responses); targets / control"
    )
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines if line.startswith("│")]
    assert cells[:3] == [
        ["runs", "2", "1", "1"],
        ["as of", "2026-11-01 to 2026-11-15", "2026-11-30", "2026-11-20"],
        ["targets / control", "6 / 3", "3 / 0", "2 / 2"],
    ]
    svg = (chain / "november.svg").read_text(encoding="utf-8")
    labels = [text.rsplit(">", 1)[1] for text in re.findall(r"<text [^>]*>[^<]+", svg)]
    assert [label for label in labels if label in ("autumn", "clearance", "spring", "no control group")] == [
        "autumn",
        "clearance",
        "spring",
        "no control group",
    ]
