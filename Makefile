# threadrunner: `make demo` and `make test` are all a newcomer needs. Each sets up .venv by itself.
# `make demo` / `make local` install only the runtime and the local extras; `make test` and the CDK targets add the
# dev extras (CDK, cfn-lint, the tests, ruff, mypy, schemathesis) to the same .venv without reinstalling the rest.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ENV ?= dev
PORT ?= 8765
LOCAL_STAMP := $(VENV)/.installed-local
DEV_STAMP := $(VENV)/.installed-dev
CDK := npx --no-install cdk
NODE_MISSING := Node.js 18+ and npm are needed for the CDK CLI and the CDK library (make test, synth, diff, \
	deploy; make demo and make local need neither): install them from https://nodejs.org/en/download or your \
	package manager, then run make again.

.PHONY: demo test lint typecheck unit integration e2e infra synth deploy diff bench clean local need-node

$(LOCAL_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -e '.[local]'
	touch $@

$(DEV_STAMP): $(LOCAL_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Checked before anything is installed and before npm or npx runs (no bare "npm: command not found").
need-node:
	@command -v node > /dev/null && command -v npm > /dev/null \
		|| { echo "$(NODE_MISSING)" >&2; exit 1; }
	@[ "$$(node -p 'process.versions.node.split(".")[0]')" -ge 18 ] \
		|| { echo "Found Node.js $$(node --version). $(NODE_MISSING)" >&2; exit 1; }

node_modules/.installed: package.json package-lock.json | need-node
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(LOCAL_STAMP)
	$(BIN)/threadrunner demo

local: $(LOCAL_STAMP)
	$(BIN)/threadrunner local --port $(PORT)

test: need-node $(DEV_STAMP) lint typecheck
	$(BIN)/pytest -n 2 --dist loadgroup

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV_STAMP)
	$(BIN)/mypy layers/threadrunner/python/threadrunner local functions infra

unit: $(DEV_STAMP)
	$(BIN)/pytest tests/unit
integration: $(DEV_STAMP)
	$(BIN)/pytest tests/integration
e2e: $(DEV_STAMP)
	$(BIN)/pytest tests/e2e
infra: need-node $(DEV_STAMP)
	$(BIN)/pytest tests/infra

# Offline: no credentials, no Docker, no lookups; the SDK must not wait for an EC2 metadata service either.
synth: need-node $(DEV_STAMP) node_modules/.installed
	AWS_EC2_METADATA_DISABLED=true $(CDK) synth -c env=$(ENV) --quiet
	@echo "CloudFormation template: cdk.out/threadrunner-$(ENV).template.json"

diff: need-node $(DEV_STAMP) node_modules/.installed
	$(CDK) diff -c env=$(ENV)

deploy: need-node $(DEV_STAMP) node_modules/.installed
	$(CDK) deploy -c env=$(ENV)

# Each handler's INIT import time as a ratio to `import openai`, tracing on as in Lambda (fresh interpreters).
bench: $(DEV_STAMP)
	$(BIN)/threadrunner bench

clean:
	rm -rf $(VENV) node_modules cdk.out .build .pytest_cache .mypy_cache .ruff_cache .hypothesis
