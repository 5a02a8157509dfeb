//! Starting the real binary with good and bad configs.

use std::process::{Command, Stdio};
use std::time::Instant;

use crate::helpers::{BIN, Gateway, write_file};

fn refused(config_text: &str, want: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "c.yaml", config_text);
    let out = Command::new(BIN)
        .args(["server", "--config", path.to_str().unwrap(), "--data-dir"])
        .arg(dir.path().join("data"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{config_text:?}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with(&format!("dgate: config: {want}")), "{err}");
}

#[test]
fn bad_configs_exit_2_with_one_line() {
    refused("admin:\n  prot: 9080\n", "admin.prot: unknown field `prot`");
    refused(
        "admin:\n  auth_method: key\n",
        "admin.key_auth.keys: auth_method is key but no keys",
    );
    refused(
        "proxy:\n  port: 99999\n",
        "proxy.port: invalid value: integer `99999`",
    );
    refused(
        "storage:\n  type: ${DGATE_TEST_UNSET_VAR}\n",
        "environment variable DGATE_TEST_UNSET_VAR is not set",
    );
}

#[test]
fn starts_fast_with_defaults_in_a_fresh_dir() {
    let dir = tempfile::tempdir().unwrap();
    // No arguments at all: defaults, data under ./dgate-data. Port 9080 may be taken on a shared
    // machine, so this test checks only the first ready line and the data dir it creates.
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env("RUST_LOG", "dgate=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = std::io::BufRead::lines(std::io::BufReader::new(stdout)).next();
    let elapsed = start.elapsed();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    match line {
        Some(Ok(line)) => {
            assert!(
                line.starts_with("dgate ready: node=dgate admin=http://127.0.0.1:9080"),
                "{line}"
            );
            assert!(dir.path().join("dgate-data").join("CURRENT").exists());
            eprintln!("ready after {elapsed:?}");
        }
        _ => {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("address already in use"),
                "no ready line and: {err}"
            );
        }
    }
}

#[test]
fn two_servers_cannot_share_a_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Gateway::start(dir.path(), &[]);
    let err = Gateway::try_start(dir.path(), &[])
        .err()
        .expect("second must fail");
    assert!(err.contains("exit Some(1)"), "{err}");
    assert!(err.contains("cannot open storage"), "{err}");
}
