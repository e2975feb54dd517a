"""Promise: the engine you name is the one that runs, and every engine sees the same contact history.

Driven through the real command on a workspace made by `crmlist init`: an unknown engine is a usage
error before anything is read or written, the manifest names the engine that ran, a Spark run counts
contacts recorded after the last `export-parquet`, doctor knows every crmlist.toml key README documents,
and engines/ sits below campaign/ (DESIGN.md section 9).
"""

from __future__ import annotations

import ast
import csv
import io
import json
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import duckdb
import pytest
from outsider import crmlist, ok

ROOT = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-01"
CUSTOMERS = """\
customer_id,first_name,last_name,email,email_opt_in,language
C01,Anna,Kowalska,anna@example.pl,true,pl
C02,Jan,Nowak,jan@example.pl,true,pl
C03,Petr,Novak,petr@example.cz,true,cs
C04,Olga,Petrova,olga@example.ru,true,ru
C05,John,Smith,john@example.com,true,en
C06,Mary,Jones,mary@example.com,true,en
"""
PURCHASES = """\
order_id,customer_id,order_date,category,amount
O1,C01,2026-03-01,tv,1200.00
O2,C01,2026-04-01,audio,100.00
O3,C02,2026-02-01,audio,50.00
O4,C02,2026-03-01,audio,50.00
O5,C03,2026-01-01,audio,30.00
O6,C03,2026-02-01,audio,30.00
O7,C04,2026-04-10,audio,20.00
O8,C04,2026-04-20,audio,20.00
O9,C05,2026-03-03,tv,900.00
O10,C06,2026-03-04,audio,10.00
O11,C06,2026-03-05,audio,10.00
"""
# A: the first campaign, run on DuckDB. B: the same audience under a cap of one contact in 30 days.
# N: the same audience without anyone contacted in the last 30 days (the not_contacted() helper).
RULES = {
    "first.toml": """\
        channel = "email"
        [audience]
        where = ["frequency >= 2", "customer_id IN ('C01', 'C02', 'C03')"]
    """,
    "capped.toml": """\
        channel = "email"
        [audience]
        where = ["frequency >= 2"]
        [contact_cap]
        max = 1
        days = 30
    """,
    "fresh.toml": """\
        channel = "email"
        [audience]
        where = ["frequency >= 2", "not_contacted(days => 30)"]
    """,
}
SPARK = """
[engine]
master = "local[1]"
lake = "lake"
[engine.conf]
"spark.sql.shuffle.partitions" = "2"
"spark.ui.enabled" = "false"
"""


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    ok("init", str(root), "--quiet", cwd=tmp_path)
    for name, text in RULES.items():
        (root / "queries" / name).write_text(_dedent(text), encoding="utf-8")
    (root / "c.csv").write_text(CUSTOMERS, encoding="utf-8")
    (root / "p.csv").write_text(PURCHASES, encoding="utf-8")
    ok("load", "customers", "c.csv", "--quiet", cwd=root)
    ok("load", "purchases", "p.csv", "--quiet", cwd=root)
    return root


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text)


def ids(text: str) -> list[str]:
    return [row["customer_id"] for row in csv.DictReader(io.StringIO(text))]


def db_rows(shop: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(shop / "crmlist.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# --- Item 6: an unknown engine is a usage error; the named one runs; the manifest says which. ---

UNKNOWN = "crmlist: error: --engine: unknown engine 'bogus'\nhint: use one of: duckdb, spark\n"


@pytest.mark.parametrize(
    "command",
    [
        ("preview", "first"),
        ("export", "first", "-o", "list.csv"),
        ("run", "first"),
        ("run", "first", "--out", "elsewhere"),
    ],
    ids=lambda c: "-".join(c[:1] + c[2:3]),
)
def test_an_unknown_engine_is_a_usage_error_before_anything_happens(shop: Path, command: tuple[str, ...]) -> None:
    before = db_rows(shop, "SELECT count(*) FROM runs UNION ALL SELECT count(*) FROM contact_history")
    done = crmlist(*command, "--engine", "bogus", "--as-of", AS_OF, cwd=shop)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", UNKNOWN)
    assert not (shop / "list.csv").exists() and not (shop / "out").exists() and not (shop / "elsewhere").exists()
    assert db_rows(shop, "SELECT count(*) FROM runs UNION ALL SELECT count(*) FROM contact_history") == before
    near = crmlist(*command, "--engine", "Sprak", "--as-of", AS_OF, "--json", cwd=shop)
    assert near.returncode == 2
    assert json.loads(near.stdout) == {"ok": False, "exit_code": 2, "error": "--engine: unknown engine 'sprak'"}
    assert near.stderr.endswith("hint: did you mean 'spark'?\n")


def test_an_unknown_engine_is_refused_also_when_the_run_is_already_recorded(shop: Path) -> None:
    first = ok("run", "first", "--as-of", AS_OF, "--engine", "duckdb", "--json", cwd=shop)
    run = json.loads(first.stdout)
    manifest = json.loads((Path(run["paths"]["first"]) / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["engine"] == "duckdb"
    recorded = ok("run", "first", "--as-of", AS_OF, "--json", cwd=shop)  # the same run: reported, exit 0
    assert json.loads(recorded.stdout)["run_id"] == run["run_id"]
    done = crmlist("run", "first", "--as-of", AS_OF, "--engine", "bogus", cwd=shop)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", UNKNOWN)


def test_an_unknown_engine_in_crmlist_toml_is_a_usage_error_too(shop: Path) -> None:
    with (shop / "crmlist.toml").open("a", encoding="utf-8") as fh:
        fh.write('\n[engine]\nname = "bogus"\n')
    for command in (("run", "first"), ("export", "first", "-o", "list.csv"), ("preview", "first")):
        done = crmlist(*command, "--as-of", AS_OF, cwd=shop)
        assert (done.returncode, done.stdout) == (2, ""), command
        assert done.stderr == (
            "crmlist: error: crmlist.toml: engine.name: unknown engine 'bogus'\nhint: use one of: duckdb, spark\n"
        )
    assert not (shop / "out").exists() and not (shop / "list.csv").exists()
    assert db_rows(shop, "SELECT count(*) FROM runs") == [(0,)]
    # --engine wins over crmlist.toml: the named engine is the one that runs.
    done = ok("run", "first", "--as-of", AS_OF, "--engine", "duckdb", "--json", cwd=shop)
    folder = Path(json.loads(done.stdout)["paths"]["first"])
    assert json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["engine"] == "duckdb"


# --- Item 7: on Spark, caps and history helpers read the workspace's current contact history. ---


def _need_spark() -> None:
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Java is not installed")


@pytest.mark.spark
def test_spark_counts_contacts_recorded_after_the_last_export(shop: Path) -> None:
    _need_spark()
    ok("export-parquet", "lake", "--quiet", cwd=shop)  # the lake's contact_history: empty
    with (shop / "crmlist.toml").open("a", encoding="utf-8") as fh:
        fh.write(SPARK)
    first = json.loads(ok("run", "first", "--as-of", AS_OF, "--engine", "duckdb", "--json", cwd=shop).stdout)
    contacted = ids((Path(first["paths"]["first"]) / "targets.csv").read_text(encoding="utf-8"))
    assert contacted == ["C01", "C02", "C03"]

    for name in ("capped", "fresh"):
        duck = ok("export", name, "-o", "-", "--as-of", AS_OF, "--engine", "duckdb", cwd=shop).stdout
        spark = ok("export", name, "-o", "-", "--as-of", AS_OF, "--engine", "spark", cwd=shop).stdout
        assert ids(spark) == ["C04", "C06"], name  # C05 bought once; C01-C03 were contacted by `first`
        assert spark == duck, name

    done = ok("run", "capped", "--as-of", AS_OF, "--engine", "spark", "--json", cwd=shop)
    folder = Path(json.loads(done.stdout)["paths"]["capped"])
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["engine"] == "spark"
    assert ids((folder / "targets.csv").read_text(encoding="utf-8")) == ["C04", "C06"]
    waterfall = list(csv.DictReader((folder / "waterfall.csv").open(encoding="utf-8")))
    assert {r["step"]: int(r["removed"]) for r in waterfall}["contact cap (1 in 30 days)"] == 3
    history = db_rows(shop, "SELECT campaign, customer_id FROM contact_history ORDER BY ALL")
    assert history == [("capped", "C04"), ("capped", "C06"), ("first", "C01"), ("first", "C02"), ("first", "C03")]


def test_a_lake_copy_of_contact_history_cannot_be_named_as_a_source(shop: Path) -> None:
    with (shop / "crmlist.toml").open("a", encoding="utf-8") as fh:
        fh.write('\n[engine.sources]\ncontact_history = "lake/contact_history"\n')
    done = crmlist("export", "capped", "-o", "-", "--as-of", AS_OF, "--engine", "spark", cwd=shop)
    assert (done.returncode, done.stdout) == (65, "")
    assert done.stderr == (
        "crmlist: error: crmlist.toml: engine.sources.contact_history: contact history is read from the "
        "workspace database\nhint: remove the key: every run records its contacts there, and caps must count "
        "the latest ones\n"
    )


# --- Item 8: doctor knows every crmlist.toml key that README documents. ---


def readme_config() -> dict[str, Any]:
    """A crmlist.toml holding every key README.md documents for it, with a value of the documented kind."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    config: dict[str, Any] = {}
    # The Workspace section's key table.
    table = readme.split("`crmlist.toml` keys:", 1)[1].split("\n\n", 2)[1]
    for line in table.splitlines()[2:]:
        key, meaning = (cell.strip() for cell in line.strip("|").split("|")[:2])
        name = key.strip("`")
        if not name.startswith("["):
            config[name] = "x"
            continue
        keys = re.findall(r"`(\[[^\]]+\]|[a-z_]+)(?: = [^`]*)?`", meaning)
        if not keys:  # "name, street, postal_code, ... for letters"
            keys = [part.split()[0] for part in meaning.split(",")]
        section = _table(config, name.strip("[]").replace("TABLE", "customers"))
        for sub in keys:
            if sub.startswith("["):
                _table(config, sub.strip("[]").replace("TABLE", "customers"))
            else:
                section[sub] = "x"
    # Every toml block of "Scaling out" (the section describes crmlist.toml alone) and its engine key table.
    scaling = readme.split("## Scaling out", 1)[1].split("\n## ", 1)[0]
    for block in re.findall(r"```toml\n(.*?)```", scaling, re.S):
        _merge(config, tomllib.loads(block))
    for block in re.findall(r"cat >> crmlist.toml <<'EOF'\n(.*?)\nEOF", readme, re.S):
        _merge(config, tomllib.loads(block))
    for dotted, meaning in re.findall(r"^\| `(engine\.[a-z.A-Z]+)` \| ([^|]*)\|", scaling, re.M):
        parts = dotted.split(".")
        if parts[-1] == "TABLE":
            for table_name in re.findall(r"`([a-z_]+)`", meaning):
                _table(config, ".".join(parts[:-1]))[table_name] = "x"
        elif parts[-1] == "conf":
            _table(config, dotted)["spark.any.setting"] = "x"
        else:
            _table(config, ".".join(parts[:-1]))[parts[-1]] = "x"
    # Keys README names inline as crmlist.toml's: `[response] window_days`, `[costs]` per channel, `[report] margin`.
    for section, key in re.findall(r"crmlist\.toml(?:'s)?\s+`\[([a-z_]+)\] ([a-z_]+)`", readme):
        _table(config, section)[key] = 1
    costs = re.search(r"crmlist\.toml\s+`\[costs\]` for the contact's channel: ([^)]*)\)", readme)
    assert costs, "README no longer documents [costs] where this test looks"
    for key in re.findall(r"`([a-z]+) = ", costs.group(1)):
        _table(config, "costs")[key] = 1
    for section, key in re.findall(r"`\[(report)\] ([a-z_]+)`", readme):
        _table(config, section)[key] = 1
    return config


def _table(config: dict[str, Any], dotted: str) -> dict[str, Any]:
    for part in dotted.split("."):
        config = config.setdefault(part, {})
    return config


def _merge(into: dict[str, Any], data: dict[str, Any]) -> None:
    for key, value in data.items():
        if isinstance(value, dict):
            _merge(into.setdefault(key, {}), value)
        else:
            into[key] = value


def _toml(config: dict[str, Any], prefix: str = "") -> str:
    plain = "".join(f"{json.dumps(k)} = {json.dumps(v)}\n" for k, v in config.items() if not isinstance(v, dict))
    text = f"[{prefix}]\n{plain}" if prefix else plain
    for key, value in config.items():
        if isinstance(value, dict):
            text += _toml(value, f"{prefix}.{key}" if prefix else key)
    return text


def test_doctor_knows_every_crmlist_toml_key_readme_documents(tmp_path: Path) -> None:
    config = readme_config()
    assert {"name", "master", "lake", "conf", "sources"} <= set(config["engine"])
    assert {"locale", "sender", "load", "contact_cap", "control", "offers", "costs", "response", "report"} <= set(
        config
    )
    (tmp_path / "crmlist.toml").write_text(_toml(config), encoding="utf-8")
    assert tomllib.loads(_toml(config)) == config
    done = crmlist("doctor", "--json", cwd=tmp_path)
    findings = json.loads(done.stdout)["findings"]
    assert [f for f in findings if f["where"] == "crmlist.toml"] == [
        {"level": "ok", "where": "crmlist.toml", "what": "parses; every key is known", "fix": None}
    ]
    # And a typo in the engine's tables is still caught, with the closest name.
    (tmp_path / "crmlist.toml").write_text('[engine]\nmastr = "local[2]"\n[engine.sources]\npurchase = "x"\n')
    findings = json.loads(crmlist("doctor", "--json", cwd=tmp_path).stdout)["findings"]
    assert [(f["what"], f["fix"]) for f in findings if f["where"] == "crmlist.toml"] == [
        ("engine.mastr: unknown key, ignored", "did you mean engine.master?"),
        ("engine.sources.purchase: unknown key, ignored", "did you mean engine.sources.purchases?"),
    ]


# --- Item 9: engines/ sits below campaign/: nothing in crmlist/engines/ imports crmlist.campaign. ---


def campaign_imports(path: Path) -> list[str]:
    """Every import of crmlist.campaign in a module, at any depth (inside functions too), as `line: name`."""
    found = []
    package = "crmlist.engines" if path.name == "__init__.py" else "crmlist.engines." + path.stem
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + (1 if path.name == "__init__.py" else 0)]
                base = ".".join([*parts, *([base] if base else [])])
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        hits = [n for n in names if n == "crmlist.campaign" or n.startswith("crmlist.campaign.")]
        found += [f"{node.lineno}: {hit}" for hit in hits[:1]]
    return found


def test_engines_never_import_campaign() -> None:
    modules = sorted((ROOT / "crmlist" / "engines").glob("*.py"))
    assert {p.name for p in modules} >= {"__init__.py", "spark.py", "session.py"}
    assert {p.name: campaign_imports(p) for p in modules} == {p.name: [] for p in modules}


def test_the_import_check_sees_every_spelling(tmp_path: Path) -> None:
    module = tmp_path / "spark.py"
    module.write_text(
        "import crmlist.campaign.model\nfrom crmlist import campaign\nfrom ..campaign import evaluate\n"
        "def f():\n    from crmlist.campaign.evaluate import evaluate\n",
        encoding="utf-8",
    )
    assert campaign_imports(module) == [
        "1: crmlist.campaign.model",
        "2: crmlist.campaign",
        "3: crmlist.campaign",
        "5: crmlist.campaign.evaluate",
    ]
