"""The Spark session and its inputs: settings, Parquet sources as temp views, Arrow in and out, errors."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa
import sqlglot
from sqlglot import exp

from crmlist.engines.settings import SOURCE_TABLES, EngineSettings, require_spark
from crmlist.errors import BadInputError, MissingInputError, UsageError
from crmlist.store import CANONICAL

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

T = TypeVar("T")
MIN_PYSPARK = (4, 0)  # DataFrame.toArrow and createDataFrame(pyarrow.Table) are public from 4.0
# Defaults a workspace's [engine.conf] may override. ANSI mode makes casts and overflow fail as DuckDB's do
# (and is Spark 4's default anyway); the progress bar would mix with crmlist's own output on stderr.
DEFAULT_CONF = {
    "spark.app.name": "crmlist",
    "spark.sql.ansi.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
}
# A source file or folder a Spark run read: table, path, size in bytes, modification time (ms).
Listing = list[tuple[str, str, int, int]]


def spark_session(settings: EngineSettings, timezone: str = "UTC") -> SparkSession:
    """A session of its own (temp views, SQL settings) on the process's one SparkContext."""
    require_spark(settings.master)
    import pyspark
    from pyspark.sql import SparkSession

    version = tuple(int(p) for p in pyspark.__version__.split(".")[:2])
    if version < MIN_PYSPARK:
        raise UsageError("--engine spark", f"pyspark {pyspark.__version__} is too old", "pip install 'pyspark>=4,<5'")
    # Executors start Python only for Python UDFs and Arrow work (none today), but then must run crmlist's
    # own interpreter; a cluster whose nodes keep it elsewhere sets spark.pyspark.python in [engine.conf].
    python = {"spark.pyspark.python": sys.executable, "spark.pyspark.driver.python": sys.executable}
    conf = DEFAULT_CONF | {"spark.sql.session.timeZone": timezone} | python | _quiet_logging() | settings.conf
    builder = SparkSession.builder
    if settings.master.startswith("sc://"):
        builder = builder.remote(settings.master)
    elif settings.master:  # else spark-submit's --master (or spark-defaults.conf) applies
        builder = builder.master(settings.master)
    for key, value in conf.items():
        builder = builder.config(key, value)
    with _jvm_output(settings.master), quiet_pyspark():
        base = guarded("spark", builder.getOrCreate)
    with contextlib.suppress(Exception):  # Spark Connect has no SparkContext to quieten
        base.sparkContext.setLogLevel("ERROR")
    session = base.newSession()
    for key, value in conf.items():
        if key.startswith("spark.sql."):
            session.conf.set(key, value)
    return session


def jvm_log_path() -> Path:
    """Where the JVM that this process starts writes its own output (start-up notices, errors)."""
    return Path(tempfile.gettempdir()) / f"crmlist-spark-{os.getpid()}.log"


@contextlib.contextmanager
def _jvm_output(master: str) -> Iterator[None]:
    """Start the JVM with its stderr in jvm_log_path(): its notices would break --quiet and mix with ours.

    The JVM inherits file descriptor 2 when pyspark launches it, so it is pointed at the log for the launch
    only; Python's own stderr is restored at once. Spark errors still reach crmlist as exceptions.
    """
    from pyspark.sql import SparkSession

    if master.startswith("sc://") or SparkSession.getActiveSession() is not None:  # the JVM is running
        yield
        return
    saved = os.dup(2)
    log = os.open(jvm_log_path(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.dup2(log, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(log)


def _quiet_logging() -> dict[str, str]:
    """A log4j2 file keeping the JVM to errors, so Spark's start-up notices do not break --quiet."""
    digest = hashlib.sha256(_LOG4J2.encode()).hexdigest()[:8]
    path = Path(tempfile.gettempdir()) / f"crmlist-spark-log4j2-{digest}.properties"
    if not path.exists():  # written aside and renamed: another crmlist may be starting Spark right now
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(_LOG4J2, encoding="utf-8")
        os.replace(tmp, path)
    return {"spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={path.as_uri()}"}


# The repl logger at error too: pyspark otherwise announces 'Setting default log level to "WARN"'.
_LOG4J2 = """rootLogger.level = error
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
"""


def register_sources(spark: SparkSession, settings: EngineSettings, history: pa.Table | None) -> dict[str, DataFrame]:
    """Every canonical table as a temp view: its Parquet source, else empty; contact_history is `history`.

    Contact history always comes from the caller (the workspace database's rows), never from Parquet: a
    lake's copy is as old as the last `export-parquet` and misses every contact recorded since.
    """
    frames = {}
    for table in SOURCE_TABLES:
        location = settings.sources.get(table)
        if table == "contact_history":
            frame = None if history is None else from_arrow(spark, history)
        elif location is not None:
            frame = _read_parquet(spark, table, location)
        else:
            frame = None
        if frame is None:
            if table == "customers":
                raise MissingInputError(
                    "crmlist.toml: engine.sources.customers",
                    "no Parquet source for customers",
                    'set [engine] lake = "DIR" (see: crmlist export-parquet DIR) or [engine.sources] customers',
                )
            frame = spark.createDataFrame([], schema=_canonical_ddl(table))
        frame.createOrReplaceTempView(table)
        frames[table] = frame
    return frames


def _read_parquet(spark: SparkSession, table: str, location: str) -> DataFrame | None:
    from pyspark.errors import AnalysisException

    try:
        return spark.read.parquet(location)
    except AnalysisException as exc:
        if _condition(exc).startswith("PATH_NOT_FOUND"):
            return None
        raise BadInputError(f"engine.sources.{table}", f"cannot read {location}: {_condition(exc)}", None) from None


def _canonical_ddl(table: str) -> str:
    return ", ".join(f"`{name}` {spark_type(ctype)}" for name, ctype in CANONICAL[table].items())


def spark_type(duckdb_type: str) -> str:
    """A DuckDB column type as Spark DDL (VARCHAR[] -> ARRAY<STRING>, TIMESTAMP -> TIMESTAMP_NTZ)."""
    return exp.DataType.build(duckdb_type, dialect="duckdb").sql(dialect="spark")


def duckdb_type(spark_simple_string: str) -> str:
    """A Spark type (DataType.simpleString()) as a DuckDB column type; unknown ones become VARCHAR."""
    try:
        return exp.DataType.build(spark_simple_string, dialect="spark").sql(dialect="duckdb")
    except sqlglot.errors.SqlglotError:
        return "VARCHAR"


def from_arrow(spark: SparkSession, table: pa.Table) -> DataFrame:
    """A Spark DataFrame of a (small) Arrow table built on the driver, so it reaches remote executors too."""
    schema = ", ".join(f"`{f.name}` {spark_type(_arrow_duckdb_type(f.type))}" for f in table.schema)
    return spark.createDataFrame(table, schema=schema)


def _arrow_duckdb_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return _arrow_duckdb_type(arrow_type.value_type) + "[]"
    if pa.types.is_decimal(arrow_type):
        return f"DECIMAL({arrow_type.precision}, {arrow_type.scale})"
    simple = {
        pa.types.is_string: "VARCHAR",
        pa.types.is_large_string: "VARCHAR",
        pa.types.is_boolean: "BOOLEAN",
        pa.types.is_date: "DATE",
        pa.types.is_timestamp: "TIMESTAMP",
        pa.types.is_int8: "TINYINT",
        pa.types.is_int16: "SMALLINT",
        pa.types.is_int32: "INTEGER",
        pa.types.is_int64: "BIGINT",
        pa.types.is_floating: "DOUBLE",
    }
    return next((name for test, name in simple.items() if test(arrow_type)), "VARCHAR")


def to_arrow(frame: DataFrame) -> pa.Table:
    """Collect a DataFrame to the driver as Arrow, in its order."""
    return frame.toArrow()


@contextlib.contextmanager
def quiet_pyspark() -> Iterator[None]:
    """pyspark warns about pandas versions on Arrow conversions that do not use pandas at all."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="pyspark")
        yield


def guarded(where: str, call: Callable[[], T]) -> T:
    """Run a Spark call; its failures become BadInputError naming `where` and Spark's error condition.

    Only the condition (e.g. UNRESOLVED_COLUMN.WITH_SUGGESTION) and, for analysis errors, the first
    line are shown: runtime errors such as CAST_INVALID_INPUT quote data values, which may be personal.
    """
    from pyspark.errors import AnalysisException, PySparkException

    try:
        return call()
    except AnalysisException as exc:
        raise BadInputError(where, f"does not run on Spark: {_first_line(exc)}", _HINT) from None
    except PySparkException as exc:
        raise BadInputError(where, f"does not run on Spark: {_condition(exc)}", _HINT) from None
    except Exception as exc:  # py4j errors carry Java stack traces, never shown
        if type(exc).__module__.startswith("py4j"):
            raise BadInputError(where, f"Spark failed: {type(exc).__name__}", _HINT) from None
        raise


_HINT = "check the expressions with: crmlist check; the same rule runs on DuckDB with --engine duckdb"


def _condition(exc: Exception) -> str:
    for name in ("getCondition", "getErrorClass"):
        method = getattr(exc, name, None)
        if method is not None:
            with contextlib.suppress(Exception):
                value = method()
                if value:
                    return str(value)
    return type(exc).__name__


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else _condition(exc))[:300]


def source_listing(spark: SparkSession, settings: EngineSettings) -> Listing:
    """Every file of every source with size and modification time, for the run id (sorted)."""
    rows: Listing = []
    for table, location in sorted(settings.sources.items()):
        rows.extend(_list_files(spark, table, location))
    return sorted(rows)


def _list_files(spark: SparkSession, table: str, location: str) -> list[tuple[str, str, int, int]]:
    """The files Spark would read at `location` (hidden `_`/`.` ones skipped, as Spark does), through the
    public binaryFile source on a classic or a Connect session; it reads no content unless asked for it."""
    from pyspark.errors import AnalysisException

    try:
        frame = spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(location)
        rows = frame.selectExpr("path", "length", "unix_millis(modificationTime) AS modified").collect()
    except AnalysisException:  # no such path: the table reads as empty
        return []
    return [(table, str(row["path"]), int(row["length"]), int(row["modified"])) for row in rows]


def args_for(tree: exp.Expr, params: dict[str, Any]) -> dict[str, Any]:
    """The bound values a query uses, as Spark named parameters (:name)."""
    used = {p.name for p in tree.find_all(exp.Placeholder)}
    return {name: value for name, value in params.items() if name in used}
