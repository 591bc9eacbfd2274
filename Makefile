# One command on a fresh machine: `make bench` (the main job) or `make test`.
# Every target depends on `setup`, which creates .venv, installs requirements.txt
# and creates and seeds the database; it does nothing when nothing changed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.requirements.stamp
DB     := var/db.sqlite3
HOST   ?= 127.0.0.1
PORT   ?= 8000

.DEFAULT_GOAL := help
.PHONY: help setup test demo-cgi demo-wsgi demo-asgi demo-gunicorn demo-uvicorn clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(STAMP) $(DB) ## create .venv, install requirements.txt, migrate and seed the database

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed, found " + sys.version.split()[0])'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(DB): $(STAMP) $(wildcard sample_site/*/migrations/*.py sample_site/*/management/commands/*.py)
	$(PY) sample_site/manage.py migrate --noinput
	$(PY) sample_site/manage.py seed_products
	touch $@

test: setup ## run the whole test suite (unit, real-socket, end-to-end)
	$(PY) -m pytest

clean: ## remove .venv, the database and benchmark results
	rm -rf $(VENV) var results/*.csv results/*.json results/*.png results/*.svg
