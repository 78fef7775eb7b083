# taskwire. `make run` runs the whole system locally; `make test` runs every test.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
BIN ?= bin
GO_MODULES := shared emitter server worker devtools
# deploy/ (manifest tests with the kustomize and Kubernetes libraries) stays out of the
# workspace so its dependencies never change what the binaries are built with.
OFF_WORKSPACE := deploy
# Leaf modules that other projects import must also build and test outside the workspace.
STANDALONE := emitter shared

.PHONY: all build run run-cluster test test-go test-standalone test-e2e lint tidy clean

all: build

build:
	@mkdir -p $(BIN)
	go build -o $(BIN)/taskwire-server ./server/cmd/taskwire-server
	go build -o $(BIN)/taskwire-worker ./worker/cmd/taskwire-worker
	go build -o $(BIN)/taskwire-devredis ./devtools/cmd/taskwire-devredis

run:
	@scripts/run.sh

# Redis, 2 servers, 3 workers and a sticky proxy on loopback; prints the proxy's URL.
run-cluster:
	@scripts/run-cluster.sh

# Everything CI runs. Needs redis-server and Node.js.
test: lint test-go test-standalone test-e2e test-web

lint:
	@out=$$(gofmt -l $(GO_MODULES) $(OFF_WORKSPACE)); if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(GO_MODULES); do (cd $$m && go vet ./...); done
	@for m in $(OFF_WORKSPACE); do (cd $$m && GOWORK=off go vet ./...); done

test-go:
	@for m in $(GO_MODULES); do echo "== go test $$m"; (cd $$m && TASKWIRE_REQUIRE_REDIS=1 go test -count=1 ./...); done
	@for m in $(OFF_WORKSPACE); do echo "== GOWORK=off go test $$m"; (cd $$m && GOWORK=off go test -count=1 ./...); done

test-standalone:
	@for m in $(STANDALONE); do echo "== GOWORK=off go test $$m"; (cd $$m && GOWORK=off go test -count=1 ./...); done

test-e2e: build
	cd e2e && npm ci --no-audit --no-fund && TASKWIRE_BIN_DIR=$(abspath $(BIN)) npm test

# The web app: type check, unit tests, committed build up to date, then the browser
# tests (Debian's chromium) against the real binaries.
test-web: build
	cd frontend && npm ci --no-audit --no-fund && npm run check && TASKWIRE_BIN_DIR=$(abspath $(BIN)) npm run e2e

tidy:
	@for m in $(GO_MODULES); do (cd $$m && go mod tidy); done
	@for m in $(OFF_WORKSPACE); do (cd $$m && GOWORK=off go mod tidy); done

clean:
	rm -rf $(BIN)
