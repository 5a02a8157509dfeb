# What the benchmark scripts share; sourced from the repository root after `scripts/env.sh`.
# Installs wrk if missing, builds the release binary and the test upstream, and sets `work` (a
# temporary directory), `pids` (killed on exit), `DGATE` and `UPSTREAM`.

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v wrk >/dev/null; then
    echo "bench: installing wrk" >&2
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

build_release() {
    ./scripts/setup.sh
    cargo build --release --locked --bin dgate --example bench-upstream >&2
    local target
    target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    # DGATE=/path/to/dgate measures another build (an older commit, say).
    DGATE=${DGATE:-"$target/release/dgate"}
    UPSTREAM="$target/release/examples/bench-upstream"
}

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# wait_port PORT [SECONDS]: until something listens on PORT (10 s unless told)
wait_port() {
    for _ in $(seq 1 $((${2:-10} * 20))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "bench: nothing listens on port $1" >&2
    exit 1
}

# median COLUMN SAMPLES ("a b c;a b c;..."): of one column over the reps; "-" when it has none
median() {
    tr ';' '\n' <<<"$2" | awk -v c="$1" 'NF { print $c }' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0 || v[1] == "-") print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# "1.23ms" -> microseconds
to_us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1000000; else print n }'; }

# Starts the upstream on core LOAD_CPU and dgate (memory storage, pinned to
# PROXY_CPU, with any extra environment given as arguments) on UP_PORT / DG_PORT / DG_ADMIN, with
# the service `up` and the plain `/*` route; sets `up_pid` and `dgate_pid`.
start_dgate() {
    start_upstream
    cat >"$work/dgate.yaml" <<YAML
log_level: warn
storage: {type: memory}
proxy: {port: $DG_PORT}
admin: {port: $DG_ADMIN}
YAML
    env "$@" taskset -c "$PROXY_CPU" "$DGATE" server --config "$work/dgate.yaml" >/dev/null &
    dgate_pid=$!
    pids+=($dgate_pid)
    wait_port "$DG_ADMIN"
    add_plain_route
}

# start_upstream: the bench upstream on LOAD_CPU, UP_PORT; sets `up_pid`.
start_upstream() {
    taskset -c "$LOAD_CPU" "$UPSTREAM" "127.0.0.1:$UP_PORT" &
    up_pid=$!
    pids+=($up_pid)
    wait_port "$UP_PORT"
}

# add_plain_route: the service `up` (the upstream) and the module-free route `/*` to it.
add_plain_route() {
    admin service "{\"name\":\"up\",\"urls\":[\"http://127.0.0.1:$UP_PORT\"]}"
    admin route '{"name":"all","paths":["/*"],"methods":["*"],"service":"up"}'
}

admin() { curl -sf -X PUT "http://127.0.0.1:$DG_ADMIN/api/v1/$1" -d "$2" >/dev/null; }

# The module routes: /two (bench/modules/two-edits.ts) and /real/{id} (realistic.ts), both built
# by the admin API on upload.
add_module_routes() {
    local m
    for m in two-edits realistic; do
        admin module "{\"name\":\"$m\",\"moduleType\":\"typescript\",\"payload\":\"$(base64 -w0 "bench/modules/$m.ts")\"}"
    done
    admin route '{"name":"two-edits","paths":["/two","/two/*"],"methods":["*"],"service":"up","modules":["two-edits"]}'
    admin route '{"name":"realistic","paths":["/real/{id}"],"methods":["*"],"service":"up","modules":["realistic"]}'
}
