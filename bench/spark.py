"""Engines: the same campaign on DuckDB (`crmlist export`) and on Spark local[N] over a Parquet lake.

Usage: python bench/spark.py [S|M|L] [--seed 7] [--master local[2]] [--driver-memory 4g]
The workspace and database are bench/segment.py's (loaded once with `crmlist load`); the lake is written
once with export_parquet beside it. Each engine runs in its own subprocess; wall time includes Spark's
JVM start, which is also reported apart. Peak memory is the largest summed RSS of the process and all
its descendants (the JVM included), sampled every 0.1 s. The two targets.csv files must be identical.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from common import BIN, ROOT
from segment import AS_OF, RULE, workspace

# RFM with a control group and a limited, ordered cell: hashing, windows and ranking on both engines.
CAMPAIGN = "rfm_engines"
RULE_CONTROL = RULE.replace('name = "high"', 'name = "high"\nlimit = 20000\norder_by = "monetary DESC"') + (
    '[control]\npercent = 10\nsalt = "bench"\n'
)
SPARK_CHILD = """
import dataclasses, datetime as dt, json, sys, time
start = time.perf_counter()
import duckdb
from crmlist.campaign.model import load_campaign
from crmlist.engines.session import spark_session
from crmlist.engines import engine_settings
from crmlist.campaign.execute import spark_evaluate
from crmlist.outputs import write_query
from crmlist.workspace import open_workspace
ws, lake, master, memory, out = sys.argv[1:6]
ws = open_workspace(ws)
conf = {"spark.sql.shuffle.partitions": "8", "spark.driver.memory": memory, "spark.ui.enabled": "false"}
ws = dataclasses.replace(ws, config=ws.config | {"engine": {"name": "spark", "master": master, "lake": lake,
                                                              "conf": conf}})
spark_session(engine_settings(ws, "spark"))
started = time.perf_counter()
found = spark_evaluate(ws, load_campaign(ws, sys.argv[6]), dt.date.fromisoformat(sys.argv[7]), columns=[])
evaluated = time.perf_counter()
con = duckdb.connect()
con.register("targets", found.targets)
write_query(con, "SELECT * FROM targets", {}, __import__("pathlib").Path(out), "csv")
print(json.dumps({"jvm_start": started - start, "evaluate": evaluated - started, "targets": found.targets.num_rows}))
"""


def peak_rss_mib(pid: int, stop: threading.Event, peak: list[float]) -> None:
    """Sample the summed RSS of pid and its descendants until stop is set."""
    while not stop.is_set():
        total = 0
        for child in [pid, *descendants(pid)]:
            try:
                with open(f"/proc/{child}/status", encoding="ascii") as fh:
                    total += next((int(line.split()[1]) for line in fh if line.startswith("VmRSS:")), 0)
            except OSError:
                continue
        peak[0] = max(peak[0], total / 1024)
        stop.wait(0.1)


def descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def run(name: str, argv: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, peak MiB of the process tree, and stdout of one variant."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, text=True)
    stop, peak = threading.Event(), [0.0]
    sampler = threading.Thread(target=peak_rss_mib, args=(proc.pid, stop, peak), daemon=True)
    sampler.start()
    stdout, _ = proc.communicate()
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed with exit code {proc.returncode}")
    return seconds, peak[0], stdout


def lake_for(ws: Path) -> tuple[Path, float]:
    """The workspace's tables as a Parquet lake (written once), and the seconds it took now."""
    lake = ws / "lake"
    if (lake / "customers").is_dir():
        return lake, 0.0
    sys.path.insert(0, str(ROOT))
    from crmlist import store
    from crmlist.engines.lake import export_parquet

    start = time.perf_counter()
    with store.reader(ws / "crmlist.duckdb", "bench") as con:
        export_parquet(con, lake)
    return lake, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("size", nargs="?", default="M", choices=["XS", "S", "M", "L"])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    args = parser.parse_args()
    ws = workspace(args.size, args.seed)
    (ws / "queries" / f"{CAMPAIGN}.toml").write_text(RULE_CONTROL, encoding="utf-8")
    lake, export_seconds = lake_for(ws)
    out = ws / "results"
    out.mkdir(exist_ok=True)
    duck_csv, spark_csv = out / "engines-duckdb.csv", out / "engines-spark.csv"
    duck = run("duckdb", [str(BIN / "crmlist"), "export", CAMPAIGN, "-o", str(duck_csv), "--as-of", AS_OF, "-q"], ws)
    child = [sys.executable, "-c", textwrap.dedent(SPARK_CHILD), str(ws), str(lake), args.master]
    spark = run("spark", [*child, args.driver_memory, str(spark_csv), CAMPAIGN, AS_OF], ws)
    inner = json.loads(spark[2].strip().splitlines()[-1])
    if duck_csv.read_bytes() != spark_csv.read_bytes():
        raise SystemExit("the Spark list differs from the DuckDB list")
    print(f"size {args.size}: {inner['targets']} targets, byte-identical targets.csv on both engines")
    if export_seconds:
        print(f"export-parquet (once): {export_seconds:.1f} s")
    print(f"{'engine':<32} {'seconds':>9} {'vs duckdb':>10} {'peak MiB':>10}")
    print(f"{'duckdb (crmlist export)':<32} {duck[0]:>9.1f} {1:>9.2f}x {duck[1]:>10.0f}")
    print(f"{'spark ' + args.master + ' (wall)':<32} {spark[0]:>9.1f} {spark[0] / duck[0]:>9.2f}x {spark[1]:>10.0f}")
    print(f"{'  of which JVM start':<32} {inner['jvm_start']:>9.1f}")
    print(f"{'  of which evaluation':<32} {inner['evaluate']:>9.1f} {inner['evaluate'] / duck[0]:>9.2f}x")


if __name__ == "__main__":
    main()
