//! The config's shape: every section and key, with its default. Unknown keys are refused
//! (`deny_unknown_fields`), except DGate's that dgate does not use, which `dgate` takes out
//! first; rules the types cannot say are in `validate`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::defaults;
use crate::units::{ByteSize, Millis};

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "version")]
    pub version: String,
    #[serde(default)]
    pub log_level: LogLevel,
    /// `text` (one human-readable line per event) or `json` (one JSON object per line), for
    /// every log line the server writes, the access log included.
    #[serde(default)]
    pub log_format: LogFormat,
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
    /// DGate's debug mode: what it turns on here is the `test_server`.
    #[serde(default)]
    pub debug: bool,
    /// As in DGate: the admin API needs a namespace on every request, and the proxy serves no
    /// host through the `default` namespace.
    #[serde(default)]
    pub disable_default_namespace: bool,
    /// DGate's test server: an upstream that answers every request with what it received.
    /// Runs only with `debug: true`, as in DGate.
    #[serde(default)]
    pub test_server: Option<TestServerConfig>,
    /// DGate keys in the file that dgate does not use (warned about at start).
    #[serde(skip)]
    pub unused_dgate_keys: Vec<String>,
}

/// `test_server:` DGate's echo upstream for trying routes out.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestServerConfig {
    #[serde(default = "host")]
    pub host: String,
    pub port: u16,
    /// Headers set on every answer (and shown in it).
    #[serde(default)]
    pub global_headers: BTreeMap<String, String>,
    /// Also show the server's environment variables in each answer.
    #[serde(default)]
    pub enable_env_vars: bool,
    /// DGate's HTTP/2 switches: this server always speaks HTTP/1.1 and h2c.
    #[serde(default)]
    pub enable_h2c: bool,
    #[serde(default)]
    pub enable_http2: bool,
}

/// `redirect_https:` `true` for every host, or (DGate's form) the host patterns to redirect.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum RedirectHttps {
    All(bool),
    Hosts(Vec<String>),
}

impl Default for RedirectHttps {
    fn default() -> Self {
        RedirectHttps::All(false)
    }
}

impl RedirectHttps {
    pub fn is_on(&self) -> bool {
        match self {
            RedirectHttps::All(on) => *on,
            RedirectHttps::Hosts(h) => !h.is_empty(),
        }
    }
}

/// `proxy.init_resources:` resources written at every start, as DGate does: each list holds
/// resources as the admin API takes them (a module may give `payload` as source text or
/// `payload_file`; a domain `cert_file` and `key_file`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InitResources {
    #[serde(default)]
    pub namespaces: Vec<serde_json::Value>,
    #[serde(default)]
    pub services: Vec<serde_json::Value>,
    #[serde(default)]
    pub routes: Vec<serde_json::Value>,
    #[serde(default)]
    pub modules: Vec<serde_json::Value>,
    #[serde(default)]
    pub domains: Vec<serde_json::Value>,
    #[serde(default)]
    pub collections: Vec<serde_json::Value>,
    #[serde(default)]
    pub documents: Vec<serde_json::Value>,
    #[serde(default)]
    pub secrets: Vec<serde_json::Value>,
    /// DGate's switch for its own cross-checks; every resource is checked here as it is written.
    #[serde(default)]
    pub skip_validation: bool,
}

/// `modules:` the limits of one hook call, and what a module route reads into memory.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
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
    /// Where `fetch` and `fetchUpstream` may go besides public addresses.
    #[serde(default)]
    pub fetch: FetchConfig,
    /// Module instances alive at once on this node (idle ones included): the engine's slots.
    #[serde(default = "module_max_instances")]
    pub max_instances: u32,
    /// Hook calls of one module running at once; more are answered 503 with `Retry-After`.
    #[serde(default = "module_max_concurrency")]
    pub max_concurrency: u32,
    /// Limits of the builds of JS/TS modules written through the admin API.
    #[serde(default)]
    pub build: BuildConfig,
}

/// `modules.build:` each build runs in a child process (`dgate __build`) within these limits.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildConfig {
    /// Wall time of one build; past it the build is stopped and the write refused (422).
    #[serde(default = "build_timeout")]
    pub timeout: Millis,
    /// Resident memory of one build; past it likewise.
    #[serde(default = "build_memory")]
    pub memory: ByteSize,
    /// Builds at once on this node.
    #[serde(default = "build_concurrency")]
    pub concurrency: u32,
    /// How long a build waits for its turn before the write is answered 503.
    #[serde(default = "build_queue_timeout")]
    pub queue_timeout: Millis,
}

fn build_timeout() -> Millis {
    defaults::BUILD_TIMEOUT
}
fn build_memory() -> ByteSize {
    defaults::BUILD_MEMORY
}
fn build_concurrency() -> u32 {
    defaults::BUILD_CONCURRENCY
}
fn build_queue_timeout() -> Millis {
    defaults::BUILD_QUEUE_TIMEOUT
}

impl Default for BuildConfig {
    fn default() -> Self {
        BuildConfig {
            timeout: build_timeout(),
            memory: build_memory(),
            concurrency: build_concurrency(),
            queue_timeout: build_queue_timeout(),
        }
    }
}

/// `modules.fetch:` loopback, private, link-local and other non-public addresses, and this
/// node's own admin listener, are refused to modules unless `allow` names them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchConfig {
    /// Each an IP (`127.0.0.1`), a CIDR (`10.0.0.0/8`), a host name (`api.internal`) or a
    /// wildcard (`*.svc.cluster.local`), optionally with `:port` (IPv6 as `[::1]:8080`).
    #[serde(default)]
    pub allow: Vec<String>,
}

fn module_fuel() -> u64 {
    defaults::MODULE_FUEL
}
fn module_memory() -> ByteSize {
    defaults::MODULE_MEMORY
}
fn module_timeout() -> Millis {
    defaults::MODULE_TIMEOUT
}
fn module_max_fetches() -> u32 {
    defaults::MODULE_MAX_FETCHES
}
fn module_fetch_timeout() -> Millis {
    defaults::MODULE_FETCH_TIMEOUT
}
fn module_max_body_size() -> ByteSize {
    defaults::MODULE_MAX_BODY_SIZE
}
fn module_max_instances() -> u32 {
    defaults::MODULE_MAX_INSTANCES
}
fn module_max_concurrency() -> u32 {
    defaults::MODULE_MAX_CONCURRENCY
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
            fetch: FetchConfig::default(),
            max_instances: module_max_instances(),
            max_concurrency: module_max_concurrency(),
            build: BuildConfig::default(),
        }
    }
}

fn version() -> String {
    defaults::VERSION.to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
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

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    #[serde(rename = "type", default)]
    pub kind: StorageKind,
    #[serde(default = "data_dir")]
    pub dir: PathBuf,
    /// Versions kept of each module and route, the current one included, for `dgate history`
    /// and `dgate rollback`; 0 keeps none.
    #[serde(default = "history")]
    pub history: usize,
}

fn data_dir() -> PathBuf {
    PathBuf::from(defaults::DATA_DIR)
}
fn history() -> usize {
    defaults::HISTORY
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            kind: StorageKind::default(),
            dir: data_dir(),
            history: history(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    #[default]
    File,
    Memory,
}

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
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
    /// Answer plain-HTTP requests with a redirect to the TLS port: `true` for every host, or a
    /// list of host patterns (as in domains).
    #[serde(default)]
    pub redirect_https: RedirectHttps,
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
    #[serde(default)]
    pub init_resources: Option<InitResources>,
    /// One line per answered request, under the log target `dgate::access`.
    #[serde(default)]
    pub access_log: AccessLogConfig,
}

/// `proxy.access_log:` off by default; `fields` picks what each line says, in the log's
/// format (`log_format`).
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessLogConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "access_fields")]
    pub fields: Vec<AccessField>,
}

impl Default for AccessLogConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            fields: access_fields(),
        }
    }
}

fn access_fields() -> Vec<AccessField> {
    use AccessField::*;
    vec![
        Client, Method, Host, Path, Status, DurationMs, Namespace, Route,
    ]
}

/// What an access log line can say about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccessField {
    /// The client's IP address.
    Client,
    Method,
    /// The host the request named.
    Host,
    /// The path as routed (dot segments resolved).
    Path,
    /// The query string, when there is one.
    Query,
    /// HTTP/1.0, HTTP/1.1 or HTTP/2.0.
    Protocol,
    Status,
    /// Time from the request head to the response head, in milliseconds.
    DurationMs,
    /// Namespace and name of the route that matched (absent for unmatched requests).
    Namespace,
    Route,
    /// The route's service, when it has one.
    Service,
    /// The route's module, when it runs one.
    Module,
    UserAgent,
    Referer,
}

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
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
            redirect_https: RedirectHttps::default(),
            disable_x_forwarded_headers: false,
            max_header_size: max_header_size(),
            max_headers: max_headers(),
            header_read_timeout: header_read_timeout(),
            init_resources: None,
            access_log: AccessLogConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
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
    /// Serve the admin API (and Raft, which shares its listener) over HTTPS only.
    #[serde(default)]
    pub tls: Option<AdminTlsConfig>,
}

/// `admin.tls:` the admin listener's certificate, and optionally the CA its clients must show a
/// certificate from (mutual TLS). With replication, nodes trust the system roots and this CA
/// for each other's certificates, and show their own certificate as clients.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminTlsConfig {
    /// PEM certificate chain the admin listener shows.
    pub cert_file: PathBuf,
    /// PEM private key for `cert_file`.
    pub key_file: PathBuf,
    /// PEM CA certificate(s): every client must show a certificate they signed.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
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
    /// Shared by every node; Raft requests without it are refused. Optional as in DGate, but
    /// without it anyone who reaches the admin port can take part in Raft (warned at start).
    #[serde(default)]
    pub shared_key: String,
    /// Join as a learner and stay one (read scale; never votes).
    #[serde(default)]
    pub watch_only: bool,
    #[serde(default)]
    pub raft_config: RaftTimings,
}

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
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
    defaults::HEARTBEAT_INTERVAL
}
fn election_timeout_min() -> Millis {
    defaults::ELECTION_TIMEOUT_MIN
}
fn election_timeout_max() -> Millis {
    defaults::ELECTION_TIMEOUT_MAX
}
fn snapshot_threshold() -> u64 {
    defaults::SNAPSHOT_THRESHOLD
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
            tls: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    #[default]
    None,
    Key,
    Basic,
}

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
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

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    #[serde(default)]
    pub users: Vec<BasicUser>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicUser {
    pub username: String,
    pub password: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            version: version(),
            log_level: LogLevel::default(),
            log_format: LogFormat::default(),
            node_id: None,
            storage: StorageConfig::default(),
            proxy: ProxyConfig::default(),
            admin: AdminConfig::default(),
            modules: ModulesConfig::default(),
            debug: false,
            disable_default_namespace: false,
            test_server: None,
            unused_dgate_keys: vec![],
        }
    }
}
