# Patto: the commands of the README. `make` alone lists them.

.DEFAULT_GOAL := help
SHELL := /bin/bash
CARGO ?= cargo
VENV ?= .venv
PYTHON ?= python3
# Admin URL of the PostgreSQL server the tests create their databases on.
PG_ADMIN_URL ?= postgres://postgres@127.0.0.1:5432/postgres
# nextest when installed (faster, one process per test), else cargo test.
TEST_RUNNER := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo "nextest run" || echo test)

.PHONY: help run test test-rust test-e2e lint schema bench k8s-validate

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

run: ## Run the whole platform: seven gRPC services + GraphQL gateway, SQLite, demo data
	$(CARGO) run --bin patto

test: test-rust test-e2e k8s-validate ## Run every test (PostgreSQL tests run when the local server answers)

# PostgreSQL-backed tests read PATTO_TEST_POSTGRES_URL; it is set only when the server answers,
# so a laptop without PostgreSQL still runs the rest (CI sets PATTO_REQUIRE_POSTGRES=1).
test-rust:
	@if psql "$(PG_ADMIN_URL)" -Atqc 'select 1' >/dev/null 2>&1; then \
		export PATTO_TEST_POSTGRES_URL="$(PG_ADMIN_URL)"; echo "PostgreSQL at $(PG_ADMIN_URL): its tests run"; \
	else echo "PostgreSQL not reachable at $(PG_ADMIN_URL): its tests are skipped"; fi; \
	$(CARGO) $(TEST_RUNNER) --workspace

$(VENV)/.installed: tests/e2e/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt
	touch $@

test-e2e: $(VENV)/.installed
	$(CARGO) build --bin patto
	$(VENV)/bin/pytest -q tests/e2e

lint: ## Formatting, clippy with warnings as errors, buf lint of the contracts
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	cd proto && npm_config_update_notifier=false npx --yes @bufbuild/buf@1.75.0 lint

schema: ## Print the gateway's GraphQL schema into gateway/schema.graphql
	$(CARGO) run -q --bin patto -- --print-schema > gateway/schema.graphql
	@echo "wrote gateway/schema.graphql"

bench: ## Benchmark gRPC and the gateway (release binaries) against an in-run baseline
	$(CARGO) build --release -q -p patto-culture -p patto-gateway
	$(CARGO) run --release -q -p patto-bench

k8s-validate: ## Render every k8s overlay, validate it (schemas, invariants, checkov: 0 failed), check its snapshot
	bash k8s/validate.sh
