"""Promise: the sample workspace `crmlist init` writes runs README as written, and its campaigns show good practice.

README's "A 5-minute tour" and "Measuring a campaign" blocks are read from README.md and run line by line
in a new workspace, so README and init cannot drift apart. Every sample campaign, run for one as-of date
in `make demo`'s order and in another, keeps a control group and the shared contact cap: nobody is a
target of two sample campaigns that day. All through the installed CLI in a subprocess, as cron runs it.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent
AS_OF = "2026-11-01"
SAMPLES = ("customers", "products", "purchases", "suppressions", "responses")


def demo_order() -> tuple[str, ...]:
    """The campaigns of the one `crmlist run` line of scripts/demo.sh (`make demo`), in the order they run."""
    line = re.search(r"^crmlist run (.+?) --out", (ROOT / "scripts" / "demo.sh").read_text(encoding="utf-8"), re.M)
    assert line, "scripts/demo.sh: no `crmlist run ... --out` line"
    return tuple(line[1].split())


DEMO_ORDER = demo_order()


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMLIST_")}
    env.update(NO_COLOR="1", PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", TZ="UTC")
    return env


def crmlist(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(BIN / "crmlist"), *args],
        cwd=cwd,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def ok(*args: str, cwd: Path) -> str:
    done = crmlist(*args, cwd=cwd)
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout


def shell_block(section: str) -> list[str]:
    """The command lines of the first ```sh block under README's `## section` heading."""
    body = README.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"^```sh\n(.*?)^```$", body, re.S | re.M)
    assert block, f"README.md: no sh block under '## {section}'"
    return [line for line in block[1].splitlines() if line.strip() and not line.lstrip().startswith("#")]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def run_lines(lines: list[str], cwd: Path, logs: Path) -> list[tuple[int, str, str]]:
    """Run each line in one bash, so `cd` carries over; (exit code, line, stderr) of every line, in order."""
    logs.mkdir()
    script = [
        f"{{\n{line}\n}} >'{logs}/{i}.out' 2>'{logs}/{i}.err' </dev/null; echo $? >'{logs}/{i}.rc'"
        for i, line in enumerate(lines)
    ]
    subprocess.run(["bash", "-c", "\n".join(script)], cwd=cwd, env=cli_env(), stdin=subprocess.DEVNULL, timeout=600)
    results = []
    for i, line in enumerate(lines):
        rc = (logs / f"{i}.rc").read_text().strip()
        results.append((int(rc), line, (logs / f"{i}.err").read_text()))
    return results


# --- item 15: README's commands, literally, in a new workspace ---------------------------------------------


def test_readme_tour_then_measuring_run_as_written_in_a_new_workspace(tmp_path: Path) -> None:
    tour, measuring = shell_block("A 5-minute tour"), shell_block("Measuring a campaign")
    assert tour[0].startswith("crmlist init shop && cd shop")
    assert any(line.startswith("crmlist load responses sample_data/responses.csv") for line in measuring)
    # RUN_ID is README's one placeholder: the run the tour just made
    assert sum("RUN_ID" in line for line in tour + measuring) == 1
    lines = [*tour, "RUN_ID=$(ls out/winback)", *(line.replace("RUN_ID", '"$RUN_ID"') for line in measuring)]
    results = run_lines(lines, tmp_path, tmp_path / "logs")
    failed = [(rc, line, err) for rc, line, err in results if rc != 0]
    assert not failed, failed
    assert all("Traceback" not in err for _, _, err in results)
    shop = tmp_path / "shop"
    (run,) = (shop / "out" / "winback").iterdir()
    assert sorted(p.name for p in run.iterdir()) == [
        "control.csv",
        "letters",
        "manifest.json",
        "rules.toml",
        "targets.csv",
        "waterfall.csv",
    ]
    assert (shop / "winback.html").stat().st_size > 0
    with duckdb.connect(str(shop / "crmlist.duckdb"), read_only=True) as con:
        loaded = con.execute("SELECT count(*) FROM responses").fetchone()
    assert loaded == (len((shop / "sample_data" / "responses.csv").read_text().splitlines()) - 1,)
    # README's note on the tour: win-back, run alone, has more targets than in the demo
    alone = re.search(r"the tour's win-back, run alone, has (\d+)\s+targets", README)
    assert alone and len(read_csv(run / "targets.csv")) == int(alone[1])


def test_init_writes_the_repository_sample_data_byte_for_byte(tmp_path: Path) -> None:
    ok("init", "shop", "--quiet", cwd=tmp_path)
    for name in SAMPLES:
        written = (tmp_path / "shop" / "sample_data" / f"{name}.csv").read_bytes()
        assert written == (ROOT / "sample_data" / f"{name}.csv").read_bytes(), name
    assert sum((ROOT / "sample_data" / f"{name}.csv").stat().st_size for name in SAMPLES) < 2_000_000


def test_responses_load_in_a_new_workspace(tmp_path: Path) -> None:
    """Issue 15 item 15: `crmlist init` wrote no responses.csv, so this load exited 66."""
    ok("init", "shop", "--quiet", cwd=tmp_path)
    done = crmlist("load", "responses", "sample_data/responses.csv", cwd=tmp_path / "shop")
    assert done.returncode == 0, done.stderr


# --- item 16: every sample campaign, one as-of, two orders ---------------------------------------------------


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new workspace with the sample data loaded and nothing run yet."""
    root = tmp_path_factory.mktemp("loaded")
    ok("init", "shop", "--quiet", cwd=root)
    for table in SAMPLES[:4]:
        ok("load", table, f"sample_data/{table}.csv", "--quiet", cwd=root / "shop")
    return root / "shop"


def campaigns_of(shop: Path) -> list[str]:
    return sorted(p.stem for p in (shop / "queries").glob("*.toml"))


def run_in_order(loaded: Path, tmp_path: Path, order: tuple[str, ...], one_command: bool) -> Path:
    shop = tmp_path / "shop"
    shutil.copytree(loaded, shop)
    if one_command:  # as `make demo` does
        ok("run", *order, "--out", "out", "--as-of", AS_OF, "--quiet", cwd=shop)
    else:
        for name in order:
            ok("run", name, "--out", "out", "--as-of", AS_OF, "--quiet", cwd=shop)
    return shop


def history(shop: Path) -> list[tuple[str, str, bool, dt.date]]:
    with duckdb.connect(str(shop / "crmlist.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT campaign, customer_id, is_control, as_of FROM contact_history").fetchall()
    return [(str(c), str(i), bool(k), a) for c, i, k, a in rows]


@pytest.fixture(scope="module")
def alone(loaded: Path) -> dict[str, set[str]]:
    """Each campaign's targets with no contact history: what it would take if no cap looked at the others."""
    lists = {}
    for name in campaigns_of(loaded):
        ok("export", name, "-o", f"{name}.csv", "--as-of", AS_OF, "--quiet", cwd=loaded)
        lists[name] = {row["customer_id"] for row in read_csv(loaded / f"{name}.csv")}
        (loaded / f"{name}.csv").unlink()
    return lists


ORDERS = {
    "demo order, one command": (DEMO_ORDER, True),
    "reversed, one command each": (tuple(reversed(DEMO_ORDER)), False),
}


@pytest.mark.parametrize("how", ORDERS)
def test_nobody_is_a_target_of_two_sample_campaigns_the_same_day(
    loaded: Path, alone: dict[str, set[str]], tmp_path: Path, how: str
) -> None:
    order, one_command = ORDERS[how]
    assert sorted(order) == campaigns_of(loaded) == ["briefcase_crosssell", "digital_tv", "winback"]
    # not vacuous: run alone, the campaigns share targets (14 of digital_tv's are win-back's too)
    assert len(alone["digital_tv"] & alone["winback"]) == 14
    shop = run_in_order(loaded, tmp_path, order, one_command)
    rows = history(shop)
    assert {as_of for *_, as_of in rows} == {dt.date.fromisoformat(AS_OF)}
    targeted: dict[str, list[str]] = {}
    for campaign, customer_id, is_control, _ in rows:
        if not is_control:
            targeted.setdefault(customer_id, []).append(campaign)
    assert {c: names for c, names in targeted.items() if len(names) > 1} == {}
    taken: set[str] = set()
    capped = 0
    for name in order:
        (run,) = (shop / "out" / name).iterdir()
        targets = read_csv(run / "targets.csv")
        ids = {r["customer_id"] for r in targets}
        controls = {r["customer_id"] for r in read_csv(run / "control.csv")}
        assert ids and controls and ids.isdisjoint(controls), name
        assert controls == {i for n, i, k, _ in rows if n == name and k}, name
        steps = {r["step"]: int(r["removed"]) for r in read_csv(run / "waterfall.csv")}
        assert "contact cap (1 in 30 days)" in steps, (name, list(steps))
        # whoever an earlier campaign targeted is removed by the cap (the steps before it read no history)
        assert steps["contact cap (1 in 30 days)"] >= len(alone[name] & taken), name
        capped += len(alone[name] & taken)
        assert ids.isdisjoint(taken), name
        taken |= ids
    assert capped >= 14


@pytest.mark.xfail(
    strict=True,
    reason="the cap counts contacts per customer_id (DESIGN.md section 4), so two records of one person are "
    "capped apart: sample customers 001436 and 001461 share a mailbox and get winback and digital_tv",
)
def test_one_mailbox_gets_one_sample_campaign_a_day(loaded: Path, tmp_path: Path) -> None:
    shop = run_in_order(loaded, tmp_path, DEMO_ORDER, True)
    campaigns: dict[str, set[str]] = {}
    for name in DEMO_ORDER:
        (run,) = (shop / "out" / name).iterdir()
        for row in read_csv(run / "targets.csv"):
            if row.get("email", "").strip():
                campaigns.setdefault(row["email"].strip().casefold(), set()).add(name)
    assert [names for names in campaigns.values() if len(names) > 1] == []


def test_the_rule_files_init_writes_share_one_cap_and_keep_own_salts(loaded: Path) -> None:
    rules = {}
    for name in campaigns_of(loaded):
        with (loaded / "queries" / f"{name}.toml").open("rb") as fh:
            rules[name] = tomllib.load(fh)
    assert len({json.dumps(r["contact_cap"], sort_keys=True) for r in rules.values()}) == 1
    assert sorted(r["control"]["salt"] for r in rules.values()) == sorted(rules)
    assert all(r["control"]["percent"] > 0 for r in rules.values())
    with (loaded / "crmlist.toml").open("rb") as fh:
        assert "contact_cap" not in tomllib.load(fh)  # DESIGN.md section 6, kept


# --- README's sample figures, against an answer computed without crmlist report ------------------------------


def test_readme_figures_are_the_demo_run_measured_by_hand(loaded: Path, tmp_path: Path) -> None:
    shop = run_in_order(loaded, tmp_path, DEMO_ORDER, True)
    ok("load", "responses", "sample_data/responses.csv", "--quiet", cwd=shop)
    winback = [(i, k) for c, i, k, _ in history(shop) if c == "winback"]
    start = dt.date.fromisoformat(AS_OF)
    end = start + dt.timedelta(days=30)  # winback.toml [response] window_days
    responders = {
        r["customer_id"]
        for r in read_csv(shop / "sample_data" / "responses.csv")
        if start <= dt.date.fromisoformat(r["responded_at"]) <= end and r["campaign"] in ("", "winback")
    }
    n_t = sum(1 for _, k in winback if not k)
    n_c = sum(1 for _, k in winback if k)
    r_t = sum(1 for i, k in winback if not k and i in responders)
    r_c = sum(1 for i, k in winback if k and i in responders)
    # the draw README describes: per cell, 12% of targets and 8% of controls, rounded to whole customers
    (run,) = (shop / "out" / "winback").iterdir()
    cells: dict[tuple[str, bool], int] = {}
    for path, is_control in ((run / "targets.csv", False), (run / "control.csv", True)):
        for row in read_csv(path):
            cells[row["cell"], is_control] = cells.get((row["cell"], is_control), 0) + 1
    assert r_t == sum(int(0.12 * n + 0.5) for (_, k), n in cells.items() if not k)
    assert r_c == sum(int(0.08 * n + 0.5) for (_, k), n in cells.items() if k)
    sentence = re.search(
        r"finds (\d+) of (\d+) targets \(([\d.]+)%\) against (\d+) of (\d+) controls \(([\d.]+)%\)", README
    )
    assert sentence, "README.md: the sample figures sentence moved"
    assert sentence.groups() == (
        str(r_t),
        str(n_t),
        f"{100 * r_t / n_t:.1f}",
        str(r_c),
        str(n_c),
        f"{100 * r_c / n_c:.1f}",
    )
    overall = json.loads(ok("report", "winback", "--json", cwd=shop))
    found = next(row for row in overall["rows"] if row["scope"] == "overall") if "rows" in overall else overall
    assert {k: found[k] for k in ("n_targets", "n_control", "responders_t", "responders_c")} == {
        "n_targets": n_t,
        "n_control": n_c,
        "responders_t": r_t,
        "responders_c": r_c,
    }
