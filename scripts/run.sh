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
BIN=${BIN:-bin}
HTTP_ADDR=${HTTP_ADDR:-:8080}
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/taskwire-run.XXXXXX")
pids=()

cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# prefix NAME: prefixes every line of stdin with the process name.
prefix() { sed -u "s/^/[$1] /"; }

free_port() {
  # Ask the kernel for a free port.
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
  else
    echo $((20000 + RANDOM % 20000))
  fi
}

wait_for() { # URL SECONDS
  local url=$1 deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    if ((SECONDS > deadline)); then log "timed out waiting for $url"; return 1; fi
    sleep 0.2
  done
}

log "building"
make -s build BIN="$BIN"

if [[ -n "${REDIS_URL:-}" ]]; then
  log "using REDIS_URL"
elif command -v redis-server >/dev/null; then
  port=$(free_port)
  log "starting redis-server on 127.0.0.1:$port"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$RUN_DIR" --loglevel warning \
    > >(prefix redis) 2>&1 &
  pids+=($!)
  REDIS_URL="redis://127.0.0.1:$port/0"
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
else
  log "redis-server is not installed: starting an EMBEDDED in-memory Redis (for trying things out only)"
  "$BIN/taskwire-devredis" > "$RUN_DIR/devredis.out" 2> >(prefix devredis >&2) &
  pids+=($!)
  for _ in $(seq 100); do grep -q '^ready ' "$RUN_DIR/devredis.out" 2>/dev/null && break; sleep 0.1; done
  REDIS_URL=$(sed -n 's/^ready //p' "$RUN_DIR/devredis.out")
  [[ -n "$REDIS_URL" ]] || { log "embedded Redis did not start"; exit 1; }
fi
export REDIS_URL

# One secret for this run, so the worker and server agree and reloads keep sessions.
export TASKWIRE_SECRET=${TASKWIRE_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}

HTTP_ADDR=$HTTP_ADDR "$BIN/taskwire-server" > >(prefix server) 2>&1 &
pids+=($!)
"$BIN/taskwire-worker" > >(prefix worker) 2>&1 &
pids+=($!)

port=${HTTP_ADDR##*:}
host=${HTTP_ADDR%:*}
[[ -z "$host" || "$host" == "0.0.0.0" ]] && host=localhost
url="http://$host:$port/"
wait_for "${url}readyz" 30
log "taskwire is running: open $url   (Ctrl+C to stop)"
wait -n "${pids[@]}"
log "a process exited; stopping"
