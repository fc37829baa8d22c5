# gridcredit: `make demo` runs the main job end to end, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
GRIDCREDIT := $(BIN)/gridcredit
CUSTOMERS ?= 3000
MONTHS ?= 36
SEED ?= 42
DEMO_DIR ?= data/demo-$(CUSTOMERS)x$(MONTHS)-s$(SEED)
SCALES ?= 10000 30000 100000
# `make bench` measures BI too (starts Superset on each scale's warehouse); BENCH_FLAGS= leaves it out.
BENCH_FLAGS ?= --bi
comma := ,
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
# platformdirs (pulled in by dbt and the postgres wheel) warns when this is unset.
export XDG_RUNTIME_DIR ?= /tmp/gridcredit-runtime-$(shell id -u)

.PHONY: help install superset-venv demo test lint docs bench bench-ingest bench-transform bench-ml bench-bi warehouse-start warehouse-stop clean system-packages

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[1m%-18s\033[0m %s\n", $$1, $$2}'
	@echo "  variables: CUSTOMERS=$(CUSTOMERS) MONTHS=$(MONTHS) SEED=$(SEED) WAREHOUSE_URL=<postgresql://...> (optional)"

$(BIN)/.installed: pyproject.toml
	@mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

superset-venv: ## Create .venv-superset (Superset's pins clash with the pipeline's)
	PYTHON=$(PYTHON) bash superset/install.sh

install: $(BIN)/.installed superset-venv ## Create .venv and .venv-superset with everything the project needs

system-packages: ## Install the system packages the tests need (apt as root; otherwise print the command)
	@scripts/provision-system-packages.sh

warehouse-start: install ## Start the embedded warehouse (no-op with WAREHOUSE_URL)
	$(GRIDCREDIT) warehouse start

warehouse-stop: install ## Stop the embedded warehouse
	$(GRIDCREDIT) warehouse stop

demo: install ## Main job: start the warehouse, generate CUSTOMERS x MONTHS, load, run every stage
	@mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	$(GRIDCREDIT) warehouse start
	test -f $(DEMO_DIR)/manifest.json || $(GRIDCREDIT) generate --customers $(CUSTOMERS) --months $(MONTHS) --seed $(SEED) --out $(DEMO_DIR)
	$(GRIDCREDIT) run --data $(DEMO_DIR)
	$(GRIDCREDIT) policy simulate --policy examples/policy/grade-b-credit-period-30-days.csv --name "Example: grade B credit period 30 days" --replace
	$(GRIDCREDIT) bi up
	$(GRIDCREDIT) bi credentials

lint: install ## ruff on the Python code (sqlfluff runs inside the test suite against the test warehouse)
	$(BIN)/ruff check gridcredit ingestion ml tests bench scripts superset

test: install system-packages lint ## Run every test (lint included); as in CI
	@mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	$(BIN)/python -m pytest -ra --durations=15

docs: install ## Build the dbt docs site (lineage, descriptions) into dbt_project/target
	$(GRIDCREDIT) warehouse start
	$(GRIDCREDIT) dbt docs generate
	@echo "open dbt_project/target/index.html, or: $(GRIDCREDIT) dbt docs serve --port 8081"

bench: $(BIN)/.installed ## Whole pipeline per scale (SCALES="10000 30000 100000" or SCALES=10000,30000) -> bench/results/latest.json, docs/BENCHMARKS.md
	nice -n 10 $(BIN)/python bench/bench_pipeline.py --scales $(subst $(comma), ,$(SCALES)) --months $(MONTHS) $(BENCH_FLAGS)

bench-ingest: install ## Ingestion throughput vs plain COPY -> bench/results/ingest-latest.json
	$(BIN)/python bench/bench_ingest.py --customers $(CUSTOMERS) --months $(MONTHS)

bench-transform: install ## dbt build vs one hand-written statement -> bench/results/transform-latest.json
	$(BIN)/python bench/bench_transform.py --customers $(SCALES) --months $(MONTHS)

bench-ml: install ## Training time and scoring rows/s per model -> bench/results/ml-latest.json
	$(BIN)/python bench/bench_ml.py --customers $(CUSTOMERS) --months $(MONTHS)

bench-bi: install ## p50/p95 chart-data latency per dashboard (needs a running `make demo`) -> bench/results/bi-*.json
	$(GRIDCREDIT) bi up
	$(BIN)/python bench/bench_bi.py --runs 20

clean: ## Stop the warehouse and remove generated data (keeps .venv)
	-$(GRIDCREDIT) warehouse stop
	rm -rf data dbt_project/target dbt_project/logs .pytest_cache
