# Every routine task. The first two are the README's: `make serve`, `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
PY := $(VENV)/bin/python
PORT ?= 3000
AGENT_PORT ?= 3001
export PYTHONPATH := $(CURDIR)/layers/shared/python:$(CURDIR)/tools
export SAM_CLI_TELEMETRY := 0
# The SAM CLI's own virtualenv must not see the project's sources (PYTHONPATH above).
SAM := env -u PYTHONPATH $(SAM_VENV)/bin/sam

.PHONY: sim serve test unit integration e2e lint format openapi build build-check bench bench-dispatch bench-callbacks bench-mesh bench-telemetry bench-telemetry-reads bench-fleet relay-image deploy pr clean venv

# Installs .venv when a requirements file changes.
$(VENV)/.installed: requirements-dev.txt layers/shared/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	env -u PYTHONPATH $(SAM_VENV)/bin/pip install --quiet --upgrade pip
	env -u PYTHONPATH $(SAM_VENV)/bin/pip install --quiet -r requirements-sam.txt
	touch $@

venv: $(VENV)/.installed

## serve: the whole API on http://127.0.0.1:$(PORT), agents' base URL (event relay) on :$(AGENT_PORT), local AWS services (FRESH=1: forget the saved state)
serve: $(VENV)/.installed
	PORT=$(PORT) AGENT_PORT=$(AGENT_PORT) $(PY) -m orchestrator_local $(if $(FRESH),--fresh)

## test: lint, sam build, then every test (unit, integration, e2e)
test: lint build-check
	$(PY) -m pytest
	@echo "Without local mode's moto speed patches (moto's own code paths):"
	LOCAL_MOTO_SPEED=0 $(PY) -m pytest -q tests/integration/test_callbacks.py tests/integration/test_dispatch.py tests/integration/test_admission_sweep.py tests/integration/test_execution_reads.py

unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit

integration: $(VENV)/.installed
	$(PY) -m pytest tests/integration

e2e: $(VENV)/.installed
	$(PY) -m pytest tests/e2e

lint: $(VENV)/.installed $(SAM_VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM) validate --lint --region us-east-1

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## openapi: regenerate api/openapi.yaml from template.yaml's routes, tools/openapi_gen/operations.py, the models and api/openapi.base.yaml
openapi: $(VENV)/.installed
	$(PY) -m openapi_gen

## sim: simulated nodes for the local server (NODES=5, LABEL=env=prod, ACTION=restart-agent)
sim: $(VENV)/.installed
	$(PY) -m plexd_sim --nodes $(or $(NODES),5) --label $(or $(LABEL),env=prod) --action $(or $(ACTION),restart-agent)

## build: sam build (no Docker: the layer is built from arm64 wheels)
build: $(SAM_VENV)/.installed
	$(SAM) build

# sam build into a throw-away folder: proves the application builds without Docker.
build-check: $(SAM_VENV)/.installed
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		$(SAM) build --build-dir "$$tmp/build" --cache-dir "$$tmp/cache" >"$$tmp/log" 2>&1 \
		|| { cat "$$tmp/log"; exit 1; }
	@echo "sam build: ok"

## bench: cold-start import cost of every handler, dispatch at scale, callbacks per second
bench: $(VENV)/.installed
	$(PY) bench/coldstart.py
	$(PY) bench/dispatch.py
	$(PY) bench/callbacks.py
	$(PY) bench/mesh.py

## bench-dispatch: wall time and DynamoDB requests of dispatch and fan-out (SIZES=1,100 for a quick run)
bench-dispatch: $(VENV)/.installed
	$(PY) bench/dispatch.py $(if $(SIZES),--sizes $(SIZES))

## bench-mesh: AWS requests per registration and per /state call at 1,000 nodes (SIZES=100 for a quick run)
bench-mesh: $(VENV)/.installed
	$(PY) bench/mesh.py $(if $(SIZES),--sizes $(SIZES))

## bench-callbacks: callbacks per second and requests per callback vs a raw conditional UpdateItem
bench-callbacks: $(VENV)/.installed
	$(PY) bench/callbacks.py $(if $(SIZES),--sizes $(SIZES))

## bench-telemetry: telemetry records/s, AWS requests and stored bytes per record (NODES=1000, KINDS=logs)
bench-telemetry: $(VENV)/.installed
	$(PY) bench/telemetry.py --nodes $(or $(NODES),1000) $(if $(KINDS),--kinds $(KINDS))

## bench-telemetry-reads: latency and S3 requests of a log page over a day of a node's logs (BATCHES=288 for a quick run)
bench-telemetry-reads: $(VENV)/.installed
	$(PY) bench/telemetry_reads.py $(if $(BATCHES),--batches $(BATCHES))

# The event relay's image: tagged with the commit (RELAY_TAG), named RELAY_REPOSITORY (an ECR
# repository URI) when set, else a local name.
RELAY_TAG ?= $(shell git describe --always --dirty --abbrev=12 2>/dev/null || echo dev)
RELAY_IMAGE = $(or $(RELAY_REPOSITORY),action-orchestrator-relay):$(RELAY_TAG)

## relay-image: docker build the event relay's image for linux/arm64 (RELAY_REPOSITORY=<ECR URI>: push it too and print its RelayImageUri)
relay-image:
	docker build --platform linux/arm64 --file relay/Dockerfile --tag $(RELAY_IMAGE) .
ifneq ($(RELAY_REPOSITORY),)
	docker push $(RELAY_IMAGE)
	@echo "RelayImageUri=$$(docker inspect --format '{{index .RepoDigests 0}}' $(RELAY_IMAGE))"
else
	@echo "Built $(RELAY_IMAGE) (set RELAY_REPOSITORY to push it)"
endif

## bench-fleet: NODES agents hold their event streams for SECONDS, then one dispatch to all (NODES=1000 SECONDS=120 TIER=relay|lambda)
bench-fleet: $(VENV)/.installed
	$(PY) bench/fleet.py --nodes $(or $(NODES),1000) --seconds $(or $(SECONDS),120) --tier $(or $(TIER),relay)

deploy: build
	$(SAM) deploy --config-env $(or $(ENV),dev)

pr: test build bench

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .local .pytest_cache .mypy_cache .ruff_cache
