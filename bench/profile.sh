#!/usr/bin/env bash
# Where a route's CPU goes: runs dgate (pinned to core 0, guest functions named through
# DGATE_WASM_PERFMAP) with the plain route and bench/run.sh's module routes, loads one of them
# with wrk from core 1 and records the proxy with `perf record` (software clock: this VM has no
# PMU). Prints the top symbols (self time) and leaves perf.data in the working directory.
#
#   bench/profile.sh /two 256        # the two-edits module route at c=256
#   bench/profile.sh / 32            # the plain route at c=32
#   DGATE=$CARGO_TARGET_DIR/profiling/dgate bench/profile.sh /real/42 32   # with source lines
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

taskset -c "$LOAD_CPU" "$UPSTREAM" "127.0.0.1:$UP_PORT" &
pids+=($!)
wait_port "$UP_PORT"
cat >"$work/dgate.yaml" <<YAML
log_level: warn
storage: {type: memory}
proxy: {port: $DG_PORT}
admin: {port: $DG_ADMIN}
YAML
DGATE_WASM_PERFMAP=1 taskset -c "$PROXY_CPU" "$DGATE" server --config "$work/dgate.yaml" >/dev/null &
dgate_pid=$!
pids+=($dgate_pid)
wait_port "$DG_ADMIN"
admin() { curl -sf -X PUT "http://127.0.0.1:$DG_ADMIN/api/v1/$1" -d "$2" >/dev/null; }
admin service "{\"name\":\"up\",\"urls\":[\"http://127.0.0.1:$UP_PORT\"]}"
admin route '{"name":"all","paths":["/*"],"methods":["*"],"service":"up"}'
for m in two-edits realistic; do
    admin module "{\"name\":\"$m\",\"moduleType\":\"typescript\",\"payload\":\"$(base64 -w0 "bench/modules/$m.ts")\"}"
done
admin route '{"name":"two-edits","paths":["/two","/two/*"],"methods":["*"],"service":"up","modules":["two-edits"]}'
admin route '{"name":"realistic","paths":["/real/{id}"],"methods":["*"],"service":"up","modules":["realistic"]}'
curl -sf -H "x-user: alice" "http://127.0.0.1:$DG_PORT$path" >/dev/null
# Warm up, then record while loading.
taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d2s -H "x-user: alice" "http://127.0.0.1:$DG_PORT$path" >/dev/null
taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d"$DURATION" -H "x-user: alice" "http://127.0.0.1:$DG_PORT$path" >"$work/wrk.txt" &
wrk_pid=$!
perf record -e cpu-clock -F 4000 -g -p "$dgate_pid" -o perf.data -- sleep "${DURATION%s}" 2>/dev/null
wait "$wrk_pid"
grep -E 'Requests/sec|Non-2xx' "$work/wrk.txt" >&2
perf report -i perf.data --no-children --sort symbol --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -60
