# Two commands do all set-up on a fresh machine (Python 3.11 + pip):
#   make demo   run the migration DAG against the local sandbox and print the reconciliation
#               (make demo PLAN=sandbox_multi: the multi-schema world, one lane per schema;
#                make demo DRY_RUN=1: change nothing, print the consolidated dry-run plan)
#   make test   lint + the whole test suite
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)/include$(if $(PYTHONPATH),:$(PYTHONPATH),)

.PHONY: install demo test lint sandbox-start sandbox-stop airflow-db airflow clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt plugins/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	# the library as an Airflow provider (connection types, Test button, extra links); editable: plugins/ is the source
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e plugins
	@touch $(STAMP)

$(AIRFLOW_HOME)/airflow.db: $(STAMP)
	@mkdir -p $(AIRFLOW_HOME)
	$(VENV)/bin/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/db-migrate.log; exit 1)

airflow-db: $(AIRFLOW_HOME)/airflow.db

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(STAMP) airflow-db
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP) airflow-db
	$(PY) -m scripts.demo $(if $(PLAN),--plan $(PLAN)) $(if $(DRY_RUN),--dry-run) $(if $(WORLD),--world $(WORLD))

# The Airflow CLI against this project (AIRFLOW_HOME, dags and plugins folders set above), e.g.
#   make airflow ARGS="dags list"        make airflow ARGS="dags unpause segment_to_rudderstack__prod"
airflow: $(STAMP) airflow-db
	$(VENV)/bin/airflow $(ARGS)

sandbox-start: $(STAMP)
	$(PY) -m sandbox start

sandbox-stop: $(STAMP)
	$(PY) -m sandbox stop

clean:
	rm -rf $(AIRFLOW_HOME) .sandbox reports
