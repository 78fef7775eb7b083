# taskwire. `make run` runs the whole system locally; `make test` runs every test.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
BIN ?= bin
GO_MODULES := shared emitter server worker worker/examples devtools client server/examples/backend
# Modules kept out of the workspace so their dependencies never change what the
# binaries are built with: deploy/ (manifest tests with the kustomize and Kubernetes
# libraries), bench/emitter (emitter benchmarks and Redis failure tests) and
# bench/gofeed (the event source of bench/run).
OFF_WORKSPACE := deploy bench/emitter bench/gofeed
# Leaf modules that other projects import must also build and test outside the workspace.
STANDALONE := emitter shared client

.PHONY: all build run run-cluster test test-scripts test-go test-standalone test-e2e lint tidy clean fuzz-short test-soak bench bench-smoke

all: build

build:
	@mkdir -p $(BIN)
	go build -o $(BIN)/taskwire-server ./server/cmd/taskwire-server
	go build -o $(BIN)/taskwire-worker ./worker/cmd/taskwire-worker
	go build -o $(BIN)/taskwire-devredis ./devtools/cmd/taskwire-devredis
	go build -o $(BIN)/taskwire-proxy ./devtools/cmd/taskwire-proxy
	go build -o $(BIN)/primes ./worker/examples/primes
	go build -o $(BIN)/taskwire-echo ./server/cmd/taskwire-echo
	go build -o $(BIN)/backend ./server/examples/backend

run:
	@scripts/run.sh

# Redis, 2 servers, 3 workers and a sticky proxy on loopback; prints the proxy's URL.
run-cluster:
	@scripts/run-cluster.sh

# Everything CI runs. Needs redis-server and Node.js.
test: lint test-go test-standalone test-scripts fuzz-short test-e2e test-web test-soak bench-smoke

lint:
	@out=$$(gofmt -l $(GO_MODULES) $(OFF_WORKSPACE)); if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(GO_MODULES); do (cd $$m && go vet ./...); done
	@for m in $(OFF_WORKSPACE); do (cd $$m && GOWORK=off go vet ./...); done

test-go:
	@for m in $(GO_MODULES); do echo "== go test $$m"; (cd $$m && TASKWIRE_REQUIRE_REDIS=1 go test -count=1 ./...); done
	@for m in $(OFF_WORKSPACE); do echo "== GOWORK=off go test $$m"; (cd $$m && GOWORK=off go test -count=1 ./...); done

# Every fuzz target, each for FUZZTIME from its checked-in seeds (testdata/fuzz/):
# module:package:target. The default is a count of executions, not a duration:
# Go 1.26's fuzz coordinator can fail a duration-bounded run at its deadline with
# "context deadline exceeded" on a busy machine (go.dev/issue/75804), which a
# count never hits. A longer hunt: make fuzz-short FUZZTIME=10m.
FUZZTIME ?= 10000x
FUZZ_TARGETS := \
	server:./internal/redisadapter/decode:FuzzDecode server:./internal/redisadapter/decode:FuzzLazyBroadcast \
	server:./internal/redisadapter/decode:FuzzDecodeClusterMessage server:./internal/redisadapter/decode:FuzzEncodeDecode \
	server:./internal/redisadapter:FuzzClassicChannels server:./internal/redisadapter:FuzzShardedChannels \
	server:./internal/taskservice:FuzzParseCreateRequest server:./internal/socketapi:FuzzRequest \
	server:./internal/session:FuzzVerify server:./internal/transport:FuzzQuery \
	shared:./tasks:FuzzDecodeMessage
fuzz-short:
	@for t in $(FUZZ_TARGETS); do \
		IFS=: read -r mod pkg name <<< "$$t"; \
		echo "== fuzz $$mod $$pkg $$name ($(FUZZTIME))"; \
		(cd $$mod && go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg) | grep -v '^fuzz: elapsed' ; \
	done

# The side-by-side benchmark against the Node reference (see bench/README.md):
# the full run (about 25 minutes on 2 cores; writes bench/RESULTS.md), and its smoke form
# (small numbers, under a minute), which only checks that it still runs and that
# taskwire loses nothing.
bench: build
	TASKWIRE_BIN_DIR=$(abspath $(BIN)) bench/run

bench-smoke: build
	TASKWIRE_BIN_DIR=$(abspath $(BIN)) bench/run --smoke

# The soak test in its short form (60 s; see bench/soak/README.md).
test-soak: build
	TASKWIRE_BIN_DIR=$(abspath $(BIN)) bench/soak/run --ci

# make run as a person uses it: ready on a private port, Ctrl+C exits 0 after the
# worker drained (scripts/run_test.sh; needs redis-server).
test-scripts:
	scripts/run_test.sh

test-standalone:
	@for m in $(STANDALONE); do echo "== GOWORK=off go test $$m"; (cd $$m && GOWORK=off go test -count=1 ./...); done

test-e2e: build
	cd e2e && npm ci --no-audit --no-fund && TASKWIRE_BIN_DIR=$(abspath $(BIN)) npm test

# The web app and @taskwire/client (frontend/packages/client): type checks, unit
# tests (the package's React hooks included), the package's build (dist/, what an
# app imports), committed build of the app up to date; then the browser tests
# (Debian's chromium) and the package's Node tests against the real binaries.
test-web: build
	cd frontend && npm ci --no-audit --no-fund && npm run check && TASKWIRE_BIN_DIR=$(abspath $(BIN)) npm run e2e

tidy:
	@for m in $(GO_MODULES); do (cd $$m && go mod tidy); done
	@for m in $(OFF_WORKSPACE); do (cd $$m && GOWORK=off go mod tidy); done

clean:
	rm -rf $(BIN)
