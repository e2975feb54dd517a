"""Worker pool: output identical to one process, failures in order, errors carried back, workers never outlive us."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from test_letters import job, make_db, make_ws

from crmlist.errors import BadInputError, OutputError, UsageError
from crmlist.letters import LetterFailure, LetterJob, render_letters
from crmlist.letters.ahead import Ahead
from crmlist.letters.job import CustomerIds
from crmlist.letters.pool import map_in_order, pool_size

REPO = Path(__file__).resolve().parents[1]
CUSTOMERS = "customer_id,first_name,last_name,gender,language\n" + "".join(
    f"C{i:02d},Jan{i},Nowak,{'FMX'[i % 3]},{['pl', 'cs', 'ru', 'en'][i % 4]}\n" for i in range(11)
)
TEMPLATE = """\
    {{ customer|salutation }}, {{ customer.monetary|money }} {{ as_of|date }}
    {% if customer.customer_id in ('C03', 'C08') %}{{ customer.no_such_fact }}{% endif %}
"""


def pooled(fmt: str, jobs: int) -> LetterJob:
    letter_job = job(fmt)
    letter_job.jobs, letter_job.batch_rows = jobs, 3  # 11 targets: four batches
    return letter_job


@pytest.mark.parametrize("fmt", ["files", "jsonl"])
def test_two_workers_write_what_one_process_writes(tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("crmlist.letters.recommend.RANGE_ROWS", 4)  # three queries of targets, batches of 3
    ws = make_ws(tmp_path, {"winback.txt.j2": TEMPLATE})
    results = {}
    for jobs in (1, 2):
        results[jobs] = render_letters(make_db(tmp_path, CUSTOMERS), ws, pooled(fmt, jobs), tmp_path / str(jobs))
    assert (results[1].written, results[1].failed) == (results[2].written, results[2].failed)
    assert results[2].written == [f"C{i:02d}" for i in range(11) if i not in (3, 8)]
    assert results[2].failed == [
        LetterFailure("C03", "winback.txt.j2", 2, "UndefinedError: 'dict object' has no attribute 'no_such_fact'"),
        LetterFailure("C08", "winback.txt.j2", 2, "UndefinedError: 'dict object' has no attribute 'no_such_fact'"),
    ]
    one = {p.relative_to(tmp_path / "1"): p.read_bytes() for p in (tmp_path / "1").rglob("*") if p.is_file()}
    two = {p.relative_to(tmp_path / "2"): p.read_bytes() for p in (tmp_path / "2").rglob("*") if p.is_file()}
    assert one == two
    assert len(one) == (10 if fmt == "files" else 2)  # 9 letters + failed.csv, or the bundle + failed.csv


def test_an_error_in_a_worker_stops_the_run_as_in_one_process(tmp_path: Path) -> None:
    templates = {"winback.txt.j2": "{% if customer.customer_id == 'C09' %}{% include 'bad.txt.j2' %}{% endif %}"}
    ws = make_ws(tmp_path, templates | {"bad.txt.j2": "{% if %}"})
    with pytest.raises(BadInputError) as caught:
        render_letters(make_db(tmp_path, CUSTOMERS), ws, pooled("jsonl", 2), tmp_path / "out")
    assert caught.value.where == "templates/bad.txt.j2:1"
    assert sorted(os.listdir(tmp_path / "out")) == []  # the bundle's temporary file is gone


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_letter_file_that_cannot_be_written_stops_the_run(tmp_path: Path, jobs: int) -> None:
    out = tmp_path / "out"
    (out / "letters" / "C05.txt").mkdir(parents=True)  # the workers write the files: one of them fails
    ws = make_ws(tmp_path, {"winback.txt.j2": "{{ customer.customer_id }}"})
    with pytest.raises(OutputError) as caught:
        render_letters(make_db(tmp_path, CUSTOMERS), ws, pooled("files", jobs), out)
    assert (caught.value.where, caught.value.what) == (str(out / "letters" / "C05.txt"), "cannot write: Is a directory")


def test_zero_targets_write_an_empty_bundle(tmp_path: Path) -> None:
    con = make_db(tmp_path, CUSTOMERS)
    con.execute("DELETE FROM letter_targets")
    ws = make_ws(tmp_path, {"winback.txt.j2": TEMPLATE})
    result = render_letters(con, ws, pooled("jsonl", 2), tmp_path / "out")
    assert (result.written, result.failed, result.paths) == ([], [], [tmp_path / "out" / "letters.jsonl"])
    assert result.paths[0].read_bytes() == b""


def _ranges(con: duckdb.DuckDBPyConnection, fail_after: int | None = None) -> Iterator[int]:
    for i in range(6):
        if i == fail_after:
            raise BadInputError("here", "the producer failed", "fix it")
        yield con.execute("SELECT count(*) FROM range(?) AS t(x)", [i * 1000]).fetchall()[0][0]


def test_ahead_yields_in_order_and_hands_over_the_producers_error() -> None:
    con = duckdb.connect()
    with Ahead(con, lambda: _ranges(con)) as ahead:
        assert list(ahead) == [i * 1000 for i in range(6)]
    with pytest.raises(BadInputError, match="the producer failed"), Ahead(con, lambda: _ranges(con, 3)) as ahead:
        assert list(ahead) == []
    assert con.execute("SELECT 1").fetchall() == [(1,)]  # the connection is free again


def test_leaving_ahead_early_stops_its_query() -> None:
    con = duckdb.connect()

    def slow() -> Iterator[int]:
        yield 1
        yield con.execute("SELECT count(*) FROM range(10000000000) AS a(x) WHERE x % 7 = 3").fetchall()[0][0]

    started = time.monotonic()
    with Ahead(con, slow) as ahead:
        assert next(iter(ahead)) == 1
    assert time.monotonic() - started < 10  # interrupted, not run to the end (minutes)
    assert con.execute("SELECT 2").fetchall() == [(2,)]


def test_customer_ids_compare_index_and_pickle_like_a_list() -> None:
    ids = CustomerIds(["C1", "C2"])
    ids.extend(CustomerIds(["C3"]))
    ids.extend(["C\x004", "C5"])  # an id holding the separator is kept as it is
    expected = ["C1", "C2", "C3", "C\x004", "C5"]
    assert ids == expected
    assert expected == ids  # a list on the left compares too
    assert (len(ids), ids[2], ids[-2], ids[1:3], list(ids)[4]) == (5, "C3", "C\x004", ["C2", "C3"], "C5")
    assert ids != ["C1"] and pickle.loads(pickle.dumps(ids)) == ids and not CustomerIds()
    with pytest.raises(IndexError):
        ids[5]


def _pid_and_square(n: int) -> tuple[int, int]:
    return os.getpid(), n * n


def _nothing() -> None:
    pass


def test_map_in_order_keeps_order_reads_ahead_a_few_items_and_replaces_workers() -> None:
    pulled = []

    def numbers() -> Iterator[int]:
        for n in range(12):
            pulled.append(n)
            yield n

    seen = [(*result, len(pulled)) for result in map_in_order(_pid_and_square, numbers(), 2, _nothing, (), 3)]
    assert [square for _, square, _ in seen] == [n * n for n in range(12)]
    assert max(ahead - i for i, (_, _, ahead) in enumerate(seen)) <= 4  # 2 items in flight per worker
    pids = [pid for pid, _, _ in seen]
    assert os.getpid() not in pids
    assert not set(pids[:6]) & set(pids[6:])  # after 2 workers x 3 items a fresh set took over


def test_pool_size() -> None:
    assert pool_size(3) == 3
    assert pool_size(None) == len(os.sched_getaffinity(0))
    with pytest.raises(UsageError, match="--jobs: must be a whole number >= 1, got 0"):
        pool_size(0)


# A run whose letters never finish: a nested loop the sandbox allows (range() is capped at 100000).
SLOW_RUN = """\
    import os, sys, signal
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    from test_letters import job, make_db, make_ws
    from crmlist.letters import render_letters

    def on_term(signum, frame):
        raise SystemExit(143)

    if __name__ == "__main__":
        signal.signal(signal.SIGTERM, on_term)
        tmp = Path({tmp!r})
        loop = "{{% for i in range(100000) %}}{{% for j in range(100000) %}}{{% endfor %}}{{% endfor %}}"
        ws = make_ws(tmp, {{"winback.txt.j2": loop}})
        letter_job = job("jsonl")
        letter_job.jobs, letter_job.batch_rows = 2, 2
        print("started", flush=True)
        render_letters(make_db(tmp), ws, letter_job, tmp / "out")
"""


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _workers(pid: int) -> list[int]:
    """The live worker processes of a pid (not multiprocessing's resource tracker)."""
    return [p for p in _children(pid) if _alive(p) and b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]


def _start_slow_run(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    script = tmp_path / "slow.py"
    script.write_text(textwrap.dedent(SLOW_RUN).format(tests=str(REPO / "tests"), tmp=str(tmp_path)))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "started\n"
    deadline = time.monotonic() + 15
    while len(workers := _workers(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(workers) == 2, "workers did not start"
    time.sleep(0.3)  # let the workers get into their letters
    return proc, workers


def _wait_gone(pids: list[int]) -> list[int]:
    deadline = time.monotonic() + 10
    while (alive := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_die_when_their_parent_is_killed(tmp_path: Path) -> None:
    proc, workers = _start_slow_run(tmp_path)
    proc.kill()
    proc.wait()
    assert _wait_gone(workers) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_stops_the_workers_and_removes_the_temporary_bundle(tmp_path: Path) -> None:
    proc, workers = _start_slow_run(tmp_path)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 143
    assert _wait_gone(workers) == []
    assert os.listdir(tmp_path / "out") == []


def test_rendering_never_imports_pandas(tmp_path: Path) -> None:
    """Arrow imports pandas (half a second) when a value is made from a Python one or converted to
    NumPy; every worker would pay it on its first batch. Rendering does neither."""
    pytest.importorskip("pandas")  # without it installed there is nothing to import
    script = f"""
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(REPO / "tests")!r})
        from test_letters import REC_TEMPLATE, job, make_db, make_ws
        from crmlist.letters import render_letters
        tmp = Path({str(tmp_path)!r})
        letter = "{{{{ customer|salutation }}}} {{{{ customer.monetary|money }}}} {{{{ as_of|date }}}}"
        ws = make_ws(tmp, {{"winback.txt.j2": letter + REC_TEMPLATE}})
        result = render_letters(make_db(tmp), ws, job("jsonl"), tmp / "out")
        assert len(result.written) == 4 and "complement" in result.paths[0].read_text()
        print("pandas" in sys.modules)
    """
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, check=False)
    assert (run.returncode, run.stdout, run.stderr) == (0, "False\n", "")
