# chatbox: `make run` starts the service on the embedded database, `make test` runs every test.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
export PATH := $(PATH):/usr/local/go/bin

FERRETDB := .tools/bin/ferretdb
KUSTOMIZE := .tools/bin/kustomize
INSTALL_STAMP := node_modules/.chatbox-install-stamp
JEST_WORKERS ?= 2
ROLLOUT_TIMEOUT ?= 5m
# The service as `npm run build` leaves it; rebuilt only when something the build reads is newer.
BUILD_OUTPUT := dist/apps/chatbox/src/main.js
BUILD_INPUTS := $(shell find apps/chatbox/src libs -name '*.ts' ! -name '*.spec.ts') \
	tsconfig.json apps/chatbox/tsconfig.app.json nest-cli.json $(INSTALL_STAMP)
# A second Node for `make test-lts`: the LTS the image runs, from the npm registry's `node` package.
NODE_LTS_VERSION := 24.21.0
NODE_LTS_DIR := .tools/node-$(NODE_LTS_VERSION)
NODE_LTS := $(NODE_LTS_DIR)/node_modules/.bin/node

# Progress line before a step that takes a while, so a first run is never silent.
step = @printf '==> %s\n' "$(1)"

.PHONY: run test test-lts install build lint typecheck unit integration browser bench clean openapi deploy

## run: install what is missing, build what changed, start on the embedded FerretDB with the demo model
run: install $(FERRETDB) $(BUILD_OUTPUT)
	$(call step,Starting chatbox (the banner at the end has the chat and admin URLs; Ctrl+C stops it))
	node dist/apps/chatbox/src/main.js

## test: lint, typecheck, build, then unit + integration + browser tests in one Jest run
test: install $(FERRETDB) $(KUSTOMIZE)
	npm run --silent lint
	npm run --silent typecheck
	npm run --silent build
	npx jest --maxWorkers=$(JEST_WORKERS) --ci

## test-lts: the same suite on the Node LTS of the image (fetched once into .tools/)
test-lts: install $(FERRETDB) $(KUSTOMIZE) $(NODE_LTS)
	$(call step,Running the test suite on Node $(NODE_LTS_VERSION))
	PATH="$(CURDIR)/$(dir $(NODE_LTS)):$$PATH" node --version
	PATH="$(CURDIR)/$(dir $(NODE_LTS)):$$PATH" $(MAKE) --no-print-directory test

install: $(INSTALL_STAMP)

$(INSTALL_STAMP): package.json package-lock.json
	$(call step,Installing npm packages (npm ci: about 40 s the first time))
	npm ci --no-audit --no-fund
	touch $@

# The scripts say what they build (and build nothing when the binary already works).
$(FERRETDB): scripts/provision-ferretdb.sh
	bash scripts/provision-ferretdb.sh $(FERRETDB)
	touch $@

$(KUSTOMIZE): scripts/provision-kustomize.sh
	bash scripts/provision-kustomize.sh $(KUSTOMIZE)
	touch $@

$(NODE_LTS):
	$(call step,Fetching Node $(NODE_LTS_VERSION) from the npm registry (once, into $(NODE_LTS_DIR)))
	npm install --prefix $(NODE_LTS_DIR) --no-save --no-audit --no-fund node@$(NODE_LTS_VERSION)

$(BUILD_OUTPUT): $(BUILD_INPUTS)
	$(call step,Building the service (TypeScript: about 10 s; skipped while no source changes))
	npm run --silent build

build: $(BUILD_OUTPUT)

lint: install
	npm run --silent lint

typecheck: install
	npm run --silent typecheck

unit: install
	npx jest --selectProjects unit

integration: install $(FERRETDB) $(KUSTOMIZE)
	npx jest --selectProjects integration

browser: install $(FERRETDB) build
	npx jest --selectProjects browser

## openapi: rewrite docs/openapi.json from the controllers (test/integration/openapi.test.ts fails until it matches)
openapi: install $(FERRETDB)
	OPENAPI_WRITE=1 npx jest --selectProjects integration -- test/integration/openapi.test.ts
	npx prettier --write docs/openapi.json

## deploy: apply every manifest of k8s/ (kustomization), then wait for the rollout to finish or fail
deploy:
	kubectl apply -k k8s/
	kubectl rollout status deployment/chatbox -n chatbox --timeout=$(ROLLOUT_TIMEOUT)

clean:
	rm -rf dist coverage test-artifacts

## bench: the service against a bare WebSocket proxy (the floor), side by side: latency, throughput, memory
bench: install $(FERRETDB) build
	node scripts/bench/bench.mjs
