//! [`Config::validate`]: every rule that the types alone do not enforce, one error per rule.

use super::*;

impl Config {
    /// Checks every rule that the types alone do not enforce.
    pub fn validate(self) -> Result<Config, ConfigError> {
        if self.version != defaults::VERSION {
            return Err(ConfigError::UnsupportedVersion(self.version));
        }
        if let Some(id) = &self.node_id {
            crate::resources::validate::name("node_id", id)
                .map_err(|e| ConfigError::InvalidNodeId(e.reason))?;
        }
        if self.storage.kind == StorageKind::File && self.storage.dir.as_os_str().is_empty() {
            return Err(ConfigError::EmptyDataDir);
        }
        if self.storage.history > defaults::MAX_HISTORY {
            return Err(ConfigError::HistoryTooLong);
        }
        let proxy_ip = parse_host("proxy.host", &self.proxy.host)?;
        let admin_ip = parse_host("admin.host", &self.admin.host)?;
        for (index, entry) in self.admin.allow_list.iter().enumerate() {
            parse_allow_entry(entry).ok_or_else(|| ConfigError::InvalidAllowListEntry {
                index,
                value: entry.clone(),
            })?;
        }
        match self.admin.auth_method {
            AuthMethod::None => {}
            AuthMethod::Key => {
                let key_auth = self
                    .admin
                    .key_auth
                    .as_ref()
                    .ok_or(ConfigError::MissingKeys)?;
                if key_auth.keys.is_empty() {
                    return Err(ConfigError::MissingKeys);
                }
                if let Some(i) = key_auth.keys.iter().position(String::is_empty) {
                    return Err(ConfigError::EmptyKey(i));
                }
                if axum::http::HeaderName::from_bytes(key_auth.header_name.as_bytes()).is_err() {
                    return Err(ConfigError::InvalidHeaderName(key_auth.header_name.clone()));
                }
            }
            AuthMethod::Basic => {
                let basic = self
                    .admin
                    .basic_auth
                    .as_ref()
                    .ok_or(ConfigError::MissingUsers)?;
                if basic.users.is_empty() {
                    return Err(ConfigError::MissingUsers);
                }
                if let Some(i) = basic
                    .users
                    .iter()
                    .position(|u| u.username.is_empty() || u.username.contains(':'))
                {
                    return Err(ConfigError::InvalidUsername(i));
                }
            }
        }
        if self.admin.max_body_size.0 == 0
            || self.admin.max_body_size > defaults::MAX_BODY_SIZE_LIMIT
        {
            return Err(ConfigError::BodySizeOutOfRange);
        }
        let same_host =
            proxy_ip == admin_ip || proxy_ip.is_unspecified() || admin_ip.is_unspecified();
        let clash = |a: u16, b: u16| a != 0 && a == b && same_host;
        if clash(self.admin.port, self.proxy.port) {
            return Err(ConfigError::PortClash {
                key: "admin.port",
                port: self.admin.port,
                other: "proxy.port",
            });
        }
        if let Some(tls) = &self.proxy.tls {
            for (port, other) in [
                (self.proxy.port, "proxy.port"),
                (self.admin.port, "admin.port"),
            ] {
                if clash(tls.port, port) {
                    return Err(ConfigError::PortClash {
                        key: "proxy.tls.port",
                        port,
                        other,
                    });
                }
            }
        } else if self.proxy.redirect_https == RedirectHttps::All(true) {
            // DGate's list form redirects to https's own port (443) when there is no TLS here.
            return Err(ConfigError::RedirectWithoutTls);
        }
        if let Some(t) = &self.test_server {
            parse_host("test_server.host", &t.host)?;
        }
        if let RedirectHttps::Hosts(hosts) = &self.proxy.redirect_https {
            for (index, pattern) in hosts.iter().enumerate() {
                crate::resources::validate::domain_pattern("", pattern).map_err(|e| {
                    ConfigError::Schema {
                        key: format!("proxy.redirect_https[{index}]"),
                        reason: e.reason,
                    }
                })?;
            }
        }
        for (name, value) in &self.proxy.global_headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(ConfigError::InvalidGlobalHeaderName(name.clone()));
            }
            if http::HeaderValue::from_str(value).is_err() {
                return Err(ConfigError::InvalidGlobalHeaderValue(name.clone()));
            }
        }
        for (index, pattern) in self.proxy.allowed_domains.iter().enumerate() {
            crate::resources::validate::domain_pattern("", pattern).map_err(|e| {
                ConfigError::InvalidAllowedDomain {
                    index,
                    reason: e.reason,
                }
            })?;
        }
        if !(1 << 10..=1 << 20).contains(&self.proxy.max_header_size.0) {
            return Err(ConfigError::HeaderSizeOutOfRange);
        }
        if !(1..=1000).contains(&self.proxy.max_headers) {
            return Err(ConfigError::HeaderCountOutOfRange);
        }
        let m = &self.modules;
        let bad = |key, reason| Err(ConfigError::Modules { key, reason });
        if m.fuel < 1_000_000 {
            return bad("fuel", "must be at least 1000000");
        }
        if !(1 << 20..=4 << 30).contains(&m.memory.0) {
            return bad("memory", "must be between 1MiB and 4GiB");
        }
        if !(1..=60_000).contains(&m.timeout.0) {
            return bad("timeout", "must be between 1ms and 60s");
        }
        if !(1..=60_000).contains(&m.fetch_timeout.0) {
            return bad("fetch_timeout", "must be between 1ms and 60s");
        }
        if m.max_fetches > 1000 {
            return bad("max_fetches", "must be at most 1000");
        }
        if m.max_body_size.0 > 1 << 30 {
            return bad("max_body_size", "must be at most 1GiB");
        }
        if !(1..=10_000).contains(&m.max_instances) {
            return bad("max_instances", "must be between 1 and 10000");
        }
        if m.max_concurrency == 0 || m.max_concurrency > m.max_instances {
            return bad(
                "max_concurrency",
                "must be at least 1 and at most modules.max_instances",
            );
        }
        if !(1_000..=600_000).contains(&m.build.timeout.0) {
            return bad("build.timeout", "must be between 1s and 10m");
        }
        if !(64 << 20..=16 << 30).contains(&m.build.memory.0) {
            return bad("build.memory", "must be between 64MiB and 16GiB");
        }
        if !(1..=64).contains(&m.build.concurrency) {
            return bad("build.concurrency", "must be between 1 and 64");
        }
        if m.build.queue_timeout.0 > 600_000 {
            return bad("build.queue_timeout", "must be at most 10m");
        }
        for (index, entry) in m.fetch.allow.iter().enumerate() {
            FetchRule::parse(entry).map_err(|reason| ConfigError::InvalidFetchAllow {
                index,
                value: entry.clone(),
                reason,
            })?;
        }
        if !(1..=3_600_000).contains(&self.proxy.header_read_timeout.0) {
            return Err(ConfigError::HeaderTimeoutOutOfRange);
        }
        if let Some(r) = &self.admin.replication {
            let bad = |key, reason: &str| {
                Err(ConfigError::Replication {
                    key,
                    reason: reason.to_string(),
                })
            };
            if let Some(id) = &r.id
                && let Err(e) = crate::resources::validate::name("id", id)
            {
                return bad("id", &e.reason);
            }
            let http_url = |u: &str| {
                url::Url::parse(u)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            };
            if let Some(i) = r.cluster_address.iter().position(|u| !http_url(u)) {
                return Err(ConfigError::Replication {
                    key: "cluster_address",
                    reason: format!(
                        "{:?} is not an http:// or https:// admin URL",
                        r.cluster_address[i]
                    ),
                });
            }
            if let Some(a) = &r.advert_address
                && !http_url(a)
            {
                return bad("advert_address", "must be an http:// or https:// admin URL");
            }
            let t = &r.raft_config;
            if t.heartbeat_interval.0 == 0 || t.heartbeat_interval >= t.election_timeout_min {
                return bad(
                    "raft_config.heartbeat_interval",
                    "must be above 0 and below election_timeout_min",
                );
            }
            if t.election_timeout_min >= t.election_timeout_max {
                return bad(
                    "raft_config.election_timeout_min",
                    "must be below election_timeout_max",
                );
            }
        }
        Ok(self)
    }
}
