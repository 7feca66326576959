# One place for every command a developer or CI runs. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Test workers: most tests wait on the sandbox's simulated durations, so 6 workers keep 2 cores busy; work stealing
# keeps the long tests (demo, browser, crash cases) from finishing last on one worker.
TEST_WORKERS ?= 6

.PHONY: help setup demo demo-web test lint format bench sandbox serve clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed  ## create .venv and install the bot with its sandbox and dev tools

demo: setup  ## sandbox AWS + Slack stand-in + the real bot, end to end (under a minute)
	$(BIN)/python -m bot demo

demo-web: setup  ## the same pieces, and the channel as a web page: act as alice or bob (prints its URL)
	$(BIN)/python -m bot demo --web

test: setup  ## the whole test suite in parallel (sandbox AWS, Slack stand-in, subprocess crash tests)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal

lint: setup  ## ruff, as CI runs it
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup  ## fix what ruff can fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup  ## every benchmark; figures printed and written to benchmarks/results/*.json
	$(BIN)/python -m benchmarks.run_all

sandbox: setup  ## the simulated AWS on :4566 until Ctrl-C
	$(BIN)/python -m bot sandbox

serve: setup  ## the Slack bot over HTTP on $$PORT (default 3000)
	$(BIN)/python -m bot serve

clean:  ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
