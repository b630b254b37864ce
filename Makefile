# oms — run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export UV_SYSTEM_CERTS := 1
export UV_NATIVE_TLS := 1
UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
TEST_WORKERS ?= 2  # pytest-xdist processes for make test (each gets its own PostgreSQL database)

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(UV):
	python3 -m pip install --quiet --user uv==0.13.9 || python3 -m pip install --quiet uv==0.13.9

$(BIN)/oms: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --extra test
	@touch $@

# Bytecode: PYTHONDONTWRITEBYTECODE=1 here, so nothing writes .pyc at run time (it is still read) and
# every process would recompile its imports. uv compiles site-packages (~5 s once, then only what changed).
$(VENV)/.bytecode: $(BIN)/oms
	$(UV) sync --frozen --extra test --compile-bytecode
	@touch $@

.PHONY: install
install: $(VENV)/.bytecode ## Build .venv (with .venv/bin/oms) from the lock file; byte-compile it and src/
	@$(BIN)/python -m compileall -q src

.PHONY: run
run: install ## Install, migrate, load demo data into a new store, print an admin key and dashboard sign-in, serve on :8000
	$(BIN)/oms db upgrade
	$(BIN)/oms demo --if-empty
	$(BIN)/oms keys create --role admin --name "make-run-admin" --replace
	$(BIN)/oms users create admin --role admin --if-absent
	@echo "dashboard: http://$(HOST):$(PORT)/  (sign in as above)"
	$(BIN)/oms serve --host $(HOST) --port $(PORT)

.PHONY: lint
lint: install ## Ruff, mypy, and the import contracts (pyproject: layers, no cycles, a plain domain)
	$(BIN)/ruff check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

.PHONY: browser
browser: ## Install Debian's Chromium for the dashboard's browser tests (Playwright drives it)
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

.PHONY: test
test: install lint browser ## Lint, start PostgreSQL, run the whole suite on SQLite and PostgreSQL (`stress` tests left to make stress)
	@set -e; url=$$(scripts/pg.sh start); trap 'scripts/pg.sh stop' EXIT; \
	  OMS_TEST_PG_URL=$$url $(BIN)/pytest -n $(TEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

.PHONY: fuzz
fuzz: install ## Long Schemathesis run: all phases and checks, SQLite and PostgreSQL (OMS_FUZZ_MAX_EXAMPLES, default 100)
	@set -e; url=$$(scripts/pg.sh start); trap 'scripts/pg.sh stop' EXIT; \
	  OMS_TEST_PG_URL=$$url OMS_FUZZ_STORES=sqlite,postgresql OMS_FUZZ_PHASES=examples,coverage,fuzzing,stateful \
	  OMS_FUZZ_MAX_EXAMPLES=$${OMS_FUZZ_MAX_EXAMPLES:-100} $(BIN)/pytest tests/api/test_openapi_fuzz.py -q -p no:cacheprovider

.PHONY: bench
bench: install ## Benchmarks at 1M waiting lines on SQLite and PostgreSQL (OMS_BENCH_QUICK=1: a small run)
	@set -e; scripts/pg.sh start >/dev/null; trap 'scripts/pg.sh stop' EXIT; \
	  OMS_BENCH_PG=postgresql://postgres@127.0.0.1:$${OMS_PG_PORT:-54329} $(BIN)/python -m bench.run

.PHONY: soak
soak: install ## The engine's Hypothesis state machine at scale (OMS_STATEFUL_EXAMPLES, default 2000) on both stores
	@set -e; url=$$(scripts/pg.sh start); trap 'scripts/pg.sh stop' EXIT; \
	  OMS_TEST_PG_URL=$$url OMS_STATEFUL_EXAMPLES=$${OMS_STATEFUL_EXAMPLES:-2000} \
	  $(BIN)/pytest tests/integration/test_engine_state_machine.py -q -p no:cacheprovider

.PHONY: stress
stress: install ## Long runs (docs/reliability.md): every `stress` test (OMS_STRESS_SCALE, default 1), the state machine (OMS_STATEFUL_EXAMPLES, 2000), Schemathesis (OMS_FUZZ_MAX_EXAMPLES, 200) on both stores
	@url=$$(scripts/pg.sh start) || exit 1; trap 'scripts/pg.sh stop' EXIT; rc=0; \
	  OMS_TEST_PG_URL=$$url OMS_STRESS_SCALE=$${OMS_STRESS_SCALE:-1} \
	    $(BIN)/pytest -m stress -s -p no:cacheprovider $(PYTEST_ARGS) || rc=1; \
	  OMS_TEST_PG_URL=$$url OMS_STATEFUL_EXAMPLES=$${OMS_STATEFUL_EXAMPLES:-2000} \
	    $(BIN)/pytest tests/integration/test_engine_state_machine.py -q -p no:cacheprovider || rc=1; \
	  OMS_TEST_PG_URL=$$url OMS_FUZZ_STORES=sqlite,postgresql OMS_FUZZ_PHASES=examples,coverage,fuzzing,stateful \
	    OMS_FUZZ_MAX_EXAMPLES=$${OMS_FUZZ_MAX_EXAMPLES:-200} \
	    $(BIN)/pytest tests/api/test_openapi_fuzz.py -q -p no:cacheprovider -k survives || rc=1; \
	  exit $$rc

.PHONY: pg-start
pg-start: ## Start the private PostgreSQL used by tests (prints its URL)
	@scripts/pg.sh start

.PHONY: pg-stop
pg-stop: ## Stop the private PostgreSQL
	@scripts/pg.sh stop

.PHONY: clean
clean: ## Remove the virtualenv, caches and local stores
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis oms.db oms.db-*
