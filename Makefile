# lakehouse developer commands. `make run` and `make test` work on a fresh machine
# (Python 3.11 + Java 17): they create .venv and install what they need.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Airflow in its own venv (its pins clash with ours), only to load exported DAGs in tests
AIRFLOW_VENV ?= .venv-airflow
AIRFLOW_VERSION ?= 3.3.2
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed

.PHONY: help install run test test-sail test-jvm lint format typecheck bench bench-medallion clean

help:
	@echo "make run        create .venv, install, run the demo job on the embedded engine"
	@echo "make test       lint + typecheck + tests on Sail + pure-transform tests on JVM Spark"
	@echo "make test-sail  tests on the embedded Sail engine (Delta, end to end)"
	@echo "make test-jvm   pure-transform tests on classic JVM Spark (own pytest process)"
	@echo "make lint       ruff check + ruff format --check"
	@echo "make format     ruff format + ruff check --fix"
	@echo "make typecheck  mypy src/"
	@echo "make bench      benchmarks/: engine start-up (Sail vs JVM), files -> Bronze ingest, demo pipeline + training, TPC-H medallion vs peers"
	@echo "make bench-medallion  TPC-H drops -> Bronze -> Silver -> Gold: ours vs JVM Spark, Polars, DuckDB (SF=1; SF=10)"
	@echo "make clean      remove data/, caches and the venv"

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/lakehouse run

lint: $(STAMP)
	$(BIN)/ruff check src tests jobs benchmarks
	$(BIN)/ruff format --check src tests jobs benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests jobs benchmarks
	$(BIN)/ruff check --fix src tests jobs benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collects no test: treated as success, with a loud line.
PYTEST_OK5 = rc=$$?; if [ $$rc -eq 5 ]; then echo "warning: pytest collected no tests"; exit 0; fi; exit $$rc

$(AIRFLOW_STAMP):
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install -q apache-airflow==$(AIRFLOW_VERSION)
	touch $@

test-sail: $(STAMP) $(AIRFLOW_STAMP)
	LAKEHOUSE_AIRFLOW_PYTHON=$(CURDIR)/$(AIRFLOW_VENV)/bin/python $(BIN)/pytest --engine sail; $(PYTEST_OK5)

test-jvm: $(STAMP)
	$(BIN)/pytest --engine spark -m transform; $(PYTEST_OK5)

test: lint typecheck test-sail test-jvm

SF ?= 1
bench-medallion: $(STAMP)
	$(BIN)/python benchmarks/medallion/bench.py --sf $(SF) --repeat 2 --jvm-repeat 1

bench: $(STAMP) bench-medallion
	$(BIN)/python benchmarks/engine_startup.py
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/train.py

clean:
	rm -rf data .pytest_cache .mypy_cache .ruff_cache $(VENV) $(AIRFLOW_VENV)
