"""Ingestion: files (CSV, TSV, Parquet, JSON, Excel, stdin) into the canonical tables, checked strictly."""

from crmlist.ingest.load import load_files
from crmlist.ingest.options import FileLoad, LoadOptions, LoadResult

__all__ = ["FileLoad", "LoadOptions", "LoadResult", "load_files"]
