# Two set-up commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit quick serve bench clean

# -qq: errors only. This machine's pip configuration names package indexes that hold only some
# packages, and pip warns once per package it finds missing there (noise, not a problem).
$(STAMP): pyproject.toml
	@echo "installing Shopflow and its dependencies into $(VENV) ..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade "pip>=24"
	$(BIN)/python -m pip install -qq -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

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

test: lint typecheck
	$(BIN)/pytest

serve: $(STAMP)
	$(BIN)/shopflow serve

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
