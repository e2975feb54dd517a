"""Segmentation speed: `crmlist export` of an RFM campaign against hand-written DuckDB SQL and pandas.

Usage: python bench/segment.py S|M|L [--seed 7]. Data comes from bench/generate.py; the database is
loaded once with `crmlist load` and kept under bench/data/. All three variants must produce the same
(customer_id, cell) list, which the bench checks before printing the ratios.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import textwrap
from pathlib import Path

from common import BIN, Measure, measure, print_table, python_script
from generate import generate

AS_OF = "2026-11-01"
RULE = """\
description = "RFM: frequent recent buyers, split by spend"
channel = "email"
[audience]
where = ["frequency >= 3", "recency_days <= 180"]
[[cells]]
name = "high"
where = "monetary >= 2000"
offer = "H"
[[cells]]
name = "rest"
where = "TRUE"
offer = "R"
"""
# The same list by hand: facts from purchases, consent, a usable email, dedupe by email, first-match cells.
HAND_SQL = f"""
COPY (
  WITH agg AS (
    SELECT customer_id, max(order_date) AS last, count(DISTINCT order_id) AS frequency, sum(amount) AS monetary
    FROM purchases WHERE order_date <= DATE '{AS_OF}' GROUP BY customer_id
  ), f AS (
    SELECT c.customer_id, c.email, c.first_name, c.last_name, c.language, c.email_opt_in,
           DATE '{AS_OF}' - a.last AS recency_days, coalesce(a.frequency, 0) AS frequency,
           coalesce(a.monetary, 0) AS monetary
    FROM customers c LEFT JOIN agg a USING (customer_id)
  ), kept AS (
    SELECT *, row_number() OVER (PARTITION BY lower(trim(email)) ORDER BY monetary DESC, customer_id) AS r
    FROM f WHERE email_opt_in AND nullif(trim(email), '') IS NOT NULL
      AND frequency >= 3 AND recency_days <= 180
  )
  SELECT customer_id, 'rfm' AS campaign, CASE WHEN monetary >= 2000 THEN 'high' ELSE 'rest' END AS cell,
         CASE WHEN monetary >= 2000 THEN 'H' ELSE 'R' END AS offer, 'email' AS channel, email, first_name,
         last_name, language
  FROM kept WHERE r = 1 ORDER BY CASE WHEN monetary >= 2000 THEN 1 ELSE 2 END, customer_id
) TO '{{out}}' (HEADER)
"""
PANDAS = f"""
import pandas as pd, sys
folder, out = sys.argv[1], sys.argv[2]
c = pd.read_parquet(folder + '/customers.parquet')
p = pd.read_parquet(folder + '/purchases.parquet')
p['order_date'] = pd.to_datetime(p['order_date'])
p = p[p.order_date <= pd.Timestamp('{AS_OF}')]
a = p.groupby('customer_id').agg(last=('order_date', 'max'), frequency=('order_id', 'nunique'),
                                 monetary=('amount', 'sum')).reset_index()
f = c.merge(a, on='customer_id', how='left')
f['frequency'] = f['frequency'].fillna(0)
f['monetary'] = f['monetary'].fillna(0)
f['recency_days'] = (pd.Timestamp('{AS_OF}') - f['last']).dt.days
usable = f.email.fillna('').str.strip().ne('')
f = f[(f.email_opt_in == True) & usable & (f.frequency >= 3) & (f.recency_days <= 180)]
f = f.assign(key=f.email.str.strip().str.lower()).sort_values(['monetary', 'customer_id'], ascending=[False, True])
f = f.drop_duplicates('key')
f['cell'] = (f.monetary >= 2000).map({{True: 'high', False: 'rest'}})
f['offer'] = f.cell.map({{'high': 'H', 'rest': 'R'}})
f['campaign'] = 'rfm'
f['channel'] = 'email'
f = f.sort_values(['cell', 'customer_id'])
columns = ['customer_id', 'campaign', 'cell', 'offer', 'channel', 'email', 'first_name', 'last_name', 'language']
f[columns].to_csv(out, index=False)
"""


def workspace(size: str, seed: int) -> Path:
    """A workspace with the RFM rule file and a database loaded with `crmlist load` (made once)."""
    paths = generate(size, seed, Path(__file__).parent / "data")
    ws = paths["customers"].parent / "workspace"
    (ws / "queries").mkdir(parents=True, exist_ok=True)
    (ws / "queries" / "rfm.toml").write_text(RULE, encoding="utf-8")
    if not (ws / "crmlist.duckdb").exists():
        for table in ("customers", "purchases", "products"):
            measure(f"load {table}", [str(BIN / "crmlist"), "load", table, str(paths[table]), "-q"], cwd=ws)
    return ws


def parquet_copies(ws: Path) -> Path:
    folder = ws / "parquet"
    if not folder.exists():
        folder.mkdir()
        import duckdb

        with duckdb.connect(str(ws / "crmlist.duckdb"), read_only=True) as con:
            for table in ("customers", "purchases"):
                con.execute(f"COPY {table} TO '{folder / table}.parquet' (FORMAT parquet)")
    return folder


def ensure_pandas() -> None:
    try:
        import pandas  # noqa: F401
    except ImportError:
        import subprocess
        import sys

        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "pandas"], check=True)


def cells_of(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return sorted((row["customer_id"], row["cell"]) for row in csv.DictReader(fh))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("size", choices=["XS", "S", "M", "L"])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-pandas", action="store_true", help="skip pandas (for L)")
    args = parser.parse_args()
    ws = workspace(args.size, args.seed)
    out = ws / "results"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    rows: list[Measure] = []
    hand = textwrap.dedent(f"""
        import duckdb
        con = duckdb.connect({str(ws / "crmlist.duckdb")!r}, read_only=True)
        con.execute({HAND_SQL.format(out=out / "hand.csv")!r})
    """)
    rows.append(measure("hand-written DuckDB SQL", python_script(hand)))
    crmlist = [str(BIN / "crmlist"), "export", "rfm", "-o", str(out / "crmlist.csv"), "--as-of", AS_OF, "-q"]
    rows.append(measure("crmlist export", crmlist, cwd=ws))
    outputs = ["hand.csv", "crmlist.csv"]
    if not args.no_pandas:
        ensure_pandas()
        folder = parquet_copies(ws)
        rows.append(measure("pandas (from Parquet)", [*python_script(PANDAS), str(folder), str(out / "pandas.csv")]))
        outputs.append("pandas.csv")
    lists = {name: cells_of(out / name) for name in outputs}
    first = lists["crmlist.csv"]
    for name, cells in lists.items():
        if cells != first:
            raise SystemExit(f"{name} differs from crmlist's list ({len(cells)} vs {len(first)} rows)")
    print(f"size {args.size}: {len(first)} targets, identical in {', '.join(outputs)}")
    print_table(rows, "hand-written DuckDB SQL")
    if not args.no_pandas:
        pandas_row = rows[-1]
        print(f"crmlist is {pandas_row.seconds / rows[1].seconds:.1f}x faster than pandas")


if __name__ == "__main__":
    main()
