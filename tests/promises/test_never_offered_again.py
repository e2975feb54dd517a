"""Promise: a letter never recommends what its reader bought, nor a category the reader bought lately.

README "Writing letters": never a product the customer bought up to as-of, never a product of a category
the customer bought within `[offers] category_days` (365) days before it. Checked on the sample workspace
`crmlist init` writes and on the benchmark generator's data (bench/generate.py: XS, or the size that
CRMLIST_BENCH_SIZE names, e.g. S for 100,000 customers), through the CLI: every letter prints the
product ids it recommends, and the check reads the CSV files themselves with DuckDB, not the tables
crmlist loaded them into.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import duckdb
import pytest
from outsider import ok

ROOT = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-01"
PROBE = "{% for r in recommendations %}{{ r.product_id }};{% endfor %}\n"
EVERYONE = 'description = "everyone"\nchannel = "email"\ntemplate = "probe"\n'


def recommended(letters: Path) -> dict[str, list[str]]:
    """customer_id -> the product ids its letter recommends, from a letters.jsonl bundle."""
    rows = [json.loads(line) for line in letters.read_text(encoding="utf-8").splitlines()]
    return {r["customer_id"]: [p for p in r["text"].strip().split(";") if p] for r in rows}


def repeats(data: Path, recs: dict[str, list[str]], as_of: str, days: int = 365) -> list[tuple[str, str, str]]:
    """(customer_id, product_id, why) of every recommendation the rule forbids, found in the CSV files:
    the product was bought up to as-of, or a product of its category (the product's own, else the
    purchase line's) within `days` days before as-of."""
    pairs = [(c, p) for c, ps in recs.items() for p in ps]
    if not pairs:
        return []
    with duckdb.connect() as con:
        con.execute("CREATE TABLE recs (customer_id VARCHAR, product_id VARCHAR)")
        con.executemany("INSERT INTO recs VALUES (?, ?)", pairs)
        purchases, products = (str(data / f"{name}.csv") for name in ("purchases", "products"))
        return con.execute(
            """
            WITH pu AS (SELECT * FROM read_csv($purchases, all_varchar = true)),
            pr AS (SELECT * FROM read_csv($products, all_varchar = true)),
            bought AS (
                SELECT pu.customer_id, pu.product_id, CAST(pu.order_date AS DATE) AS day,
                       lower(coalesce(pr.category, pu.category)) AS category
                FROM pu LEFT JOIN pr ON pr.product_id = pu.product_id
                WHERE CAST(pu.order_date AS DATE) <= CAST($as_of AS DATE)
            )
            SELECT DISTINCT r.customer_id, r.product_id,
                   CASE WHEN b.product_id = r.product_id THEN 'bought' ELSE 'category ' || b.category END
            FROM recs AS r
            JOIN pr AS o ON o.product_id = r.product_id
            JOIN bought AS b ON b.customer_id = r.customer_id
            WHERE b.product_id = r.product_id
               OR (b.category = lower(o.category) AND b.day > CAST($as_of AS DATE) - CAST($days AS INTEGER))
            ORDER BY ALL
            """,
            {"purchases": purchases, "products": products, "as_of": as_of, "days": days},
        ).fetchall()


def probe_workspace(root: Path, data: Path, tables: tuple[str, ...]) -> None:
    for table in tables:
        ok("load", table, str(data / f"{table}.csv"), cwd=root)
    (root / "templates" / "probe.txt.j2").write_text(PROBE, encoding="utf-8")
    (root / "queries" / "everyone.toml").write_text(EVERYONE, encoding="utf-8")


def sample_workspace(root: Path) -> Path:
    """`crmlist init` at root with the sample data loaded, the probe template and the everyone campaign."""
    ok("init", str(root), cwd=root.parent)
    probe_workspace(root, root / "sample_data", ("customers", "products", "purchases"))
    rules = (root / "queries" / "briefcase_crosssell.toml").read_text(encoding="utf-8")
    probe = rules.replace('template = "briefcase_crosssell"', 'template = "probe"')
    assert probe != rules
    (root / "queries" / "briefcase_probe.toml").write_text(probe, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_workspace(tmp_path_factory.mktemp("sample") / "ws")


@pytest.mark.parametrize("campaign", ["briefcase_probe", "everyone"])
def test_no_sample_letter_recommends_a_bought_product_or_a_category_bought_this_year(
    sample: Path, campaign: str
) -> None:
    out = sample / "out" / campaign
    ok("letters", campaign, "--out", str(out), "--as-of", AS_OF, "--letters-format", "jsonl", cwd=sample)
    recs = recommended(out / "letters.jsonl")
    assert sum(map(len, recs.values())) > (100 if campaign == "everyone" else 40)  # the rule has work to do
    assert repeats(sample / "sample_data", recs, AS_OF) == []


def test_briefcase_buyers_get_no_second_briefcase_and_a_folder_first(sample: Path) -> None:
    out = sample / "out" / "briefcase_first"
    ok("letters", "briefcase_probe", "--out", str(out), "--as-of", AS_OF, "--letters-format", "jsonl", cwd=sample)
    recs = recommended(out / "letters.jsonl")
    with duckdb.connect() as con:
        products = str(sample / "sample_data" / "products.csv")
        categories = dict(con.execute("SELECT product_id, category FROM read_csv($p)", {"p": products}).fetchall())
    offered = [categories[p] for ps in recs.values() for p in ps]
    assert "briefcase" not in offered
    first = [categories[ps[0]] for ps in recs.values() if ps]
    assert first.count("folder") > len(first) // 2, first  # the matching folder leads most letters


def test_category_days_zero_lets_a_category_bought_lately_back_in(sample: Path) -> None:
    """With category_days = 0 only the product itself and the category of the product an offer
    follows from are barred: letters that the 365-day rule shortens get longer again."""
    rules = (sample / "queries" / "everyone.toml").read_text(encoding="utf-8")
    (sample / "queries" / "everyone_zero.toml").write_text(rules + "[offers]\ncategory_days = 0\n", encoding="utf-8")
    counts = {}
    for campaign in ("everyone", "everyone_zero"):
        out = sample / "out" / f"{campaign}-count"
        ok("letters", campaign, "--out", str(out), "--as-of", AS_OF, "--letters-format", "jsonl", cwd=sample)
        recs = recommended(out / "letters.jsonl")
        counts[campaign] = sum(map(len, recs.values()))
        assert repeats(sample / "sample_data", recs, AS_OF, days=0) == []
    assert counts["everyone_zero"] > counts["everyone"]


def test_no_generated_letter_recommends_a_bought_product_or_a_category_bought_this_year(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from generate import generate
    finally:
        sys.path.remove(str(ROOT / "bench"))
    paths = generate(os.environ.get("CRMLIST_BENCH_SIZE", "XS"), 7, tmp_path / "data")
    root = tmp_path / "ws"
    for folder in ("queries", "templates"):
        (root / folder).mkdir(parents=True)
    probe_workspace(root, paths["customers"].parent, ("customers", "products", "purchases"))
    as_of = str(dt.date(2026, 11, 1))
    ok("letters", "everyone", "--out", "out", "--as-of", as_of, "--letters-format", "jsonl", cwd=root)
    recs = recommended(root / "out" / "letters.jsonl")
    assert sum(map(len, recs.values())) > 1000
    assert repeats(paths["customers"].parent, recs, as_of) == []


def test_a_purchase_loaded_after_one_letters_run_is_never_offered_by_the_next(tmp_path: Path) -> None:
    """Letters, then a new purchases file (the customer bought what the letter offered, and an item of
    another offered category), then letters again: neither that product nor those categories come back,
    and nobody's letter breaks the rule against the purchases as they now are. (A workspace of its own:
    the load changes it.)"""
    sample = sample_workspace(tmp_path / "ws")
    first = sample / "out" / "before-load"
    ok("letters", "everyone", "--out", str(first), "--as-of", AS_OF, "--letters-format", "jsonl", cwd=sample)
    before = recommended(first / "letters.jsonl")
    customer, offered = next((c, ps) for c, ps in sorted(before.items()) if len(ps) >= 2)
    with duckdb.connect() as con:
        products = str(sample / "sample_data" / "products.csv")
        category = dict(con.execute("SELECT product_id, category FROM read_csv($p)", {"p": products}).fetchall())
    data = tmp_path / "data"
    data.mkdir()
    (data / "products.csv").write_bytes((sample / "sample_data" / "products.csv").read_bytes())
    sample_purchases = (sample / "sample_data" / "purchases.csv").read_text(encoding="utf-8")
    header = sample_purchases.splitlines()[0]
    assert header == "order_id,customer_id,order_date,product_id,category,quantity,unit_price,amount,currency"
    new = "".join(
        f"NEW{i},{customer},2026-10-30,{product},{category[product]},1,10.00,10.00,PLN\n"
        for i, product in enumerate(offered[:2])
    )
    (tmp_path / "new.csv").write_text(header + "\n" + new, encoding="utf-8")
    (data / "purchases.csv").write_text(sample_purchases + new, encoding="utf-8")
    ok("load", "purchases", str(tmp_path / "new.csv"), cwd=sample)
    second = sample / "out" / "after-load"
    ok("letters", "everyone", "--out", str(second), "--as-of", AS_OF, "--letters-format", "jsonl", cwd=sample)
    after = recommended(second / "letters.jsonl")
    assert not {category[p] for p in after.get(customer, [])} & {category[p] for p in offered[:2]}
    assert repeats(data, after, AS_OF) == []
