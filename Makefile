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
.PHONY: help setup test bench docs notebooks notebooks-check teacher-edition demo-cgi demo-wsgi demo-asgi demo-gunicorn demo-uvicorn clean

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

test: setup ## run the whole test suite (unit, real-socket, end-to-end, every notebook in quick mode)
	$(PY) -m pytest

bench: setup ## benchmark every server on the same site (quick matrix, ~2 min): table and plots
	$(PY) -m scripts.bench --quick
	$(PY) -m scripts.plots results/quick.json

docs: setup ## render the annotated source as side-by-side pages into var/docs/ (prints the index)
	$(PY) -m scripts.render_docs --out var/docs

notebooks: setup ## start Jupyter Lab on the notebooks/ folder (it prints the URL to open)
	cd notebooks && ../$(PY) -m jupyter lab --no-browser --ServerApp.ip=$(HOST)

notebooks-check: setup ## run every notebook headless in quick mode, then its teacher edition (all checks pass)
	$(PY) -m scripts.check_notebooks
	$(PY) -m scripts.check_notebooks --teacher

teacher-edition: setup ## write the notebooks with their solutions in place to var/teacher-edition/
	$(PY) -m scripts.teacher_edition

# The demos serve sample_site in the foreground with the teaching views on; Ctrl-C stops them.
demo-cgi: setup ## the site through the toy CGI runner: a new Python process per request
	@echo "Open http://$(HOST):$(PORT)/ -- every request starts a new Python process that imports"
	@echo "Django from scratch (a few hundred ms each): that start-up cost is the lesson of CGI."
	$(PY) -m servers.cgi_server sample_site/cgi-bin/django.py --bind $(HOST):$(PORT) --trace --server-timing

demo-wsgi: setup ## the site through the toy WSGI server (threads), tracing each request
	@echo "Open http://$(HOST):$(PORT)/ -- each request's environ is printed below."
	$(PY) -m servers.wsgi_server sample_site.wsgi:application --bind $(HOST):$(PORT) --trace --server-timing

demo-asgi: setup ## the site through the toy ASGI server (asyncio), tracing scope and messages
	@echo "Open http://$(HOST):$(PORT)/ -- each request's scope and messages are printed below;"
	@echo "http://$(HOST):$(PORT)/chat is a chat room over WebSocket (open it in two tabs)."
	$(PY) -m servers.asgi_server sample_site.asgi:application --bind $(HOST):$(PORT) --trace --server-timing

demo-gunicorn: setup ## the same site under gunicorn (the command from Django's docs)
	@echo "Open http://$(HOST):$(PORT)/"
	$(VENV)/bin/gunicorn sample_site.wsgi --bind $(HOST):$(PORT)

demo-uvicorn: setup ## the same site under uvicorn
	@echo "Open http://$(HOST):$(PORT)/"
	$(PY) -m uvicorn sample_site.asgi:application --host $(HOST) --port $(PORT)

clean: ## remove .venv, the database and benchmark results
	rm -rf $(VENV) var results/*.csv results/*.json results/*.png results/*.svg
