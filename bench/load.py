"""Load speed: `crmlist load` (validation on) against a hand-written DuckDB read_csv, in the same run.

Usage: python bench/load.py S|M|L [--seed 7]. Each variant loads customers, purchases and products into
a fresh .duckdb file in its own process; the table shows wall time, the ratio to the hand-written load
and each process's peak memory, then the time and peak memory of each crmlist command.
"""

from __future__ import annotations

import argparse
import shutil
import textwrap
from pathlib import Path

from common import BIN, Measure, measure, print_table, python_script
from generate import generate

TABLES = ("customers", "purchases", "products")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("size", choices=["XS", "S", "M", "L"])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    paths = generate(args.size, args.seed, Path(__file__).parent / "data")
    work = paths["customers"].parent / "load-bench"
    shutil.rmtree(work, ignore_errors=True)
    (work / "crmlist").mkdir(parents=True)
    hand = textwrap.dedent(f"""
        import duckdb
        con = duckdb.connect({str(work / "hand.duckdb")!r})
        for table, path in {[(t, str(paths[t])) for t in TABLES]!r}:
            con.execute(f"CREATE TABLE {{table}} AS SELECT * FROM read_csv('{{path}}')")
        con.close()
    """)
    rows: list[Measure] = [measure("hand-written read_csv", python_script(hand))]
    total = Measure("crmlist load (3 commands)", 0.0, 0.0)
    each = []
    for table in TABLES:
        one = measure(
            f"crmlist load {table}",
            [str(BIN / "crmlist"), "load", table, str(paths[table]), "-q"],
            cwd=work / "crmlist",
        )
        each.append(one)
        total.seconds += one.seconds
        total.peak_mib = max(total.peak_mib, one.peak_mib)
    rows.append(total)
    size_mb = sum(p.stat().st_size for p in paths.values()) / 1e6
    print(f"size {args.size}: {size_mb:.0f} MB of CSV")
    print_table(rows, "hand-written read_csv")
    print("per command: " + ", ".join(f"{m.name[13:]} {m.seconds:.2f} s ({m.peak_mib:.0f} MiB)" for m in each))


if __name__ == "__main__":
    main()
