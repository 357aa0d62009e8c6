# warroom — `make demo` and `make test` work on a machine that has never seen the project.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: demo test test-fast install servers bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/warroom

# Installs the real servers the tests use where this machine allows (root + apt, npm).
servers:
	bash .ci/install-servers

# --dist loadgroup: the tests sharing a costly fixture (Unleash, a module's Prometheus, the big journals:
# ONCE_PER_WORKER in tests/conftest.py) run on one worker, which starts or builds it once; every other
# test goes to whichever worker is free, as with the default `load`.
test: $(STAMP) servers
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(PY) -m pytest -q -n 2 --dist loadgroup --durations=25

# The inner loop, in under two minutes: unit-level tests in one process each, on SQLite files
# and loopback servers. It leaves out every `slow` test (see tests/conftest.py): engines, verbs
# and exporters as processes (tests/process, tests/races, the CLI files), tmux, the console
# under a pilot (tests/tui), real Prometheus, PostgreSQL, Unleash and Chromium. `make test`
# runs them all, and ruff, lint-imports and mypy.
test-fast: $(STAMP)
	$(PY) -m pytest -q -n 2 -m "not slow" --durations=10

bench: $(STAMP) servers
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
