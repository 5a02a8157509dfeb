#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, the JS runtime and SDK checks, then every
# unit and integration test.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
./scripts/setup.sh
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
# The committed JS runtime must be exactly what toolchain/ builds.
./toolchain/build.sh --check
# The SDK's types check against its examples.
(cd sdk-ts && npm ci --no-audit --no-fund --loglevel=error && npm test --silent)
# The independent OpenAPI validator the contract test runs on the admin API's document.
(cd scripts/openapi-check && npm ci --no-audit --no-fund --loglevel=error)
cargo nextest run --all-targets --locked --no-fail-fast
