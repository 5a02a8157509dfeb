#!/usr/bin/env bash
# Load benchmark, in one run and the same pinning: the upstream directly, nginx, dgate's plain
# route, and two module routes against nginx + njs doing the same work:
#   two-edits  (bench/modules/two-edits.ts): reads the method, sets a computed request header and
#              a response header;
#   realistic  (bench/modules/realistic.ts): reads a request header and a path parameter, sets a
#              request header from both and a response header.
# At c=1, 32 and 256. The targets are interleaved (each rep runs every target once, in turn) and
# the tables give medians over the reps, so drift of this shared VM hits every target alike.
# The proxy under test is pinned to core 0; wrk and the upstream share core 1. CPU µs a request
# is the proxy's own CPU time (user + system, and each apart; from /proc, every nginx process
# counted) over the requests wrk completed.
#
#   bench/run.sh                  # 5 s per point, 3 reps
#   DURATION=3s REPS=1 bench/run.sh   # a quick look
#   DGATE=/tmp/dgate-old bench/run.sh # measure another dgate binary
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

DURATION=${DURATION:-5s}
REPS=${REPS:-3}
CONNS=${CONNS:-"1 32 256"}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
UP_PORT=18080 DG_PORT=18081 DG_ADMIN=18082 NG_PORT=18083

. bench/lib.sh
if ! command -v nginx >/dev/null || [ ! -e /usr/lib/nginx/modules/ngx_http_js_module.so ]; then
    packages=(libnginx-mod-http-js)
    command -v nginx >/dev/null || packages=(nginx "${packages[@]}")
    echo "bench: installing ${packages[*]}" >&2
    { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq "${packages[@]}" >/dev/null; } || {
        echo "bench: ${packages[*]} could not be installed; the comparison needs them" >&2
        exit 1
    }
fi
build_release

start_dgate
curl -sf "http://127.0.0.1:$DG_PORT/" >/dev/null
status_kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$dgate_pid/status"; }
idle_rss_kib=$(status_kib VmRSS)
# The plain proxy's peak under c=256, before any module exists.
taskset -c "$LOAD_CPU" wrk -t1 -c256 -d"$DURATION" "http://127.0.0.1:$DG_PORT/" >/dev/null
plain_peak_kib=$(status_kib VmHWM)

add_module_routes
curl -sf "http://127.0.0.1:$DG_PORT/two" >/dev/null
curl -sf -H "x-user: alice" "http://127.0.0.1:$DG_PORT/real/42" >/dev/null
module_rss_kib=$(status_kib VmRSS)

mkdir -p "$work/nginx"
cat >"$work/nginx/bench.js" <<'NJS'
function method(r) { return r.method.toLowerCase(); }
function res(r) { r.headersOut["x-res"] = "1"; }
function tag(r) { return (r.headersIn["x-user"] || "anonymous") + ":" + r.variables.id; }
function served(r) { r.headersOut["x-served-by"] = "nginx"; }
export default { method, res, tag, served };
NJS
# What every location does to proxy (what dgate does: HTTP/1.1 keep-alive upstream, the
# forwarding headers).
proxy_conf="proxy_pass http://up;
        proxy_http_version 1.1;
        proxy_set_header Connection \"\";
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Real-IP \$remote_addr;
        proxy_buffering on;"
cat >"$work/nginx.conf" <<NGINX
load_module /usr/lib/nginx/modules/ngx_http_js_module.so;
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
    js_path $work/nginx;
    js_import bench from bench.js;
    js_set \$method bench.method;
    js_set \$tag bench.tag;
    server {
        listen 127.0.0.1:$NG_PORT;
        location / {
            $proxy_conf
        }
        location /two {
            $proxy_conf
            proxy_set_header X-Method \$method;
            js_header_filter bench.res;
        }
        location ~ ^/real/(?<id>[^/]+)$ {
            $proxy_conf
            proxy_set_header X-Tag \$tag;
            js_header_filter bench.served;
        }
    }
}
NGINX
taskset -c "$PROXY_CPU" nginx -c "$work/nginx.conf" -e "$work/nginx/error.log" &
nginx_pid=$!
pids+=($nginx_pid)
wait_port "$NG_PORT"
for check in "$NG_PORT/two" "$DG_PORT/two"; do
    curl -sf -D - -o /dev/null "http://127.0.0.1:$check" | grep -qi '^x-res: 1' ||
        { echo "bench: $check does not set x-res" >&2; exit 1; }
done

# CPU time ("user system", in clock ticks) of a process and its children's threads: nginx's
# master and worker, dgate's one process.
ticks() {
    local user=0 sys=0 p u s
    for p in "$@" $(pgrep -P "$1" || true); do
        read -r u s < <(awk '{print $14, $15}' "/proc/$p/stat")
        user=$((user + u)) sys=$((sys + s))
    done
    echo "$user $sys"
}
hz=$(getconf CLK_TCK)

# run_point PID PORT PATH CONNS -> "rps p99us cpu_us user_us system_us" (a request's CPU; "-"
# without a PID)
run_point() {
    local pid=$1 port=$2 path=$3 conns=$4 before after out
    [ "$pid" = - ] || before=$(ticks "$pid")
    out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d"$DURATION" --latency -H "x-user: alice" \
        "http://127.0.0.1:$port$path")
    [ "$pid" = - ] || after=$(ticks "$pid")
    if grep -q "Non-2xx" <<<"$out"; then echo "bench: $port$path answered errors:" >&2; echo "$out" >&2; fi
    local rps p99 n cpu=- user=- sys=-
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    if [ "$pid" != - ]; then
        read -r cpu user sys < <(awk -v b="$before" -v a="$after" -v k="$hz" -v n="$n" 'BEGIN {
            split(b, x, " "); split(a, y, " "); u = y[1] - x[1]; s = y[2] - x[2]
            printf "%.1f %.1f %.1f", (u + s) / k * 1e6 / n, u / k * 1e6 / n, s / k * 1e6 / n }')
    fi
    echo "$rps $p99 $cpu $user $sys"
}

# name:pid:port:path
targets=(
    "direct:-:$UP_PORT:/"
    "nginx:$nginx_pid:$NG_PORT:/"
    "dgate:$dgate_pid:$DG_PORT:/"
    "nginx+njs two-edits:$nginx_pid:$NG_PORT:/two"
    "dgate two-edits:$dgate_pid:$DG_PORT:/two"
    "nginx+njs realistic:$nginx_pid:$NG_PORT:/real/42"
    "dgate realistic:$dgate_pid:$DG_PORT:/real/42"
)
# What each dgate target is compared with.
declare -A reference=(
    ["dgate"]="nginx"
    ["dgate two-edits"]="nginx+njs two-edits"
    ["dgate realistic"]="nginx+njs realistic"
)

declare -A samples
for rep in $(seq 1 "$REPS"); do
    for conns in $CONNS; do
        for t in "${targets[@]}"; do
            IFS=: read -r name pid port path <<<"$t"
            echo "bench: rep $rep/$REPS c=$conns $name ..." >&2
            samples["$name/$conns"]+="$(run_point "$pid" "$port" "$path" "$conns");"
        done
    done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print ""; else printf "%.2f", a / b }'; }

echo
echo "dgate $("$DGATE" --version | awk '{print $2}'), $(date -u +%Y-%m-%d), $(nproc) cores, proxy on cpu $PROXY_CPU, wrk + upstream on cpu $LOAD_CPU, $DURATION per point, medians of $REPS interleaved reps"
echo
echo "| target | conns | req/s | p99 µs | CPU µs/req | user | system | ÷ reference req/s | ÷ reference CPU |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for conns in $CONNS; do
    for t in "${targets[@]}"; do
        name=${t%%:*}
        s=${samples["$name/$conns"]}
        rps=$(median 1 "$s") p99=$(median 2 "$s") cpu=$(median 3 "$s")
        user=$(median 4 "$s") sys=$(median 5 "$s")
        r_rps="" r_cpu=""
        if [ -n "${reference[$name]:-}" ]; then
            rs=${samples["${reference[$name]}/$conns"]}
            r_rps=$(ratio "$rps" "$(median 1 "$rs")")
            r_cpu=$(ratio "$cpu" "$(median 3 "$rs")")
        fi
        printf '| %s | %s | %.0f | %.0f | %s | %s | %s | %s | %s |\n' "$name" "$conns" "$rps" "$p99" "$cpu" \
            "$user" "$sys" "$r_rps" "$r_cpu"
    done
done
echo
echo "dgate RSS: idle after start and one route $((idle_rss_kib / 1024)) MiB; peak of the plain proxy under c=256 $((plain_peak_kib / 1024)) MiB; after building and running two modules $((module_rss_kib / 1024)) MiB"
echo "nginx peak RSS (master + worker): $(( ( $(awk '/VmHWM/ {print $2}' /proc/$nginx_pid/status) + $(for p in $(pgrep -P $nginx_pid); do awk '/VmHWM/ {print $2}' /proc/$p/status; done | awk '{s+=$1} END {print s}') ) / 1024 )) MiB"
