"""The engines compiled campaigns run on (DuckDB, Spark): their settings, prerequisites and data fingerprints.

The public names live in engines.settings and engines.fingerprint; this package re-exports them.
"""

from crmlist.engines.fingerprint import data_fingerprint
from crmlist.engines.settings import (
    DEFAULT_ENGINE,
    ENGINE_KEYS,
    ENGINES,
    SOURCE_TABLES,
    SPARK_TABLES,
    EngineSettings,
    engine_name,
    engine_settings,
    java_version,
    require_spark,
)

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "ENGINE_KEYS",
    "SOURCE_TABLES",
    "SPARK_TABLES",
    "EngineSettings",
    "data_fingerprint",
    "engine_name",
    "engine_settings",
    "java_version",
    "require_spark",
]
