# Jobline developer tasks. `make` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
CLUSTER := hack/cluster/cluster.sh

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

.PHONY: install
install: $(VENV)/.installed ## Create the virtualenv with Jobline and its pinned dev tools

.PHONY: lock
lock: install ## Re-pin constraints.txt from the virtualenv after changing pyproject.toml
	$(BIN)/pip freeze --exclude-editable | grep -v '^jobline' > constraints.txt

.PHONY: crds
crds: install ## Regenerate crds/*.yaml (and the chart's copies) from the pydantic models
	$(PY) -c 'from pathlib import Path; from jobline import crds; crds.write(Path("crds"))'
	cp crds/*.yaml charts/jobline/crds/

.PHONY: lint
lint: install ## ruff check, format check, and the import layers (lint-imports)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd operator && ../$(BIN)/lint-imports ../pyproject.toml

.PHONY: format
format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The unit tests' fakes of our API layer, and the tests that drive the controllers through
# them: checked against the layer's Protocols (jobline.controller.kube), so a fake that
# drifts from what the operator calls fails here. The rest of tests/ is not typed yet.
TYPED_TESTS := tests/unit/fakes.py tests/unit/builders.py tests/unit/test_run_controller.py \
  tests/unit/test_pipeline_controller.py tests/unit/test_leader.py tests/unit/test_log_tails.py \
  tests/unit/test_outages.py

.PHONY: typecheck
typecheck: install ## mypy --strict over operator/, and the unit tests' fakes and controller tests
	$(BIN)/mypy
	$(BIN)/mypy $(TYPED_TESTS)

.PHONY: unit
unit: install ## Fast tests that need no cluster
	$(BIN)/pytest -m "not cluster and not faults and not e2e"

.PHONY: run
run: install ## Quickstart: local control plane (or KUBECONFIG), CRDs, operator, dashboard, a first run
	@hack/run-local.sh

.PHONY: stop
stop: ## Stop the operator and server started by `make run`, and the local control plane
	@for part in operator server; do \
	  pid=$${JOBLINE_CACHE:-$$HOME/.cache/jobline}/$$part.pid; \
	  if [ -f $$pid ]; then kill $$(cat $$pid) 2>/dev/null || true; rm -f $$pid; \
	    echo "==> $$part stopped"; fi; done
	@$(CLUSTER) down

.PHONY: cluster-build
cluster-build: ## Build (or reuse) the control-plane binaries; the first build takes 5-30 minutes
	hack/cluster/build.sh

.PHONY: cluster-up
cluster-up: install ## Start the local control plane (or reuse the running one); prints its kubeconfig
	@$(CLUSTER) up

.PHONY: cluster-down
cluster-down: ## Stop the local control plane and remove its state
	@$(CLUSTER) down

.PHONY: cluster-test
cluster-test: install ## Cluster tests: on KUBECONFIG when set, else on the local plane
	@# Build here rather than inside pytest, whose output capture would hide the progress.
	@if [ -z "$$KUBECONFIG" ]; then hack/cluster/build.sh; fi
	$(BIN)/pytest -m cluster --durations=12
	@echo "==> again, with the operator authenticated as the Helm chart's ServiceAccount"
	$(BIN)/pytest -m cluster --operator-as-chart \
	  tests/cluster/test_run_lifecycle.py tests/cluster/test_orchestration.py \
	  -k "not operator_down and not burst_of_300 and not 200_mib"

.PHONY: fault-test
fault-test: install ## The fault suite: the control plane and the operator killed, frozen, starved
	@if [ -z "$$KUBECONFIG" ]; then hack/cluster/build.sh; fi
	$(BIN)/pytest -m faults --durations=12

IMAGE ?= ghcr.io/jobline-dev/jobline:$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

.PHONY: image
image: ## Build the operator's image (Docker, or buildah without a daemon) and load it into the local plane
	@hack/image.sh $(IMAGE)

.PHONY: e2e-test
e2e-test: install ## End-to-end: the image installed by the chart, real containers on the real node
	@if [ -z "$$KUBECONFIG" ]; then hack/cluster/build.sh; fi
	@# Built before the plane starts: its real node imports the cached image as it comes up.
	@if [ -z "$$KUBECONFIG" ]; then hack/image.sh $(IMAGE); fi
	@# Pods on the local plane's real node reach its log store through the node's netbridge.
	if [ -z "$$KUBECONFIG" ]; then . hack/cluster/node.env; \
	  export JOBLINE_E2E_ARCHIVE_ENDPOINT="http://$$NODE_IP:$$NODE_STORE_PORT"; fi; \
	JOBLINE_E2E_IMAGE=$(IMAGE) $(BIN)/pytest -m e2e --durations=12

.PHONY: test
test: ## Everything CI runs: lint, typecheck, unit, cluster, fault and end-to-end tests (time per tier at the end)
	@hack/tiers.sh lint typecheck unit cluster-test fault-test e2e-test

.PHONY: soak
soak: install ## By hand, before changing the decisions or the API link: 5,000 runs created and deleted; per-run state and RSS (15-20 min)
	$(PY) benchmarks/soak.py --cycles 5000 --checkpoints 500 5000

.PHONY: test-kind
test-kind: install ## The cluster and end-to-end suites on a throwaway kind cluster (needs Docker and kind)
	docker build -t $(IMAGE) .
	kind create cluster --name jobline-test --kubeconfig .kind-kubeconfig --wait 120s
	kind load docker-image $(IMAGE) --name jobline-test
	export KUBECONFIG=$(CURDIR)/.kind-kubeconfig JOBLINE_E2E_IMAGE=$(IMAGE); \
	  $(BIN)/pytest -m cluster && $(BIN)/pytest -m e2e; \
	  status=$$?; kind delete cluster --name jobline-test; rm -f .kind-kubeconfig; exit $$status
