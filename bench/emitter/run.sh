#!/usr/bin/env bash
# The emitter benchmark in one command: taskwire's Go emitter against Node's
# @socket.io/redis-emitter on the same workload, same machine, same run; prints a
# table and writes RESULTS.md. Needs Go, Node 20+, npm and redis-server on PATH.
# Options: --runs N, --messages N, --quick (smoke run; add --write to keep it).
set -euo pipefail
cd "$(dirname "$0")"
exec node run.mjs "$@"
