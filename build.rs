//! Release builds link the `dgate` binary with the functions a running gateway executes placed
//! together at the start of its text: `packaging/symbol-order.txt`, written by `bench/layout.sh`,
//! goes to the linker (rust-lld, the default for x86_64 Linux) as `--symbol-ordering-file`.
//! Scattered over ~40 MB of text, those functions made the kernel map 19 MiB of it after start;
//! placed together, 11 MiB (bench/README.md). Names the file lists that the binary lacks
//! are skipped, so a stale file costs locality only. `DGATE_NO_SYMBOL_ORDER=1` links without it
//! (the option is lld's).
//!
//! Release builds also pack the relative relocations (`-z pack-relative-relocs`, DT_RELR): the
//! position-independent binary's 2 MB `.rela.dyn`, which the loader reads whole at every start and
//! which stayed resident, becomes a few KiB. It needs glibc 2.36 or later at run time (Debian 12).

use std::env;
use std::path::Path;

fn main() {
    const ORDER: &str = "packaging/symbol-order.txt";
    println!("cargo:rerun-if-changed={ORDER}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DGATE_NO_SYMBOL_ORDER");
    let release = env::var("PROFILE").as_deref() == Ok("release");
    let linux_x86 = env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu");
    if !release || !linux_x86 {
        return;
    }
    println!("cargo:rustc-link-arg-bin=dgate=-Wl,-z,pack-relative-relocs");
    if env::var_os("DGATE_NO_SYMBOL_ORDER").is_some() {
        return;
    }
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let order = Path::new(&manifest).join(ORDER);
    if !order.is_file() {
        return;
    }
    println!(
        "cargo:rustc-link-arg-bin=dgate=-Wl,--symbol-ordering-file={}",
        order.display()
    );
    println!("cargo:rustc-link-arg-bin=dgate=-Wl,--no-warn-symbol-ordering");
}
