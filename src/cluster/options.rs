//! How a node takes part in a cluster, and its Raft id.

use super::raft_store::NodeId;
use crate::config::RaftTimings;

/// How this node takes part in a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// This node's name; its Raft id is derived from it, so it must not change.
    pub name: String,
    /// This node's admin URL as other nodes reach it.
    pub advert: String,
    pub shared_key: String,
    /// Initialize a new cluster on first start (the single-node default).
    pub bootstrap: bool,
    /// Admin URLs to join an existing cluster through.
    pub join: Vec<String>,
    /// Become a voter after joining (`watch_only` nodes stay learners).
    pub voter: bool,
    pub timings: RaftTimings,
    /// Versions kept of each module and route (`storage.history`).
    pub history: usize,
    /// TLS for talking to other nodes' admin listeners (`admin.tls`); `None`: the system
    /// roots, no client certificate.
    pub peer_tls: Option<rustls::ClientConfig>,
}

impl ClusterOptions {
    /// A cluster of one, bootstrapped on first start.
    pub fn single(name: &str, advert: &str) -> ClusterOptions {
        ClusterOptions {
            name: name.to_string(),
            advert: advert.to_string(),
            shared_key: String::new(),
            bootstrap: true,
            join: vec![],
            voter: true,
            timings: RaftTimings::default(),
            history: crate::config::defaults::HISTORY,
            peer_tls: None,
        }
    }
}

/// The Raft id for a node name (FNV-1a, never 0): stable across restarts and nodes.
pub fn node_id(name: &str) -> NodeId {
    fnv1a(name.bytes()).max(1)
}

/// The 64-bit FNV-1a hash of `bytes`: stable across builds and platforms.
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
