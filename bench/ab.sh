#!/usr/bin/env bash
# A/B of two dgate binaries: both run at once (each pinned to core 0, with its own upstream on
# core 1, the plain route and bench/run.sh's module routes), and wrk loads them in turn, rep after
# rep, so the drift of this shared VM hits both alike. Prints, per path and binary, the medians of
# req/s and of the proxy's user and system CPU µs a request (from /proc), then every rep.
# A change of a few percent needs this rather than two bench/run.sh runs.
#
#   bench/ab.sh /tmp/dgate-old "$CARGO_TARGET_DIR/release/dgate"
#   PATHS="/ /two /real/42" REPS=7 CONNS=256 bench/ab.sh OLD NEW
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

[ $# -eq 2 ] || { echo "usage: bench/ab.sh OLD-DGATE NEW-DGATE" >&2; exit 2; }
for b in "$1" "$2"; do
    [ -x "$b" ] || { echo "bench: $b is not an executable" >&2; exit 2; }
done
PATHS=${PATHS:-"/ /two"}
REPS=${REPS:-5}
CONNS=${CONNS:-32}
DURATION=${DURATION:-4s}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

. bench/lib.sh
DGATE_A=$1 DGATE_B=$2
build_release

declare -A pid port
for v in A B; do
    if [ "$v" = A ]; then DGATE=$DGATE_A UP_PORT=18500 DG_PORT=18501 DG_ADMIN=18502; else
        DGATE=$DGATE_B UP_PORT=18510 DG_PORT=18511 DG_ADMIN=18512; fi
    start_dgate
    add_module_routes
    for path in $PATHS; do
        curl -sf -H "x-user: alice" "http://127.0.0.1:$DG_PORT$path" >/dev/null ||
            { echo "bench: $v ($DGATE) does not answer $path" >&2; exit 1; }
    done
    pid[$v]=$dgate_pid port[$v]=$DG_PORT
done

# user and system clock ticks of a process
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
declare -A samples
for rep in $(seq 1 "$REPS"); do
    for path in $PATHS; do
        for v in A B; do
            echo "bench: rep $rep/$REPS $path $v ..." >&2
            read -r u0 s0 < <(ticks "${pid[$v]}")
            out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" -H "x-user: alice" \
                "http://127.0.0.1:${port[$v]}$path")
            read -r u1 s1 < <(ticks "${pid[$v]}")
            if grep -q "Non-2xx" <<<"$out"; then echo "bench: $v $path answered errors" >&2; fi
            n=$(awk '/requests in/ {print $1}' <<<"$out")
            rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
            samples["$path/$v"]+=$(awk -v n="$n" -v r="$rps" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$hz" \
                'BEGIN { printf "%.0f %.2f %.2f;", r, u / hz * 1e6 / n, s / hz * 1e6 / n }')
        done
    done
done

echo
echo "A = $DGATE_A"
echo "B = $DGATE_B"
echo "c=$CONNS, $DURATION per point, medians of $REPS interleaved reps; CPU in µs a request"
echo
echo "| path | binary | req/s | user | system | reps (req/s user system) |"
echo "| --- | --- | ---: | ---: | ---: | --- |"
for path in $PATHS; do
    for v in A B; do
        s=${samples["$path/$v"]}
        echo "| $path | $v | $(median 1 "$s") | $(median 2 "$s") | $(median 3 "$s") | ${s%;} |"
    done
done
