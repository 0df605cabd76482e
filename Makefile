# The README's commands. CI (.ci/run) calls these same targets.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: install migrate run test lint format bench bench-check clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is needed")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createcachetable

run: migrate
	$(PY) manage.py seed_demo --if-empty --orders 2000
	PY=$(PY) PORT=$(PORT) ./scripts/run.sh

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Each on its own throwaway SQLite database; the PostgreSQL ones (api, chaos, peers) and every
# figure with its command are in docs/benchmarks.md.
bench: install
	$(PY) bench/jobs.py
	$(PY) bench/workflow.py
	$(PY) bench/perform.py
	$(PY) bench/analytics.py
	$(PY) bench/queues.py
	$(PY) bench/ml.py

# Fails when README.md or docs/benchmarks.md quotes a JSON key its script no longer prints.
bench-check: install
	$(PY) bench/check_keys.py

clean:
	rm -rf $(VENV) var build
