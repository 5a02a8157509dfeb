#!/usr/bin/env bash
# Regenerates packaging/symbol-order.txt: the functions a running gateway executes, for the linker
# to place together at the start of the release binary's text (build.rs passes the file to lld as
# --symbol-ordering-file). Without it those functions lie scattered over ~40 MB of text, and the
# kernel maps the binary's pages around each one it touches (fault-around, large folios), which
# made most of dgate's idle RSS (bench/README.md).
#
# How: the release binary runs under valgrind's callgrind, twice (memory storage, as bench/run.sh
# runs it, and the default file storage, RocksDB): start, admin API writes, two modules built on
# upload, then load from wrk on the plain route (GET and POST), both module routes, a 404 and
# the admin API. Functions run under load come first, hottest first; then the rest of what the
# server ran (start-up, module builds, shutdown), hottest first.
#
#   bench/layout.sh        # rewrites packaging/symbol-order.txt; commit it with what changed
#
# The names are mangled symbols; a name that no longer exists after a code change is skipped by
# the linker, so a stale file costs locality, never correctness. Regenerate after larger changes
# (bench/README.md has the RSS it should give). The dgate crate's names carry a hash of its
# Cargo metadata: a dependency or version change renames them all, so regenerate then too.
#
# Under valgrind everything runs ~50x slower: the config below gives hook calls (and the start
# check of an uploaded module, which runs under the same limits) 10 s and builds 5 minutes.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
UP_PORT=18090 DG_PORT=18091 DG_ADMIN=18092
. bench/lib.sh
command -v valgrind >/dev/null || {
    echo "layout: installing valgrind" >&2
    as_root apt-get update -qq &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
}
build_release
trap 'echo "layout: failed: $BASH_COMMAND" >&2' ERR

start_upstream

# one_run NAME STORAGE_YAML: the server under callgrind; leaves $work/NAME.setup and
# $work/NAME.load (callgrind dumps of the two phases)
one_run() {
    local name=$1 storage=$2
    cat >"$work/$name.yaml" <<YAML
log_level: warn
$storage
proxy: {port: $DG_PORT}
admin: {port: $DG_ADMIN}
# few instance slots: wasmtime reserves address space for each, more than valgrind can map; and
# time for calls and builds that run ~50x slower
modules: {max_instances: 4, max_concurrency: 4, timeout: 10s, build: {timeout: 5m}}
YAML
    mkdir -p "$work/$name"
    taskset -c "$PROXY_CPU" valgrind --tool=callgrind --callgrind-out-file="$work/$name/cg.out" \
        --dump-instr=no --compress-strings=no --compress-pos=no --demangle=no \
        --smc-check=all-non-file "$DGATE" server --config "$work/$name.yaml" \
        >"$work/$name/log" 2>&1 &
    local vg=$!
    pids+=($vg)
    wait_port "$DG_ADMIN" 600 # under valgrind everything is ~50x slower
    add_plain_route
    add_module_routes
    curl -sf "http://127.0.0.1:$DG_PORT/two" >/dev/null
    curl -sf -H "x-user: alice" "http://127.0.0.1:$DG_PORT/real/42" >/dev/null
    callgrind_control -d >/dev/null
    mv "$(ls -t "$work/$name"/cg.out* | head -1)" "$work/$name.setup"
    echo "layout: $name: set up" >&2

    printf 'wrk.method = "POST"\nwrk.body = string.rep("x", 2048)\n' >"$work/post.lua"
    local load=(taskset -c "$LOAD_CPU" wrk -t1 -c32 -d8s)
    "${load[@]}" "http://127.0.0.1:$DG_PORT/" >/dev/null
    "${load[@]}" -s "$work/post.lua" "http://127.0.0.1:$DG_PORT/post" >/dev/null
    load[5]=-c4 # within the module's 4 slots
    "${load[@]}" "http://127.0.0.1:$DG_PORT/two" >/dev/null
    "${load[@]}" -H "x-user: alice" "http://127.0.0.1:$DG_PORT/real/42" >/dev/null
    for _ in $(seq 1 20); do
        curl -s "http://127.0.0.1:$DG_PORT/nothing/here" >/dev/null || true
        curl -s "http://127.0.0.1:$DG_ADMIN/api/v1/route" >/dev/null || true
    done
    callgrind_control -d >/dev/null
    mv "$(ls -t "$work/$name"/cg.out* | head -1)" "$work/$name.load"

    echo "layout: $name: load done" >&2
    kill -INT "$vg"
    wait "$vg" || true
    cat "$work/$name"/cg.out* >"$work/$name.exit" 2>/dev/null || : >"$work/$name.exit"
}

one_run memory "storage: {type: memory}"
one_run file "storage: {type: file, dir: $work/data}"

# written aside first: a failed run leaves the committed file as it was
python3 - "$DGATE" "$work" >"$work/symbol-order.txt" <<'PY'
import os, sys
from collections import defaultdict

binary = os.path.realpath(sys.argv[1])
work = sys.argv[2]

def self_costs(path):
    """Self cost (Ir) of each function of the dgate binary in a callgrind dump."""
    costs = defaultdict(int)
    ob = fn = None
    skip_next = False
    with open(path, errors="replace") as f:
        for line in f:
            if skip_next:  # the inclusive cost of a call, not the caller's own
                skip_next = False
                continue
            if line.startswith("ob="):
                ob = line[3:].strip()
            elif line.startswith("fn="):
                fn = line[3:].strip()
            elif line.startswith("calls="):
                skip_next = True
            elif line[:1].isdigit() and fn and ob and os.path.realpath(ob) == binary:
                parts = line.split()
                if len(parts) >= 2:
                    costs[fn] += int(parts[1])
    return costs

hot, rest = defaultdict(int), defaultdict(int)
for run in ("memory", "file"):
    for fn, c in self_costs(f"{work}/{run}.load").items():
        hot[fn] += c
    for phase in ("setup", "exit"):
        for fn, c in self_costs(f"{work}/{run}.{phase}").items():
            rest[fn] += c
for fn in hot:
    rest.pop(fn, None)
if len(hot) < 1000:
    sys.exit(f"layout: only {len(hot)} functions ran under load; is the binary built with symbols?")
for table in (hot, rest):
    for fn, _ in sorted(table.items(), key=lambda kv: (-kv[1], kv[0])):
        print(fn)
print(f"layout: {len(hot)} functions under load, {len(rest)} more at start-up, build and exit",
      file=sys.stderr)
PY
mv "$work/symbol-order.txt" packaging/symbol-order.txt
wc -l packaging/symbol-order.txt
