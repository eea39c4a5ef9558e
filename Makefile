# threadrunner: `make demo` and `make test` are all a newcomer needs. Each sets up .venv by itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ENV ?= dev
STAMP := $(VENV)/.installed
CDK := npx --no-install cdk

.PHONY: demo test lint typecheck unit integration e2e infra synth deploy diff bench clean local

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(STAMP)
	$(BIN)/threadrunner demo

local: $(STAMP)
	$(BIN)/threadrunner local --port 8765

test: lint typecheck
	$(BIN)/pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy layers/threadrunner/python/threadrunner local functions infra

unit: $(STAMP)
	$(BIN)/pytest tests/unit
integration: $(STAMP)
	$(BIN)/pytest tests/integration
e2e: $(STAMP)
	$(BIN)/pytest tests/e2e
infra: $(STAMP)
	$(BIN)/pytest tests/infra

# Offline: no credentials, no Docker, no lookups; the SDK must not wait for an EC2 metadata service either.
synth: $(STAMP) node_modules/.installed
	AWS_EC2_METADATA_DISABLED=true $(CDK) synth -c env=$(ENV) --quiet
	@echo "CloudFormation template: cdk.out/threadrunner-$(ENV).template.json"

diff: $(STAMP) node_modules/.installed
	$(CDK) diff -c env=$(ENV)

deploy: $(STAMP) node_modules/.installed
	$(CDK) deploy -c env=$(ENV)

clean:
	rm -rf $(VENV) node_modules cdk.out .build .pytest_cache .mypy_cache .ruff_cache .hypothesis
