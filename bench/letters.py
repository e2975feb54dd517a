"""Letters benchmark: crmlist's render_letters (jsonl, files, pdf) against mailmerge on the same rows.

Each size gets a seeded DuckDB file with the crmlist schema and a workspace with a realistic template
(salutation, money, dates, plurals, a loop over 3 recommendations); every variant then runs in its own
subprocess so that its peak memory (ru_maxrss) is its own. mailmerge renders the same rows from a CSV
with an equivalent Jinja template in its dry-run mode (it prints every message instead of sending it).
mailmerge runs first, and the disk is synced after each variant's output is removed, so that no
variant pays for the previous one's writeback.

Usage: python bench/letters.py [SIZE ...] [--seed 7] [--jobs N] [--pdf-rows N] [--keep DIR]
       e.g. python bench/letters.py 10k 100k 1M
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import duckdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

AS_OF = dt.date(2026, 11, 1)
CAMPAIGN = "bench"
NAMES = {  # language: (female first, female last, male first, male last)
    "pl": (["Anna", "Zofia", "Ewa"], ["Kowalska", "Wiśniewska", "Wójcik"], ["Jan", "Piotr"], ["Nowak", "Kowalski"]),
    "cs": (["Jana", "Petra"], ["Nováková", "Dvořáková"], ["Petr", "Tomáš"], ["Novák", "Svoboda", "Dvořák"]),
    "ru": (["Анна", "Ольга"], ["Петрова", "Иванова"], ["Иван", "Сергей"], ["Петров", "Смирнов"]),
    "en": (["Mary", "Kate"], ["Smith", "Jones"], ["John", "Paul"], ["Brown", "Taylor"]),
}
CONFIG = """\
    locale = "en"
    currency = "PLN"
    [sender]
    name = "Sklep Łódź"
    street = "ul. Piotrkowska 1"
    postal_code = "90-001"
    city = "Łódź"
    country = "PL"
    email = "shop@example.com"
    [offers]
    recommend = 3
"""
TEMPLATES = {
    "bench.pl.txt.j2": """\
        {{ customer|salutation }},

        {% if customer.frequency %}od {{ customer.first_purchase_date|date }} złożył(a) Pan(i) {#
        #}{{ customer.frequency }} {{ customer.frequency|plural('zamówienie', 'zamówienia', 'zamówień') }} {#
        #}na {{ customer.monetary|money }}.
        Ostatnie zamówienie: {{ customer.last_purchase_date|date('short') }}.
        {% else %}zapraszamy na pierwsze zakupy.
        {% endif %}
        {% for r in recommendations %}- {{ r.name }}{% if r.color %} ({{ r.color }}){% endif %}: {{ r.price|money }}
        {% endfor %}
        Kod {{ offer }} jest ważny do {{ as_of|date }}.
        {{ sender.name }}
    """,
    "bench.cs.txt.j2": """\
        {{ customer|salutation }},

        {% if customer.frequency %}od {{ customer.first_purchase_date|date }} jste u nás udělal(a) {#
        #}{{ customer.frequency }} {{ customer.frequency|plural('objednávku', 'objednávky', 'objednávek') }} {#
        #}za {{ customer.monetary|money('CZK') }}.
        Poslední objednávka: {{ customer.last_purchase_date|date('short') }}.
        {% else %}zveme Vás na první nákup.
        {% endif %}
        {% for r in recommendations %}- {{ r.name }}{% if r.color %} ({{ r.color }}){% endif %}: {#
        #}{{ r.price|money('CZK') }}
        {% endfor %}
        Kód {{ offer }} platí do {{ as_of|date }}.
        {{ sender.name }}
    """,
    "bench.ru.txt.j2": """\
        {{ customer|salutation }}!

        {% if customer.frequency %}С {{ customer.first_purchase_date|date }} вы сделали {{ customer.frequency }} {#
        #}{{ customer.frequency|plural('заказ', 'заказа', 'заказов') }} на {{ customer.monetary|money('RUB') }}.
        Последний заказ: {{ customer.last_purchase_date|date('short') }}.
        {% else %}ждём вашего первого заказа.
        {% endif %}
        {% for r in recommendations %}- {{ r.name }}{% if r.color %} ({{ r.color }}){% endif %}: {#
        #}{{ r.price|money('RUB') }}
        {% endfor %}
        Код {{ offer }} действует до {{ as_of|date }}
        {{ sender.name }}
    """,
    "bench.txt.j2": """\
        {{ customer|salutation }},

        {% if customer.frequency %}since {{ customer.first_purchase_date|date }} you have placed {#
        #}{{ customer.frequency }} {{ customer.frequency|plural('order', 'orders') }} {#
        #}worth {{ customer.monetary|money('USD') }}.
        Your last order: {{ customer.last_purchase_date|date('short') }}.
        {% else %}we look forward to your first order.
        {% endif %}
        {% for r in recommendations %}- {{ r.name }}{% if r.color %} ({{ r.color }}){% endif %}: {#
        #}{{ r.price|money('USD') }}
        {% endfor %}
        Use {{ offer }} by {{ as_of|date }}.
        {{ sender.name }}
    """,
}
# The same letter for mailmerge: a flat CSV row, the greeting and plural worked out by the template.
MAILMERGE_TEMPLATE = """\
    TO: {{ email }}
    SUBJECT: {{ offer }}
    FROM: shop@example.com

    {% if gender == 'F' %}Dear Ms {{ last_name }}{% elif gender == 'M' %}Dear Mr {{ last_name }}{#
    #}{% else %}Dear {{ first_name }} {{ last_name }}{% endif %},

    {% if frequency != '0' %}since {{ first_purchase_date }} you have placed {{ frequency }} {#
    #}{% if frequency == '1' %}order{% else %}orders{% endif %} worth {{ monetary }} PLN.
    Your last order: {{ last_purchase_date }}.
    {% else %}we look forward to your first order.
    {% endif %}
    {% if r1_name %}- {{ r1_name }} ({{ r1_color }}): {{ r1_price }} PLN
    {% endif %}{% if r2_name %}- {{ r2_name }} ({{ r2_color }}): {{ r2_price }} PLN
    {% endif %}{% if r3_name %}- {{ r3_name }} ({{ r3_color }}): {{ r3_price }} PLN
    {% endif %}
    Use {{ offer }} by {{ as_of }}.
    Sklep Łódź
"""
MAILMERGE_CONFIG = "[smtp_server]\nhost = localhost\nport = 25\n"


def _u(expr: str, seed: int, salt: int) -> str:
    """A uniform integer in [0, 2^31) from a hash of expr, the seed and a salt."""
    return f"CAST(hash({expr}, {seed}, {salt}) % 2147483647 AS BIGINT)"


def _name_sql(seed: int) -> tuple[str, str]:
    """SQL for first_name and last_name picked by language and gender."""
    firsts, lasts = [], []
    for lang, (ff, fl, mf, ml) in NAMES.items():
        for gender, first, last in (("F", ff, fl), ("M", mf, ml), ("X", ff + mf, fl + ml)):
            cond = f"WHEN language = '{lang}' AND gender = '{gender}'"
            firsts.append(f"{cond} THEN {first!r}[1 + {_u('i', seed, 21)} % {len(first)}]")
            lasts.append(f"{cond} THEN {last!r}[1 + {_u('i', seed, 22)} % {len(last)}]")
    return "CASE " + " ".join(firsts) + " END", "CASE " + " ".join(lasts) + " END"


def generate(db_path: Path, n: int, seed: int) -> None:
    """A DuckDB file with the crmlist schema: n customers, 500 products, ~3 purchases each, and the
    targets table a campaign run leaves behind (facts + campaign, cell, offer, channel, template)."""
    from crmlist.store import ensure_schema

    con = duckdb.connect(str(db_path))
    ensure_schema(con)
    _insert_customers(con, n, seed)
    _insert_products_and_purchases(con, n, seed)
    con.execute("CREATE TABLE run_params AS SELECT CAST(? AS DATE) AS as_of, '' AS exclude_run", [AS_OF])
    facts = (REPO / "queries" / "customer_facts.sql").read_text(encoding="utf-8")
    con.execute(f"""
        CREATE TABLE bench_targets AS
        SELECT f.*, '{CAMPAIGN}' AS crm_campaign, 'std' AS crm_cell, 'STD10' AS crm_offer,
               'mail' AS crm_channel, 'bench' AS crm_template
        FROM ({facts}) AS f ORDER BY customer_id
    """)
    con.close()


def _insert_customers(con: duckdb.DuckDBPyConnection, n: int, seed: int) -> None:
    first, last = _name_sql(seed)
    con.execute(f"""
        INSERT INTO customers BY NAME
        SELECT * EXCLUDE (i), {first} AS first_name, {last} AS last_name FROM (
            SELECT i, lpad(CAST(i AS VARCHAR), 9, '0') AS customer_id,
                   ['pl', 'cs', 'ru', 'en'][1 + {_u("i", seed, 1)} % 4] AS language,
                   ['F', 'M', 'F', 'M', 'X'][1 + {_u("i", seed, 2)} % 5] AS gender,
                   'c' || i || '@example.com' AS email, 'ul. Długa ' || (1 + i % 200) AS street,
                   lpad(CAST(i % 99999 AS VARCHAR), 5, '0') AS postal_code, 'Miasto ' || (i % 300) AS city,
                   upper(language) AS country, DATE '1950-01-01' + CAST({_u("i", seed, 3)} % 18000 AS INTEGER)
                   AS birth_date, DATE '2015-01-01' + CAST({_u("i", seed, 4)} % 4000 AS INTEGER) AS signup_date,
                   TRUE AS email_opt_in, TRUE AS mail_opt_in
            FROM range({n}) AS t(i)
        )
    """)


def _insert_products_and_purchases(con: duckdb.DuckDBPyConnection, n: int, seed: int) -> None:
    """500 products, each complemented by three others; orders of two products, ~3 purchases a customer."""
    con.execute("""
        INSERT INTO products BY NAME
        SELECT 'P' || i AS product_id, ['Teczka', 'Segregator', 'Pióro', 'Kubek', 'Notes'][1 + i % 5] || ' ' || i
               AS name, 'cat' || (i % 10) AS category, ['black', 'brown', NULL][1 + i % 3] AS color,
               CAST(10 + i * 1.25 AS DECIMAL(18, 2)) AS price,
               ['P' || ((i + 1) % 500), 'P' || ((i + 13) % 500), 'P' || ((i + 27) % 500)] AS complements
        FROM range(500) AS t(i)
    """)
    con.execute(f"""
        INSERT INTO purchases BY NAME
        SELECT 'O' || (i // 2) AS order_id,
               lpad(CAST({_u("i // 2", seed, 11)} % {n} AS VARCHAR), 9, '0') AS customer_id,
               DATE '2023-11-01' + CAST({_u("i // 2", seed, 12)} % 1096 AS INTEGER) AS order_date,
               'P' || ({_u("i", seed, 13)} % 500) AS product_id,
               CAST(({_u("i", seed, 16)} % 50000) / 100 AS DECIMAL(18, 2)) AS amount
        FROM range({3 * n}) AS t(i)
    """)


def write_workspace(root: Path) -> None:
    (root / "templates").mkdir(parents=True, exist_ok=True)
    (root / "crmlist.toml").write_text(textwrap.dedent(CONFIG), encoding="utf-8")
    for name, text in TEMPLATES.items():
        (root / "templates" / name).write_text(textwrap.dedent(text), encoding="utf-8")


def write_mailmerge_inputs(db_path: Path, ws_root: Path, folder: Path) -> None:
    """mailmerge's CSV database (one flat row per target, recommendations pivoted), template and config."""
    from crmlist.letters import compute_recommendations
    from crmlist.workspace import open_workspace

    con = duckdb.connect(str(db_path), read_only=True)
    recs = compute_recommendations(con, open_workspace(ws_root, db_path), "bench_targets")
    pivot = ", ".join(
        f"any_value(r.{col}) FILTER (WHERE r.rank = {k}) AS r{k}_{col}"
        for k in (1, 2, 3)
        for col in ("name", "color", "price")
    )
    con.execute(f"""
        COPY (
            SELECT t.customer_id, t.email, t.first_name, t.last_name, t.gender, t.frequency, t.monetary,
                   t.first_purchase_date, t.last_purchase_date, t.crm_offer AS offer, DATE '{AS_OF}' AS as_of,
                   {pivot}
            FROM bench_targets AS t LEFT JOIN {recs} AS r ON r.customer_id = t.customer_id
            GROUP BY ALL ORDER BY t.customer_id
        ) TO '{folder / "database.csv"}' (HEADER)
    """)
    con.close()
    template = textwrap.dedent(MAILMERGE_TEMPLATE)
    (folder / "template.txt").write_text(template, encoding="utf-8")
    (folder / "server.conf").write_text(MAILMERGE_CONFIG, encoding="utf-8")


def peak_kb(pid: int | str) -> int:
    """A process's peak resident memory (VmHWM): its own since exec, unlike ru_maxrss, which keeps
    the size of the parent it was forked from."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)


class PeakWatch(threading.Thread):
    """Samples the peak resident memory of one process, or of the children of this one (the workers)."""

    def __init__(self, pid: int | None = None) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self.done = threading.Event()

    def _pids(self) -> list[str]:
        if self.pid is not None:
            return [str(self.pid)]
        me, found = str(os.getpid()), []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1] == me:
                    found.append(pid)
            except (OSError, IndexError):
                continue
        return found

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.peak_kb = max([self.peak_kb, *map(peak_kb, self._pids())])

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.peak_kb


def write_plain_files(n: int, out: Path) -> dict[str, Any]:
    """The disk's own pace: n files of a letter's size (450 bytes) written by one plain loop, each with
    one open, write and close, as the workers write letters; the ceiling of one process here."""
    folder = out / "letters"
    folder.mkdir(parents=True)
    data = b"x" * 450
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    start = time.perf_counter()
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    for i in range(n):
        fd = os.open(f"{i:09d}.txt", flags, 0o644, dir_fd=dir_fd)
        os.write(fd, data)
        os.close(fd)
    os.close(dir_fd)
    seconds = time.perf_counter() - start
    return {"letters": n, "failed": 0, "seconds": seconds, "rss_kb": peak_kb(os.getpid()), "workers_kb": 0}


def run_variant(fmt: str, db_path: Path, ws_root: Path, out: Path, jobs: int | None, pdf_rows: int) -> dict[str, Any]:
    """One crmlist render in this process; the time covers render_letters alone (recommendations included)."""
    if fmt == "plain-files":
        n = duckdb.connect(str(db_path), read_only=True).execute("SELECT count(*) FROM bench_targets").fetchall()
        return write_plain_files(int(n[0][0]), out)
    from crmlist.letters import LetterJob, render_letters
    from crmlist.workspace import open_workspace

    con = duckdb.connect(str(db_path), read_only=True)
    table = "bench_targets"
    if fmt == "pdf":  # PDF is slow: a prefix of the targets is enough for a rate
        con.execute(
            f"CREATE TEMP TABLE pdf_targets AS SELECT * FROM bench_targets ORDER BY customer_id LIMIT {pdf_rows}"
        )
        table = "pdf_targets"
    ws = open_workspace(ws_root, db_path)
    workers = PeakWatch()
    workers.start()
    before = _cpu(resource.RUSAGE_SELF)
    start = time.perf_counter()
    result = render_letters(con, ws, LetterJob(CAMPAIGN, AS_OF, fmt, jobs=jobs), out, table=table)
    seconds = time.perf_counter() - start
    parent_cpu = _cpu(resource.RUSAGE_SELF) - before
    written, failed = len(result.written), len(result.failed)
    return {
        "letters": written,
        "failed": failed,
        "seconds": seconds,
        "rss_kb": peak_kb(os.getpid()),
        "workers_kb": workers.stop(),
        "render_cpu": parent_cpu + _cpu(resource.RUSAGE_CHILDREN),  # the workers, reaped by now
    }


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _timed(cmd: list[str], stdout: Any) -> tuple[float, float, int]:
    """Run cmd: its wall time, CPU seconds (with its workers, from wait4) and its own peak RSS (kB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE)
    watch = PeakWatch(proc.pid)
    watch.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise SystemExit(f"{' '.join(cmd[:3])}... failed ({proc.returncode}):\n{err[-2000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, watch.stop()


def bench_crmlist(fmt: str, db: Path, ws: Path, out: Path, jobs: int | None, pdf_rows: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--variant", fmt, "--db", str(db), "--ws", str(ws), "--out", str(out)]
    cmd += ["--pdf-rows", str(pdf_rows)] + (["--jobs", str(jobs)] if jobs else [])
    with tempfile.TemporaryFile() as fh:
        _, cpu, _ = _timed(cmd, fh)
        fh.seek(0)
        report: dict[str, Any] = json.loads(fh.read())
    shutil.rmtree(out, ignore_errors=True)
    settle()
    return report | {"cpu": cpu}


def settle() -> None:
    """Let the disk finish what the last variant left (a million letter files written, then removed:
    writeback and, on a disk mounted with discard, TRIM of their blocks): the next variant measured
    would otherwise pay for it (seen here: files at 3,535/s after a removal instead of 21,000/s)."""
    os.sync()
    time.sleep(1)
    os.sync()


def ensure_mailmerge() -> Path:
    exe = Path(sys.executable).with_name("mailmerge")
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "mailmerge"], check=True)
    return exe


def bench_mailmerge(folder: Path, rows: int) -> dict[str, Any]:
    exe = ensure_mailmerge()
    cmd = [str(exe), "--dry-run", "--no-limit", "--output-format", "raw", "--template", str(folder / "template.txt")]
    cmd += ["--database", str(folder / "database.csv"), "--config", str(folder / "server.conf")]
    with (folder / "messages.txt").open("wb") as fh:
        seconds, cpu, rss = _timed(cmd, fh)
    sent = len(re.findall(rb"^>>> message \d+ sent$", (folder / "messages.txt").read_bytes(), re.MULTILINE))
    if sent != rows:
        raise SystemExit(f"mailmerge wrote {sent} messages, expected {rows}")
    return {"letters": rows, "seconds": seconds, "cpu": cpu, "rss_kb": rss, "workers_kb": 0}


def parse_size(text: str) -> int:
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1].lower(), 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def bench_size(n: int, args: argparse.Namespace, root: Path) -> list[tuple[str, dict[str, Any]]]:
    folder = root / f"n{n}"
    folder.mkdir(parents=True, exist_ok=True)
    db, ws = folder / "bench.duckdb", folder / "ws"
    if not db.exists():
        start = time.perf_counter()
        generate(db, n, args.seed)
        write_workspace(ws)
        write_mailmerge_inputs(db, ws, folder)
        print(f"# {n:,} targets generated in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    rows: list[tuple[str, dict[str, Any]]] = []
    settle()
    if not args.no_mailmerge:  # first, so that no crmlist output is still being written back meanwhile
        rows.append(("mailmerge dry-run", bench_mailmerge(folder, n)))
        (folder / "messages.txt").unlink()
        settle()
    for fmt in args.formats:
        rows.append((f"crmlist {fmt}", bench_crmlist(fmt, db, ws, folder / f"out-{fmt}", args.jobs, args.pdf_rows)))
        if fmt == "files":  # the same number of plain files right after: what the disk allows meanwhile
            rows.append(("plain files", bench_crmlist("plain-files", db, ws, folder / "out-plain", None, 0)))
    return rows


def print_table(n: int, rows: list[tuple[str, dict[str, Any]]]) -> None:
    """letters/s is wall-clock; cpu s adds up the process and its workers (the machine may be shared),
    start-up included; cpu us/letter is that of the rendering alone (mailmerge: of the whole run).
    "plain files" is one process writing as many 450-byte files with nothing else to do: on a disk
    whose file creation is slow, crmlist files cannot be faster than about twice that (two workers)."""
    base = next((r["letters"] / r["seconds"] for name, r in rows if name.startswith("mailmerge")), None)
    print(f"\n{n:,} targets, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"{'variant':<19}{'letters':>10}{'seconds':>9}{'letters/s':>11}{'x mailmerge':>12}", end="")
    print(f"{'cpu s':>8}{'cpu us/letter':>14}{'parent MB':>10}{'worker MB':>10}")
    for name, r in rows:
        rate = r["letters"] / r["seconds"]
        ratio = f"{rate / base:.1f}" if base else "-"
        per_letter = 1e6 * r.get("render_cpu", r["cpu"]) / max(1, r["letters"])
        print(f"{name:<19}{r['letters']:>10,}{r['seconds']:>9.2f}{rate:>11,.0f}{ratio:>12}", end="")
        print(f"{r['cpu']:>8.1f}{per_letter:>14.1f}{r['rss_kb'] / 1024:>10.0f}{r['workers_kb'] / 1024:>10.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sizes", nargs="*", default=["10k", "100k"], help="numbers of targets (10k, 100k, 1M)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: every core)")
    parser.add_argument("--formats", nargs="+", default=["jsonl", "files", "pdf"])
    parser.add_argument("--pdf-rows", type=int, default=5000, help="targets rendered for the PDF rate")
    parser.add_argument("--no-mailmerge", action="store_true")
    parser.add_argument("--keep", type=Path, help="keep generated data in this folder (reused when present)")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ws", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.db, args.ws, args.out, args.jobs, args.pdf_rows)))
        return
    root = args.keep or Path(tempfile.mkdtemp(prefix="crmlist-bench-"))
    try:
        for size in args.sizes:
            n = parse_size(size)
            print_table(n, bench_size(n, args, root))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
