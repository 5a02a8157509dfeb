#!/usr/bin/env bash
# Load benchmark: the same upstream measured directly, through dgate, and through nginx (when
# installed), in one run. The proxy under test is pinned to core 0; wrk and the upstream share
# core 1. Prints a markdown table: req/s, p50 and p99 latency, and dgate ÷ nginx; then the route
# with a JS module against the plain route and nginx+njs, and the two dgate routes measured back
# to back in pairs.
#
#   bench/run.sh                 # 10 s per point, 3 pairs
#   DURATION=3s bench/run.sh     # quicker, noisier
#   PAIRS=5 bench/run.sh         # more plain/module pairs
#   DGATE=/tmp/dgate-old bench/run.sh   # measure another dgate binary
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

DURATION=${DURATION:-10s}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
UP_PORT=18080 DG_PORT=18081 DG_ADMIN=18082 NG_PORT=18083

. bench/lib.sh
# nginx with njs is the reference for the module route; without it those columns stay empty.
if ! command -v nginx >/dev/null || [ ! -e /usr/lib/nginx/modules/ngx_http_js_module.so ]; then
    packages=(libnginx-mod-http-js)
    command -v nginx >/dev/null || packages=(nginx "${packages[@]}")
    echo "bench: installing ${packages[*]}" >&2
    { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq "${packages[@]}" >/dev/null; } ||
        echo "bench: ${packages[*]} could not be installed; measuring without them" >&2
fi
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
taskset -c "$PROXY_CPU" "$DGATE" server --config "$work/dgate.yaml" >/dev/null &
dgate_pid=$!
pids+=($dgate_pid)
wait_port "$DG_ADMIN"
admin() { curl -sf -X PUT "http://127.0.0.1:$DG_ADMIN/api/v1/$1" -d "$2" >/dev/null; }
admin service "{\"name\":\"up\",\"urls\":[\"http://127.0.0.1:$UP_PORT\"]}"
admin route '{"name":"all","paths":["/*"],"methods":["*"],"service":"up"}'
curl -sf "http://127.0.0.1:$DG_PORT/" >/dev/null
idle_rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$dgate_pid/status")
# A route whose module sets one request header and one response header (built on upload).
module_js='export const requestModifier = (ctx) => { ctx.request().headers.set("x-req", "1"); };
export const responseModifier = (ctx, res) => { res.headers.set("x-res", "1"); };'
admin module "{\"name\":\"hdr\",\"moduleType\":\"javascript\",\"payload\":\"$(printf '%s' "$module_js" | base64 -w0)\"}"
admin route '{"name":"mod","paths":["/mod","/mod/*"],"methods":["*"],"service":"up","modules":["hdr"]}'
curl -sf "http://127.0.0.1:$DG_PORT/mod" >/dev/null  # compiles the module once, before timing
module_rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$dgate_pid/status")

have_nginx=0 have_njs=0
if command -v nginx >/dev/null; then
    have_nginx=1
    mkdir -p "$work/nginx"
    # What both locations do to proxy (what dgate does: HTTP/1.1 keep-alive upstream, the
    # forwarding headers).
    proxy_conf="proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Real-IP \$remote_addr;
            proxy_buffering on;"
    # The module route's two header edits in njs: a variable computed by JS for the request
    # header, a header filter for the response header.
    njs_load="" njs_http="" njs_location=""
    if [ -e /usr/lib/nginx/modules/ngx_http_js_module.so ]; then
        have_njs=1
        cat >"$work/nginx/hdr.js" <<'NJS'
function xreq(r) { return "1"; }
function res(r) { r.headersOut["x-res"] = "1"; }
export default { xreq, res };
NJS
        njs_load="load_module /usr/lib/nginx/modules/ngx_http_js_module.so;"
        njs_http="js_path $work/nginx; js_import hdr from hdr.js; js_set \$xreq hdr.xreq;"
        njs_location="location /mod {
            $proxy_conf
            proxy_set_header X-Req \$xreq;
            js_header_filter hdr.res;
        }"
    fi
    cat >"$work/nginx.conf" <<NGINX
$njs_load
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx; proxy_temp_path $work/nginx;
    fastcgi_temp_path $work/nginx; uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
    upstream up { server 127.0.0.1:$UP_PORT; keepalive 256; }
    $njs_http
    server {
        listen 127.0.0.1:$NG_PORT;
        location / {
            $proxy_conf
        }
        $njs_location
    }
}
NGINX
    taskset -c "$PROXY_CPU" nginx -c "$work/nginx.conf" -e "$work/nginx/error.log" &
    pids+=($!)
    wait_port "$NG_PORT"
fi


# run_point NAME PORT PATH CONNS -> "rps p50us p99us"
run_point() {
    local out
    out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$4" -d"$DURATION" --latency "http://127.0.0.1:$2$3")
    local rps p50 p99
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    if grep -q "Non-2xx" <<<"$out"; then echo "bench: $1 answered errors:" >&2; echo "$out" >&2; fi
    echo "$rps $p50 $p99"
}

targets=("direct:$UP_PORT" "dgate:$DG_PORT")
[ "$have_nginx" = 1 ] && targets+=("nginx:$NG_PORT")
points=("small:/:1" "small:/:32" "small:/:256" "16KiB:/16k:32")

declare -A result
for point in "${points[@]}"; do
    IFS=: read -r body path conns <<<"$point"
    for t in "${targets[@]}"; do
        IFS=: read -r name port <<<"$t"
        echo "bench: $name body=$body c=$conns ..." >&2
        result["$name/$body/$conns"]=$(run_point "$name" "$port" "$path" "$conns")
    done
done

echo
echo "dgate $("$DGATE" --version | awk '{print $2}'), $(date -u +%Y-%m-%d), $(nproc) cores, proxy on cpu $PROXY_CPU, wrk + upstream on cpu $LOAD_CPU, $DURATION per point"
echo
echo "| target | body | conns | req/s | p50 µs | p99 µs | dgate ÷ nginx (req/s) |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
for point in "${points[@]}"; do
    IFS=: read -r body path conns <<<"$point"
    for t in "${targets[@]}"; do
        name=${t%%:*}
        read -r rps p50 p99 <<<"${result["$name/$body/$conns"]}"
        ratio=""
        if [ "$name" = dgate ] && [ "$have_nginx" = 1 ]; then
            read -r nrps _ _ <<<"${result["nginx/$body/$conns"]}"
            ratio=$(awk -v a="$rps" -v b="$nrps" 'BEGIN { printf "%.2f", a / b }')
        fi
        printf '| %s | %s | %s | %.0f | %.0f | %.0f | %s |\n' "$name" "$body" "$conns" "$rps" "$p50" "$p99" "$ratio"
    done
done
read -r _ d50 _ <<<"${result["direct/small/1"]}"
read -r _ g50 _ <<<"${result["dgate/small/1"]}"
echo
echo "added latency at c=1 (p50 dgate - p50 direct): $(awk -v a="$g50" -v b="$d50" 'BEGIN { printf "%.0f", a - b }') µs"
echo "dgate idle RSS after start and one route: $((idle_rss_kib / 1024)) MiB; after building (in the admin API), compiling and running one module: $((module_rss_kib / 1024)) MiB"

# Modules: the same c=32 point through the route whose JS module sets a request and a response
# header, against the plain route measured above.
echo "bench: dgate+modules body=small c=32 ..." >&2
read -r mrps m50 m99 <<<"$(run_point dgate+modules "$DG_PORT" /mod 32)"
read -r prps _ p99 <<<"${result["dgate/small/32"]}"
njs_ratio=""
if [ "$have_njs" = 1 ]; then
    echo "bench: nginx+njs body=small c=32 ..." >&2
    read -r jrps j50 j99 <<<"$(run_point nginx+njs "$NG_PORT" /mod 32)"
    read -r nrps _ n99 <<<"${result["nginx/small/32"]}"
    njs_ratio=$(awk -v a="$mrps" -v b="$jrps" 'BEGIN { printf "%.2f", a / b }')
fi
echo
echo "| target | body | conns | req/s | p50 µs | p99 µs | ÷ plain (req/s) | p99 ÷ plain p99 | dgate ÷ nginx+njs (req/s) |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
printf '| dgate + JS request/response modifiers | small | 32 | %.0f | %.0f | %.0f | %s | %s | %s |\n' "$mrps" "$m50" "$m99" \
    "$(awk -v a="$mrps" -v b="$prps" 'BEGIN { printf "%.2f", a / b }')" \
    "$(awk -v a="$m99" -v b="$p99" 'BEGIN { printf "%.2f", a / b }')" "$njs_ratio"
if [ "$have_njs" = 1 ]; then
    printf '| nginx + njs request/response header edits | small | 32 | %.0f | %.0f | %.0f | %s | %s | |\n' "$jrps" "$j50" "$j99" \
        "$(awk -v a="$jrps" -v b="$nrps" 'BEGIN { printf "%.2f", a / b }')" \
        "$(awk -v a="$j99" -v b="$n99" 'BEGIN { printf "%.2f", a / b }')"
fi
# The proxy core is saturated at c=32, so CPU per request is 1 / req/s.
echo "added CPU per request with the module (1/req/s with - without): $(awk -v a="$mrps" -v b="$prps" 'BEGIN { printf "%.1f", 1e6 / a - 1e6 / b }') µs"

# Paired: the VM's speed drifts during a run by more than the module route's cost, so the plain
# and module routes are also measured back to back, PAIRS times; quote the medians.
PAIRS=${PAIRS:-3}
echo
echo "| pair | plain req/s | p99 µs | modules req/s | p99 µs | ÷ plain (req/s) | p99 ÷ plain p99 | added CPU µs |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
pair_rows=()
for i in $(seq 1 "$PAIRS"); do
    echo "bench: pair $i of $PAIRS: dgate plain, then dgate+modules, c=32 ..." >&2
    read -r a _ a99 <<<"$(run_point dgate "$DG_PORT" / 32)"
    read -r b _ b99 <<<"$(run_point dgate+modules "$DG_PORT" /mod 32)"
    row=$(awk -v a="$a" -v b="$b" -v a99="$a99" -v b99="$b99" \
        'BEGIN { printf "%.3f %.3f %.2f", b / a, b99 / a99, 1e6 / b - 1e6 / a }')
    pair_rows+=("$row")
    read -r r q c <<<"$row"
    printf '| %d | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f | %s |\n' "$i" "$a" "$a99" "$b" "$b99" "$r" "$q" "$c"
done
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf 'medians of %d pairs: ÷ plain %.2f, p99 ÷ plain p99 %.2f, added CPU %.1f µs\n' "$PAIRS" \
    "$(printf '%s\n' "${pair_rows[@]}" | awk '{print $1}' | median)" \
    "$(printf '%s\n' "${pair_rows[@]}" | awk '{print $2}' | median)" \
    "$(printf '%s\n' "${pair_rows[@]}" | awk '{print $3}' | median)"
