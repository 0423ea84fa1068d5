# FiberStack developer entry points. On a fresh machine:
#   make run    start the whole product (private PostgreSQL + Redis under var/, daphne, celery, agent)
#   make test   run the full test suite          (make test PYTEST_ARGS="tests/hosts -x")
#   make stop   stop the private PostgreSQL/Redis (make run leaves them up for a fast restart)
#   make clean  stop them and delete var/ (development database included)
# Set DATABASE_URL / REDIS_URL to use existing servers instead of the private ones.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
REQUIREMENTS := $(wildcard requirements/*.txt)
REQ_STAMP := $(VENV)/.requirements.stamp
NPM_STAMP := node_modules/.fiberstack.stamp
DEVSTACK := $(PY) -m fiberstack.devstack
PYTEST_ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1

# Front-end dependencies only when the project declares some.
FRONTEND := $(if $(wildcard package.json),$(NPM_STAMP))

.PHONY: help setup run test lint bench outdated stop clean

help:
	@sed -n '2,6p' Makefile | sed 's/^# \{0,1\}//'

setup: $(REQ_STAMP) $(FRONTEND)

run: setup
	$(DEVSTACK) run

test: setup
	$(DEVSTACK) test $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	@for f in bench/ingest.py bench/query.py; do \
	  if [ -f "$$f" ]; then echo "== $$f"; $(DEVSTACK) exec $(PY) "$$f"; fi; \
	done

# Pinned dependencies with newer releases (PyPI and npm); bump patch releases, read the notes for others.
outdated: setup
	$(VENV)/bin/pip list --outdated
	@npm outdated || true

stop:
	@if [ -x $(PY) ]; then $(DEVSTACK) stop; else echo "no $(VENV); nothing was started by make run/test"; fi

clean: stop
	rm -rf var

# The virtualenv: Python 3.11+ (python3.11 preferred). Debian's python3 lacks ensurepip until
# python3-venv is installed, which root may do through apt-get like any other missing package.
$(PY):
	@py="$$(command -v python3.11 || command -v python3 || true)"; \
	if [ -z "$$py" ]; then echo "error: python3.11 (or python3 >= 3.11) is required" >&2; exit 1; fi; \
	if ! "$$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then \
	  echo "error: $$py is Python $$("$$py" -c 'import platform; print(platform.python_version())'); FiberStack needs 3.11+" >&2; \
	  exit 1; \
	fi; \
	echo "creating $(VENV) with $$py"; \
	if ! "$$py" -m venv $(VENV); then \
	  rm -rf $(VENV); \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing python3-venv with apt-get"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv; \
	    "$$py" -m venv $(VENV); \
	  else \
	    echo "error: '$$py -m venv' failed; install the venv module (Debian/Ubuntu: sudo apt-get install python3-venv)" >&2; \
	    exit 1; \
	  fi; \
	fi

# Reinstall only when a requirements file changed since the last successful install.
$(REQ_STAMP): $(REQUIREMENTS) | $(PY)
	$(PY) -m pip install -r requirements/dev.txt
	@touch $@

$(NPM_STAMP): package.json $(wildcard package-lock.json)
	@if ! command -v npm >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    DEBIAN_FRONTEND=noninteractive apt-get update && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends npm; \
	  else \
	    echo "error: npm is required for the front-end dependencies (Debian/Ubuntu: sudo apt-get install npm)" >&2; \
	    exit 1; \
	  fi; \
	fi
	@if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; \
	else echo "warning: no package-lock.json; running npm install (commit the lock file it writes)"; \
	  npm install --no-audit --no-fund; fi
	@mkdir -p $(@D) && touch $@
