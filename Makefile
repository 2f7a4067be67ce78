# Two commands on a fresh machine:
#   make demo   - install the bot (runtime only) into .venv, load the demo organisation, chat
#   make test   - install with the test tools, start PostgreSQL/Redis if down, lint, type-check, test
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
RUNTIME = $(VENV)/.runtime
STAMP   = $(VENV)/.installed
# Test workers: tests are independent (own databases, ports, temporary folders), so they run
# side by side; 2 fits the 2-core machines this runs on. `make test WORKERS=0` runs in one.
# loadgroup: the tests of one xdist_group (the wheel built once) stay on one worker.
WORKERS ?= 2
PYTEST_PARALLEL = -n $(WORKERS) --dist loadgroup
MIN_VENV ?= .venv-min

.PHONY: demo run chat test lint typecheck pytest fuzz services catalogues install runtime \
	test-min constraints wheel

install: $(STAMP) catalogues

# The bot and its dependencies, pinned by constraints.txt as a deployment is: what `make demo`
# needs, without the test tools (Playwright and the rest).
$(RUNTIME): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint constraints.txt -e .
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(BIN)/python -m pip install --quiet --constraint constraints.txt -e '.[dev]'
	touch $(STAMP)

runtime: $(RUNTIME) catalogues

catalogues: $(RUNTIME)
	$(BIN)/python scripts/i18n.py --compile

demo: runtime
	$(BIN)/thidua demo

run: runtime
	$(BIN)/thidua run

chat: runtime
	$(BIN)/thidua chat

services:
	bash scripts/services.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy bot handlers storage tests bench

pytest: install services
	$(BIN)/pytest -q $(PYTEST_PARALLEL)

test: lint typecheck pytest

# The tests against the declared minimum versions of the dependencies (constraints-min.txt,
# the floors of pyproject.toml), in a virtualenv of their own.
test-min: services
	test -x $(MIN_VENV)/bin/python || $(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install --quiet --constraint constraints-min.txt -e '.[dev]'
	$(MIN_VENV)/bin/python scripts/i18n.py --compile
	$(MIN_VENV)/bin/pytest -q $(PYTEST_PARALLEL) -p no:cacheprovider

# Rewrite constraints.txt: the newest releases the floors and caps allow, as installed in a
# fresh virtualenv (then run `make test` and commit it).
constraints:
	rm -rf build/constraints-venv
	$(PYTHON) -m venv build/constraints-venv
	build/constraints-venv/bin/python -m pip install --quiet .
	( echo "# Runtime pins for deployments and make demo; regenerate with make constraints."; \
	  build/constraints-venv/bin/python -m pip freeze --exclude thidua-bot ) > constraints.txt
	rm -rf build/constraints-venv

# The wheel (with its compiled catalogues) in dist/, as the container image builds it.
wheel:
	sh deploy/image.sh build . dist

# The property-based tests with 10,000 examples per property and per conversation step.
fuzz: install services
	THIDUA_FUZZ=full $(BIN)/pytest -q -m fuzz
