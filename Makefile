# lakehouse developer commands. `make run` and `make test` work on a fresh machine
# (Python 3.11 + Java 17): they create .venv and install what they need.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# Two install levels into the same venv: `make run` needs only the package and its runtime
# dependencies (RUN_STAMP); `make install`/`make test` add the dev, bench and docs extras (STAMP).
# Both install with uv (pinned in constraints.txt, bootstrapped into the venv with pip): a
# cold install takes about a third of pip's time.
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
UV := $(BIN)/python -m uv
UV_INSTALL := $(UV) pip install --quiet --python $(BIN)/python -c constraints.txt
# Airflow in its own venv (its pins clash with ours), only to load exported DAGs in tests
AIRFLOW_VENV ?= .venv-airflow
AIRFLOW_VERSION ?= 3.3.2
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed
# JVM jars resolved by Maven from Maven Central (jvm/pom.xml; cached in ~/.m2, never committed):
# delta-spark + delta-storage for JVM Spark, pgjdbc for the SQL endpoint's JDBC test
JARS_DIR := $(CURDIR)/build/jars
JARS_STAMP := $(JARS_DIR)/.resolved

.PHONY: help install jars run test test-sail test-jvm test-cluster test-sail-then-cluster test-jvm-logged lint format typecheck docs bench bench-medallion clean

help:
	@echo "make run        create .venv, install the runtime dependencies only, run the demo job on the embedded engine"
	@echo "make install    create .venv and install everything the tests need (extras dev + bench + docs)"
	@echo "make jars       resolve the Delta (JVM Spark) and PostgreSQL JDBC jars from Maven Central into build/jars"
	@echo "make test       lint + typecheck, then tests on Sail and then the distributed ones, beside the Delta and JVM tests on JVM Spark + delta-spark"
	@echo "make test-sail  tests on the embedded Sail engine (Delta, end to end, JDBC client)"
	@echo "make test-jvm   transforms, Delta tests and JVM-only tests on JVM Spark + delta-spark (own pytest process)"
	@echo "make test-cluster  the tests marked distributed on Sail's local-cluster mode (a driver and 2 workers over RPC)"
	@echo "make lint       ruff check + ruff format --check + size limits and import cycles (tests/test_structure.py, tests/test_import_cycles.py)"
	@echo "make format     ruff format + ruff check --fix"
	@echo "make typecheck  mypy --strict on src/"
	@echo "make docs       build the documentation site into site/ (mkdocs build --strict; also run by make test-sail)"
	@echo "make bench      benchmarks/: engine start-up (Sail vs JVM), files -> Bronze ingest, demo pipeline + training, TPC-H medallion vs peers"
	@echo "make bench-medallion  TPC-H drops -> Bronze -> Silver -> Gold: ours vs JVM Spark, Polars, DuckDB (SF=1; SF=10)"
	@echo "make clean      remove data/, caches and the venv"

# the venv with uv in it (pip only bootstraps uv; uv installs everything else)
$(BIN)/uv: constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt uv
	touch $@

# runtime dependencies only: what `make run` (the demo job on the embedded engine) needs
$(RUN_STAMP): pyproject.toml constraints.txt $(BIN)/uv
	$(UV_INSTALL) -e .
	touch $@

# everything the tests, lint, typecheck and benchmarks need
$(STAMP): pyproject.toml constraints.txt $(BIN)/uv
	$(UV_INSTALL) -e ".[dev,bench,docs]"
	touch $@ $(RUN_STAMP)

install: $(STAMP)

$(JARS_STAMP): jvm/pom.xml
	@command -v mvn >/dev/null 2>&1 || { echo "error: mvn not found (Maven resolves the JVM jars: apt-get install maven)"; exit 1; }
	rm -rf $(JARS_DIR)
	mvn -q -B -f jvm/pom.xml process-resources
	touch $@

jars: $(JARS_STAMP)

run: $(RUN_STAMP)
	$(BIN)/lakehouse run

lint: $(STAMP)
	$(BIN)/ruff check src tests jobs benchmarks docs
	$(BIN)/ruff format --check src tests jobs benchmarks docs
	$(BIN)/python -m pytest -q tests/test_structure.py tests/test_import_cycles.py -p no:cacheprovider

format: $(STAMP)
	$(BIN)/ruff format src tests jobs benchmarks docs
	$(BIN)/ruff check --fix src tests jobs benchmarks docs

typecheck: $(STAMP)
	$(BIN)/mypy

# The site: mkdocs.yml + docs/ (docs/hooks.py generates the configuration reference).
# tests/docs/test_site.py runs the same strict build, so make test checks it too.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# pytest exits 5 when it collects no test: treated as success, with a loud line.
PYTEST_OK5 = rc=$$?; if [ $$rc -eq 5 ]; then echo "warning: pytest collected no tests"; exit 0; fi; exit $$rc

$(AIRFLOW_STAMP): | $(BIN)/uv
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(UV) pip install --quiet --python $(AIRFLOW_VENV)/bin/python apache-airflow==$(AIRFLOW_VERSION)
	touch $@

test-sail: $(STAMP) $(AIRFLOW_STAMP) $(JARS_STAMP)
	LAKEHOUSE_AIRFLOW_PYTHON=$(CURDIR)/$(AIRFLOW_VENV)/bin/python LAKEHOUSE_JDBC_JARS=$(JARS_DIR)/jdbc \
	  $(BIN)/pytest --engine sail --durations=15; $(PYTEST_OK5)

# JVM Spark + delta-spark: the pure transforms, the in-process Delta tests (marker `delta`) and
# the JVM-only ones (marker `jvm`: demo job on JVM vs Sail, cross-engine tables, standalone
# cluster, Spark Connect server)
test-jvm: $(STAMP) $(JARS_STAMP)
	LAKEHOUSE_DELTA_JARS=$(JARS_DIR)/delta $(BIN)/pytest --engine spark -m "transform or delta or jvm" --durations=15; $(PYTEST_OK5)

# Sail's local-cluster mode (driver and 2 workers talking RPC in one process): the tests marked
# `distributed` (demo job, Silver SCD1/SCD2 and incremental refine, Bronze file and HTTP ingest).
# The SAIL_* variables reach the in-process session and the CLI subprocesses the e2e tests start.
test-cluster: $(STAMP)
	SAIL_MODE=local-cluster SAIL_CLUSTER__WORKER_INITIAL_COUNT=2 \
	  $(BIN)/pytest --engine sail -m distributed --durations=10; $(PYTEST_OK5)

# `make test`: lint and typecheck, then two lanes side by side (2 cores): the Sail invocation
# followed by the distributed one, beside the JVM one. The JVM lane is the longer one (the demo
# job with a spark-submit per task, the Connect servers), so the short distributed invocation
# follows the Sail one (on 2 cores the JVM tests' start-ups and spark-submit waits leave room
# for the Sail tests). The Sail lane prints as it goes; the JVM invocation writes
# build/test-logs/ and prints it when it ends. Every invocation runs even when another fails,
# and make exits non-zero if any did.
TEST_LOGS := build/test-logs
test: lint typecheck $(AIRFLOW_STAMP) $(JARS_STAMP)
	$(MAKE) --no-print-directory -k -j2 test-sail-then-cluster test-jvm-logged

test-sail-then-cluster:
	@$(MAKE) --no-print-directory test-sail; sail=$$?; \
	  $(MAKE) --no-print-directory test-cluster; cluster=$$?; \
	  [ $$sail -eq 0 ] && [ $$cluster -eq 0 ]

test-jvm-logged:
	@mkdir -p $(TEST_LOGS)
	@echo "== make test-jvm: output in $(TEST_LOGS)/test-jvm.log, printed when it ends"
	@$(MAKE) --no-print-directory test-jvm > $(TEST_LOGS)/test-jvm.log 2>&1; jvm=$$?; \
	  echo "== make test-jvm (exit $$jvm):"; cat $(TEST_LOGS)/test-jvm.log; \
	  [ $$jvm -eq 0 ]

SF ?= 1
bench-medallion: $(STAMP)
	$(BIN)/python benchmarks/medallion/bench.py --sf $(SF) --repeat 2 --jvm-repeat 1 --keep-going

bench: $(STAMP) bench-medallion
	$(BIN)/python benchmarks/engine_startup.py
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/train.py

clean:
	rm -rf data build site .pytest_cache .mypy_cache .ruff_cache $(VENV) $(AIRFLOW_VENV)
