"""The attacker's view: every input a user controls, tried through the real `crmlist` command.

Each test drives the installed CLI in a subprocess (no TTY, NO_COLOR, stdin closed) on a workspace made
by `crmlist init` in tmp_path, with a folder `elsewhere/` beside it that holds a secret. A test passes
when crmlist refuses clearly: the exit code and message asserted, nothing written or read outside the
workspace, no file content in any message, the database and the workspace byte-identical afterwards.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import outsider
import pytest

AS_OF = "2026-11-01"
SECRET = "TOPSECRET-LINE-4711"
ENV_SECRET = "TOPSECRET-ENV-0815"


def crmlist(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command with a secret in its environment that no output may show."""
    return outsider.crmlist(*args, cwd=cwd, env={"SECRET_PROBE": ENV_SECRET}, timeout=120)


def snapshot(root: Path) -> dict[str, str]:
    """Every file and link under root with the sha256 of its bytes (or its link target)."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[rel] = "dir"
    return found


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace from `crmlist init` with the sample data loaded, made once and copied per test."""
    root = tmp_path_factory.mktemp("loaded")
    done = crmlist("init", "ws", cwd=root)
    assert done.returncode == 0, done.stderr
    ws = root / "ws"
    for table in ("customers", "purchases", "products"):
        done = crmlist("load", table, f"sample_data/{table}.csv", "--quiet", cwd=ws)
        assert done.returncode == 0, done.stderr
    return ws


@pytest.fixture
def ws(loaded: Path, tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(loaded, ws, symlinks=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.txt").write_text(f"{SECRET}\n", encoding="utf-8")
    (elsewhere / "secret.csv").write_text(f"{SECRET},b\n1,2\n", encoding="utf-8")
    (elsewhere / "secret.json").write_text(f'{{"{SECRET}": 1}}\n', encoding="utf-8")
    return ws


def assert_refused(done: subprocess.CompletedProcess[str], code: int, *lines: str) -> None:
    """Refused with `code`, stderr exactly `lines`, and no secret or traceback anywhere."""
    assert done.returncode == code, done.stderr
    assert done.stderr.splitlines() == list(lines)
    for secret in (SECRET, ENV_SECRET, "root:x:0:0", "Traceback"):
        assert secret not in done.stdout + done.stderr


def untouched(ws: Path, before: dict[str, str]) -> None:
    assert snapshot(ws.parent) == before


# ---------------------------------------------------------------------------------------------------------
# crmlist sql, rule files and views may read the database only: no file system, no writes (issue 16, 2-8)
# ---------------------------------------------------------------------------------------------------------

NOT_A_QUERY = (
    "hint: use SELECT, WITH, VALUES, FROM, DESCRIBE, SHOW or SUMMARIZE; "
    "crmlist sql never changes the database or touches files"
)
OUTSIDE = (
    "crmlist: error: sql: the query reaches outside the database (a file, a folder or an extension)",
    "hint: crmlist sql reads only the database: its tables, customer_facts and the views of queries/",
)
PII = "SELECT customer_id, email, phone FROM customers"

# Every statement kind DuckDB has, aimed outside the workspace where it can be.
STATEMENTS = {
    f"COPY ({PII}) TO '../elsewhere/pii.csv'": "COPY",
    f"COPY ({PII}) TO 'queries/planted.sql'": "COPY",
    "COPY customers FROM '../elsewhere/secret.csv'": "COPY",
    "COPY FROM DATABASE crmlist TO memory": "PRAGMA",
    "EXPORT DATABASE '../elsewhere'": "EXPORT",
    "EXPORT DATABASE 'queries'": "EXPORT",
    "IMPORT DATABASE '../elsewhere'": "PRAGMA",
    "ATTACH '../elsewhere/other.duckdb' AS other": "ATTACH",
    "DETACH crmlist": "DETACH",
    "INSTALL httpfs": "LOAD",
    "LOAD httpfs": "LOAD",
    "SET enable_external_access = true": "SET",
    "RESET lock_configuration": "SET",
    "SET VARIABLE x = 1": "SET",
    "USE memory": "SET",
    "PRAGMA table_info('customers')": "PRAGMA",
    "CREATE TABLE stolen AS SELECT * FROM customers": "CREATE",
    "CREATE TEMP VIEW v AS SELECT 1": "CREATE",
    "CREATE MACRO m() AS 1": "CREATE",
    "CREATE SECRET s (TYPE s3)": "CREATE",
    "DROP TABLE customers": "DROP",
    "ALTER TABLE customers ADD COLUMN x INTEGER": "ALTER",
    "INSERT INTO customers (customer_id) VALUES ('X1')": "INSERT",
    "UPDATE customers SET email = NULL": "UPDATE",
    "DELETE FROM customers": "DELETE",
    "TRUNCATE customers": "DELETE",
    "MERGE INTO customers USING customers AS c ON FALSE WHEN NOT MATCHED THEN INSERT *": "MERGE_INTO",
    "CHECKPOINT": "CALL",
    "FORCE CHECKPOINT": "CALL",
    "CALL pragma_version()": "CALL",
    "VACUUM": "VACUUM",
    "ANALYZE": "VACUUM",
    "BEGIN TRANSACTION": "TRANSACTION",
    f"EXPLAIN ANALYZE COPY ({PII}) TO '../elsewhere/pii.csv'": "EXPLAIN",
    "PREPARE p AS SELECT 1": "PREPARE",
    "EXECUTE p": "EXECUTE",
}


@pytest.mark.parametrize("statement", list(STATEMENTS))
def test_sql_runs_no_statement_but_a_query(ws: Path, statement: str) -> None:
    before = snapshot(ws.parent)
    done = crmlist("sql", statement, cwd=ws)
    assert_refused(
        done,
        65,
        f"crmlist: error: sql: only a read-only query is allowed; this is a {STATEMENTS[statement]} statement",
        NOT_A_QUERY,
    )
    untouched(ws, before)


def test_sql_refuses_a_statement_kind_the_client_cannot_name(ws: Path) -> None:
    before = snapshot(ws.parent)
    done = crmlist("sql", "UPDATE EXTENSIONS", cwd=ws)
    assert_refused(
        done,
        65,
        "crmlist: error: sql: only a read-only query is allowed; this is of a kind unknown to crmlist",
        NOT_A_QUERY,
    )
    untouched(ws, before)


@pytest.mark.parametrize(
    "text",
    [
        f"COPY ({PII}) TO '../elsewhere/pii.csv'; SELECT ((",
        "COPY (SELECT 'SELECT 1 AS x') TO 'queries/planted.sql' (HEADER false); SELECT ((",
        f"SELECT 1; COPY ({PII}) TO '../elsewhere/pii.csv'; SELECT ((",
    ],
)
def test_sql_runs_nothing_when_any_of_the_text_does_not_parse(ws: Path, text: str) -> None:
    before = snapshot(ws.parent)
    done = crmlist("sql", text, cwd=ws)
    assert_refused(
        done,
        65,
        'crmlist: error: sql: not valid SQL: Parser Error: syntax error at or near "("',
        "hint: fix the query; nothing was run",
    )
    untouched(ws, before)


@pytest.mark.parametrize(
    "text",
    ["SELECT 1; SELECT 2", f"SELECT 1; COPY ({PII}) TO '../elsewhere/pii.csv'", "SELECT 1; DROP TABLE customers"],
)
def test_sql_runs_exactly_one_statement(ws: Path, text: str) -> None:
    before = snapshot(ws.parent)
    done = crmlist("sql", text, cwd=ws)
    n = text.count(";") + 1
    assert_refused(
        done,
        65,
        f"crmlist: error: sql: {n} statements given; crmlist sql runs exactly one query",
        "hint: run each query with its own crmlist sql; nothing was run",
    )
    untouched(ws, before)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT content FROM read_text('../elsewhere/secret.txt')",
        "SELECT content FROM read_text('sample_data/customers.csv')",
        "SELECT * FROM read_blob('../elsewhere/secret.txt')",
        "SELECT * FROM read_csv('../elsewhere/secret.csv')",
        "SELECT * FROM read_csv_auto('/etc/passwd')",
        "SELECT * FROM read_parquet('../elsewhere/*.parquet')",
        "SELECT * FROM read_json('../elsewhere/secret.json')",
        "SELECT * FROM read_json_objects('../elsewhere/secret.json')",
        "SELECT * FROM glob('../elsewhere/*')",
        "SELECT * FROM glob('/*')",
        "SELECT * FROM sniff_csv('../elsewhere/secret.csv')",
        "SELECT * FROM parquet_metadata('../elsewhere/x.parquet')",
        "SELECT * FROM query('SELECT * FROM read_text(''/etc/passwd'')')",
        "SELECT * FROM query_table('../elsewhere/secret.csv')",
        "FROM '../elsewhere/secret.csv'",
        "SELECT * FROM 'sample_data/customers.csv'",
        "WITH t AS (SELECT * FROM read_text('../elsewhere/secret.txt')) SELECT * FROM t",
    ],
)
def test_sql_reads_no_file(ws: Path, query: str) -> None:
    before = snapshot(ws.parent)
    done = crmlist("sql", query, cwd=ws)
    assert_refused(done, 65, *OUTSIDE)
    untouched(ws, before)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT count(*) AS n FROM customer_facts",
        "WITH t AS (SELECT count(*) AS n FROM customers) SELECT n FROM t",
        "FROM customers SELECT count(*) AS n",
        "VALUES (2000)",
    ],
)
def test_sql_still_runs_queries(ws: Path, query: str) -> None:
    done = crmlist("sql", query, cwd=ws)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1] == "2000"


@pytest.mark.parametrize("query", ["DESCRIBE customer_facts", "SHOW TABLES", "SUMMARIZE products"])
def test_sql_still_describes(ws: Path, query: str) -> None:
    done = crmlist("sql", query, cwd=ws)
    assert done.returncode == 0, done.stderr


def test_sql_cannot_change_a_setting_from_inside_a_query(ws: Path) -> None:
    done = crmlist(
        "sql",
        "SELECT current_setting('enable_external_access') AS files, current_setting('lock_configuration') AS locked",
        cwd=ws,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "files,locked\nFalse,True\n"


def write_rule(ws: Path, name: str, text: str) -> None:
    """queries/NAME.toml, with the sample workspace's winback letters."""
    rule = 'template = "winback"\n' + textwrap.dedent(text)
    (ws / "queries" / f"{name}.toml").write_text(rule, encoding="utf-8")


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "../../../etc/passwd",
        "/proc/self/environ",
        "../elsewhere/secret.csv",
        "sample_data/../../elsewhere/secret.csv",
        "",
    ],
)
def test_in_list_reads_only_inside_the_workspace(ws: Path, path: str) -> None:
    write_rule(ws, "lists", f"[audience]\nwhere = [\"in_list('{path}')\"]\n")
    before = snapshot(ws.parent)
    for command in (("check", "lists"), ("preview", "lists", "--as-of", AS_OF)):
        done = crmlist(*command, cwd=ws)
        assert_refused(
            done,
            65,
            "crmlist: error: queries/lists.toml: audience.where[0]: in_list() takes a path inside the workspace, "
            "relative and without '..'",
            "hint: put the file in the workspace and name it from there, e.g. in_list('lists/seeds.csv')",
        )
    untouched(ws, before)


def test_in_list_follows_no_symlink_out(ws: Path) -> None:
    (ws / "lists").mkdir()
    (ws / "lists" / "seeds.csv").symlink_to(ws.parent / "elsewhere" / "secret.csv")
    write_rule(ws, "lists", "[audience]\nwhere = [\"in_list('lists/seeds.csv')\"]\n")
    before = snapshot(ws.parent)
    done = crmlist("check", "lists", cwd=ws)
    assert_refused(
        done,
        65,
        "crmlist: error: queries/lists.toml: audience.where[0]: in_list() file lists/seeds.csv leads outside the "
        "workspace (a symlink)",
        "hint: copy the file into the workspace instead of linking to it",
    )
    untouched(ws, before)


def test_in_list_never_echoes_the_file(ws: Path) -> None:
    """A header that is no customer_id names the first column: its text never reaches SQL or a message."""
    (ws / "lists").mkdir()
    (ws / "lists" / "seeds.csv").write_text(f'"{SECRET}"");DROP TABLE x;--",b\n001265,x\n', encoding="utf-8")
    (ws / "lists" / "bad.csv").write_bytes(b"customer_id\n\xff\xfe" + SECRET.encode("utf-16-le"))
    write_rule(ws, "lists", "[audience]\nwhere = [\"in_list('lists/seeds.csv')\"]\n")
    write_rule(ws, "bad", "[audience]\nwhere = [\"in_list('lists/bad.csv')\"]\n")
    done = crmlist("check", "lists", cwd=ws)
    assert done.returncode == 0, done.stderr
    done = crmlist("export", "lists", "--as-of", AS_OF, "-o", "-", cwd=ws)
    assert done.returncode == 0, done.stderr
    assert [line.split(",")[0] for line in done.stdout.splitlines()] == ["customer_id", "001265"]
    done = crmlist("check", "bad", cwd=ws)
    assert_refused(
        done,
        65,
        "crmlist: error: queries/bad.toml: audience.where[0]: in_list() cannot read lists/bad.csv: "
        "not a UTF-8 CSV file",
        "hint: save the list as UTF-8 CSV",
    )


@pytest.mark.parametrize(
    ("condition", "name"),
    [
        ("rand() < 0.5", "random"),
        ("random() < 0.5", "random"),
        ("uuidv7() IS NOT NULL", "uuidv7"),
        ("gen_random_uuid() IS NOT NULL", "uuid"),
        ("get_current_timestamp() > TIMESTAMP '2020-01-01'", "get_current_timestamp"),
        ("transaction_timestamp() > TIMESTAMP '2020-01-01'", "transaction_timestamp"),
        ("now() > TIMESTAMP '2020-01-01'", "now"),
        ("today() > DATE '2020-01-01'", "current_date"),
        ("hash(customer_id) % 2 = 0", "hash"),
        ("getenv('SECRET_PROBE') IS NOT NULL", "getenv"),
        ("current_setting('threads') > 0", "current_setting"),
        ("getvariable('x') IS NULL", "getvariable"),
        ("setseed(0.5) IS NULL", "setseed"),
        ("nextval('s') > 0", "nextval"),
        ("jaro_winkler_similarity(email, 'x') > 0.5", "jaro_winkler_similarity"),
    ],
)
def test_rules_call_only_deterministic_functions(ws: Path, condition: str, name: str) -> None:
    write_rule(ws, "fn", f'[audience]\nwhere = ["{condition}"]\n')
    before = snapshot(ws.parent)
    for command in (("check", "fn"), ("export", "fn", "--as-of", AS_OF, "-o", "-")):
        done = crmlist(*command, cwd=ws)
        assert_refused(
            done,
            65,
            f"crmlist: error: queries/fn.toml: audience.where[0]: function {name}() is not allowed in rules",
            "hint: rules and views call only deterministic functions that run on every engine: see README.md, "
            "Campaign rule files, for the list",
        )
    untouched(ws, before)


def test_rule_parameters_are_refused(ws: Path) -> None:
    write_rule(ws, "p", '[audience]\nwhere = ["customer_id = $salt"]\n')
    done = crmlist("check", "p", cwd=ws)
    assert_refused(
        done,
        65,
        "crmlist: error: queries/p.toml: audience.where[0]: parameters ($name, ?) are not allowed in rules",
        "hint: write the value itself, e.g. 'tv'",
    )


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "SELECT customer_id, content FROM customers, read_text('../elsewhere/secret.txt')",
            "function read_text() is not allowed in views",
        ),
        ("SELECT customer_id, random() AS r FROM customers", "function random() is not allowed in views"),
        ("SELECT customer_id, now() AS t FROM customers", "function now() is not allowed in views"),
        ("SELECT * FROM glob('../elsewhere/*')", "function glob() is not allowed in views"),
        (
            "SELECT * FROM '../elsewhere/secret.csv'",
            "reads '../elsewhere/secret.csv', which is not a table or view of the database",
        ),
        (
            'SELECT * FROM "sample_data/customers.csv"',
            "reads 'sample_data/customers.csv', which is not a table or view of the database",
        ),
        (
            "SELECT * FROM other.main.customers",
            "reads 'other.main.customers', which is not a table or view of the database",
        ),
    ],
)
def test_views_read_only_the_database(ws: Path, sql: str, message: str) -> None:
    (ws / "queries" / "leak.sql").write_text(sql + "\n", encoding="utf-8")
    before = snapshot(ws.parent)
    hint = (
        "hint: rules and views call only deterministic functions that run on every engine: see README.md, "
        "Campaign rule files, for the list"
        if "function" in message
        else "hint: views read only the workspace's tables and views by name, never files or other databases"
    )
    for command in (("check",), ("sql", "SELECT 1"), ("preview", "winback", "--as-of", AS_OF)):
        done = crmlist(*command, cwd=ws)
        assert_refused(done, 65, f"crmlist: error: queries/leak.sql: {message}", hint)
    untouched(ws, before)


def test_the_session_of_rules_and_views_has_no_file_access(ws: Path) -> None:
    """The engine's sandbox itself, under the checks: a view or rule that got past them still reads nothing."""
    import duckdb

    from crmlist.campaign.views import prepare_session
    from crmlist.workspace import open_workspace

    con = duckdb.connect(str(ws / "crmlist.duckdb"), read_only=True)
    try:
        prepare_session(con, open_workspace(ws), dt.date(2026, 11, 1))
        for sql in (
            f"SELECT * FROM read_text('{ws.parent / 'elsewhere' / 'secret.txt'}')",
            f"COPY (SELECT 1) TO '{ws.parent / 'elsewhere' / 'x.csv'}'",
        ):
            with pytest.raises(duckdb.PermissionException):
                con.execute(sql)
        with pytest.raises(duckdb.Error):
            con.execute("SET enable_external_access = true")
    finally:
        con.close()
    assert sorted(p.name for p in (ws.parent / "elsewhere").iterdir()) == ["secret.csv", "secret.json", "secret.txt"]


def test_check_validates_columns(ws: Path) -> None:
    write_rule(ws, "cols", 'columns = ["(SELECT 1)", "monetary", "frequncy"]\n')
    done = crmlist("check", "cols", cwd=ws)
    assert_refused(
        done,
        65,
        "crmlist: error: queries/cols.toml: columns[0]: unknown column '(SELECT 1)'",
        "hint: list names of columns of customer_facts or of a view, not expressions",
        "crmlist: error: queries/cols.toml: columns[2]: unknown column 'frequncy'",
        "hint: did you mean `frequency` or `frequency_365`?",
    )
    write_rule(ws, "cols", 'columns = ["monetary", "contacts_90"]\n')
    assert crmlist("check", "cols", cwd=ws).returncode == 0
    assert crmlist("preview", "cols", "--as-of", AS_OF, cwd=ws).returncode == 0


def test_not_contacted_passes_check_like_preview_and_export(ws: Path) -> None:
    write_rule(
        ws,
        "quiet",
        """\
        [audience]
        where = ["frequency >= 1", "not_contacted(days => 30)"]
        exclude = ["NOT not_contacted(days => 7)"]
        [[cells]]
        name = "all"
        where = "not_contacted(days => 90)"
        """,
    )
    done = crmlist("check", "quiet", cwd=ws)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "ok: 1 campaign(s) checked: quiet\n"
    assert crmlist("preview", "quiet", "--as-of", AS_OF, cwd=ws).returncode == 0
    first = crmlist("export", "quiet", "--as-of", AS_OF, "-o", "-", cwd=ws)
    assert first.returncode == 0, first.stderr
    assert len(first.stdout.splitlines()) > 1
    ran = crmlist("run", "quiet", "--as-of", AS_OF, "--out", "out", "--quiet", cwd=ws)
    assert ran.returncode == 0, ran.stderr
    # ten days on (another run id) the customers that run contacted are left out
    later = crmlist("export", "quiet", "--as-of", "2026-11-10", "-o", "-", cwd=ws)
    assert later.returncode == 0, later.stderr
    contacted = {line.split(",")[0] for line in first.stdout.splitlines()[1:]}
    assert contacted and not contacted & {line.split(",")[0] for line in later.stdout.splitlines()[1:]}
