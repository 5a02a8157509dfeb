#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every unit and integration test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo nextest run --all-targets --locked --no-fail-fast
