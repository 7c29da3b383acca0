# Liaison: `make demo` to try it, `make test` to check it. See README.md.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
NODE_STAMP := web_client/node_modules/.installed-stamp
WEB_STAMP  := web_client/dist/index.html
WEB_SOURCES := $(shell find web_client/src web_client/index.html web_client/build.mjs -type f 2>/dev/null)

.PHONY: demo test test-all web lint system-packages bench clean

demo: $(STAMP) $(WEB_STAMP)
	$(BIN)/liaison demo

# The web client's tests, then the suite on SQLite (the embedded default). tools/run-tests also
# starts a private PostgreSQL and Redis for the tests that need them (several processes, cluster).
test: system-packages $(STAMP) $(WEB_STAMP)
	cd web_client && npm test --silent
	tools/run-tests

# `make test`, then the integration tests again with every test on a PostgreSQL database of its
# own (LIAISON_TEST_DATABASE=postgresql, see tests/conftest.py), as CI runs it. tests/unit never
# touches a database, so a second run would repeat the first exactly. The browser tests run once:
# every endpoint and socket event they use is tested on PostgreSQL by tests/integration, and
# running them twice took CI (about 12.5 minutes) too near its 15-minute budget.
# To run them on PostgreSQL too: LIAISON_TEST_DATABASE=postgresql tools/run-tests tests/e2e
test-all: test
	LIAISON_TEST_DATABASE=postgresql tools/run-tests tests/integration

web: $(WEB_STAMP)

lint: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check server signaling consult_notes tests bench
	$(BIN)/ruff format --check server signaling consult_notes tests bench
	$(BIN)/mypy
	cd web_client && npm run --silent typecheck

system-packages:
	tools/ensure-system-packages

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11+ is needed: install python3 and python3-venv"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(NODE_STAMP): web_client/package.json web_client/package-lock.json
	tools/ensure-system-packages node
	cd web_client && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(WEB_STAMP): $(NODE_STAMP) $(WEB_SOURCES)
	cd web_client && npm run --silent build

# Figures, not a test: Liaison's signaling relay against a bare aiohttp relay (bench/README.md).
# The full run: $(BIN)/python bench/signaling.py (10 and 100 rooms), then --rooms 1000.
bench: $(STAMP)
	$(BIN)/python bench/signaling.py --rooms 10

clean:
	rm -rf $(VENV) web_client/node_modules web_client/dist
