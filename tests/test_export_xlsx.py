"""Excel lists: typed cells a spreadsheet can sort and sum, read back by an independent reader, and no
silent truncation at Excel's row limit."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import duckdb
import fastexcel
import pytest
from outsider import ok

from crmlist.errors import UsageError
from crmlist.outputs import write_query

AS_OF = "2026-11-01"


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    ok("init", "shop", "--quiet", cwd=tmp_path)
    root = tmp_path / "shop"
    for table in ("customers", "products", "purchases", "suppressions"):
        ok("load", table, f"sample_data/{table}.csv", "--quiet", cwd=root)
    return root


def test_an_xlsx_list_holds_the_csv_lists_rows_with_dates_and_numbers_typed(shop: Path) -> None:
    ok("export", "winback", "-o", "list.xlsx", "--as-of", AS_OF, cwd=shop)
    ok("export", "winback", "-o", "list.csv", "--as-of", AS_OF, cwd=shop)
    with (shop / "list.csv").open(encoding="utf-8", newline="") as fh:
        expected = list(csv.DictReader(fh))
    sheet = fastexcel.read_excel(str(shop / "list.xlsx")).load_sheet(0).to_arrow()
    got = sheet.to_pylist()
    assert len(got) == len(expected) == 138
    assert sheet.schema.field("monetary").type == "double"
    assert sheet.schema.field("frequency").type == "double"
    assert str(sheet.schema.field("last_purchase_date").type) == "timestamp[ms]"
    for row, want in zip(got, expected, strict=True):
        assert row["customer_id"] == want["customer_id"]  # zero-padded ids stay text
        assert row["last_name"] == want["last_name"]
        assert row["monetary"] == pytest.approx(float(want["monetary"]), abs=0.001)
        assert row["frequency"] == int(want["frequency"])
        assert row["last_purchase_date"] == dt.datetime.fromisoformat(want["last_purchase_date"])


def test_a_list_longer_than_an_excel_sheet_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    target = tmp_path / "big.xlsx"
    with duckdb.connect() as con, pytest.raises(UsageError) as err:
        write_query(con, "SELECT range AS n FROM range(1048576)", {}, target, "xlsx")
    assert err.value.message == "--format xlsx: the list has 1,048,576 rows; an Excel sheet holds 1,048,575"
    assert err.value.hint == "export to csv or parquet, or set a limit in the rule file"
    assert list(tmp_path.iterdir()) == []


def test_text_that_looks_like_a_formula_or_a_link_stays_text(tmp_path: Path) -> None:
    target = tmp_path / "list.xlsx"
    sql = "SELECT * FROM (VALUES ('=HYPERLINK(\"http://evil.example\")'), ('http://shop.example'), ('0042')) t(v)"
    with duckdb.connect() as con:
        assert write_query(con, sql, {}, target, "xlsx") == 3
    values = fastexcel.read_excel(str(target)).load_sheet(0, dtypes="string").to_arrow().column("v").to_pylist()
    assert values == ['\'=HYPERLINK("http://evil.example")', "http://shop.example", "0042"]
