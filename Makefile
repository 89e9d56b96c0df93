PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DB ?= partnerkpi.duckdb
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo test test-fast bench reliability conformance lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# make demo PORT=8001 HOST=0.0.0.0: another port or address (a taken port is reported before any work)
demo: install
	$(BIN)/partnerkpi demo --db $(DB) --host $(HOST) --port $(PORT) --via-make

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

bench: install
	$(BIN)/python bench/run.py

# the reliability proofs at full scale (issue 11; docs/reliability.md); make test runs them at a quick scale
reliability: install
	PARTNERKPI_RELIABILITY=full $(BIN)/python -m pytest -q -m reliability
	$(BIN)/python reliability/fuzz.py --seconds 60
	$(BIN)/python reliability/load.py --seconds 60 --users 50

# every hand-computed KPI test through the CLI on Spark Connect (10-20 min); make test runs a handful on Spark
conformance: install
	PARTNERKPI_SPARK_CONFORMANCE=full $(BIN)/python -m pytest -q tests/test_oracle_spark.py

lint: install
	$(BIN)/ruff check src tests bench reliability

clean:
	rm -rf $(VENV) partnerkpi.duckdb partnerkpi.duckdb.wal partnerkpi.duckdb.server .pytest_cache
