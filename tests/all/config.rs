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
                err.to_lowercase().contains("address already in use"),
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

fn dgate(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_remove("DGATE_CONFIG")
        .env_remove("DGATE_ADMIN_KEY")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run dgate")
}

fn packaging(file: &str) -> String {
    format!("{}/packaging/{file}", env!("CARGO_MANIFEST_DIR"))
}

/// `dgate check -c FILE` says what `dgate server -c FILE` would refuse, without starting
/// anything (no port bound, no data dir made): exit 2 with the same line, or `FILE: ok`.
#[test]
fn check_validates_a_config_without_starting() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let good = write_file(
        dir.path(),
        "good.yaml",
        &format!("storage:\n  dir: {}\nproxy:\n  port: 1\n", data.display()),
    );
    let out = dgate(&["check", "-c", good.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{}: ok", good.display())
    );
    assert!(!data.exists(), "nothing is started or created");

    for (text, want) in [
        ("proxy:\n  prot: 8080\n", "proxy.prot: unknown field `prot`"),
        (
            "proxy:\n  tls:\n    cert_file: /nonexistent/c.pem\n    key_file: /nonexistent/k.pem\n",
            "/nonexistent/c.pem",
        ),
    ] {
        let bad = write_file(dir.path(), "bad.yaml", text);
        let out = dgate(&["check", "-c", bad.to_str().unwrap()], &[]);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{text}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }

    // The config the container image and the systemd unit ship: it needs the admin key.
    let shipped = packaging("dgate.yaml");
    let out = dgate(&["check", "-c", &shipped], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DGATE_ADMIN_KEY is not set"));
    let out = dgate(&["check", "-c", &shipped], &[("DGATE_ADMIN_KEY", "s3cret")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `dgate man` renders a man page naming the commands; the systemd unit passes
/// `systemd-analyze verify` where systemd's tools are installed.
#[test]
fn the_man_page_and_the_systemd_unit() {
    let out = dgate(&["man"], &[]);
    assert!(out.status.success());
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH dgate 1"), "{page}");
    for command in ["server", "check", "deploy", "history", "rollback", "new"] {
        assert!(page.contains(command), "{command} in the man page");
    }

    let Ok(analyze) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("systemd-analyze is not installed: the unit is not verified here");
        return;
    };
    assert!(analyze.status.success());
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(packaging("dgate.service"))
        .unwrap()
        .replace("/usr/local/bin/dgate", BIN);
    let path = write_file(dir.path(), "dgate.service", &unit);
    // The man page it documents is not installed here: not checked.
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no", path.to_str().unwrap()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}
