"""Promise: nobody suppressed, and nobody without consent, reaches a target list, on any channel.

Driven as an outsider drives it: `crmlist init` into tmp_path, files written by the test, the installed
command in a subprocess, the outputs and the database (read-only) read back. Suppressions name people the
way call centres and returned mail write them: another case, stray spaces, another phone format, an
address typed differently, a customer id whose person has a second record.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import unicodedata
from pathlib import Path

import duckdb
import pytest
from outsider import crmlist, ok

AS_OF = "2026-11-01"
JOSE_NFD = unicodedata.normalize("NFD", "José")
JOSE_NFC = unicodedata.normalize("NFC", "José")
HEADER = "customer_id,email,phone,street,postal_code,city,country,email_opt_in,sms_opt_in,mail_opt_in,phone_opt_in\n"
YES = "true,true,true,true"
CUSTOMERS = HEADER + "\n".join(
    [
        f"K01,Anna.Kowalska@Example.PL,601 000 001,ul. Długa 1,00-950,Warszawa,PL,{YES}",
        f"K02,olga@example.ru,8 903 093-64-40,ul. Lenina 5,620202,Ekaterinburg,RU,{YES}",
        f"K03,jan@example.pl,601 234 567,ul. Krótka 3,30-001,Kraków,PL,{YES}",
        f"K04,ewa@example.pl,601 000 004,ul. Polna  7,07-871,Warszawa,PL,{YES}",
        f"K05,adam@example.pl,601 000 005,ul. Lipowa 8,00-001,Kraków,PL,{YES}",
        f"K06,k06@example.org,601 000 006,ul. Cicha 6,00-006,Gdańsk,PL,{YES}",
        f'K16," K06@Example.org ",601 000 016,ul. Inna 16,00-016,Gdańsk,PL,{YES}',  # K06's second record
        "K07,k07@example.pl,601 000 007,ul. Siódma 7,00-007,Łódź,PL,,,,",  # consent NULL everywhere
        "K08,k08@example.pl,601 000 008,ul. Ósma 8,00-008,Łódź,PL,false,no,nie,0",
        f"K09,k09@example.pl,601 000 009,ul. Dziewiąta 9,00-009,Łódź,PL,{YES}",
        f"{JOSE_NFD},jose@example.es,601 000 010,ul. Dziesiąta 10,00-010,Łódź,PL,{YES}",
        f"K12,k12@example.pl,601 000 012,ul. Dwunasta 12,00-012,Łódź,PL,{YES}",
    ]
)
SUPPRESSIONS = f"""\
email,phone,street,postal_code,city,customer_id,channel,reason,added_at
" anna.kowalska@EXAMPLE.pl ",,,,,,all,unsubscribed,2026-01-01
,+7 903 093-64-40,,,,,sms,stop,2026-01-01
,+48 601-234-567,,,,,phone,do not call,2026-01-01
,,UL. POLNA 7,07871,WARSZAWA,,mail,returned mail,2026-01-01
,,ul. Lipowa 8.,00 001,Kraków,,,moved away,2026-01-01
,,,,,K06,all,deceased,2026-01-01
,,,,,{JOSE_NFC},all,objection,2026-01-01
k12@example.pl,,,,,,email,received after the as-of date,2030-01-01
"""
PURCHASES = "customer_id,order_date,amount\nK01,2026-01-05,10.00\n"
CHANNELS = ("email", "sms", "phone", "mail")
# Who each channel may contact: consent true, not suppressed on the channel through any key.
ELIGIBLE = {
    "email": ["K02", "K03", "K04", "K09"],
    "sms": ["K03", "K04", "K09", "K12"],
    "phone": ["K02", "K04", "K09", "K12"],
    "mail": ["K02", "K03", "K09", "K12"],
}
SALT = "split"
PERCENT = 50


def campaign(channel: str) -> str:
    return f"""\
description = "Everyone on {channel}"
channel = "{channel}"
template = "hello"
[audience]
where = ["TRUE"]
[[cells]]
name = "all"
where = "TRUE"
offer = "HI"
[control]
percent = {PERCENT}
salt = "{SALT}"
"""


def is_control(customer_id: str) -> bool:
    """DESIGN.md section 4: the first 16 hex digits of sha256(salt:customer_id) mod 10000 < percent x 100."""
    digest = hashlib.sha256(f"{SALT}:{customer_id}".encode()).hexdigest()
    return int(digest[:16], 16) % 10000 < PERCENT * 100


def write(ws: Path, name: str, text: str) -> str:
    (ws / "in").mkdir(exist_ok=True)
    (ws / "in" / name).write_text(text, encoding="utf-8")
    return f"in/{name}"


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    ws = tmp_path / "shop"
    ok("init", str(ws), cwd=tmp_path)
    for path in (ws / "queries").glob("*.toml"):
        path.unlink()
    for path in (ws / "templates").iterdir():
        path.unlink()
    for channel in CHANNELS:
        (ws / "queries" / f"{channel}_all.toml").write_text(campaign(channel), encoding="utf-8")
    (ws / "templates" / "hello.txt.j2").write_text("Hello {{ customer.customer_id }}\n", encoding="utf-8")
    ok("load", "customers", write(ws, "customers.csv", CUSTOMERS), cwd=ws)
    ok("load", "purchases", write(ws, "purchases.csv", PURCHASES), cwd=ws)
    ok("load", "suppressions", write(ws, "suppressions.csv", SUPPRESSIONS), cwd=ws)
    return ws


def run(ws: Path, name: str, *extra: str) -> Path:
    """Run a campaign; the folder of the run it recorded (the newest run of the campaign)."""
    ok("run", name, "--as-of", AS_OF, "--out", "out", "--quiet", *extra, cwd=ws)
    done = ok("sql", f"SELECT run_id FROM runs WHERE campaign = '{name}' ORDER BY finished_at DESC", cwd=ws)
    run_id = done.stdout.splitlines()[1]
    return ws / "out" / name / run_id


def ids(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as fh:
        return sorted(row["customer_id"] for row in csv.DictReader(fh))


def history(ws: Path, name: str) -> list[tuple[str, str, bool]]:
    with duckdb.connect(str(ws / "crmlist.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT customer_id, channel, is_control FROM contact_history WHERE campaign = ? ORDER BY ALL", [name]
        ).fetchall()
    return [(str(c), str(ch), bool(k)) for c, ch, k in rows]


def expected(channel: str, people: list[str]) -> tuple[list[str], list[str], list[tuple[str, str, bool]]]:
    targets = sorted(c for c in people if not is_control(c))
    controls = sorted(c for c in people if is_control(c))
    return targets, controls, sorted((c, channel, is_control(c)) for c in people)


@pytest.mark.parametrize("channel", CHANNELS)
def test_no_suppressed_or_unconsented_customer_is_in_any_list(shop: Path, channel: str) -> None:
    folder = run(shop, f"{channel}_all")
    targets, controls, contacts = expected(channel, ELIGIBLE[channel])
    assert (ids(folder / "targets.csv"), ids(folder / "control.csv")) == (targets, controls)
    assert history(shop, f"{channel}_all") == contacts
    exported = ok("export", f"{channel}_all", "--as-of", AS_OF, "-o", "-", "--format", "jsonl", cwd=shop).stdout
    assert sorted(json.loads(line)["customer_id"] for line in exported.splitlines()) == targets


def test_customer_ids_and_keys_are_stored_normalised(shop: Path) -> None:
    done = ok("sql", "SELECT customer_id, email_key, phone_key, address_key FROM customers ORDER BY 1", cwd=shop)
    rows = {line.split(",")[0]: line.split(",")[1:] for line in done.stdout.splitlines()[1:]}
    assert rows["K02"][1] == "79030936440"
    assert rows["K04"][2] == "ul polna 7|07-871|warszawa"
    assert rows["K16"][0] == rows["K06"][0] == "k06@example.org"
    assert JOSE_NFC in rows and JOSE_NFD not in rows
    keys = ok("sql", "SELECT phone_key, address_key FROM suppressions ORDER BY ALL", cwd=shop).stdout
    assert "79030936440," in keys and "48601234567," in keys
    assert ",ul lipowa 8|00-001|kraków" in keys and ",ul polna 7|07-871|warszawa" in keys


def test_a_suppression_loaded_after_a_run_applies_to_the_rerun(shop: Path) -> None:
    run(shop, "email_all")
    ok("load", "suppressions", write(shop, "later.csv", "email,reason\nK09@EXAMPLE.PL,complaint\n"), cwd=shop)
    folder = run(shop, "email_all", "--rerun")
    targets, controls, contacts = expected("email", ["K02", "K03", "K04"])
    assert (ids(folder / "targets.csv"), ids(folder / "control.csv")) == (targets, controls)
    assert history(shop, "email_all") == contacts


def test_a_missing_consent_column_is_no_consent(shop: Path) -> None:
    no_sms = "customer_id,phone,email,email_opt_in\nK20,601 000 020,k20@example.pl,true\n"
    ok("load", "customers", write(shop, "no_sms.csv", no_sms), "--replace", cwd=shop)
    sms = ok("export", "sms_all", "--as-of", AS_OF, "-o", "-", "--format", "jsonl", cwd=shop).stdout
    email = ok("export", "email_all", "--as-of", AS_OF, "-o", "-", "--format", "jsonl", cwd=shop).stdout
    assert sms.strip() == ""
    assert [json.loads(line)["customer_id"] for line in email.splitlines()] == ([] if is_control("K20") else ["K20"])


BAD = HEADER + "\n".join(
    [
        f"B01,not-an-email,,,,,PL,{YES}",
        f"B02,a@b@c,,,,,PL,{YES}",
        f"B03,b03@example.pl,12,,,,RU,{YES}",
        f"B04,b04@example.pl,601 000 004,,,,PL,{YES}",
    ]
)


def test_bad_emails_and_impossible_phones_are_rejected_without_personal_data(shop: Path) -> None:
    path = write(shop, "bad.csv", BAD)
    strict = crmlist("load", "customers", path, cwd=shop)
    assert strict.returncode == 65
    assert strict.stderr.startswith("crmlist: error: in/bad.csv:2: email: the value is not an e-mail address")
    assert "hint: " in strict.stderr and "Traceback" not in strict.stderr
    ok("load", "customers", path, "--on-error", "skip", cwd=shop)
    done = ok("sql", "SELECT line, column_name, reason FROM load_rejects ORDER BY line", cwd=shop)
    rejects = list(csv.reader(io.StringIO(done.stdout)))[1:]
    assert [(line, column) for line, column, _ in rejects] == [("2", "email"), ("3", "email"), ("4", "phone")]
    assert "not a possible phone number in RU" in rejects[2][2]
    for personal in ("not-an-email", "a@b@c", "b03@example.pl"):
        assert personal not in strict.stderr and personal not in done.stdout.replace("reason", "")
    assert ok("sql", "SELECT customer_id FROM customers WHERE customer_id LIKE 'B%'", cwd=shop).stdout.split() == [
        "customer_id",
        "B04",
    ]
