# Two commands on a fresh machine:
#   make demo   - install into .venv, load the demo organisation, chat with the bot here
#   make test   - install, start PostgreSQL/Redis if they are down, lint, type-check, test
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo run chat test lint typecheck pytest fuzz services catalogues install

install: $(STAMP) catalogues

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

catalogues: $(STAMP)
	$(BIN)/python scripts/i18n.py --compile

demo: install
	$(BIN)/thidua demo

run: install
	$(BIN)/thidua run

chat: install
	$(BIN)/thidua chat

services:
	bash scripts/services.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy bot handlers storage tests bench

pytest: install services
	$(BIN)/pytest -q

test: lint typecheck pytest

# The property-based tests with 10,000 examples per property and per conversation step.
fuzz: install services
	THIDUA_FUZZ=full $(BIN)/pytest -q -m fuzz
