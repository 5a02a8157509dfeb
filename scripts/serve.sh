#!/usr/bin/env bash
# Builds dgate (release) and starts the gateway on the defaults, or with the arguments given
# (e.g. `scripts/serve.sh --config dgate.yaml`).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
./scripts/setup.sh
exec cargo run --release --locked -- server "$@"
