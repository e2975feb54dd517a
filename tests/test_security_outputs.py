"""The attacker's view of what crmlist writes: e-mail headers, template bombs, planted links, workspace
files as outputs, permissions, and rule text in logs. Each test drives the real command in a subprocess
on a workspace made by `crmlist init`."""

from __future__ import annotations

import csv
import email
import email.policy
import hashlib
import json
import mailbox
import stat
import subprocess
import textwrap
import time
from pathlib import Path

import duckdb
import pytest
from outsider import crmlist

CUSTOMERS = """\
customer_id,first_name,last_name,gender,email,email_opt_in,language,city
0001,Łucja,Wójcik,F,lucja@example.pl,true,pl,Łódź
0002,Václav,Dvořák,M,vaclav@example.cz,true,cs,Brno
0003,Ольга,Петрова,F,olga@example.ru,true,ru,Москва
0004,Eve,Mallory,F,eve@example.com,true,en,London
"""
PURCHASES = "order_id,customer_id,order_date,amount\nA1,0001,2026-01-05,10.00\n"
RULE = 'description = "Everyone with consent"\nchannel = "email"\ntemplate = "hello"\n\n[audience]\nwhere = ["TRUE"]\n'
EML = "Subject: Hello {{ customer.first_name }}\nTo: {{ customer.email }}\n\nDear {{ customer.first_name }},\nbye\n"
AS_OF = "2026-11-01"
INJECTED = "Eve\r\nBcc: attacker@evil.example"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A workspace from `crmlist init` with four customers (pl, cs, ru, en) and a `hello` campaign."""
    root = tmp_path / "ws"
    assert crmlist("init", str(root), cwd=tmp_path).returncode == 0
    (root / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    (root / "purchases.csv").write_text(PURCHASES, encoding="utf-8")
    for table in ("customers", "purchases"):
        done = crmlist("load", table, f"{table}.csv", "--replace", cwd=root)
        assert done.returncode == 0, done.stderr
    (root / "queries" / "hello.toml").write_text(RULE, encoding="utf-8")
    return root


def _template(ws: Path, name: str, text: str) -> None:
    (ws / "templates" / name).write_text(textwrap.dedent(text), encoding="utf-8")


def _set_first_name(ws: Path, customer_id: str, value: str) -> None:
    """A value that reached the database some other way than today's load (an older database, a view)."""
    with duckdb.connect(str(ws / "crmlist.duckdb")) as con:
        con.execute("UPDATE customers SET first_name = ? WHERE customer_id = ?", [value, customer_id])


def _failed(folder: Path) -> dict[str, str]:
    with open(folder / "failed.csv", encoding="utf-8", newline="") as fh:
        return {row["customer_id"]: row["error"] for row in csv.DictReader(fh)}


def _run_folder(done: subprocess.CompletedProcess[str]) -> Path:
    return Path(json.loads(done.stdout)["paths"]["hello"])


# --- item 1: e-mail header injection --------------------------------------------------------------------


def test_a_line_break_in_a_header_value_fails_its_letter_and_never_adds_a_header(ws: Path) -> None:
    _template(ws, "hello.eml.j2", EML)
    _set_first_name(ws, "0004", INJECTED)
    done = crmlist("run", "hello", "--out", "out", "--as-of", AS_OF, "--json", cwd=ws)
    assert done.returncode == 3, done.stderr
    folder = _run_folder(done)
    failed = _failed(folder)
    assert list(failed) == ["0004"]
    assert "header Subject" in failed["0004"] and "line break" in failed["0004"]
    assert "attacker" not in failed["0004"] and "attacker" not in done.stderr
    letters = sorted((folder / "letters").iterdir())
    assert [p.name for p in letters] == ["0001.eml", "0002.eml", "0003.eml"]
    subjects = {}
    for path in letters:
        raw = path.read_bytes()
        assert b"Bcc" not in raw and b"\r" not in raw.replace(b"\r\n", b"")  # every line ends in CRLF, no stray CR
        assert raw.isascii() is False  # the body is 8bit UTF-8, the headers are encoded words
        assert raw.split(b"\r\n\r\n", 1)[0].isascii()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
        assert msg["MIME-Version"] == "1.0" and msg["Bcc"] is None
        subjects[path.stem] = str(msg["Subject"])
        assert msg.get_content().startswith(f"Dear {str(msg['Subject']).removeprefix('Hello ')},")
    assert subjects == {"0001": "Hello Łucja", "0002": "Hello Václav", "0003": "Hello Ольга"}


def test_an_mbox_bundle_holds_real_mime_messages_and_no_injected_header(ws: Path) -> None:
    _template(ws, "hello.eml.j2", EML)
    _set_first_name(ws, "0004", INJECTED)
    done = crmlist("letters", "hello", "--out", "proofs", "--letters-format", "mbox", "--as-of", AS_OF, cwd=ws)
    assert done.returncode == 3, done.stderr
    box = mailbox.mbox(ws / "proofs" / "letters.mbox", create=False)
    messages = [email.message_from_bytes(box.get_bytes(key), policy=email.policy.default) for key in box.iterkeys()]
    assert [m["X-Crmlist-Customer-Id"] for m in messages] == ["0001", "0002", "0003"]
    assert all(m["Bcc"] is None and m.get_content_charset() == "utf-8" for m in messages)
    assert [str(m["Subject"]) for m in messages] == ["Hello Łucja", "Hello Václav", "Hello Ольга"]
    assert list(_failed(ws / "proofs")) == ["0004"]


# --- item 9: memory and time bombs in templates ----------------------------------------------------------


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_memory_bomb_fails_its_letters_and_the_run_goes_on(ws: Path, jobs: str) -> None:
    _template(ws, "hello.txt.j2", "Hello {{ customer.customer_id }}\n")
    _template(ws, "hello.cs.txt.j2", "{{ ('a' * 10**10)|length }}\n")
    started = time.monotonic()
    done = crmlist("run", "hello", "--out", "out", "--as-of", AS_OF, "--jobs", jobs, "--json", cwd=ws)
    assert done.returncode == 3, done.stderr
    assert time.monotonic() - started < 60
    failed = _failed(_run_folder(done))
    assert list(failed) == ["0002"] and "over the limit of 1,000,000" in failed["0002"]
    assert sorted(p.name for p in (_run_folder(done) / "letters").iterdir()) == ["0001.txt", "0003.txt", "0004.txt"]


def test_check_refuses_a_bomb_without_building_it(ws: Path) -> None:
    _template(ws, "hello.txt.j2", "{{ 'a'|center(10**10) }} {{ ('a' * 10**10)|length }}\n")
    started = time.monotonic()
    done = crmlist("check", "hello", cwd=ws)
    assert done.returncode == 65
    assert time.monotonic() - started < 60
    assert "templates/hello.txt.j2:1: sandbox violation: |center would be 10,000,000,000 long" in done.stderr


@pytest.mark.parametrize(
    "body",
    [
        # the output grows without any one value over the limit
        "{% for i in range(100000) %}{{ 'x' * 999999 }}{% endfor %}",
        # a value doubled by ~
        "{% set ns = namespace(s='a') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
        # memory kept alive in a list, no single value over the limit
        "{% set ns = namespace(a=[]) %}{% for i in range(100000) %}{% set ns.a = ns.a + [[0] * 1000000] %}"
        "{% endfor %}{{ ns.a|length }}",
    ],
)
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_unbounded_building_fails_its_letter(ws: Path, body: str, jobs: str) -> None:
    _template(ws, "hello.txt.j2", "Hello {{ customer.customer_id }}\n")
    _template(ws, "hello.ru.txt.j2", body)
    done = crmlist("letters", "hello", "--out", "proofs", "--as-of", AS_OF, "--jobs", jobs, cwd=ws)
    assert done.returncode == 3, done.stderr
    failed = _failed(ws / "proofs")
    assert list(failed) == ["0003"]
    assert "limit" in failed["0003"] or "memory" in failed["0003"].lower(), failed


def test_a_letter_over_its_time_limit_fails_and_the_others_are_written(ws: Path) -> None:
    config = ws / "crmlist.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[letters]\nmax_seconds = 1\n", encoding="utf-8")
    _template(ws, "hello.txt.j2", "Hello {{ customer.customer_id }}\n")
    _template(ws, "hello.pl.txt.j2", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
    started = time.monotonic()
    done = crmlist("letters", "hello", "--out", "proofs", "--as-of", AS_OF, cwd=ws)
    assert done.returncode == 3, done.stderr
    assert time.monotonic() - started < 30
    assert _failed(ws / "proofs") == {"0001": "LetterTimeout: the letter took more than 1 seconds to render"}
    assert (ws / "proofs" / "letters" / "0002.txt").read_text(encoding="utf-8") == "Hello 0002"


# --- item 10: links planted in output folders ------------------------------------------------------------


def test_a_link_planted_in_a_reused_out_folder_is_replaced_never_followed(ws: Path, tmp_path: Path) -> None:
    _template(ws, "hello.txt.j2", "Hello {{ customer.customer_id }}\n")
    assert crmlist("letters", "hello", "--out", "proofs", "--as-of", AS_OF, cwd=ws).returncode == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    planted = ws / "proofs" / "letters" / "0001.txt"
    planted.unlink()
    planted.symlink_to(victim)
    (ws / "proofs" / "letters.mbox").symlink_to(victim)
    assert crmlist("letters", "hello", "--out", "proofs", "--as-of", AS_OF, cwd=ws).returncode == 0
    mbox = crmlist("letters", "hello", "--out", "proofs", "--as-of", AS_OF, "--letters-format", "mbox", cwd=ws)
    assert mbox.returncode == 0, mbox.stderr
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert not planted.is_symlink() and planted.read_text(encoding="utf-8") == "Hello 0001"
    assert not (ws / "proofs" / "letters.mbox").is_symlink()


def test_a_linked_letters_folder_or_campaign_folder_is_refused(ws: Path, tmp_path: Path) -> None:
    _template(ws, "hello.txt.j2", "Hello {{ customer.customer_id }}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (ws / "proofs").mkdir()
    (ws / "proofs" / "letters").symlink_to(elsewhere)
    done = crmlist("letters", "hello", "--out", "proofs", "--as-of", AS_OF, cwd=ws)
    assert done.returncode == 73
    assert "proofs/letters: is a symbolic link; crmlist never writes through one" in done.stderr
    (ws / "out").mkdir()
    (ws / "out" / "hello").symlink_to(elsewhere)
    done = crmlist("run", "hello", "--out", "out", "--as-of", AS_OF, cwd=ws)
    assert done.returncode == 73 and "is a symbolic link" in done.stderr
    assert list(elsewhere.iterdir()) == []


def test_an_export_over_a_link_replaces_the_link(ws: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.csv"
    victim.write_text("precious\n", encoding="utf-8")
    (ws / "list.csv").symlink_to(victim)
    done = crmlist("export", "hello", "-o", "list.csv", "--as-of", AS_OF, cwd=ws)
    assert done.returncode == 0, done.stderr
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert not (ws / "list.csv").is_symlink()
    assert (ws / "list.csv").read_text(encoding="utf-8").startswith("customer_id,")


# --- item 11: the workspace's own files are never outputs ---------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["export", "hello", "-o", "crmlist.duckdb", "--format", "csv"],
        ["export", "hello", "-o", "crmlist.duckdb.wal", "--format", "csv"],
        ["export", "hello", "-o", "crmlist.duckdb.lock", "--format", "csv"],
        ["export", "hello", "-o", "queries/customer_facts.sql", "--format", "csv"],
        ["export", "hello", "-o", "crmlist.toml", "--format", "csv"],
        ["export", "hello", "-o", "db-link.csv"],
        ["export", "hello", "-o", "../ws/./templates/x.csv"],
        ["rejects", "-o", "queries/x.csv"],
        ["run", "hello", "--out", "queries"],
        ["letters", "hello", "--out", "templates/proofs"],
        ["export-parquet", "queries/lake"],
        ["report", "hello", "--chart", "templates/chart.png"],
    ],
)
def test_workspace_files_are_refused_as_outputs(ws: Path, args: list[str]) -> None:
    (ws / "db-link.csv").symlink_to(ws / "crmlist.duckdb")
    before = {p: p.read_bytes() for p in [ws / "crmlist.duckdb", ws / "crmlist.toml", *(ws / "queries").iterdir()]}
    templates = sorted((ws / "templates").iterdir())
    dated = args[0] in ("export", "run", "letters")
    done = crmlist(*args, "--as-of", AS_OF, cwd=ws) if dated else crmlist(*args, cwd=ws)
    assert done.returncode == 73, done.stderr
    assert "crmlist never writes over it" in done.stderr and "Traceback" not in done.stderr
    assert {p: p.read_bytes() for p in before} == before
    assert sorted((ws / "templates").iterdir()) == templates
    assert not (ws / "queries" / "x.csv").exists() and not (ws / "queries" / "lake").exists()


# --- item 12: owner-only files ------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_personal_data_is_owner_only_and_file_mode_widens_it(ws: Path, tmp_path: Path) -> None:
    _template(ws, "hello.txt.j2", "Hello {{ customer.customer_id }}\n")
    log = tmp_path / "crmlist.log"
    done = crmlist("run", "hello", "--out", "out", "--as-of", AS_OF, "--json", "--log-file", str(log), cwd=ws)
    assert done.returncode == 0, done.stderr
    folder = _run_folder(done)
    assert _mode(ws / "crmlist.duckdb") == 0o600
    assert [_mode(p) for p in (ws / "out", folder, folder / "letters")] == [0o700] * 3
    assert {_mode(p) for p in [*folder.iterdir(), *(folder / "letters").iterdir()] if p.is_file()} == {0o600}
    assert _mode(log) == 0o640
    assert crmlist("export", "hello", "-o", "list.csv", "--as-of", AS_OF, cwd=ws).returncode == 0
    assert crmlist("rejects", "-o", "rejects.csv", cwd=ws).returncode == 0
    assert _mode(ws / "list.csv") == 0o600 and _mode(ws / "rejects.csv") == 0o600
    config = ws / "crmlist.toml"
    config.write_text('file_mode = "0640"\n' + config.read_text(encoding="utf-8"), encoding="utf-8")
    assert crmlist("letters", "hello", "--out", "proofs/new", "--as-of", AS_OF, cwd=ws).returncode == 0
    assert [_mode(p) for p in (ws / "proofs", ws / "proofs" / "new" / "letters")] == [0o750, 0o750]
    assert _mode(ws / "proofs" / "new" / "letters" / "0001.txt") == 0o640
    config.write_text(config.read_text(encoding="utf-8").replace('"0640"', '"0777"', 1), encoding="utf-8")
    bad = crmlist("export", "hello", "-o", "x.csv", "--as-of", AS_OF, cwd=ws)
    assert bad.returncode == 65 and "crmlist.toml: file_mode: '0777' is not a file mode" in bad.stderr


# --- item 13: the rule's text stays in the run folder --------------------------------------------------------


def test_rule_text_never_reaches_the_log_or_the_manifest(ws: Path, tmp_path: Path) -> None:
    _template(ws, "hello.txt.j2", "Hello {{ customer.customer_id }}\n")
    rule = RULE.replace('where = ["TRUE"]', "where = [\"email <> 'jan@firma.pl'\"]\nexclude = [\"city = 'Brno'\"]")
    (ws / "queries" / "hello.toml").write_text(rule, encoding="utf-8")
    log = tmp_path / "crmlist.log"
    done = crmlist("run", "hello", "--out", "out", "--as-of", AS_OF, "--json", "--log-file", str(log), cwd=ws)
    assert done.returncode == 0, done.stderr
    folder = _run_folder(done)
    text = log.read_text(encoding="utf-8")
    assert "jan@firma.pl" not in text and "Brno" not in text
    record = json.loads(text.splitlines()[-1])
    digest = hashlib.sha256(rule.encode("utf-8")).hexdigest()
    assert record["rules_sha256"] == {"hello": digest}
    steps = [s[0] for s in record["counts"]["hello"]["waterfall"]]
    assert "audience.where[0]" in steps and "audience.exclude[0]" in steps
    manifest = (folder / "manifest.json").read_text(encoding="utf-8")
    assert "jan@firma.pl" not in manifest and json.loads(manifest)["rules_sha256"] == digest
    assert (folder / "rules.toml").read_text(encoding="utf-8") == rule
    assert _mode(folder / "rules.toml") == 0o600
    again = crmlist("run", "hello", "--out", "out", "--as-of", AS_OF, "--log-file", str(log), cwd=ws)
    assert again.returncode == 0 and "jan@firma.pl" not in log.read_text(encoding="utf-8")
