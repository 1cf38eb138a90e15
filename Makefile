# Three commands on a fresh machine: `make demo`, `make test` and `make sync SOURCE=PATH` (README, "Quick start").
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# PostgreSQL is opt-in with one variable; SQLite under .local/ is the embedded default.
ifdef SYNC_POSTGRES_URL
export DAGSTER_HOME := $(CURDIR)/.local/dagster_home_pg
INSTANCE_YAML := dagster.yaml
export SYNC_WAREHOUSE_URL ?= $(SYNC_POSTGRES_URL)
else
export DAGSTER_HOME := $(CURDIR)/.local/dagster_home
INSTANCE_YAML := dagster_sqlite.yaml
endif

.PHONY: demo sync test ui bench lint validate instance clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

instance:
	@mkdir -p $(DAGSTER_HOME)
	@cp $(INSTANCE_YAML) $(DAGSTER_HOME)/dagster.yaml

demo: $(STAMP) instance
	$(BIN)/python -m sync_assets.demo_run $(DEMO_ARGS)

# a finance user's own case: `make sync SOURCE=path/to/drop [SYNC_ARGS="--entity US01 --from 2025-01 --to 2025-03"]`
sync: $(STAMP) instance
	@test -n "$(SOURCE)" || { echo "usage: make sync SOURCE=PATH (a file-drop folder, docs/data-contract.md)"; exit 2; }
	$(BIN)/billing-sync run --source "$(SOURCE)" $(SYNC_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

UI_PORT ?= 3000
ui: $(STAMP) instance
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(UI_PORT)

validate: $(STAMP) instance
	$(BIN)/dagster definitions validate -w workspace.yaml

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf .local
