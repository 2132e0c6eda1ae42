# Two set-up commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: all install web web-test demo test lint typecheck unit quick serve bench clean

# `make`: the Python environment and the admin UI's build (web/dist, served at /app).
all: install web

# -qq: errors only. This machine's pip configuration names package indexes that hold only some
# packages, and pip warns once per package it finds missing there (noise, not a problem).
$(STAMP): pyproject.toml
	@echo "installing Shopflow and its dependencies into $(VENV) ..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade "pip>=24"
	$(BIN)/python -m pip install -qq -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The admin UI (web/, docs/decisions/0013-admin-ui-stack.md): npm ci from the committed lock, then
# a Vite build into web/dist (neither is committed). The Python package runs without them.
WEB_DEPS := web/node_modules/.installed
WEB_BUILD := web/dist/index.html
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json

$(WEB_DEPS): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $(WEB_DEPS)

$(WEB_BUILD): $(WEB_DEPS) $(WEB_SOURCES)
	cd web && npm run --silent build -- --logLevel warn

web: $(WEB_BUILD)

# Vitest component tests (happy-dom; no browser).
web-test: $(WEB_DEPS)
	cd web && npx vitest run --silent

# The end-to-end tests drive Debian's Chromium through Playwright's executable_path (never
# `playwright install`: no browser download). As root, apt-get installs it when it is missing.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

demo: $(STAMP)
	$(BIN)/shopflow demo

# The house rules (docs/ARCHITECTURE.md): imports go one way (import-linter, .importlinter), no
# module over 600 lines and argparse only in cli/ (tools/check_modules.py).
lint: $(STAMP)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/lint-imports --no-cache
	$(BIN)/python tools/check_modules.py

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit

# Everything but the tests marked slow (each says why): a quick loop while working. `make test` runs all.
quick: $(STAMP)
	$(BIN)/pytest -m "not slow"

# SHOPFLOW_REQUIRE_WEB=1: the end-to-end tests fail, not skip, when the build or browser is missing.
# TEST_WORKERS processes share the tests (pytest-xdist); each has its own SQLite file and PostgreSQL
# database (tests/conftest.py), so they never see each other's rows.
TEST_WORKERS ?= 2
test: lint typecheck web-test web $(CHROMIUM)
	SHOPFLOW_REQUIRE_WEB=1 $(BIN)/pytest -n $(TEST_WORKERS)

serve: $(STAMP)
	$(BIN)/shopflow serve

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache web/node_modules web/dist build/screenshots
