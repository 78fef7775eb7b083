#!/usr/bin/env bash
# Runs the whole system locally: Redis, one taskwire-server, one taskwire-worker and
# the example worker of a kind of its own (primes), each a separate process, and
# prints the URL to open, and the operator dashboard's URL with its token
# (ADMIN_TOKEN: the one set, else a random one for this run). The workers are paced so that each kind's default size
# takes 10-30 s, long enough to watch and cancel (the *_DELAY variables; set them
# to 0 for full speed). Ctrl+C stops everything this
# script started (and nothing else).
#
# Redis: REDIS_URL when set; otherwise a private redis-server on a free port when
# redis-server is installed; otherwise an embedded in-memory Redis (taskwire-devredis),
# for trying things out only.
set -euo pipefail

cd "$(dirname "$0")/.."
source scripts/lib.sh
HTTP_ADDR=${HTTP_ADDR:-:8080}

log "building"
mkdir -p "$BIN"
go build -o "$BIN/taskwire-server" ./server/cmd/taskwire-server
go build -o "$BIN/taskwire-worker" ./worker/cmd/taskwire-worker
go build -o "$BIN/primes" ./worker/examples/primes
start_redis
ensure_secret
ensure_admin_token

start server env HTTP_ADDR="$HTTP_ADDR" "$BIN/taskwire-server"
start worker env EXPORT_ROW_DELAY="${EXPORT_ROW_DELAY:-75us}" REPORT_PAGE_DELAY="${REPORT_PAGE_DELAY:-600ms}" \
  TRAIN_EPOCH_DELAY="${TRAIN_EPOCH_DELAY:-300ms}" "$BIN/taskwire-worker"
start primes env METRICS_ADDR=off PRIMES_SEGMENT_DELAY="${PRIMES_SEGMENT_DELAY:-150ms}" "$BIN/primes"

port=${HTTP_ADDR##*:}
host=${HTTP_ADDR%:*}
[[ -z "$host" || "$host" == "0.0.0.0" ]] && host=localhost
url="http://$host:$port/"
wait_for "${url}readyz" 30
log "taskwire is running: open $url   (Ctrl+C to stop)"
log "operator dashboard: ${url}admin/   token: $ADMIN_TOKEN"
wait -n "${pids[@]}"
log "a process exited; stopping"
