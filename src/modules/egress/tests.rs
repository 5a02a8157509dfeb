use std::net::SocketAddr;

use super::*;

fn policy(allow: &[&str], own: &[&str]) -> Egress {
    Egress::new(
        &FetchConfig {
            allow: allow.iter().map(|s| s.to_string()).collect(),
        },
        own.iter().map(|s| s.parse().unwrap()).collect(),
    )
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn non_public_addresses_are_refused_by_default() {
    let p = policy(&[], &[]);
    for a in [
        "127.0.0.1:80",
        "127.9.9.9:80",
        "10.1.2.3:80",
        "172.16.0.1:80",
        "192.168.1.1:80",
        "169.254.169.254:80",
        "100.64.0.1:80",
        "0.0.0.0:80",
        "[::1]:80",
        "[::]:80",
        "[fd00::1]:80",
        "[fe80::1]:80",
        "[::ffff:127.0.0.1]:80",
        "[::ffff:169.254.169.254]:80",
        "[64:ff9b::a9fe:a9fe]:80",
        "224.0.0.1:80",
    ] {
        let e = p.check("h", addr(a)).expect_err(a);
        assert!(e.to_string().contains("modules.fetch.allow"), "{e}");
    }
    for a in ["93.184.216.34:80", "[2606:4700::1111]:443", "8.8.8.8:53"] {
        p.check("h", addr(a)).unwrap_or_else(|e| panic!("{a}: {e}"));
    }
}

#[test]
fn the_allow_list_opens_nets_hosts_and_ports() {
    let p = policy(
        &[
            "127.0.0.1",
            "10.0.0.0/8",
            "api.internal",
            "*.svc.local",
            "192.168.1.5:8080",
        ],
        &[],
    );
    p.check("x", addr("127.0.0.1:1")).unwrap();
    p.check("x", addr("10.9.9.9:443")).unwrap();
    p.check("API.internal.", addr("172.20.0.1:80")).unwrap();
    p.check("a.b.svc.local", addr("172.20.0.1:80")).unwrap();
    // The suffix is a whole label: "evilsvc.local" is not under "svc.local".
    p.check("evilsvc.local", addr("172.20.0.1:80")).unwrap_err();
    p.check("x", addr("192.168.1.5:8080")).unwrap();
    p.check("x", addr("192.168.1.5:8081")).unwrap_err();
    p.check("x", addr("[::1]:80")).unwrap_err();
}

#[test]
fn the_nodes_own_admin_listener_stays_refused_unless_its_port_is_named() {
    let p = policy(&["127.0.0.0/8"], &["127.0.0.1:9080"]);
    p.check("x", addr("127.0.0.1:8080")).unwrap();
    let e = p.check("x", addr("127.0.0.1:9080")).unwrap_err();
    assert!(e.to_string().contains("own admin API"), "{e}");
    // Bound on every address: loopback and this host's addresses are it.
    let any = policy(&["127.0.0.0/8"], &["0.0.0.0:9080"]);
    any.check("x", addr("127.0.0.1:9080")).unwrap_err();
    // Named with its port, the operator opens it on purpose.
    let named = policy(&["127.0.0.1:9080"], &["127.0.0.1:9080"]);
    named.check("x", addr("127.0.0.1:9080")).unwrap();
}

#[tokio::test]
async fn a_name_is_checked_on_the_addresses_it_resolves_to() {
    let p = policy(&[], &[]);
    let e = p.resolve("localhost", 80).await.unwrap_err();
    assert!(matches!(e, EgressError::Refused(_)), "{e}");
    let opened = policy(&["localhost"], &[])
        .resolve("localhost", 80)
        .await
        .unwrap();
    assert!(opened.iter().all(|a| a.ip().is_loopback()), "{opened:?}");
    let e = p.resolve("[::1]", 80).await.unwrap_err();
    assert!(e.to_string().contains("loopback"), "{e}");
}

#[test]
fn unrestricted_allows_everything() {
    Egress::unrestricted()
        .check("x", addr("127.0.0.1:80"))
        .unwrap();
}
