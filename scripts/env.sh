# Sourced by the scripts (not run): settings every build here shares.
# One target dir outside the checkout, so that CI's fresh clone on the same machine reuses the build
# (RocksDB's C++ alone is ~15 CPU minutes). A caller's own CARGO_TARGET_DIR wins; a plain `cargo`
# in a clone uses ./target as usual.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dgate-target}"
