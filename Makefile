# chatbox: `make run` starts the service on the embedded database, `make test` runs every test.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(PATH):/usr/local/go/bin

FERRETDB := .tools/bin/ferretdb
INSTALL_STAMP := node_modules/.chatbox-install-stamp
JEST_WORKERS ?= 2
ROLLOUT_TIMEOUT ?= 5m

.PHONY: run test install build lint typecheck unit integration browser bench clean openapi deploy

## run: install what is missing, build, start on the embedded FerretDB with the demo model
run: install $(FERRETDB) build
	node dist/apps/chatbox/src/main.js

## test: lint, typecheck, build, then unit + integration + browser tests in one Jest run
test: install $(FERRETDB)
	npm run --silent lint
	npm run --silent typecheck
	npm run --silent build
	npx jest --maxWorkers=$(JEST_WORKERS) --ci

install: $(INSTALL_STAMP)

$(INSTALL_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

$(FERRETDB): scripts/provision-ferretdb.sh
	bash scripts/provision-ferretdb.sh $(FERRETDB)

build: install
	npm run --silent build

lint: install
	npm run --silent lint

typecheck: install
	npm run --silent typecheck

unit: install
	npx jest --selectProjects unit

integration: install $(FERRETDB)
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

## bench: concurrent chats against the built service; prints throughput, latency and memory
bench: install $(FERRETDB) build
	node scripts/bench-chat.mjs
