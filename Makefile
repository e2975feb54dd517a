# Two entry points for a fresh machine with python3 and make: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.dev-installed
AS_OF := 2026-11-01

.PHONY: demo test quick coverage lint typecheck pytest sample-data clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# constraints.txt pins every package to the versions the tests passed with, so a fresh machine gets them.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -q -c constraints.txt -e .
	touch $@

# The Spark tests run in make test when Java is present, so the dev set-up brings pyspark too.
$(DEVSTAMP): $(STAMP)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,spark]'
	touch $@

demo: $(STAMP)
	@bash scripts/demo.sh "$(BIN)" "$(AS_OF)"

test: $(DEVSTAMP) lint typecheck pytest

lint: $(DEVSTAMP)
	$(BIN)/ruff check crmlist tests bench scripts
	$(BIN)/ruff format --check crmlist tests bench scripts

typecheck: $(DEVSTAMP)
	$(BIN)/mypy

# Two workers (pytest-xdist): each module on one worker, so module fixtures are made once, and all the
# Spark tests on one, so one JVM serves them (groups: tests/conftest.py).
pytest: $(DEVSTAMP)
	$(BIN)/pytest -n 2 --dist loadgroup

# The tests without Spark, stopping at the first failure: for the edit-test loop.
quick: $(DEVSTAMP)
	$(BIN)/pytest -n 2 --dist loadgroup -x -m "not spark"

# The suite under coverage (CLI subprocesses included): the figure the closing notes report.
coverage: $(DEVSTAMP)
	rm -f .coverage .coverage.*
	COVERAGE_FILE=$(CURDIR)/.coverage $(BIN)/coverage run -m pytest -n 2 --dist loadgroup -q
	COVERAGE_FILE=$(CURDIR)/.coverage $(BIN)/coverage combine -q
	COVERAGE_FILE=$(CURDIR)/.coverage $(BIN)/coverage report --skip-covered --sort=cover

sample-data: $(STAMP)
	$(BIN)/python scripts/make_sample_data.py sample_data

clean:
	rm -rf out crmlist.duckdb crmlist.duckdb.lock .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
