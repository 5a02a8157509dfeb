//! Several real `dgate` processes forming one Raft cluster on loopback: forming and changing
//! membership (`formation`), losing the leader (`failover`), catching up by snapshot
//! (`catch_up`), and a five-node cluster run from the CLI (`five_nodes`). The helpers here start
//! nodes and wait for the cluster to settle; no test sleeps for a fixed time.

mod catch_up;
mod failover;
mod five_nodes;
mod formation;

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Api, Gateway, write_file};

fn node(
    dir: &std::path::Path,
    name: &str,
    bootstrap: bool,
    join: Option<&str>,
    key: &str,
) -> Gateway {
    node_on(dir, name, bootstrap, join, key, &[], "")
}

/// A cluster node; `ports` are extra server flags (fixed ports survive a restart) and
/// `raft_extra` more `raft_config` entries.
fn node_on(
    dir: &std::path::Path,
    name: &str,
    bootstrap: bool,
    join: Option<&str>,
    key: &str,
    ports: &[&str],
    raft_extra: &str,
) -> Gateway {
    let join = join.map_or(String::new(), |j| format!("[\"{j}\"]"));
    let join = if join.is_empty() {
        "[]".to_string()
    } else {
        join
    };
    // Hook calls may take 10 s rather than 50 ms: these tests are about replication, and a
    // busy machine can deschedule a call for longer than 50 ms.
    let config = write_file(
        dir,
        &format!("{name}.yaml"),
        &format!(
            "node_id: {name}\nmodules: {{timeout: 10s}}\nadmin:\n  replication:\n    bootstrap_cluster: {bootstrap}\n    cluster_address: {join}\n    shared_key: {key}\n    raft_config: {{heartbeat_interval: 100ms, election_timeout_min: 1000ms, election_timeout_max: 2000ms{raft_extra}}}\n"
        ),
    );
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend_from_slice(ports);
    Gateway::start(&dir.join(name), &args)
}

/// (admin, proxy) loopback ports for `n` nodes, fixed so a node keeps its address across a restart.
fn fixed_ports(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|_| {
            (
                crate::helpers::free_port().to_string(),
                crate::helpers::free_port().to_string(),
            )
        })
        .collect()
}

fn port_flags(p: &(String, String)) -> [&str; 4] {
    ["--admin-port", p.0.as_str(), "--proxy-port", p.1.as_str()]
}

/// Polls `check` until it holds, for up to 120 s: a cluster settling, or each node compiling a
/// module in a debug-built child process, on a machine whose cores are busy with other work (30 s
/// was once too short for the compile while a profiler and other tests held both cores).
async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    crate::helpers::eventually(what, Duration::from_secs(120), check).await
}

async fn cluster_status(gw: &Gateway) -> Value {
    gw.client().get("/api/v1/cluster").await.1["data"].clone()
}

/// PUT `body` as a `kind` through a cluster that may answer 503: on a loaded machine a commit
/// (a module's megabytes, say) can outlast the node's wait, and the answer says the change may
/// still be applied. So after a 503 this waits for the resource to appear (it was committed
/// after all: 200 and the stored resource) before sending it again. Returns the status, the
/// body, and whether a 503 came first.
async fn put_committed(api: &Api, kind: &str, body: Value) -> (u16, Value, bool) {
    let name = body["name"].as_str().expect("a named resource").to_string();
    let mut retried = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (s, v) = api.put(kind, body.clone()).await;
        if s != 503 || std::time::Instant::now() > deadline {
            return (s, v, retried);
        }
        retried = true;
        let settle = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < settle {
            let (s, v) = api.get(&format!("/api/v1/{kind}/{name}")).await;
            if s == 200 {
                return (200, v, retried);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The status of a create through [`put_committed`]: 201, or 200 after a retried 503.
fn created(status: u16, retried: bool) -> bool {
    status == 201 || (retried && status == 200)
}
