#!/usr/bin/env bash
# Runs the whole system locally: Redis, one taskwire-server and one taskwire-worker,
# each a separate process, and prints the URL to open. Ctrl+C stops everything this
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
make -s build BIN="$BIN"
start_redis
ensure_secret

start server env HTTP_ADDR="$HTTP_ADDR" "$BIN/taskwire-server"
start worker "$BIN/taskwire-worker"

port=${HTTP_ADDR##*:}
host=${HTTP_ADDR%:*}
[[ -z "$host" || "$host" == "0.0.0.0" ]] && host=localhost
url="http://$host:$port/"
wait_for "${url}readyz" 30
log "taskwire is running: open $url   (Ctrl+C to stop)"
wait -n "${pids[@]}"
log "a process exited; stopping"
