//! The server's YAML configuration: schema, defaults (all in [`defaults`]), `${VAR:-default}`
//! substitution, and [`Config::validate`], which refuses every value it does not understand with one
//! line naming the key and the reason.

mod env;
mod size;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

pub use size::ByteSize;

use crate::resources::Millis;

/// Every default in one place.
pub mod defaults {
    use super::ByteSize;
    use crate::resources::Millis;

    pub const VERSION: &str = "v1";
    pub const DATA_DIR: &str = "./dgate-data";
    pub const HOST: &str = "127.0.0.1";
    pub const PROXY_PORT: u16 = 8080;
    pub const ADMIN_PORT: u16 = 9080;
    pub const PROXY_TLS_PORT: u16 = 8443;
    pub const MAX_HEADER_SIZE: ByteSize = ByteSize(64 << 10);
    pub const MAX_HEADERS: usize = 100;
    pub const HEADER_READ_TIMEOUT: Millis = Millis(30_000);
    /// Upstream timeouts when a service sets none.
    pub const CONNECT_TIMEOUT: Millis = Millis(10_000);
    pub const REQUEST_TIMEOUT: Millis = Millis(60_000);
    pub const KEY_HEADER: &str = "X-DGate-Key";
    pub const MAX_BODY_SIZE: ByteSize = ByteSize(8 << 20);
    /// The largest body cap a config may ask for.
    pub const MAX_BODY_SIZE_LIMIT: ByteSize = ByteSize(1 << 30);
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "version")]
    pub version: String,
    #[serde(default)]
    pub log_level: LogLevel,
    /// This node's name ("dgate" when unset).
    #[serde(default)]
    pub node_id: Option<String>,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub proxy: ProxyConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    /// Limits for every module hook call on this node.
    #[serde(default)]
    pub modules: ModulesConfig,
}

/// `modules:` the limits of one hook call, and what a module route reads into memory.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModulesConfig {
    /// Wasm fuel per call: about one unit per instruction.
    #[serde(default = "module_fuel")]
    pub fuel: u64,
    /// Linear memory per instance.
    #[serde(default = "module_memory")]
    pub memory: ByteSize,
    /// Wall time per call, including time waiting on `fetch` or documents.
    #[serde(default = "module_timeout")]
    pub timeout: Millis,
    /// Outbound `fetch` requests per call.
    #[serde(default = "module_max_fetches")]
    pub max_fetches: u32,
    /// Timeout of one `fetch`.
    #[serde(default = "module_fetch_timeout")]
    pub fetch_timeout: Millis,
    /// Largest request or response body a hook may read into memory.
    #[serde(default = "module_max_body_size")]
    pub max_body_size: ByteSize,
}

fn module_fuel() -> u64 {
    1_000_000_000
}
fn module_memory() -> ByteSize {
    ByteSize(64 << 20)
}
fn module_timeout() -> Millis {
    Millis(50)
}
fn module_max_fetches() -> u32 {
    8
}
fn module_fetch_timeout() -> Millis {
    Millis(10_000)
}
fn module_max_body_size() -> ByteSize {
    ByteSize(16 << 20)
}

impl Default for ModulesConfig {
    fn default() -> Self {
        ModulesConfig {
            fuel: module_fuel(),
            memory: module_memory(),
            timeout: module_timeout(),
            max_fetches: module_max_fetches(),
            fetch_timeout: module_fetch_timeout(),
            max_body_size: module_max_body_size(),
        }
    }
}

fn version() -> String {
    defaults::VERSION.to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    #[serde(rename = "type", default)]
    pub kind: StorageKind,
    #[serde(default = "data_dir")]
    pub dir: PathBuf,
}

fn data_dir() -> PathBuf {
    PathBuf::from(defaults::DATA_DIR)
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            kind: StorageKind::default(),
            dir: data_dir(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    #[default]
    File,
    Memory,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    #[serde(default = "host")]
    pub host: String,
    #[serde(default = "proxy_port")]
    pub port: u16,
    /// TLS termination on a second port.
    #[serde(default)]
    pub tls: Option<ProxyTlsConfig>,
    /// Headers added to every proxied response.
    #[serde(default)]
    pub global_headers: BTreeMap<String, String>,
    /// Hosts that no domain matches are not served (404) instead of going to `default`.
    #[serde(default)]
    pub strict_mode: bool,
    /// Host patterns (as in domains) the proxy serves at all; empty serves every host.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Answer plain-HTTP requests with a redirect to the TLS port.
    #[serde(default)]
    pub redirect_https: bool,
    /// Do not add X-Forwarded-For/-Host/-Proto and X-Real-IP to upstream requests.
    #[serde(default)]
    pub disable_x_forwarded_headers: bool,
    /// Largest request head (request line and headers) a client may send.
    #[serde(default = "max_header_size")]
    pub max_header_size: ByteSize,
    /// Most request headers a client may send.
    #[serde(default = "max_headers")]
    pub max_headers: usize,
    /// Time a client has to send a request head, and the idle time allowed between requests on
    /// a kept-alive connection.
    #[serde(default = "header_read_timeout")]
    pub header_read_timeout: Millis,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyTlsConfig {
    #[serde(default = "tls_port")]
    pub port: u16,
    /// PEM certificate chain used when no domain's certificate matches the SNI name.
    pub cert_file: PathBuf,
    /// PEM private key for `cert_file`.
    pub key_file: PathBuf,
}

fn tls_port() -> u16 {
    defaults::PROXY_TLS_PORT
}
fn max_header_size() -> ByteSize {
    defaults::MAX_HEADER_SIZE
}
fn max_headers() -> usize {
    defaults::MAX_HEADERS
}
fn header_read_timeout() -> Millis {
    defaults::HEADER_READ_TIMEOUT
}

fn host() -> String {
    defaults::HOST.to_string()
}
fn proxy_port() -> u16 {
    defaults::PROXY_PORT
}
fn admin_port() -> u16 {
    defaults::ADMIN_PORT
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            host: host(),
            port: proxy_port(),
            tls: None,
            global_headers: BTreeMap::new(),
            strict_mode: false,
            allowed_domains: vec![],
            redirect_https: false,
            disable_x_forwarded_headers: false,
            max_header_size: max_header_size(),
            max_headers: max_headers(),
            header_read_timeout: header_read_timeout(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    #[serde(default = "host")]
    pub host: String,
    #[serde(default = "admin_port")]
    pub port: u16,
    /// Client IPs or CIDRs allowed to reach the admin API; empty allows everyone.
    #[serde(default)]
    pub allow_list: Vec<String>,
    #[serde(default)]
    pub auth_method: AuthMethod,
    #[serde(default)]
    pub key_auth: Option<KeyAuthConfig>,
    #[serde(default)]
    pub basic_auth: Option<BasicAuthConfig>,
    /// Largest request body the admin API reads (`8MiB`, `512KiB`, or a number of bytes).
    #[serde(default = "max_body_size")]
    pub max_body_size: ByteSize,
    /// Joining other nodes into one Raft cluster; without it the node is a cluster of one.
    #[serde(default)]
    pub replication: Option<ReplicationConfig>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationConfig {
    /// This node's name in the cluster (defaults to `node_id`).
    #[serde(default)]
    pub id: Option<String>,
    /// This node initializes the cluster on its first start (exactly one node should).
    #[serde(default)]
    pub bootstrap_cluster: bool,
    /// Admin URLs of nodes to join through.
    #[serde(default)]
    pub cluster_address: Vec<String>,
    /// The admin URL other nodes reach this one at (default: the bound admin address).
    #[serde(default)]
    pub advert_address: Option<String>,
    /// Shared by every node; Raft requests without it are refused.
    pub shared_key: String,
    /// Join as a learner and stay one (read scale; never votes).
    #[serde(default)]
    pub watch_only: bool,
    #[serde(default)]
    pub raft_config: RaftTimings,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaftTimings {
    #[serde(default = "heartbeat_interval")]
    pub heartbeat_interval: Millis,
    #[serde(default = "election_timeout_min")]
    pub election_timeout_min: Millis,
    #[serde(default = "election_timeout_max")]
    pub election_timeout_max: Millis,
    /// Log entries between snapshots (the log is purged behind a snapshot).
    #[serde(default = "snapshot_threshold")]
    pub snapshot_threshold: u64,
}

fn heartbeat_interval() -> Millis {
    Millis(100)
}
fn election_timeout_min() -> Millis {
    Millis(400)
}
fn election_timeout_max() -> Millis {
    Millis(800)
}
fn snapshot_threshold() -> u64 {
    5000
}

impl Default for RaftTimings {
    fn default() -> Self {
        RaftTimings {
            heartbeat_interval: heartbeat_interval(),
            election_timeout_min: election_timeout_min(),
            election_timeout_max: election_timeout_max(),
            snapshot_threshold: snapshot_threshold(),
        }
    }
}

fn max_body_size() -> ByteSize {
    defaults::MAX_BODY_SIZE
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            host: host(),
            port: admin_port(),
            allow_list: vec![],
            auth_method: AuthMethod::None,
            key_auth: None,
            basic_auth: None,
            max_body_size: max_body_size(),
            replication: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    #[default]
    None,
    Key,
    Basic,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyAuthConfig {
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default = "key_header")]
    pub header_name: String,
}

fn key_header() -> String {
    defaults::KEY_HEADER.to_string()
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    #[serde(default)]
    pub users: Vec<BasicUser>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicUser {
    pub username: String,
    pub password: String,
}

/// Why a configuration was refused. Displayed as one line that names the key.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("{path}: cannot read config file: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: invalid YAML: {reason}")]
    Syntax { path: String, reason: String },
    #[error("{key}: {reason}")]
    Schema { key: String, reason: String },
    #[error("environment variable {var} is not set (write ${{{var}:-default}} to give a default)")]
    UnsetVariable { var: String },
    #[error("bad ${{...}} substitution at byte {at}: {reason}")]
    BadSubstitution { at: usize, reason: String },
    #[error("version: unsupported version {0:?} (supported: \"v1\")")]
    UnsupportedVersion(String),
    #[error("node_id: {0}")]
    InvalidNodeId(String),
    #[error("storage.dir: must not be empty when storage.type is file")]
    EmptyDataDir,
    #[error("{key}: {value:?} is not an IP address")]
    InvalidHost { key: &'static str, value: String },
    #[error("admin.allow_list[{index}]: {value:?} is not an IP address or CIDR")]
    InvalidAllowListEntry { index: usize, value: String },
    #[error("admin.key_auth.keys: auth_method is key but no keys are configured")]
    MissingKeys,
    #[error("admin.key_auth.keys[{0}]: must not be empty")]
    EmptyKey(usize),
    #[error("admin.key_auth.header_name: {0:?} is not a valid HTTP header name")]
    InvalidHeaderName(String),
    #[error("admin.basic_auth.users: auth_method is basic but no users are configured")]
    MissingUsers,
    #[error("admin.basic_auth.users[{0}].username: must be non-empty and must not contain ':'")]
    InvalidUsername(usize),
    #[error("admin.max_body_size: must be between 1 byte and {max}", max = defaults::MAX_BODY_SIZE_LIMIT)]
    BodySizeOutOfRange,
    #[error("{key}: port {port} is already used by {other}")]
    PortClash {
        key: &'static str,
        port: u16,
        other: &'static str,
    },
    #[error("proxy.global_headers: {0:?} is not a valid HTTP header name")]
    InvalidGlobalHeaderName(String),
    #[error("proxy.global_headers.{0}: the value is not a valid HTTP header value")]
    InvalidGlobalHeaderValue(String),
    #[error("proxy.allowed_domains[{index}]: {reason}")]
    InvalidAllowedDomain { index: usize, reason: String },
    #[error("proxy.redirect_https: needs proxy.tls")]
    RedirectWithoutTls,
    #[error("proxy.max_header_size: must be between 1KiB and 1MiB")]
    HeaderSizeOutOfRange,
    #[error("proxy.max_headers: must be between 1 and 1000")]
    HeaderCountOutOfRange,
    #[error("proxy.header_read_timeout: must be between 1ms and 1h")]
    HeaderTimeoutOutOfRange,
    #[error("modules.{key}: {reason}")]
    Modules {
        key: &'static str,
        reason: &'static str,
    },
    #[error("{key}: {reason}")]
    TlsFile { key: &'static str, reason: String },
    #[error("admin.replication.{key}: {reason}")]
    Replication { key: &'static str, reason: String },
}

/// Command-line values that replace what the file says.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub proxy_port: Option<u16>,
    pub admin_port: Option<u16>,
    pub data_dir: Option<PathBuf>,
}

impl Config {
    /// Reads `path` (or takes the defaults when `None`), applies `overrides`, and validates.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                Config::parse(&text, &path.display().to_string(), &|var| {
                    std::env::var(var).ok()
                })?
            }
            None => Config::default(),
        };
        if let Some(p) = overrides.proxy_port {
            config.proxy.port = p;
        }
        if let Some(p) = overrides.admin_port {
            config.admin.port = p;
        }
        if let Some(d) = &overrides.data_dir {
            config.storage.dir = d.clone();
        }
        config.validate()
    }

    /// Parses YAML text after `${VAR:-default}` substitution through `lookup`. Does not validate.
    pub fn parse(
        text: &str,
        origin: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let text = env::substitute(text, lookup)?;
        let value: serde_json::Value = if text.trim().is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            serde_saphyr::from_str(&text).map_err(|e| ConfigError::Syntax {
                path: origin.to_string(),
                reason: e.to_string().lines().next().unwrap_or_default().to_string(),
            })?
        };
        let value = match value {
            serde_json::Value::Null => serde_json::Value::Object(Default::default()),
            v => v,
        };
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            ConfigError::Schema {
                key: if path == "." {
                    "config".to_string()
                } else {
                    path
                },
                reason: e.into_inner().to_string(),
            }
        })
    }

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
        } else if self.proxy.redirect_https {
            return Err(ConfigError::RedirectWithoutTls);
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
            crate::resources::validate::domain_pattern(pattern)
                .map_err(|reason| ConfigError::InvalidAllowedDomain { index, reason })?;
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
            if r.shared_key.is_empty() {
                return bad("shared_key", "must not be empty");
            }
            let http_url = |u: &str| {
                url::Url::parse(u).is_ok_and(|u| u.scheme() == "http" && u.host().is_some())
            };
            if let Some(i) = r.cluster_address.iter().position(|u| !http_url(u)) {
                return Err(ConfigError::Replication {
                    key: "cluster_address",
                    reason: format!("{:?} is not an http:// admin URL", r.cluster_address[i]),
                });
            }
            if let Some(a) = &r.advert_address
                && !http_url(a)
            {
                return bad("advert_address", "must be an http:// admin URL");
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

    /// The proxy listener's IP address (validated).
    pub fn proxy_ip(&self) -> IpAddr {
        parse_host("proxy.host", &self.proxy.host).unwrap_or(IpAddr::from([127, 0, 0, 1]))
    }

    /// The admin listener's IP address (validated).
    pub fn admin_ip(&self) -> IpAddr {
        parse_host("admin.host", &self.admin.host).unwrap_or(IpAddr::from([127, 0, 0, 1]))
    }

    /// The parsed allow list (validated).
    pub fn allow_list(&self) -> Vec<IpNet> {
        self.admin
            .allow_list
            .iter()
            .filter_map(|e| parse_allow_entry(e))
            .collect()
    }

    /// This node's name: `node_id`, else "dgate".
    pub fn node_name(&self) -> &str {
        self.node_id.as_deref().unwrap_or("dgate")
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            version: version(),
            log_level: LogLevel::default(),
            node_id: None,
            storage: StorageConfig::default(),
            proxy: ProxyConfig::default(),
            admin: AdminConfig::default(),
            modules: ModulesConfig::default(),
        }
    }
}

fn parse_host(key: &'static str, value: &str) -> Result<IpAddr, ConfigError> {
    if value == "localhost" {
        return Ok(IpAddr::from([127, 0, 0, 1]));
    }
    value.parse().map_err(|_| ConfigError::InvalidHost {
        key,
        value: value.to_string(),
    })
}

fn parse_allow_entry(entry: &str) -> Option<IpNet> {
    entry
        .parse::<IpNet>()
        .ok()
        .or_else(|| entry.parse::<IpAddr>().ok().map(IpNet::from))
}
