"""Seeded benchmark data sets: S (100k/1M), M (1M/10M), L (10M/100M) customers/purchases as CSV.

Generated set-based in DuckDB from hashes of the row number and the seed, so the same size and seed
give the same files on any machine. Usage: python bench/generate.py M [--seed 7] [--out bench/data]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import duckdb

SIZES = {
    "XS": (10_000, 100_000),
    "S": (100_000, 1_000_000),
    "M": (1_000_000, 10_000_000),
    "L": (10_000_000, 100_000_000),
}
CATEGORIES = ["tv", "audio", "phone", "accessories", "briefcase", "folder", "books", "garden", "kitchen", "digital_tv"]
FIRST = ["Anna", "Jan", "Petr", "Olga", "John", "Mary", "Ewa", "Pavel", "Ivan", "Kate", "Zofia", "Tomáš"]
LAST = ["Kowalska", "Nowak", "Novák", "Petrova", "Smith", "Jones", "Wiśniewska", "Dvořák", "Ivanov", "Brown"]


def u(expr: str, seed: int, salt: int) -> str:
    """A uniform integer in [0, 2^31) from a hash of expr, the seed and a salt."""
    return f"CAST(hash({expr}, {seed}, {salt}) % 2147483647 AS BIGINT)"


def generate(size: str, seed: int, out: Path) -> dict[str, Path]:
    customers, purchases = SIZES[size]
    folder = out / f"{size}-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.csv" for name in ("customers", "purchases", "products")}
    if all(p.exists() for p in paths.values()):
        return paths
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")
    first = "[" + ", ".join(f"'{n}'" for n in FIRST) + "]"
    last = "[" + ", ".join(f"'{n}'" for n in LAST) + "]"
    langs = "['pl', 'cs', 'ru', 'en']"
    con.execute(f"""
        COPY (
            SELECT lpad(CAST(i AS VARCHAR), 9, '0') AS customer_id,
                   {first}[1 + {u("i", seed, 1)} % {len(FIRST)}] AS first_name,
                   {last}[1 + {u("i", seed, 2)} % {len(LAST)}] AS last_name,
                   CASE {u("i", seed, 3)} % 3 WHEN 0 THEN 'F' WHEN 1 THEN 'M' ELSE '' END AS gender,
                   'c' || i || '@example.com' AS email,
                   '+48 600 ' || lpad(CAST(i % 1000000 AS VARCHAR), 6, '0') AS phone,
                   'Street ' || (i % 500) AS street, 'City ' || (i % 300) AS city,
                   lpad(CAST(i % 99999 AS VARCHAR), 5, '0') AS postal_code,
                   {langs}[1 + {u("i", seed, 4)} % 4] AS language,
                   DATE '2015-01-01' + CAST({u("i", seed, 5)} % 4000 AS INTEGER) AS signup_date,
                   CASE {u("i", seed, 6)} % 10 WHEN 0 THEN '' WHEN 1 THEN 'false' ELSE 'true' END AS email_opt_in,
                   CASE {u("i", seed, 7)} % 10 WHEN 0 THEN '' ELSE 'true' END AS mail_opt_in
            FROM range({customers}) AS t(i)
        ) TO '{paths["customers"]}' (HEADER)
    """)
    cats = "[" + ", ".join(f"'{c}'" for c in CATEGORIES) + "]"
    con.execute(f"""
        COPY (
            SELECT 'O' || i AS order_id,
                   lpad(CAST({u("i", seed, 11)} % {customers} AS VARCHAR), 9, '0') AS customer_id,
                   DATE '2023-11-01' + CAST({u("i", seed, 12)} % 1096 AS INTEGER) AS order_date,
                   'P' || ({u("i", seed, 13)} % 500) AS product_id,
                   {cats}[1 + {u("i", seed, 14)} % {len(CATEGORIES)}] AS category,
                   1 + {u("i", seed, 15)} % 3 AS quantity,
                   CAST(({u("i", seed, 16)} % 50000) / 100 AS DECIMAL(18, 2)) AS unit_price,
                   CAST(quantity * unit_price AS DECIMAL(18, 2)) AS amount
            FROM range({purchases}) AS t(i)
        ) TO '{paths["purchases"]}' (HEADER)
    """)
    con.execute(f"""
        COPY (
            SELECT 'P' || i AS product_id, 'Product ' || i AS name, {cats}[1 + i % {len(CATEGORIES)}] AS category,
                   ['black', 'brown', 'white'][1 + i % 3] AS color, CAST(10 + i AS DECIMAL(18, 2)) AS price,
                   'P' || ((i + 1) % 500) || '|P' || ((i + 2) % 500) AS complements
            FROM range(500) AS t(i)
        ) TO '{paths["products"]}' (HEADER)
    """)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("size", choices=list(SIZES))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    args = parser.parse_args()
    start = time.perf_counter()
    paths = generate(args.size, args.seed, args.out)
    for name, path in paths.items():
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    print(f"generated in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
