"""The report library: statistics against scipy, a hand-computed example, windows, response sources, costs."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from sample_answers import demo_answers, read_sample
from scipy import stats

from crmlist import store
from crmlist.errors import NotFoundError, UsageError
from crmlist.report import COMPARISON_COLUMNS, compare_campaigns, report_campaign, report_csv, report_document
from crmlist.report.compare import parse_day, period_text
from crmlist.report.formats import report_table, report_title
from crmlist.report.stats import Group, response_uplift, revenue_difference
from crmlist.workspace import Workspace

AS_OF = dt.date(2026, 11, 1)
Z = 1.959963984540054  # the 97.5% point of the standard normal


def group(revenues: list[str], n: int) -> Group:
    """n contacts, one responder per revenue given (the rest are non-responders with 0)."""
    cents = [int(Decimal(r) * 100) for r in revenues] + [0] * (n - len(revenues))
    return Group(n, len(revenues), sum(cents), sum(c * c for c in cents))


def values(revenues: list[str], n: int) -> list[float]:
    return [float(r) for r in revenues] + [0.0] * (n - len(revenues))


@pytest.mark.parametrize(
    ("t_revenue", "n_t", "c_revenue", "n_c"),
    [
        (["10.00", "20.50", "7.99", "120.00", "0.01"], 23, ["15.00", "3.30"], 17),
        (["1999.99"] * 3 + ["5.00", "12.34", "0.10", "77.77"], 41, ["50.00", "60.00", "7.50", "1.00"], 38),
    ],
)
def test_statistics_agree_with_scipy(t_revenue: list[str], n_t: int, c_revenue: list[str], n_c: int) -> None:
    targets, control = group(t_revenue, n_t), group(c_revenue, n_c)
    uplift = response_uplift(targets, control)
    assert uplift is not None
    table = np.array([[targets.responders, n_t - targets.responders], [control.responders, n_c - control.responders]])
    assert uplift.p_value == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue, rel=1e-12)
    revenue = revenue_difference(targets, control)
    assert revenue is not None
    welch = stats.ttest_ind(values(t_revenue, n_t), values(c_revenue, n_c), equal_var=False)
    interval = welch.confidence_interval(0.95)
    assert revenue.p_value == pytest.approx(welch.pvalue, rel=1e-12)
    assert revenue.df == pytest.approx(welch.df, rel=1e-12)
    assert revenue.difference.low == pytest.approx(interval.low, rel=1e-12)
    assert revenue.difference.high == pytest.approx(interval.high, rel=1e-12)
    assert targets.variance == pytest.approx(np.var(values(t_revenue, n_t), ddof=1), rel=1e-12)


def test_undefined_statistics_are_none_not_nan() -> None:
    nobody = response_uplift(Group(10), Group(10))
    assert nobody is not None and nobody.p_value is None and nobody.relative is None
    assert (nobody.absolute.low, nobody.absolute.high) == (0.0, 0.0)
    flat = revenue_difference(Group(10), Group(10))
    assert flat is not None and (flat.difference.low, flat.p_value) == (None, None)
    assert response_uplift(Group(10, 1), Group()) is None
    single = revenue_difference(Group(10, 1, 500, 250_000), Group(1))
    assert single is not None and (single.difference.estimate, single.difference.low) == (0.5, None)
    assert revenue_difference(Group(10, 1), Group()) is None


# --- the report over a real database ---------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(tmp_path / "crmlist.duckdb"))
    store.ensure_schema(con)
    yield con
    con.close()


def contacts(
    con: duckdb.DuckDBPyConnection,
    rows: list[tuple[str, str, bool]],
    campaign: str = "winback",
    run_id: str = "run-1",
    as_of: dt.date = AS_OF,
    channel: str | None = "email",
) -> None:
    """contact_history rows (customer_id, cell, is_control) of one run, and its runs row."""
    con.executemany(
        "INSERT INTO contact_history (run_id, campaign, cell, customer_id, channel, offer, is_control, as_of) "
        "VALUES (?, ?, ?, ?, ?, NULL, ?, ?)",
        [(run_id, campaign, cell, cid, channel, control, as_of) for cid, cell, control in rows],
    )
    con.execute(
        "INSERT INTO runs (run_id, campaign, as_of, status, source, counts, finished_at) VALUES (?, ?, ?, 'complete', "
        '\'crmlist\', \'{"waterfall": [["all customers", 9, 0], ["control", 7, 2]]}\', ?)',
        [run_id, campaign, as_of, dt.datetime(2026, 11, 1, 8, 0)],
    )


def responses(
    con: duckdb.DuckDBPyConnection, rows: Sequence[tuple[str, str, str | None, str | None, str | None]]
) -> None:
    """responses rows (customer_id, responded_at, campaign, offer_code, revenue)."""
    con.executemany("INSERT INTO responses VALUES (?, ?, ?, ?, ?)", rows)


def scope(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(r for r in rows if r["scope"] == name)


def test_hand_computed_example(db: duckdb.DuckDBPyConnection, make_ws: Callable[..., Workspace]) -> None:
    two_cells = '[[cells]]\nname = "a"\nwhere = "TRUE"\n[[cells]]\nname = "b"\nwhere = "TRUE"\n'
    ws = make_ws("[costs]\nemail = 0.01\n[report]\nmargin = 0.5\n", {"winback.toml": "fixed_cost = 5\n" + two_cells})
    # cell a: 10 targets, 4 respond (10 + 20 + 30 + 40); 5 controls, 1 responds (25). cell b: 2 targets, none.
    contacts(db, [(f"t{i}", "a", False) for i in range(10)] + [(f"c{i}", "a", True) for i in range(5)])
    contacts(db, [("b0", "b", False), ("b1", "b", False)], run_id="run-1b")  # same as-of: pooled below
    responses(db, [(f"t{i}", "2026-11-10", "winback", None, f"{10 * (i + 1)}.00") for i in range(4)])
    responses(db, [("c0", "2026-11-02", None, None, "25.00")])
    result = report_campaign(db, ws, "winback", all_runs=True)
    a = scope(result.rows(), "a")
    assert (a["n_targets"], a["n_control"], a["responders_t"], a["responders_c"]) == (10, 5, 4, 1)
    assert (a["rate_t"], a["rate_c"], a["uplift"]) == (0.4, 0.2, 0.4 - 0.2)
    half = Z * math.sqrt(0.4 * 0.6 / 10 + 0.2 * 0.8 / 5)
    assert a["uplift_low"] == pytest.approx(0.2 - half, abs=1e-12)
    assert a["uplift_high"] == pytest.approx(0.2 + half, abs=1e-12)
    assert a["relative_uplift"] == pytest.approx(1.0, abs=1e-12)
    z = 0.2 / math.sqrt(1 / 3 * 2 / 3 * (1 / 10 + 1 / 5))  # pooled rate 5/15
    assert a["p_value"] == pytest.approx(math.erfc(z / math.sqrt(2)), abs=1e-12)
    assert (a["revenue_t"], a["revenue_c"]) == (Decimal("100.00"), Decimal("25.00"))
    assert (a["revenue_per_head_t"], a["revenue_per_head_c"], a["revenue_per_head_diff"]) == (10.0, 5.0, 5.0)
    var_t, var_c = (3000 - 10 * 10**2) / 9, (625 - 5 * 5**2) / 4  # (sum of squares - n mean^2) / (n - 1)
    se = math.sqrt(var_t / 10 + var_c / 5)
    df = se**4 / ((var_t / 10) ** 2 / 9 + (var_c / 5) ** 2 / 4)
    t = stats.t.ppf(0.975, df)
    assert a["revenue_per_head_diff_low"] == pytest.approx(5.0 - t * se, abs=1e-12)
    assert a["incremental_responders"] == pytest.approx(2.0, abs=1e-12)
    assert a["incremental_revenue"] == 50.0
    assert a["incremental_revenue_high"] == pytest.approx(10 * (5.0 + t * se), abs=1e-9)
    # cost: 10 e-mails at 0.01 plus 10/12 of the fixed 5; ROI = (50 x 0.5 - cost) / cost
    assert a["cost"] == Decimal("0.10") + Decimal(50) / 12
    assert a["roi"] == pytest.approx((25 - float(a["cost"])) / float(a["cost"]), abs=1e-12)
    assert (a["small_sample"], a["note"]) == (True, "small sample (<30 controls or <5 responders in a group)")
    overall, b = scope(result.rows(), "overall"), scope(result.rows(), "b")
    assert [r["scope"] for r in result.rows()] == ["overall", "a", "b"]
    assert (overall["n_targets"], overall["responders_t"], overall["cost"]) == (12, 4, Decimal("5.12"))
    assert overall["rate_t"] == 4 / 12
    assert (b["n_control"], b["uplift"], b["note"]) == (0, None, "no control group: nothing to measure against")


def test_response_window_is_inclusive_at_both_ends(
    db: duckdb.DuckDBPyConnection, make_ws: Callable[..., Workspace]
) -> None:
    ws = make_ws()
    contacts(db, [(c, "all", False) for c in ("before", "first", "last", "after")])
    responses(
        db,
        [
            ("before", "2026-10-31", None, None, "1.00"),
            ("first", "2026-11-01", None, None, "2.00"),
            ("last", "2026-12-01", None, None, "4.00"),  # as-of + 30 days
            ("after", "2026-12-02", None, None, "8.00"),
        ],
    )
    row = report_campaign(db, ws, "winback").rows()[0]
    assert (row["responders_t"], row["revenue_t"]) == (2, Decimal("6.00"))
    narrow = report_campaign(db, ws, "winback", window_days=0).rows()[0]
    assert (narrow["responders_t"], narrow["revenue_t"]) == (1, Decimal("2.00"))


def test_responses_of_this_campaign_or_none_count_and_revenue_sums_all_rows(
    db: duckdb.DuckDBPyConnection, make_ws: Callable[..., Workspace]
) -> None:
    ws = make_ws()
    contacts(db, [(c, "all", False) for c in ("mine", "blank", "null", "other")])
    responses(
        db,
        [
            ("mine", "2026-11-05", "winback", None, "10.00"),
            ("mine", "2026-11-06", "winback", None, "0.05"),
            ("blank", "2026-11-05", "", None, "1.00"),
            ("null", "2026-11-05", None, None, None),  # a response without revenue still responds
            ("other", "2026-11-05", "digital_tv", None, "99.00"),
        ],
    )
    row = report_campaign(db, ws, "winback").rows()[0]
    assert (row["responders_t"], row["revenue_t"]) == (3, Decimal("11.05"))


def test_offer_code_filter_from_the_rule_file(db: duckdb.DuckDBPyConnection, make_ws: Callable[..., Workspace]) -> None:
    ws = make_ws(queries={"winback.toml": '[response]\noffer_code = "VIP20"\nwindow_days = 5\n'})
    contacts(db, [(c, "all", False) for c in ("a", "b", "c")])
    responses(
        db,
        [
            ("a", "2026-11-02", None, "VIP20", "5.00"),
            ("b", "2026-11-02", None, "STD10", "5.00"),
            ("c", "2026-11-07", None, "VIP20", "5.00"),  # after the rule file's 5-day window
        ],
    )
    result = report_campaign(db, ws, "winback")
    assert result.settings.window_days == 5
    assert result.rows()[0]["responders_t"] == 1


def test_purchases_count_when_there_are_no_responses(
    db: duckdb.DuckDBPyConnection, make_ws: Callable[..., Workspace]
) -> None:
    ws = make_ws(queries={"winback.toml": '[response]\ncategory = "tv"\n'})
    contacts(db, [(c, "all", False) for c in ("own", "product", "audio", "early")])
    db.execute("INSERT INTO products (product_id, category) VALUES ('P-TV', 'tv')")
    db.execute(
        "INSERT INTO purchases (order_id, customer_id, order_date, product_id, category, amount) VALUES "
        "('1', 'own', '2026-11-03', NULL, 'tv', 100.10), ('2', 'own', '2026-11-04', NULL, 'tv', 0.20), "
        "('3', 'product', '2026-11-05', 'P-TV', NULL, 50.00), ('4', 'audio', '2026-11-05', NULL, 'audio', 9.00), "
        "('5', 'early', '2026-10-31', NULL, 'tv', 7.00)"
    )
    result = report_campaign(db, ws, "winback")
    assert result.source == "purchases"
    row = result.rows()[0]
    assert (row["responders_t"], row["revenue_t"]) == (2, Decimal("150.30"))
    responses(db, [("audio", "2026-11-05", None, None, "1.00")])  # any responses row: responses only
    row = report_campaign(db, ws, "winback").rows()[0]
    assert (row["responders_t"], row["revenue_t"]) == (1, Decimal("1.00"))


def test_small_sample_flag(db: duckdb.DuckDBPyConnection, make_ws: Callable[..., Workspace]) -> None:
    ws = make_ws("[costs]\nemail = 0\n")
    contacts(db, [(f"t{i}", "big", False) for i in range(30)] + [(f"c{i}", "big", True) for i in range(30)])
    contacts(db, [(f"s{i}", "few", False) for i in range(30)] + [(f"d{i}", "few", True) for i in range(29)])
    days = [(f"{p}{i}", "2026-11-02", None, None, "1.00") for p in "tcsd" for i in range(5)]
    responses(db, days)
    rows = report_campaign(db, ws, "winback").rows()
    assert {r["scope"]: r["small_sample"] for r in rows} == {"overall": False, "big": False, "few": True}
    assert scope(rows, "big")["note"] == ""


def test_loaded_contacts_without_a_rule_file_use_the_config(
    db: duckdb.DuckDBPyConnection, make_ws: Callable[..., Workspace]
) -> None:
    ws = make_ws("[response]\nwindow_days = 3\n[costs]\nsms = 0.09\n")
    contacts(db, [("a", "", False), ("b", "", False), ("c", "", True)], campaign="legacy", channel="sms")
    db.execute("UPDATE runs SET source = 'loaded', counts = NULL, finished_at = NULL")
    responses(db, [("a", "2026-11-04", None, None, "3.00"), ("b", "2026-11-05", None, None, "3.00")])
    result = report_campaign(db, ws, "legacy")
    row = result.rows()[0]
    assert (result.settings.window_days, result.waterfall) == (3, None)
    assert (row["responders_t"], row["cost"], row["scope"]) == (1, Decimal("0.18"), "overall")
    assert [r["scope"] for r in result.rows()] == ["overall", "all"]
    contacts(db, [("x", "", False)], campaign="legacy", run_id="r2", channel="fax")
    assert report_campaign(db, ws, "legacy").rows()[0]["note"] == (
        "no cost per contact for channel fax: counted as 0; no control group: nothing to measure against"
    )


def test_runs_latest_by_default_or_chosen_or_pooled(
    db: duckdb.DuckDBPyConnection, make_ws: Callable[..., Workspace]
) -> None:
    ws = make_ws()
    contacts(db, [("a", "all", False)], run_id="old", as_of=dt.date(2026, 10, 1))
    contacts(db, [("a", "all", False), ("b", "all", False)], run_id="new")
    assert (report_campaign(db, ws, "winback").run_id, report_campaign(db, ws, "winback").rows()[0]["n_targets"]) == (
        "new",
        2,
    )
    old = report_campaign(db, ws, "winback", run_id="old")
    assert (old.as_of, old.rows()[0]["n_targets"]) == (dt.date(2026, 10, 1), 1)
    pooled = report_campaign(db, ws, "winback", all_runs=True)
    assert (pooled.run_id, pooled.as_of, pooled.rows()[0]["n_targets"]) == (None, None, 3)
    with pytest.raises(NotFoundError, match="no run 'nope'"):
        report_campaign(db, ws, "winback", run_id="nope")
    with pytest.raises(UsageError):
        report_campaign(db, ws, "winback", run_id="old", all_runs=True)


def test_unknown_campaign_lists_the_recorded_ones(
    db: duckdb.DuckDBPyConnection, make_ws: Callable[..., Workspace]
) -> None:
    ws = make_ws()
    contacts(db, [("a", "all", False)], campaign="winback")
    contacts(db, [("a", "all", False)], campaign="digital_tv", run_id="r2")
    with pytest.raises(NotFoundError) as caught:
        report_campaign(db, ws, "winbak")
    assert (caught.value.what, caught.value.hint) == (
        "no contact history for campaign 'winbak'",
        "campaigns with contact history: digital_tv, winback",
    )


def test_csv_and_json_shapes(db: duckdb.DuckDBPyConnection, make_ws: Callable[..., Workspace]) -> None:
    ws = make_ws("[costs]\nemail = 0.01\n")
    contacts(db, [("a", "all", False), ("b", "all", True)])
    responses(db, [("a", "2026-11-02", None, None, "12.30")])
    result = report_campaign(db, ws, "winback")
    lines = report_csv(result).splitlines()
    assert lines[0].startswith("scope,n_targets,n_control,responders_t,responders_c,rate_t,rate_c,uplift,")
    assert lines[1].split(",")[:8] == ["overall", "1", "1", "1", "0", "1.0", "0.0", "1.0"]
    # one contact a side: no Welch interval, but the difference, incremental revenue and ROI are there
    assert lines[1].split(",")[12:] == [
        "12.30",
        "0.00",
        "12.3",
        "0.0",
        "12.3",
        "",
        "",
        "",
        "1.0",
        "1.0",
        "1.0",
        "12.3",
        "",
        "",
        "0.01",
        "1229.0",
        "true",
        "small sample (<30 controls or <5 responders in a group)",
    ]
    document = report_document(result)
    assert {k: document[k] for k in ("campaign", "run_id", "as_of", "window_days")} == {
        "campaign": "winback",
        "run_id": "run-1",
        "as_of": "2026-11-01",
        "window_days": 30,
    }
    assert document["rows"][0]["revenue_t"] == 12.3 and document["rows"][0]["cost"] == 0.01


# --- campaigns compared -----------------------------------------------------------------------------------


def two_campaigns(db: duckdb.DuckDBPyConnection, make_ws: Callable[..., Workspace]) -> Workspace:
    """winback (5-day window): runs on 11-01 and 11-10; digital_tv: no controls on 11-05, and a run on 10-31."""
    ws = make_ws("[costs]\nemail = 0.10\n", {"winback.toml": "[response]\nwindow_days = 5\n"})
    contacts(db, [(f"t{i}", "all", False) for i in range(4)] + [("c0", "all", True), ("c1", "all", True)])
    contacts(
        db, [("t4", "all", False), ("t5", "all", False), ("c2", "all", True)], "winback", "run-2", dt.date(2026, 11, 10)
    )
    contacts(db, [("d0", "", False), ("d1", "", False)], "digital_tv", "tv-1", dt.date(2026, 11, 5))
    contacts(db, [("d2", "", False)], "digital_tv", "tv-0", dt.date(2026, 10, 31))
    # t1 answers after winback's 5 days; d2 answers the run before the period
    responses(
        db,
        [
            ("t0", "2026-11-02", None, None, "10.00"),
            ("t1", "2026-11-20", None, None, "99.00"),
            ("t4", "2026-11-12", None, None, "5.00"),
            ("c2", "2026-11-11", None, None, "1.00"),
            ("d0", "2026-11-06", "digital_tv", None, "7.50"),
            ("d2", "2026-11-01", None, None, "3.00"),
        ],
    )
    return ws


def test_each_campaigns_runs_in_the_period_pooled_as_its_own_report_pools_them(
    db: duckdb.DuckDBPyConnection, make_ws: Callable[..., Workspace]
) -> None:
    ws = two_campaigns(db, make_ws)
    comparison = compare_campaigns(db, ws, dt.date(2026, 11, 1), dt.date(2026, 11, 10))
    tv, winback = comparison.rows()  # by campaign name
    assert {k: winback[k] for k in COMPARISON_COLUMNS[:11]} == {
        "campaign": "winback",
        "n_runs": 2,
        "first_as_of": dt.date(2026, 11, 1),
        "last_as_of": dt.date(2026, 11, 10),
        "window_days": 5,
        "n_targets": 6,
        "n_control": 3,
        "responders_t": 2,  # t0 and t4; t1 is late
        "responders_c": 1,
        "rate_t": 2 / 6,
        "rate_c": 1 / 3,
    }
    assert (winback["uplift"], winback["relative_uplift"], winback["p_value"]) == (2 / 6 - 1 / 3, 0.0, 1.0)
    assert (winback["revenue_t"], winback["revenue_c"], winback["cost"]) == (
        Decimal("15.00"),
        Decimal("1.00"),
        Decimal("0.60"),
    )
    assert (winback["revenue_per_head_diff"], winback["incremental_revenue"]) == (2.5 - 1 / 3, (2.5 - 1 / 3) * 6)
    assert winback["roi"] == ((2.5 - 1 / 3) * 6 - 0.6) / 0.6
    own = report_campaign(db, ws, "winback", all_runs=True).rows()[0]
    assert {k: winback[k] for k in COMPARISON_COLUMNS[5:]} == {k: v for k, v in own.items() if k != "scope"}
    assert {k: tv[k] for k in ("campaign", "n_runs", "first_as_of", "window_days", "n_targets", "n_control")} == {
        "campaign": "digital_tv",
        "n_runs": 1,
        "first_as_of": dt.date(2026, 11, 5),
        "window_days": 30,
        "n_targets": 2,
        "n_control": 0,
    }
    assert (tv["responders_t"], tv["rate_t"], tv["revenue_t"], tv["revenue_per_head_t"], tv["cost"]) == (
        1,
        0.5,
        Decimal("7.50"),
        3.75,
        Decimal("0.20"),
    )
    blank = (
        "uplift",
        "uplift_low",
        "relative_uplift",
        "p_value",
        "revenue_per_head_diff",
        "incremental_revenue",
        "roi",
    )
    assert [tv[k] for k in blank] == [None] * len(blank)
    assert (tv["small_sample"], tv["note"]) == (True, "no control group: nothing to measure against")


def test_window_days_applies_to_every_campaign(
    db: duckdb.DuckDBPyConnection, make_ws: Callable[..., Workspace]
) -> None:
    ws = two_campaigns(db, make_ws)
    rows = compare_campaigns(db, ws, window_days=30).rows()
    assert [(r["campaign"], r["n_runs"], r["window_days"], r["responders_t"]) for r in rows] == [
        ("digital_tv", 2, 30, 2),
        ("winback", 2, 30, 3),
    ]
    assert rows[0]["first_as_of"] == dt.date(2026, 10, 31)


@pytest.mark.parametrize(
    ("start", "end", "runs"),
    [
        (dt.date(2026, 11, 1), dt.date(2026, 11, 10), {"digital_tv": 1, "winback": 2}),
        (dt.date(2026, 11, 2), dt.date(2026, 11, 10), {"digital_tv": 1, "winback": 1}),  # run-1 just before
        (dt.date(2026, 11, 1), dt.date(2026, 11, 9), {"digital_tv": 1, "winback": 1}),  # run-2 just after
        (dt.date(2026, 10, 31), dt.date(2026, 10, 31), {"digital_tv": 1}),
        (None, dt.date(2026, 11, 4), {"digital_tv": 1, "winback": 1}),
        (dt.date(2026, 11, 6), None, {"winback": 1}),
        (None, None, {"digital_tv": 2, "winback": 2}),
    ],
)
def test_the_period_holds_runs_as_of_its_first_to_its_last_day(
    db: duckdb.DuckDBPyConnection,
    make_ws: Callable[..., Workspace],
    start: dt.date | None,
    end: dt.date | None,
    runs: dict[str, int],
) -> None:
    ws = two_campaigns(db, make_ws)
    comparison = compare_campaigns(db, ws, start, end)
    assert {r["campaign"]: r["n_runs"] for r in comparison.rows()} == runs
    for report in comparison.reports:
        assert all((start or r.as_of) <= r.as_of <= (end or r.as_of) for r in report.runs)


def test_an_empty_period_names_itself_and_the_recorded_dates(
    db: duckdb.DuckDBPyConnection, make_ws: Callable[..., Workspace]
) -> None:
    ws = make_ws()
    with pytest.raises(NotFoundError) as caught:
        compare_campaigns(db, ws)
    assert (caught.value.where, caught.value.what, caught.value.hint) == (
        "report",
        "no campaign has a run as of any date",
        "none yet: record one with crmlist run CAMPAIGN, or crmlist load contacts FILE",
    )
    ws = two_campaigns(db, make_ws)
    with pytest.raises(NotFoundError) as caught:
        compare_campaigns(db, ws, dt.date(2026, 11, 6), dt.date(2026, 11, 9))
    assert (caught.value.what, caught.value.hint) == (
        "no campaign has a run as of 2026-11-06 to 2026-11-09",
        "the recorded runs are as of 2026-10-31 to 2026-11-10: widen --from / --to",
    )
    with pytest.raises(UsageError) as refused:
        compare_campaigns(db, ws, dt.date(2026, 11, 10), dt.date(2026, 11, 1))
    assert (refused.value.where, refused.value.what) == ("--from", "2026-11-10 is after --to 2026-11-01")


def test_period_dates_and_words() -> None:
    assert parse_day("--from", "2026-11-01") == dt.date(2026, 11, 1)
    assert parse_day("--to", None) is None
    with pytest.raises(UsageError) as refused:
        parse_day("--to", "30.11.2026")
    assert (refused.value.where, refused.value.what, refused.value.hint) == (
        "--to",
        "'30.11.2026' is not a date",
        "write it as YYYY-MM-DD",
    )
    day, later = dt.date(2026, 11, 1), dt.date(2026, 11, 30)
    assert [period_text(day, later), period_text(day, None), period_text(None, later), period_text(None, None)] == [
        "2026-11-01 to 2026-11-30",
        "2026-11-01 or later",
        "2026-11-30 or earlier",
        "any date",
    ]


def test_comparison_csv_json_and_table(db: duckdb.DuckDBPyConnection, make_ws: Callable[..., Workspace]) -> None:
    ws = two_campaigns(db, make_ws)
    comparison = compare_campaigns(db, ws, dt.date(2026, 11, 1))
    lines = report_csv(comparison).splitlines()
    assert lines[0] == ",".join(COMPARISON_COLUMNS)
    assert [line.split(",")[:8] for line in lines[1:]] == [
        ["digital_tv", "1", "2026-11-05", "2026-11-05", "30", "2", "0", "1"],
        ["winback", "2", "2026-11-01", "2026-11-10", "5", "6", "3", "2"],
    ]
    document = report_document(comparison)
    assert {k: document[k] for k in ("from", "to", "response_source", "counts")} == {
        "from": "2026-11-01",
        "to": None,
        "response_source": "responses",
        "counts": {"campaigns": 2, "targets": 8, "control": 3},
    }
    winback = document["campaigns"][1]
    assert list(winback)[:5] == ["campaign", "n_runs", "runs", "first_as_of", "last_as_of"]
    assert (winback["runs"], winback["first_as_of"], winback["revenue_t"], winback["cost"]) == (
        ["run-2", "run-1"],
        "2026-11-01",
        15.0,
        0.6,
    )
    own = report_document(report_campaign(db, ws, "winback", all_runs=True))
    assert {k: winback[k] for k in own["rows"][0] if k != "scope"} == {
        k: v for k, v in own["rows"][0].items() if k != "scope"
    }
    header, table = report_table(comparison)
    assert header == ["", "digital_tv", "winback"]
    assert table[:3] == [
        ["runs", "1", "2"],
        ["as of", "2026-11-05", "2026-11-01 to 2026-11-10"],
        ["targets / control", "2 / 0", "6 / 3"],
    ]
    assert report_title(comparison) == (
        "campaigns with runs as of 2026-11-01 or later, each one's runs pooled: responses within 5 to 30 days "
        "by campaign (from responses); targets / control"
    )


def test_sample_responses_answer_the_hand_computed_demo_run(tmp_path: Path) -> None:
    """sample_data/responses.csv against the demo's win-back run worked out by hand (tests/sample_answers.py)
    and the draw's documented rates: per cell, round(12% of targets) respond with the cell's offer within
    the 30-day window, round(8% of controls) buy on their own, round(5% of the others) buy after it."""
    from crmlist.sample.responses import write_sample_responses

    sample = Path(__file__).resolve().parents[1] / "sample_data"
    winback = demo_answers()["winback"]
    members = {cid: (cell, offer, False) for cid, cell, offer in winback.targets}
    members |= {cid: (cell, offer, True) for cid, cell, offer in winback.control}
    # README's "Measuring a campaign": the demo's win-back has 127 targets and 14 controls, 16 and 1 respond.
    assert (len(winback.targets), len(winback.control)) == (127, 14)
    rows = read_sample("responses.csv")
    assert list(rows[0]) == ["customer_id", "responded_at", "campaign", "offer_code", "revenue"]
    assert {row["customer_id"] for row in rows} <= set(members)  # nobody outside the run answers it
    in_window: dict[tuple[str, bool], set[str]] = {}
    late: dict[tuple[str, bool], set[str]] = {}
    for row in rows:
        cell, offer, is_control = members[row["customer_id"]]
        day = (dt.date.fromisoformat(row["responded_at"]) - AS_OF).days
        assert 0 <= day <= 90 and Decimal(row["revenue"]) > 0, row
        # only targets answer with the campaign and their cell's offer code; controls and late buyers without
        answers = ("winback", offer) if not is_control and day <= 30 else ("", "")
        assert (row["campaign"], row["offer_code"]) == answers, row
        (in_window if day <= 30 else late).setdefault((cell, is_control), set()).add(row["customer_id"])
    for (cell, is_control), group in Counter((c, k) for c, _, k in members.values()).items():
        chosen = in_window.get((cell, is_control), set())
        assert len(chosen) == int((0.08 if is_control else 0.12) * group + 0.5), (cell, is_control)
        assert len(late.get((cell, is_control), set())) == int(0.05 * (group - len(chosen)) + 0.5), (cell, is_control)
    responders = {k: sum(len(v) for (_, c), v in in_window.items() if c == k) for k in (False, True)}
    assert responders == {False: 16, True: 1}
    # the seeded draw regenerates the committed file exactly
    for name in ("customers", "products", "purchases", "suppressions"):
        shutil.copyfile(sample / f"{name}.csv", tmp_path / f"{name}.csv")
    assert write_sample_responses(tmp_path) == len(rows)
    assert (tmp_path / "responses.csv").read_bytes() == (sample / "responses.csv").read_bytes()
