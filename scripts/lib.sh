# shellcheck shell=bash disable=SC2034
# Helpers shared by run.sh and run-cluster.sh. Source it from the repository root.
# Every process started with `start` is stopped (SIGTERM, then waited for) when the
# sourcing script exits, and nothing else is.

BIN=${BIN:-bin}
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/taskwire-run.XXXXXX")
pids=()
declare -A names=()

cleanup() {
  trap - EXIT INT TERM
  # Servers and workers first (they drain through Redis), Redis last.
  for pid in "${pids[@]}"; do [[ "$pid" == "${REDIS_PID:-}" ]] || kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do [[ "$pid" == "${REDIS_PID:-}" ]] || wait "$pid" 2>/dev/null || true; done
  if [[ -n "${REDIS_PID:-}" ]]; then kill -TERM "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT
# Ctrl+C is a normal way to stop: exit 0 (cleanup stops everything).
trap 'exit 0' INT TERM

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# prefix NAME: prefixes every line of stdin with the process name, on stderr. It
# ignores SIGINT: Ctrl+C reaches the terminal's whole process group, and a prefix
# that died would leave its process writing to a closed pipe (a Go program dies of
# that SIGPIPE at its next log line, in the middle of its drain). It ends when its
# process closes the pipe.
prefix() { trap '' INT; sed -u "s/^/[$1] /" >&2; }

free_port() {
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

# start NAME COMMAND...: starts a process in the background, its output prefixed.
# It runs in a session of its own, so that Ctrl+C in the terminal reaches only this
# script, and each process gets exactly one SIGTERM from cleanup (a worker takes a
# second signal as "exit at once, skip the drain"). Should this script itself be
# killed (SIGKILL: no cleanup), each process gets SIGTERM as it dies (setpriv's
# parent-death signal, where setpriv exists), so that nothing it started is left.
start() {
  local name=$1; shift
  local orphan=()
  if command -v setpriv >/dev/null; then orphan=(setpriv --pdeathsig TERM); fi
  setsid "${orphan[@]}" "$@" > >(prefix "$name") 2>&1 &
  pids+=($!)
  names[$!]=$name
}

# start_redis: sets and exports REDIS_URL. It keeps REDIS_URL when set; otherwise it
# starts a private redis-server on a free port when one is installed, and otherwise
# the embedded in-memory Redis. REDIS_PID is the pid of what it started, if anything.
start_redis() {
  REDIS_PID=""
  if [[ -n "${REDIS_URL:-}" ]]; then
    log "using REDIS_URL"
  elif command -v redis-server >/dev/null; then
    local port
    port=$(free_port)
    log "starting redis-server on 127.0.0.1:$port"
    start redis redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$RUN_DIR" --loglevel warning
    REDIS_PID=${pids[-1]}
    REDIS_URL="redis://127.0.0.1:$port/0"
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  else
    log "redis-server is not installed: starting an EMBEDDED in-memory Redis (for trying things out only)"
    # Built only here: with REDIS_URL or redis-server, neither it nor its module is needed.
    go build -o "$BIN/taskwire-devredis" ./devtools/cmd/taskwire-devredis
    "$BIN/taskwire-devredis" > "$RUN_DIR/devredis.out" 2> >(prefix devredis) &
    pids+=($!)
    names[$!]=devredis
    REDIS_PID=$!
    for _ in $(seq 100); do grep -q '^ready ' "$RUN_DIR/devredis.out" 2>/dev/null && break; sleep 0.1; done
    REDIS_URL=$(sed -n 's/^ready //p' "$RUN_DIR/devredis.out")
    [[ -n "$REDIS_URL" ]] || { log "embedded Redis did not start"; exit 1; }
  fi
  export REDIS_URL
}

# ensure_secret: one TASKWIRE_SECRET for every process of this run, so that a
# session started on one server is valid on the others and survives a restart.
ensure_secret() {
  export TASKWIRE_SECRET=${TASKWIRE_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}
}

# ensure_admin_token: the operator credential of this run (ADMIN_TOKEN, the
# operator dashboard at /admin/): the one set, else a new random one, printed
# with the dashboard's URL by the script.
ensure_admin_token() {
  export ADMIN_TOKEN=${ADMIN_TOKEN:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}
}
