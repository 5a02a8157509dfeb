//! The server's YAML configuration: schema, defaults (all in [`defaults`]), `${VAR:-default}`
//! substitution, and [`Config::validate`], which refuses every value it does not understand with one
//! line naming the key and the reason.

mod env;
mod size;

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

pub use size::ByteSize;

/// Every default in one place.
pub mod defaults {
    use super::ByteSize;

    pub const VERSION: &str = "v1";
    pub const DATA_DIR: &str = "./dgate-data";
    pub const HOST: &str = "127.0.0.1";
    pub const PROXY_PORT: u16 = 8080;
    pub const ADMIN_PORT: u16 = 9080;
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
    /// This node's name; defaults to the host name's first label, then "dgate".
    #[serde(default)]
    pub node_id: Option<String>,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub proxy: ProxyConfig,
    #[serde(default)]
    pub admin: AdminConfig,
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
    #[error("admin.port: {port} is also proxy.port on the same host")]
    PortClash { port: u16 },
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
        if self.admin.port != 0 && self.admin.port == self.proxy.port && same_host {
            return Err(ConfigError::PortClash {
                port: self.admin.port,
            });
        }
        Ok(self)
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
