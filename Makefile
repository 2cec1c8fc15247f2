# Two commands for a fresh machine with python3, pip and make: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

## make demo: install, start the built-in sandbox CRM(s), run the whole pipeline, print the results
demo: $(STAMP)
	$(BIN)/crm-connector --lang en demo --workdir .demo

## make test: install with test extras and run the suite (PostgreSQL tests need CRM_TEST_PG_URL or a local server)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/store_upsert.py

clean:
	rm -rf $(VENV) .demo *.egg-info
