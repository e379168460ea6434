# Conveyor's developer commands. Each sets up .venv first when it is missing
# or older than pyproject.toml, so a fresh clone needs nothing else.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Migrate conveyor.db, enqueue the demo jobs and run a worker (Ctrl-C stops it).
run: $(STAMP)
	$(BIN)/python -m examples.demo
	$(BIN)/conveyor run --app examples.tasks

## Run the whole test suite.
test: $(STAMP)
	$(BIN)/pytest

## ruff check, ruff format --check and mypy --strict.
lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/ruff format --check src tests examples benchmarks
	$(BIN)/mypy --strict src

## Measure Conveyor against the raw limit of each store.
bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) conveyor.db conveyor.db-wal conveyor.db-shm
