# Two commands on a fresh machine: `make demo` (one full round) and `make test` (the everyday tests, in minutes);
# `make test-all` runs every test on SQLite and PostgreSQL, the Airflow and Celery runs included (what CI runs).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export REMATCH_HOME ?= $(CURDIR)/var
export AIRFLOW_HOME ?= $(REMATCH_HOME)/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
# Logins with roles, as in the compose file (rematch_pipeline/access.py), for the embedded Airflow's targets only
# (the tests start their own Airflow); `airflow standalone` would force the development-only SimpleAuthManager, so
# `make airflow` starts the components itself.
FAB_AUTH_MANAGER := airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager

.PHONY: install system-deps demo test test-all airflow airflow-init dag lint clean

# WeasyPrint needs Pango, and HarfBuzz's subsetter to embed fonts fast and without timestamps (Debian packages).
system-deps:
	@if ! ldconfig -p 2>/dev/null | grep -q libharfbuzz-subset || ! ldconfig -p 2>/dev/null | grep -q libpango-1.0; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 >/dev/null; \
	  else echo "note: install libpango-1.0-0 and libharfbuzz-subset0 for PDF packets"; fi; \
	fi

$(BIN)/rematch: pyproject.toml constraints.txt | system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(BIN)/rematch

# Installs, then brings the embedded database to this version's schema: the one place migrations run (Docker: the
# airflow-init service).
install: $(BIN)/rematch
	$(BIN)/rematch db upgrade

demo: install
	$(BIN)/rematch demo

# The everyday tier: SQLite only, two workers, without the tests marked slow (Airflow DAG runs, load) or full
# (fuzzing, the clock guard, the long catalogues), which test-all adds.
test: install
	env -u REMATCH_TEST_DATABASE_URL $(BIN)/python -m pytest -q -n 2 -m "not slow and not full"

# Two workers here too: serial, every test took well over an hour on a slow day of the 2-core CI machine.
test-all: install
	$(BIN)/python -m pytest -q -n 2

# The embedded Airflow: its metadata database (SQLite) in $(AIRFLOW_HOME), the project's DAGs, no examples. Migrated
# again when the pinned versions change.
# Init, like the compose file's airflow-init: Airflow's migrations, the project's, then the roles and the logins
# named in AIRFLOW_ADMIN_USERNAME etc. (an unset password is generated into $(AIRFLOW_HOME)/passwords/). `make dag`
# never migrates.
$(AIRFLOW_HOME)/airflow.db airflow-init dag airflow: export AIRFLOW__CORE__AUTH_MANAGER := $(FAB_AUTH_MANAGER)
$(AIRFLOW_HOME)/airflow.db: constraints.txt | $(BIN)/rematch
	mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate
	$(BIN)/rematch db upgrade
	$(BIN)/rematch access sync
	touch $@

airflow-init: $(AIRFLOW_HOME)/airflow.db

# One run of one DAG in this terminal, e.g. `make dag DAG=rematch_round` (airflow dags test; the run's logical date is
# now, so the round DAG solves today's round).
DAG ?= rematch_ingest
dag: airflow-init
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/airflow dags test $(DAG)

# The UI on http://localhost:8080 until Ctrl-C, which stops all four components.
airflow: airflow-init
	export PATH="$(CURDIR)/$(BIN):$$PATH"; trap 'kill $$(jobs -p) 2>/dev/null' EXIT INT TERM; \
	  airflow scheduler & airflow dag-processor & airflow triggerer & airflow api-server --port 8080

lint: install
	$(BIN)/ruff check rematch_pipeline dags tests
	$(BIN)/mypy rematch_pipeline

# Only the checkout's own ./var: an exported REMATCH_HOME may be a real deployment's data, never removed by make.
clean:
	rm -rf $(CURDIR)/var
	@if [ "$(REMATCH_HOME)" != "$(CURDIR)/var" ]; then echo "REMATCH_HOME ($(REMATCH_HOME)) left as it is: make clean removes only ./var"; fi
