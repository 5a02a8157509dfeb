# Sourced by the scripts (not run), from any directory: settings every build here shares.
# One target dir outside the checkout, so that CI's fresh clone on the same machine reuses the build
# (RocksDB's C++ alone is ~15 CPU minutes). A caller's own CARGO_TARGET_DIR wins; a plain `cargo`
# in a clone uses ./target as usual.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dgate-target}"

# Cargo keys a workspace's artifacts by the package's path relative to it and judges them by file
# times, so after another checkout built into the same directory (CI's clone, with newer files) it
# would take that checkout's binaries as fresh here: other code, with the other tree's paths
# compiled in. When the last build came from another checkout, make this one's crate roots newer
# than every artifact; all that depends on them is then rebuilt (the gateway and the JS runtime).
dgate_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
if [ "$(cat "$CARGO_TARGET_DIR/.dgate-checkout" 2>/dev/null)" != "$dgate_root" ]; then
  touch "$dgate_root/src/lib.rs" "$dgate_root/toolchain/runtime/src/lib.rs"
  mkdir -p "$CARGO_TARGET_DIR"
  echo "$dgate_root" >"$CARGO_TARGET_DIR/.dgate-checkout"
fi
unset dgate_root
