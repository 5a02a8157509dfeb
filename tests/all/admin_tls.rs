//! `admin.tls`: the admin API over HTTPS, with and without client certificates, used through the
//! CLI (`--ca`, `--insecure`, `--client-cert`/`--client-key`), and two nodes replicating over it.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::Value;

use crate::helpers::{Gateway, cli, write_file};

/// A CA that signs certificates for 127.0.0.1 and localhost, written as PEM files in a dir.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
    name: String,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        write_file(dir, &format!("{name}-ca.pem"), &issuer.pem());
        Ca {
            issuer,
            dir: dir.to_path_buf(),
            name: name.to_string(),
        }
    }

    fn ca_file(&self) -> String {
        self.dir
            .join(format!("{}-ca.pem", self.name))
            .display()
            .to_string()
    }

    /// A certificate and key for `who`, valid for 127.0.0.1 and localhost: (cert, key) paths.
    fn leaf(&self, who: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        let c = write_file(&self.dir, &format!("{who}.crt"), &cert.pem());
        let k = write_file(&self.dir, &format!("{who}.key"), &key.serialize_pem());
        (c.display().to_string(), k.display().to_string())
    }
}

fn tls_config(dir: &Path, name: &str, ca: &Ca, mutual: bool, extra: &str) -> PathBuf {
    let (cert, key) = ca.leaf(name);
    let client_ca = if mutual {
        format!("\n    client_ca_file: {}", ca.ca_file())
    } else {
        String::new()
    };
    write_file(
        dir,
        &format!("{name}.yaml"),
        &format!(
            "node_id: {name}\nadmin:\n  tls:\n    cert_file: {cert}\n    key_file: {key}{client_ca}\n{extra}"
        ),
    )
}

fn said(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_cli_talks_to_an_https_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "main");
    let config = tls_config(dir.path(), "n1", &ca, false, "");
    let gw = Gateway::start(&dir.path().join("data"), &["-c", config.to_str().unwrap()]);
    assert!(gw.admin.starts_with("https://127.0.0.1:"), "{}", gw.admin);

    // The CA is unknown to the system: refused, saying how to trust it.
    let out = cli(&gw.admin, &["ns", "ls"]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TLS: invalid peer certificate"), "{err}");
    assert!(err.contains("--ca FILE"), "{err}");
    // Trusted with --ca (or DGATE_ADMIN_CA): works.
    let ca_file = ca.ca_file();
    let out = cli(&gw.admin, &["--ca", &ca_file, "ns", "create", "tls-ns"]);
    assert!(out.status.success(), "{}", said(&out));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dgate"))
        .args(["--admin", &gw.admin, "-o", "json", "ns", "get", "tls-ns"])
        .env("DGATE_ADMIN_CA", &ca_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", said(&out));
    // --insecure: encrypted without the check.
    let out = cli(&gw.admin, &["--insecure", "ns", "get", "tls-ns"]);
    assert!(out.status.success(), "{}", said(&out));
    // Another CA's certificate is not this one.
    let other = Ca::new(dir.path(), "other");
    let out = cli(&gw.admin, &["--ca", &other.ca_file(), "ns", "ls"]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    // Plain HTTP on the TLS port gets no answer.
    let plain = gw.admin.replacen("https://", "http://", 1);
    let out = cli(&plain, &["ns", "ls"]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    // A CA file that is not one is a usage error.
    let junk = write_file(dir.path(), "junk.pem", "not a certificate");
    let out = cli(&gw.admin, &["--ca", junk.to_str().unwrap(), "ns", "ls"]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    gw.stop();

    // A key that is not the certificate's is refused by `dgate check` and at start (exit 2).
    let (cert, _) = ca.leaf("a");
    let (_, wrong_key) = ca.leaf("b");
    let bad = write_file(
        dir.path(),
        "bad.yaml",
        &format!("admin:\n  tls:\n    cert_file: {cert}\n    key_file: {wrong_key}\n"),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dgate"))
        .args(["check", "-c", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("admin.tls"),
        "{}",
        said(&out)
    );
}

#[test]
fn client_certificates_are_required_with_a_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "main");
    let config = tls_config(dir.path(), "n1", &ca, true, "");
    let gw = Gateway::start(&dir.path().join("data"), &["-c", config.to_str().unwrap()]);
    let ca_file = ca.ca_file();

    let out = cli(&gw.admin, &["--ca", &ca_file, "ns", "ls"]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--client-cert"),
        "{}",
        said(&out)
    );
    let with_cert = |(cert, key): &(String, String), args: &[&str]| {
        let mut all = vec![
            "--ca",
            ca_file.as_str(),
            "--client-cert",
            cert,
            "--client-key",
            key,
        ];
        all.extend_from_slice(args);
        cli(&gw.admin, &all)
    };
    let out = with_cert(&ca.leaf("operator"), &["ns", "create", "mtls"]);
    assert!(out.status.success(), "{}", said(&out));
    // A certificate from another CA is refused.
    let other = Ca::new(dir.path(), "other");
    let (cert, key) = other.leaf("stranger");
    let out = with_cert(&(cert.clone(), key), &["ns", "ls"]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    // --client-cert needs --client-key.
    let out = cli(&gw.admin, &["--client-cert", &cert, "ns", "ls"]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    gw.stop();
}

/// Two nodes with mutual TLS on their admin listeners form a cluster: Raft, the join and a
/// write forwarded from the follower all go over HTTPS with client certificates.
#[tokio::test]
async fn nodes_replicate_over_admin_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "cluster");
    let raft = "    shared_key: k\n    raft_config: {heartbeat_interval: 100ms, election_timeout_min: 1000ms, election_timeout_max: 2000ms}\n";
    let n1_config = tls_config(
        dir.path(),
        "n1",
        &ca,
        true,
        &format!("  replication:\n    bootstrap_cluster: true\n{raft}"),
    );
    let n1 = Gateway::start(&dir.path().join("n1"), &["-c", n1_config.to_str().unwrap()]);
    let n2_config = tls_config(
        dir.path(),
        "n2",
        &ca,
        true,
        &format!(
            "  replication:\n    cluster_address: [\"{}\"]\n{raft}",
            n1.admin
        ),
    );
    let n2 = Gateway::start(&dir.path().join("n2"), &["-c", n2_config.to_str().unwrap()]);
    let (cert, key) = ca.leaf("operator");
    let ca_file = ca.ca_file();
    let run = |admin: &str, args: &[&str]| {
        let mut all = vec![
            "--ca",
            ca_file.as_str(),
            "--client-cert",
            cert.as_str(),
            "--client-key",
            key.as_str(),
        ];
        all.extend_from_slice(args);
        cli(admin, &all)
    };
    // n2 is in once n1 (the leader) counts two members, both voters.
    crate::helpers::eventually("n2 joins over TLS", Duration::from_secs(60), || {
        let out = run(&n1.admin, &["-o", "json", "cluster", "status"]);
        async move {
            let Ok(status) = serde_json::from_slice::<Value>(&out.stdout) else {
                return false;
            };
            let members = status["members"].as_array().cloned().unwrap_or_default();
            members.len() == 2
                && members.iter().all(|m| {
                    m["role"] == "voter"
                        && m["address"]
                            .as_str()
                            .is_some_and(|a| a.starts_with("https://"))
                })
        }
    })
    .await;
    // A write through the follower is forwarded to the leader and read on both.
    let out = run(&n2.admin, &["ns", "create", "over-tls"]);
    assert!(out.status.success(), "{}", said(&out));
    for node in [&n1, &n2] {
        crate::helpers::eventually(
            "the namespace is on every node",
            Duration::from_secs(30),
            || {
                let out = run(&node.admin, &["ns", "get", "over-tls"]);
                async move { out.status.success() }
            },
        )
        .await;
    }
    n2.stop();
    n1.stop();
}
