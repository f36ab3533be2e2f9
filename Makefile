# golem-tasks developer commands. `make install` is implied by every other target.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run yacat compress test lint format bench chaos screenshot clean contract contract-check record-yagna

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The README's first quick-start command: hello world end to end on the embedded
# PostgreSQL and a local devnet.
run: install
	$(BIN)/golem-tasks install
	$(BIN)/golem-tasks run examples/hello_world.py --workers 3 --devnet 5

# The examples of docs/apps.md on a local devnet: yacat (hashcat; endless, Ctrl+C stops
# it) and files in/out (compresses examples/ into ./compressed).
yacat: install
	$(BIN)/golem-tasks install
	$(BIN)/golem-tasks run examples/yacat.py --workers 2 --devnet 3

compress: install
	$(BIN)/golem-tasks install
	$(BIN)/golem-tasks run examples/compress_files.py --workers 2 --devnet 3

test: install
	$(BIN)/pytest -q

# Style, types (mypy, configured in pyproject.toml) and the import contracts
# (import-linter: imports go one way, the devnet stands on its own).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Rewrites BENCHMARKS.md with the figures of this run. The endless-run benchmark feeds
# BENCH_MILLION_TASKS tasks (a million adds about half an hour: BENCH_MILLION_TASKS=1000000).
BENCH_MILLION_TASKS ?= 50000
bench: install
	BENCH_MILLION_TASKS=$(BENCH_MILLION_TASKS) GOLEM_TASKS_BENCH_REPORT=BENCHMARKS.md $(BIN)/pytest -q -m bench -p no:cacheprovider --durations=20 tests/bench

chaos: install
	$(BIN)/pytest -q -m chaos tests/chaos

# The yagna REST contract the tests check the devnet against, regenerated from
# ya-client's OpenAPI files (default ../shared/ya-client-specs; SPECS=DIR for another copy).
SPECS ?= ../shared/ya-client-specs
contract: install
	$(BIN)/python -m tests.contract.generate --specs $(SPECS)

contract-check: install
	$(BIN)/python -m tests.contract.generate --specs $(SPECS) --check

# The README's dashboard screenshot, taken by the browser test (needs Debian's chromium).
screenshot: install
	GOLEM_TASKS_SCREENSHOT=docs/dashboard.png $(BIN)/pytest -q -p no:cacheprovider \
		tests/integration/test_dashboard_browser.py

# Record the real yagna daemon's answers for the conformance suite (tests/conformance/):
# golem-node 0.17.6 from PyPI ships the binary; it goes into its own venv, not the project's.
YAGNA_VENV ?= .yagna-venv
record-yagna: install
	test -x $(YAGNA_VENV)/bin/yagna || ($(PYTHON) -m venv $(YAGNA_VENV) && \
		$(YAGNA_VENV)/bin/pip install --quiet golem-node==0.17.6)
	$(BIN)/python -m tests.conformance.record_yagna --yagna $(YAGNA_VENV)/bin/yagna

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .import_linter_cache *.egg-info
