#!/usr/bin/env bash
# Where a route's CPU goes: runs dgate (pinned to core 0, guest functions named through
# DGATE_WASM_PERFMAP) with the plain route and bench/run.sh's module routes, loads one of them
# with wrk from core 1 and records the proxy with `perf record` (software clock: this VM has no
# PMU). Prints the top symbols (self time) and leaves perf.data in the working directory.
#
#   bench/profile.sh /two 256        # the two-edits module route at c=256
#   bench/profile.sh / 32            # the plain route at c=32
#   DGATE=$CARGO_TARGET_DIR/profiling/dgate bench/profile.sh /real/42 32   # with source lines
#   CALL_GRAPH=dwarf DURATION=4s bench/profile.sh /two 32   # callers through the binary's unwind
#                                                           # tables (release builds keep them)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

path=${1:-/two}
conns=${2:-32}
DURATION=${DURATION:-10s}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
UP_PORT=18090 DG_PORT=18091 DG_ADMIN=18092

. bench/lib.sh
command -v perf >/dev/null || { echo "bench: perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
build_release

start_dgate DGATE_WASM_PERFMAP=1
add_module_routes
curl -sf -H "x-user: alice" "http://127.0.0.1:$DG_PORT$path" >/dev/null
# Warm up, then record while loading.
taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d2s -H "x-user: alice" "http://127.0.0.1:$DG_PORT$path" >/dev/null
taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d"$DURATION" -H "x-user: alice" "http://127.0.0.1:$DG_PORT$path" >"$work/wrk.txt" &
wrk_pid=$!
perf record -e cpu-clock -F 4000 --call-graph "${CALL_GRAPH:-fp}" -p "$dgate_pid" -o perf.data -- sleep "${DURATION%s}" 2>/dev/null
wait "$wrk_pid"
grep -E 'Requests/sec|Non-2xx' "$work/wrk.txt" >&2
perf report -i perf.data --no-children --sort symbol --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -60 || true
