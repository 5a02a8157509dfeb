//! DGate v0.11's config keys, read before the schema is: those DGate has in another form are
//! rewritten to dgate's, and those dgate does not use are taken out and named, so a DGate config
//! starts with a warning for each instead of being refused. Any other unknown key is still
//! refused by the schema.

use serde_json::{Map, Value};

/// Keys of DGate's config (and of the configs DGate ships) that dgate has no use for, by path.
/// None of them weakens what the config asks for when ignored: `jwt_auth` or `admin.tls.port`, say,
/// are refused instead (dgate would serve without them).
const UNUSED: [&str; 23] = [
    "log_color",
    "Logger",
    "disable_metrics",
    "tags",
    "stats?",
    "proxy.enable_h2c",
    "proxy.enable_http2",
    "proxy.console_log_level",
    "proxy.client_transport",
    "proxy.transport",
    "proxy.x_forwarded_for_depth",
    "proxy.tls.auto_generate",
    "admin.x_forwarded_for_depth",
    "admin.key_auth.query_param_name",
    "admin.replication.discovery_domain",
    "admin.replication.advert_scheme",
    "admin.replication.raft_config.heartbeat_timeout",
    "admin.replication.raft_config.election_timeout",
    "admin.replication.raft_config.commit_timeout",
    "admin.replication.raft_config.snapshot_interval",
    "admin.replication.raft_config.max_append_entries",
    "admin.replication.raft_config.trailing_logs",
    "admin.replication.raft_config.leader_lease_timeout",
];

/// Rewrites DGate's forms in `config` and takes out [`UNUSED`] keys; returns the paths taken.
pub fn read_dgate_forms(config: &mut Value) -> Vec<String> {
    let mut taken = Vec::new();
    for path in UNUSED {
        if take(config, path) {
            taken.push(path.to_string());
        }
    }
    // DGate's `log_json: true` is `log_format: json`.
    if let Some(top) = config.as_object_mut()
        && top.remove("log_json") == Some(Value::Bool(true))
    {
        top.entry("log_format").or_insert(Value::from("json"));
    }
    // DGate has `watch_only` on `admin`; here it is part of `replication`.
    if let Some(admin) = config.get_mut("admin").and_then(Value::as_object_mut)
        && let Some(watch_only) = admin.remove("watch_only")
    {
        if let Some(r) = admin.get_mut("replication").and_then(Value::as_object_mut) {
            r.entry("watch_only").or_insert(watch_only);
        } else {
            taken.push("admin.watch_only".into());
        }
    }
    // DGate's node addresses leave out the scheme (`localhost:9081`).
    if let Some(r) = config
        .pointer_mut("/admin/replication")
        .and_then(Value::as_object_mut)
    {
        with_scheme(r, "advert_address");
        if let Some(Value::Array(addrs)) = r.get_mut("cluster_address") {
            for a in addrs.iter_mut() {
                if let Value::String(s) = a
                    && is_host_port(s)
                {
                    *s = format!("http://{s}");
                }
            }
        }
    }
    taken
}

fn with_scheme(map: &mut Map<String, Value>, key: &str) {
    if let Some(Value::String(s)) = map.get_mut(key)
        && is_host_port(s)
    {
        *s = format!("http://{s}");
    }
}

/// `localhost:9081`: an address with a port and no scheme.
fn is_host_port(s: &str) -> bool {
    !s.contains("://")
        && s.rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

/// Removes the key at dotted `path`; whether it was there.
fn take(config: &mut Value, path: &str) -> bool {
    let (parents, last) = match path.rsplit_once('.') {
        Some((p, l)) => (Some(p), l),
        None => (None, path),
    };
    let mut at = config;
    for part in parents.into_iter().flat_map(|p| p.split('.')) {
        match at.get_mut(part) {
            Some(next) => at = next,
            None => return false,
        }
    }
    at.as_object_mut().and_then(|m| m.remove(last)).is_some()
}
