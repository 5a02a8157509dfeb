//! Why a configuration was refused.

use super::defaults;

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
    #[error("storage.history: must be at most {max}", max = defaults::MAX_HISTORY)]
    HistoryTooLong,
    #[error("{key}: {value:?} is not an IP address")]
    InvalidHost { key: &'static str, value: String },
    #[error("admin.allow_list[{index}]: {value:?} is not an IP address or CIDR")]
    InvalidAllowListEntry { index: usize, value: String },
    #[error("modules.fetch.allow[{index}]: {value:?} {reason}")]
    InvalidFetchAllow {
        index: usize,
        value: String,
        reason: &'static str,
    },
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
