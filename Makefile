# Two commands on a fresh machine: `make demo` (one full round) and `make test` (the test suite).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export REMATCH_HOME ?= $(CURDIR)/var
export AIRFLOW_HOME ?= $(REMATCH_HOME)/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: install demo test airflow lint clean

$(BIN)/rematch: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(BIN)/rematch

install: $(BIN)/rematch

demo: install
	$(BIN)/rematch demo

test: install
	$(BIN)/python -m pytest -q

airflow: install
	$(BIN)/airflow standalone

lint: install
	$(BIN)/ruff check rematch_pipeline dags tests
	$(BIN)/mypy rematch_pipeline

clean:
	rm -rf $(REMATCH_HOME)
