# make run   start the platform on this machine (SQLite + filesystem broker under var/ unless DATABASE_URL/REDIS_URL)
# make prod  the production set on this machine: nginx (TLS) + gunicorn + workers + beat + Redis (AOF) + PostgreSQL
# make test  install what the tests need and run the whole suite (what CI runs)
# make test-fast  the inner loop: the suite without browser, deploy, fault and fuzz tests (PYTEST_ARGS=... to add)
SHELL := /bin/bash
PYTHON ?= python3
VENV := $(HOME)/.cache/ferplatform/venv-$(shell sha256sum pyproject.toml | cut -c1-12)
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian's packages the production set runs (make prod) and the tests start (tests/deploy).
PROD_PACKAGES := nginx redis-server postgresql-client openssl
PROD_TOOLS := /usr/sbin/nginx /usr/bin/redis-server /usr/bin/pg_dump /usr/bin/openssl

.PHONY: venv run prod prod-packages test test-fast lint bench

# The venv is keyed by pyproject.toml's hash: a dependency change builds a fresh one, otherwise it is reused.
venv:
	@if [ ! -x "$(PY)" ]; then echo "creating $(VENV)"; mkdir -p "$(dir $(VENV))" && $(PYTHON) -m venv "$(VENV)"; fi
	@if ! "$(PY)" -c "import torch, torchvision" 2>/dev/null; then \
		"$(PY)" -m pip install 'torch==2.14.1' 'torchvision==0.29.1'; fi
	@if [ "$$(cat "$(VENV)/.ferplatform-installed" 2>/dev/null)" != "$(CURDIR)" ]; then \
		"$(PY)" -m pip install -e '.[test]' && echo "$(CURDIR)" > "$(VENV)/.ferplatform-installed"; fi

# make run names its settings: manage.py, gunicorn and celery default to the production ones.
run: export DJANGO_SETTINGS_MODULE ?= ferplatform.settings.local
run: venv
	$(MANAGE) migrate --noinput
	$(MANAGE) createcachetable
	$(MANAGE) bootstrap
	exec $(PY) scripts/run_all.py

prod-packages:
	@for tool in $(PROD_TOOLS); do [ -x "$$tool" ] || missing=1; done; \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update \
		&& DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y $(PROD_PACKAGES); fi

prod: venv prod-packages
	exec $(PY) scripts/prod.py

test: venv prod-packages
	@if [ ! -x /usr/bin/chromium ]; then \
		$(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium; fi
	@if ! command -v docker-compose >/dev/null; then \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y docker-compose \
		|| echo "docker-compose could not be installed: the compose test will be skipped"; fi
	$(PY) -m pytest $(PYTEST_ARGS)

# Markers in pyproject.toml; tests/conftest.py marks e2e, deploy, faults and fuzz by folder. Needs PostgreSQL and
# Redis like make test (DATABASE_URL, REDIS_URL), no Chromium, nginx or root. It keeps the few tests that go through
# a real Celery worker (marker worker): they are the only check of the worker path outside make test.
# FAST_MARKERS="... and not worker" on the command line leaves them out too.
FAST_MARKERS := not e2e and not deploy and not faults and not fuzz
test-fast: venv
	$(PY) -m pytest -m "$(FAST_MARKERS)" $(PYTEST_ARGS)

lint: venv
	$(PY) -m ruff check apps ferplatform ml tests scripts benchmarks manage.py

bench: venv
	$(PY) benchmarks/bench_import.py
