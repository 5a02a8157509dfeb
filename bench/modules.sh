#!/usr/bin/env bash
# Module benchmark: `dgate build` time and component size for a 50-line TS module, and the cost
# of one requestModifier call that sets a header, on a reused instance and on a fresh instance
# from the pool (release build, the gateway's engine, fuel and epoch limits on).
#
#   bench/modules.sh            # 5 builds, 20,000 calls each way
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
./scripts/setup.sh
cargo build --release --locked --bin dgate >&2
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
DGATE="$target/release/dgate"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export XDG_CACHE_HOME="$work/cache"

best=""
for i in 1 2 3 4 5; do
    start=$(date +%s%N)
    "$DGATE" build bench/modules/fifty-lines.ts -o "$work/fifty.wasm" 2>/dev/null
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
done
echo "dgate build of a $(wc -l < bench/modules/fifty-lines.ts)-line TS module: best of 5 ${best} ms, component $(stat -c %s "$work/fifty.wasm") bytes"

"$DGATE" build bench/modules/set-header.ts -o "$work/set-header.wasm" 2>/dev/null
start=$(date +%s%N)
"$DGATE" module run "$work/set-header.wasm" --hook requestModifier >/dev/null
echo "first load (cranelift compile + cache write) and one call: $(( ($(date +%s%N) - start) / 1000000 )) ms"
start=$(date +%s%N)
"$DGATE" module run "$work/set-header.wasm" --hook requestModifier >/dev/null
echo "cached load and one call (whole process): $(( ($(date +%s%N) - start) / 1000000 )) ms"
"$DGATE" module run "$work/set-header.wasm" --hook requestModifier --bench 20000
