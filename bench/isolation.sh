#!/usr/bin/env bash
# Isolation soak (issue 17's targets): while 16 calls loop in one module (`while (true) {}`,
# limit 10 s, re-issued as each one ends), a module-free route and a route with a well-behaved
# module are loaded with wrk; then a module is written again and again, each write followed at
# once by a request that must be served by the new version. Prints the success rates, p50/p99
# latency (with the same routes measured without the loopers first, for comparison), and the
# time of the request right after each write.
#
#   bench/isolation.sh                # 10 s per point
#   DURATION=5s bench/isolation.sh
#   DGATE=/tmp/dgate-old bench/isolation.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

DURATION=${DURATION:-10s}
LOOPERS=${LOOPERS:-16}
WRITES=${WRITES:-10}
UP_PORT=18090 DG_PORT=18091 DG_ADMIN=18092

. bench/lib.sh
build_release

"$UPSTREAM" "127.0.0.1:$UP_PORT" &
pids+=($!)
wait_port "$UP_PORT"

# Fuel high enough that the loopers run into their 10 s wall-time limit, not their fuel.
cat >"$work/dgate.yaml" <<YAML
log_level: error
storage: {type: file, dir: $work/data}
proxy: {port: $DG_PORT}
admin: {port: $DG_ADMIN}
modules: {fuel: 1000000000000000}
YAML
"$DGATE" server --config "$work/dgate.yaml" >/dev/null &
pids+=($!)
wait_port "$DG_ADMIN"
module() { # name, JS source, limits JSON
    admin module "{\"name\":\"$1\",\"moduleType\":\"javascript\",\"payload\":\"$(printf '%s' "$2" | base64 -w0)\",\"limits\":$3}"
}
admin service "{\"name\":\"up\",\"urls\":[\"http://127.0.0.1:$UP_PORT\"]}"
admin route '{"name":"plain","paths":["/plain","/plain/*"],"methods":["*"],"service":"up"}'
module spin 'export function requestHandler(ctx) { while (true) {} }' '{"timeout":"10s"}'
admin route '{"name":"spin","paths":["/spin"],"methods":["*"],"modules":["spin"]}'
module good 'export const requestModifier = (ctx) => { ctx.request().headers.set("x-req", "1"); };' '{}'
admin route '{"name":"good","paths":["/good","/good/*"],"methods":["*"],"service":"up","modules":["good"]}'

# point PATH -> "requests non2xx errors p50us p99us"
point() {
    local out requests non2xx errors
    out=$(wrk -t1 -c8 -d"$DURATION" --timeout 10s --latency "http://127.0.0.1:$DG_PORT$1")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    errors=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$out")
    echo "$requests ${non2xx:-0} ${errors:-0} $(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")") $(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
}

declare -A result
for path in /plain /good; do
    echo "bench: $path without loopers ..." >&2
    result["$path/idle"]=$(point "$path")
done

# The loopers: each re-issues its call as soon as the last one ended (at its 10 s limit).
looper_log="$work/loopers"
: >"$looper_log"
for _ in $(seq 1 "$LOOPERS"); do
    (while :; do curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 "http://127.0.0.1:$DG_PORT/spin" >>"$looper_log" || true; done) &
    pids+=($!)
done
sleep 1
for path in /plain /good; do
    echo "bench: $path with $LOOPERS loopers ..." >&2
    result["$path/loop"]=$(point "$path")
done
looper_calls=$(wc -l <"$looper_log")
looper_502=$(grep -c '^502$' "$looper_log" || true)
looper_503=$(grep -c '^503$' "$looper_log" || true)

# A request right after each module write, on the node that took it.
after_write=()
for i in $(seq 1 "$WRITES"); do
    module ver "export function requestHandler(ctx) { ctx.response().json({ v: $i }); }" '{}'
    [ "$i" = 1 ] && admin route '{"name":"ver","paths":["/ver"],"methods":["*"],"modules":["ver"]}'
    out=$(curl -s -w ' %{http_code} %{time_total}' "http://127.0.0.1:$DG_PORT/ver")
    code=$(awk '{print $(NF-1)}' <<<"$out")
    secs=$(awk '{print $NF}' <<<"$out")
    grep -q "\"v\":$i}" <<<"$out" || { echo "bench: write $i not served by its new version: $out" >&2; exit 1; }
    [ "$code" = 200 ] || { echo "bench: write $i answered $code" >&2; exit 1; }
    after_write+=("$(awk -v s="$secs" 'BEGIN { printf "%.1f", s * 1000 }')")
done

echo
echo "dgate $("$DGATE" --version | awk '{print $2}'), $(date -u +%Y-%m-%d), $(nproc) cores, wrk -c8 $DURATION per point, $LOOPERS looping calls (limit 10s)"
echo
echo "| route | loopers | requests | non-2xx | socket errors | p50 µs | p99 µs |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for path in /plain /good; do
    for phase in idle loop; do
        read -r req non2xx err p50 p99 <<<"${result[$path/$phase]}"
        loopers=0; [ "$phase" = loop ] && loopers=$LOOPERS
        echo "| $path | $loopers | $req | $non2xx | $err | $p50 | $p99 |"
    done
done
echo
echo "looping calls ended: $looper_calls ($looper_502 at their limit with 502, $looper_503 refused with 503)"
sorted=$(printf '%s\n' "${after_write[@]}" | sort -n)
echo "request right after a module write (ms): median $(sed -n "$(( (WRITES + 1) / 2 ))p" <<<"$sorted"), max $(tail -1 <<<"$sorted") over $WRITES writes"
