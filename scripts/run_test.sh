#!/usr/bin/env bash
# Tests scripts/run.sh (make run) as a person uses it: it starts everything on a
# private port, answers /readyz, and a Ctrl+C (SIGINT to its whole process group,
# as a terminal sends it) stops it with exit status 0, the worker draining
# gracefully after one signal, and without building the embedded Redis when
# redis-server is installed; it prints the operator dashboard's URL and a
# generated token that opens it. Bounded: 5 minutes to build and start, 60 s to stop.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v redis-server >/dev/null || { echo "run_test: needs redis-server" >&2; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/taskwire-run-test.XXXXXX")
pid=""
finish() {
  # Only what this test started: its run.sh, which stops what it started.
  if [[ -n "$pid" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap finish EXIT
fail() { echo "run_test: FAIL: $*" >&2; echo "--- output of run.sh:" >&2; cat "$dir/out" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
# Job control: run.sh leads a process group of its own, like a job in a
# terminal, and keeps SIGINT (a background job of a script without it starts
# with SIGINT ignored). --default-signal: should this test itself have been
# started with SIGINT ignored, run.sh still gets it as a terminal's job does
# (a shell cannot trap a signal ignored when it started).
set -m
env --default-signal=INT -u REDIS_URL HTTP_ADDR="127.0.0.1:$port" METRICS_ADDR=127.0.0.1:0 BIN="$dir/bin" \
  scripts/run.sh >"$dir/out" 2>&1 </dev/null &
pid=$!
set +m

deadline=$((SECONDS + 300))
until grep -q "taskwire is running" "$dir/out"; do
  kill -0 "$pid" 2>/dev/null || fail "run.sh exited before it was ready"
  ((SECONDS < deadline)) || fail "not running within 300 s"
  sleep 0.5
done
curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" || fail "readyz does not answer"
[[ ! -e "$dir/bin/taskwire-devredis" ]] || fail "the embedded Redis was built although redis-server is installed"
# The operator dashboard: its URL and a generated token are printed, and the
# token opens its API (and only it: a wrong one is refused).
line=$(grep -o "operator dashboard: http://[^ ]*admin/ *token: [0-9a-f]*" "$dir/out") || fail "no operator dashboard URL and token printed"
admin_url=$(awk '{print $3}' <<<"$line")
token=$(awk '{print $5}' <<<"$line")
((${#token} >= 32)) || fail "the printed operator token is shorter than 32 bytes: $token"
curl -fsS -o /dev/null "$admin_url" || fail "the operator dashboard page does not answer at $admin_url"
curl -fsS -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/admin/queue" || fail "the printed token does not open the operator API"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer x$token" "http://127.0.0.1:$port/api/v1/admin/queue")
[[ "$code" == 401 ]] || fail "a wrong operator token got $code, want 401"

kill -INT -- "-$pid" # Ctrl+C
deadline=$((SECONDS + 60))
while kill -0 "$pid" 2>/dev/null; do
  ((SECONDS < deadline)) || fail "still running 60 s after Ctrl+C"
  sleep 0.2
done
set +e
wait "$pid"
code=$?
set -e
pid=""
((code == 0)) || fail "exit status $code after Ctrl+C, want 0"
grep -q '^\[worker\] .*"msg":"shutting down: no new tasks' "$dir/out" || fail "the worker did not drain"
grep -q '^\[worker\] .*"msg":"worker stopped"' "$dir/out" || fail "the worker did not stop cleanly"
grep -q '^\[server\] .*"msg":"stopped"' "$dir/out" || fail "the server did not stop cleanly"
if grep -q "second signal" "$dir/out"; then fail "a process got a second signal"; fi
if curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then fail "the server still answers"; fi
echo "run_test: ok (operator URL and token printed and working; Ctrl+C: exit 0, worker drained, no embedded Redis built)"
