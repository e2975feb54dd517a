# Two entry points for a fresh machine with python3 and make: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.dev-installed
AS_OF := 2026-11-01

.PHONY: demo test lint typecheck pytest sample-data clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

# The Spark tests run in make test when Java is present, so the dev set-up brings pyspark too.
$(DEVSTAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,spark]'
	touch $@

demo: $(STAMP)
	@bash scripts/demo.sh "$(BIN)" "$(AS_OF)"

test: $(DEVSTAMP) lint typecheck pytest

lint: $(DEVSTAMP)
	$(BIN)/ruff check crmlist tests bench scripts
	$(BIN)/ruff format --check crmlist tests bench scripts

typecheck: $(DEVSTAMP)
	$(BIN)/mypy

pytest: $(DEVSTAMP)
	$(BIN)/pytest

sample-data: $(STAMP)
	$(BIN)/python scripts/make_sample_data.py sample_data

clean:
	rm -rf out crmlist.duckdb crmlist.duckdb.lock .pytest_cache .mypy_cache .ruff_cache
