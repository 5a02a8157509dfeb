#!/usr/bin/env bash
# Builds the JS runtime guest (QuickJS via the javy crate + wit-bindgen) into
# toolchain/dgate-runtime.wasm, the core module that `dgate build` embeds. Works from a fresh
# Debian machine: it installs the Debian packages, the rustup target and a wasi-sdk-shaped
# folder (rquickjs-sys would download wasi-sdk otherwise).
#
#   toolchain/build.sh            # build and copy to toolchain/dgate-runtime.wasm
#   toolchain/build.sh --check    # build and fail if the committed file differs
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
. ../scripts/env.sh

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
packages=(clang-19 lld-19 llvm-19 libclang-19-dev libclang-rt-19-dev-wasm32 wasi-libc)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "toolchain: installing ${missing[*]}" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

# The wasi-sdk-shaped folder: clang and ar from LLVM 19, the sysroot from Debian's wasi-libc.
sdk=/var/tmp/dgate-wasi-sdk
mkdir -p "$sdk/bin" "$sdk/share/wasi-sysroot/include" "$sdk/share/wasi-sysroot/lib"
printf '#!/bin/sh\nexec /usr/lib/llvm-19/bin/clang "$@"\n' > "$sdk/bin/clang"
chmod +x "$sdk/bin/clang"
ln -sfn /usr/lib/llvm-19/bin/llvm-ar "$sdk/bin/ar"
ln -sfn /usr/lib/llvm-19/bin/llvm-ar "$sdk/bin/llvm-ar"
ln -sfn /usr/include/wasm32-wasi "$sdk/share/wasi-sysroot/include/wasm32-wasip1"
ln -sfn /usr/lib/wasm32-wasi "$sdk/share/wasi-sysroot/lib/wasm32-wasip1"

export WASI_SDK="$sdk" LIBCLANG_PATH=/usr/lib/llvm-19/lib
export CC_wasm32_wasip1="$sdk/bin/clang" AR_wasm32_wasip1="$sdk/bin/ar"
# Paths inside the binary must not depend on where the checkout or the registry lives.
export RUSTFLAGS="--remap-path-prefix=$here=/toolchain --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo"
cargo build --locked --release --target wasm32-wasip1 --manifest-path runtime/Cargo.toml \
    --target-dir "$CARGO_TARGET_DIR/toolchain"

built=$CARGO_TARGET_DIR/toolchain/wasm32-wasip1/release/dgate_runtime.wasm
if [ "${1:-}" = "--check" ]; then
    # Every unsafe block of the guest says why it is sound.
    cargo clippy --locked --release --target wasm32-wasip1 --manifest-path runtime/Cargo.toml \
        --target-dir "$CARGO_TARGET_DIR/toolchain-clippy" -- -D warnings -D clippy::undocumented_unsafe_blocks
    if cmp -s "$built" dgate-runtime.wasm; then
        echo "toolchain: the committed dgate-runtime.wasm is up to date"
    else
        echo "toolchain: dgate-runtime.wasm is stale: run toolchain/build.sh and commit it" >&2
        exit 1
    fi
else
    cp "$built" dgate-runtime.wasm
    echo "toolchain: wrote toolchain/dgate-runtime.wasm ($(stat -c %s dgate-runtime.wasm) bytes)"
fi
