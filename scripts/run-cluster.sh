#!/usr/bin/env bash
# Runs taskwire like a small cluster on one machine: Redis, 2 taskwire-servers,
# 3 taskwire-workers and taskwire-proxy (cookie-based sticky sessions) in front of
# the servers, each a separate process on loopback. Prints the proxy's URL.
# Ctrl+C (or SIGTERM) stops everything this script started, and nothing else.
#
# Settings (environment):
#   PROXY_ADDR    where the proxy listens (default 127.0.0.1:8080; port 0 picks a free one)
#   SERVERS       number of servers (default 2), or SERVER_PORTS="8081 8082" to fix their ports
#   WORKERS       number of workers (default 3), or WORKER_PORTS="9101 9102 9103" to fix
#                 the ports of their /healthz, /readyz and /metrics
#   REDIS_URL     use this Redis instead of starting one (as scripts/run.sh does)
#   BIN           where the binaries are (default bin); NO_BUILD=1 uses them as they are
# Every other variable the binaries read (LOG_LEVEL, WORKER_LEASE_TIMEOUT, ...) is
# passed on to them.
#
# Standard output carries only these lines, for programs (tests) to read:
#   cluster redis <url> [pid <pid>]     (the pid when this script started it)
#   cluster server <n> <url> pid <pid>
#   cluster worker <n> <url of /healthz, /readyz, /metrics> pid <pid>
#   cluster proxy <url> pid <pid>
#   cluster ready <proxy url>
# The processes' logs go to standard error, each line prefixed with its name.
# A server or worker that exits is reported and the rest keep running (a test
# may kill one on purpose); if Redis or the proxy exits, everything stops.
set -euo pipefail

cd "$(dirname "$0")/.."
source scripts/lib.sh
PROXY_ADDR=${PROXY_ADDR:-127.0.0.1:8080}
essential=()
announce() { printf 'cluster %s\n' "$*"; }

read -r -a server_ports <<< "${SERVER_PORTS:-}"
read -r -a worker_ports <<< "${WORKER_PORTS:-}"
if ((${#server_ports[@]} == 0)); then
  for _ in $(seq "${SERVERS:-2}"); do server_ports+=("$(free_port)"); done
fi
if ((${#worker_ports[@]} == 0)); then
  for _ in $(seq "${WORKERS:-3}"); do worker_ports+=("$(free_port)"); done
fi
((${#server_ports[@]} >= 1 && ${#worker_ports[@]} >= 1)) || { log "need at least one server and one worker"; exit 2; }

if [[ -z "${NO_BUILD:-}" ]]; then
  log "building"
  make -s build BIN="$BIN"
fi
for b in taskwire-server taskwire-worker taskwire-proxy; do
  [[ -x "$BIN/$b" ]] || { log "$BIN/$b is missing (unset NO_BUILD to build it)"; exit 1; }
done

start_redis
[[ -n "$REDIS_PID" ]] && essential+=("$REDIS_PID")
announce "redis $REDIS_URL${REDIS_PID:+ pid $REDIS_PID}"

ensure_secret
ensure_admin_token

backends=()
i=0
for port in "${server_ports[@]}"; do
  i=$((i + 1))
  start "server-$i" env HTTP_ADDR="127.0.0.1:$port" "$BIN/taskwire-server"
  backends+=("http://127.0.0.1:$port")
  server_pid[i]=${pids[-1]}
done
i=0
for port in "${worker_ports[@]}"; do
  i=$((i + 1))
  start "worker-$i" env METRICS_ADDR="127.0.0.1:$port" "$BIN/taskwire-worker"
  worker_pid[i]=${pids[-1]}
done

i=0
for url in "${backends[@]}"; do
  i=$((i + 1))
  wait_for "$url/readyz" 60
  announce "server $i $url pid ${server_pid[i]}"
done
i=0
for port in "${worker_ports[@]}"; do
  i=$((i + 1))
  wait_for "http://127.0.0.1:$port/readyz" 60
  announce "worker $i http://127.0.0.1:$port pid ${worker_pid[i]}"
done

backend_list=$(IFS=,; echo "${backends[*]}")
"$BIN/taskwire-proxy" -addr "$PROXY_ADDR" -backends "$backend_list" > "$RUN_DIR/proxy.out" 2> >(prefix proxy) &
pids+=($!)
names[$!]=proxy
essential+=($!)
proxy_url=""
for _ in $(seq 100); do
  proxy_url=$(sed -n 's/^ready //p' "$RUN_DIR/proxy.out")
  [[ -n "$proxy_url" ]] && break
  kill -0 "${pids[-1]}" 2>/dev/null || break
  sleep 0.1
done
[[ -n "$proxy_url" ]] || { log "the proxy did not start"; exit 1; }
announce "proxy $proxy_url pid ${pids[-1]}"
wait_for "${proxy_url}readyz" 30
announce "ready $proxy_url"
log "taskwire cluster is running: open $proxy_url   (${#backends[@]} servers, ${#worker_ports[@]} workers; Ctrl+C to stop)"
log "operator dashboard: ${proxy_url%/}/admin/   token: $ADMIN_TOKEN"

live=("${pids[@]}")
while ((${#live[@]})); do
  died=""
  wait -n -p died "${live[@]}" || true
  [[ -n "$died" ]] || continue
  next=()
  for pid in "${live[@]}"; do [[ "$pid" != "$died" ]] && next+=("$pid"); done
  live=("${next[@]}")
  if [[ " ${essential[*]} " == *" $died "* ]]; then
    log "${names[$died]} exited; stopping"
    exit 1
  fi
  log "${names[$died]} (pid $died) exited; the others keep running"
done
