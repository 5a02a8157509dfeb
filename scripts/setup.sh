#!/usr/bin/env bash
# Installs what building and testing dgate needs, when it is missing: Debian packages (libclang for
# RocksDB's bindgen, a C++ compiler, Node.js and npm for the SDK), the pinned Rust toolchain with
# rustfmt and clippy, and cargo-nextest. Safe to run again: it only acts on what is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
need=(libclang-dev clang g++ make pkg-config)
# Node.js and npm for the SDK's type check, unless the machine has them already.
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
for pkg in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install rustup first (https://rustup.rs)" >&2
    exit 1
fi
# rust-toolchain.toml pins the version; this makes rustup fetch it (and its components) if needed.
cargo --version >/dev/null

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "setup: installing cargo-nextest"
    cargo install cargo-nextest --locked
fi
