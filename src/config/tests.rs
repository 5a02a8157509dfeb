use std::collections::HashMap;

use super::*;
use crate::units::ByteSize;

fn parse_with(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::parse(text, "dgate.yaml", &|k| vars.get(k).cloned())?.validate()
}

fn error(text: &str) -> String {
    parse_with(text, &[])
        .expect_err("must be refused")
        .to_string()
}

#[test]
fn empty_config_is_the_defaults() {
    let c = parse_with("", &[]).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.storage.dir, PathBuf::from("./dgate-data"));
    assert_eq!(c.storage.kind, StorageKind::File);
    assert_eq!(c.proxy.port, 8080);
    assert_eq!(c.admin.port, 9080);
    assert_eq!(c.admin.host, "127.0.0.1");
    assert_eq!(c.admin.max_body_size, ByteSize(8 << 20));
    assert_eq!(c.modules, crate::config::ModulesConfig::default());
    assert_eq!(c.modules.timeout.0, 50);
    assert_eq!(Config::load(None, &Overrides::default()).unwrap(), c);
}

#[test]
fn full_config_parses() {
    let c = parse_with(
        r#"
version: v1
log_level: debug
node_id: n1
storage:
  type: memory
  dir: /tmp/x
proxy:
  host: 0.0.0.0
  port: 80
admin:
  host: "::1"
  port: 9090
  allow_list: ["10.0.0.0/8", "127.0.0.1"]
  auth_method: key
  key_auth:
    keys: ["k1", "k2"]
    header_name: X-Api-Key
  basic_auth:
    users:
      - username: admin
        password: pw
  max_body_size: 1MiB
"#,
        &[],
    )
    .unwrap();
    assert_eq!(c.log_level, LogLevel::Debug);
    assert_eq!(c.node_name(), "n1");
    assert_eq!(c.storage.kind, StorageKind::Memory);
    assert_eq!(c.admin.auth_method, AuthMethod::Key);
    assert_eq!(c.admin.max_body_size, ByteSize(1 << 20));
    assert_eq!(c.allow_list().len(), 2);
    assert_eq!(c.admin_ip(), "::1".parse::<IpAddr>().unwrap());
}

#[test]
fn variables_are_substituted() {
    let text = "admin:\n  port: ${ADMIN_PORT:-9999}\nproxy:\n  port: ${PROXY_PORT}\n";
    let c = parse_with(text, &[("PROXY_PORT", "7000")]).unwrap();
    assert_eq!(c.admin.port, 9999);
    assert_eq!(c.proxy.port, 7000);
    let c = parse_with(text, &[("PROXY_PORT", "7000"), ("ADMIN_PORT", "7001")]).unwrap();
    assert_eq!(c.admin.port, 7001);
    // An empty variable takes the default.
    let c = parse_with(text, &[("PROXY_PORT", "7000"), ("ADMIN_PORT", "")]).unwrap();
    assert_eq!(c.admin.port, 9999);
    assert_eq!(
        parse_with(text, &[]).unwrap_err().to_string(),
        "environment variable PROXY_PORT is not set (write ${PROXY_PORT:-default} to give a default)"
    );
    assert_eq!(
        parse_with("node_id: $${LITERAL}x", &[])
            .unwrap_err()
            .to_string(),
        "node_id: \"${LITERAL}x\" is not a valid name (letters, digits, '_', '-' and '.', starting with a letter, digit or '_')"
    );
    assert_eq!(
        error("node_id: ${OOPS"),
        "bad ${...} substitution at byte 9: missing closing '}'"
    );
    assert_eq!(
        error("node_id: ${1X}"),
        "bad ${...} substitution at byte 9: \"1X\" is not a variable name"
    );
}

#[test]
fn overrides_replace_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, "proxy:\n  port: 1\nadmin:\n  port: 2\n").unwrap();
    let c = Config::load(
        Some(&path),
        &Overrides {
            proxy_port: Some(3),
            admin_port: Some(4),
            data_dir: Some("/data".into()),
        },
    )
    .unwrap();
    assert_eq!((c.proxy.port, c.admin.port), (3, 4));
    assert_eq!(c.storage.dir, PathBuf::from("/data"));
    let missing = Config::load(Some(&dir.path().join("nope.yaml")), &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("nope.yaml: cannot read config file"),
        "{missing}"
    );
}

/// Each invalid config with the one line it must produce.
#[test]
fn invalid_configs_name_the_key_and_the_reason() {
    let cases: &[(&str, &str)] = &[
        (
            "colour: red",
            "colour: unknown field `colour`, expected one of `version`",
        ),
        ("admin:\n  prot: 1", "admin.prot: unknown field `prot`"),
        (
            "admin:\n  port: 70000",
            "admin.port: invalid value: integer `70000`, expected u16",
        ),
        (
            "admin:\n  port: high",
            "admin.port: invalid type: string \"high\", expected u16",
        ),
        ("log_level: loud", "log_level: unknown variant `loud`"),
        ("storage:\n  type: s3", "storage.type: unknown variant `s3`"),
        (
            "version: v2",
            "version: unsupported version \"v2\" (supported: \"v1\")",
        ),
        ("node_id: 'n 1'", "node_id: \"n 1\" is not a valid name"),
        (
            "storage:\n  dir: ''",
            "storage.dir: must not be empty when storage.type is file",
        ),
        (
            "storage:\n  history: 1001",
            "storage.history: must be at most 1000",
        ),
        ("log_format: xml", "log_format: unknown variant `xml`"),
        (
            "proxy:\n  host: example",
            "proxy.host: \"example\" is not an IP address",
        ),
        (
            "admin:\n  host: 300.0.0.1",
            "admin.host: \"300.0.0.1\" is not an IP address",
        ),
        (
            "admin:\n  allow_list: [10.0.0.0/33]",
            "admin.allow_list[0]: \"10.0.0.0/33\" is not an IP address or CIDR",
        ),
        (
            "modules:\n  max_instances: 8\n  max_concurrency: 9",
            "modules.max_concurrency: must be at least 1 and at most modules.max_instances",
        ),
        (
            "modules:\n  build: {memory: 1MiB}",
            "modules.build.memory: must be between 64MiB and 16GiB",
        ),
        (
            "modules:\n  max_instances: 0",
            "modules.max_instances: must be between 1 and 10000",
        ),
        (
            "modules:\n  fetch: {allow: [127.0.0.1, 'bad host']}",
            "modules.fetch.allow[1]: \"bad host\" is not an IP address, CIDR, host name or *.domain (with an optional :port)",
        ),
        (
            "modules:\n  fetch: {allow: ['10.0.0.1:0']}",
            "modules.fetch.allow[0]: \"10.0.0.1:0\" has a port that is not a number from 1 to 65535",
        ),
        (
            "modules:\n  fetch: {allow: ['[::1']}",
            "modules.fetch.allow[0]: \"[::1\" has a '[' without its ']'",
        ),
        (
            "admin:\n  auth_method: key",
            "admin.key_auth.keys: auth_method is key but no keys are configured",
        ),
        (
            "admin:\n  auth_method: key\n  key_auth: {keys: ['a', '']}",
            "admin.key_auth.keys[1]: must not be empty",
        ),
        (
            "admin:\n  auth_method: key\n  key_auth: {keys: ['a'], header_name: 'bad header'}",
            "admin.key_auth.header_name: \"bad header\" is not a valid HTTP header name",
        ),
        (
            "admin:\n  auth_method: basic",
            "admin.basic_auth.users: auth_method is basic but no users are configured",
        ),
        (
            "admin:\n  auth_method: basic\n  basic_auth: {users: [{username: 'a:b', password: p}]}",
            "admin.basic_auth.users[0].username: must be non-empty and must not contain ':'",
        ),
        (
            "admin:\n  basic_auth: {users: [{username: a}]}",
            "admin.basic_auth.users[0]: missing field `password`",
        ),
        (
            "admin:\n  auth_method: oauth",
            "admin.auth_method: unknown variant `oauth`",
        ),
        (
            "admin:\n  max_body_size: 0",
            "admin.max_body_size: must be between 1 byte and 1GiB",
        ),
        (
            "admin:\n  max_body_size: 2GiB",
            "admin.max_body_size: must be between 1 byte and 1GiB",
        ),
        (
            "admin:\n  max_body_size: 5 parsecs",
            "admin.max_body_size: unknown size unit \"parsecs\"",
        ),
        (
            "admin:\n  port: 8080",
            "admin.port: port 8080 is already used by proxy.port",
        ),
        (
            "proxy:\n  redirect_https: ['a.*.b']",
            "proxy.redirect_https[0]: \"a.*.b\": '*' is only allowed at the start and the end (or use /regex/)",
        ),
        (
            "debug: true\ntest_server: {host: nowhere, port: 1}",
            "test_server.host: \"nowhere\" is not an IP address",
        ),
        (
            "proxy:\n  init_resources: {widgets: []}",
            "proxy.init_resources.widgets: unknown field `widgets`",
        ),
        ("stat: 1", "stat: unknown field `stat`"),
        (
            "admin:\n  replication: {shared_key: k, cluster_address: ['ftp://x']}",
            "admin.replication.cluster_address: \"ftp://x\" is not an http:// or https:// admin URL",
        ),
        (
            "admin:\n  replication: {shared_key: k, bootstrap_cluster: true, advert_address: nope}",
            "admin.replication.advert_address: must be an http:// or https:// admin URL",
        ),
        (
            "admin:\n  replication: {shared_key: k, bootstrap_cluster: true, id: 'a b'}",
            "admin.replication.id: \"a b\" is not a valid name",
        ),
        (
            "admin:\n  replication: {shared_key: k, bootstrap_cluster: true, raft_config: {heartbeat_interval: 1s}}",
            "admin.replication.raft_config.heartbeat_interval: must be above 0 and below election_timeout_min",
        ),
        (
            "admin:\n  replication: {shared_key: k, bootstrap_cluster: true, raft_config: {election_timeout_min: 2s}}",
            "admin.replication.raft_config.election_timeout_min: must be below election_timeout_max",
        ),
        (
            "proxy:\n  tls: {port: 9080, cert_file: c, key_file: k}",
            "proxy.tls.port: port 9080 is already used by admin.port",
        ),
        (
            "proxy:\n  tls: {port: 1}",
            "proxy.tls: missing field `cert_file`",
        ),
        (
            "proxy:\n  redirect_https: true",
            "proxy.redirect_https: needs proxy.tls",
        ),
        (
            "proxy:\n  global_headers: {'bad header': x}",
            "proxy.global_headers: \"bad header\" is not a valid HTTP header name",
        ),
        (
            "proxy:\n  global_headers: {x-a: \"a\\nb\"}",
            "proxy.global_headers.x-a: the value is not a valid HTTP header value",
        ),
        (
            "proxy:\n  allowed_domains: ['a.*.b']",
            "proxy.allowed_domains[0]: \"a.*.b\": '*' is only allowed",
        ),
        (
            "proxy:\n  max_header_size: 10",
            "proxy.max_header_size: must be between 1KiB and 1MiB",
        ),
        (
            "proxy:\n  max_headers: 0",
            "proxy.max_headers: must be between 1 and 1000",
        ),
        (
            "proxy:\n  header_read_timeout: 0s",
            "proxy.header_read_timeout: must be between 1ms and 1h",
        ),
        (
            "modules:\n  fuel: 10",
            "modules.fuel: must be at least 1000000",
        ),
        (
            "modules:\n  memory: 512KiB",
            "modules.memory: must be between 1MiB and 4GiB",
        ),
        (
            "modules:\n  timeout: 2m",
            "modules.timeout: must be between 1ms and 60s",
        ),
        (
            "modules:\n  max_body_size: 2GiB",
            "modules.max_body_size: must be at most 1GiB",
        ),
        (
            "modules:\n  fuell: 1",
            "modules.fuell: unknown field `fuell`",
        ),
        (
            "proxy:\n  header_read_timeout: soon",
            "proxy.header_read_timeout: invalid duration \"soon\"",
        ),
        (
            "proxy: [1, 2]",
            "proxy[0]: invalid type: integer `1`, expected a string",
        ),
        (
            "proxy: 5",
            "proxy: invalid type: integer `5`, expected struct ProxyConfig",
        ),
    ];
    for (text, want) in cases {
        let got = error(text);
        assert!(
            got.starts_with(want),
            "config {text:?}\n  got: {got}\n want: {want}"
        );
        assert!(!got.contains('\n'), "one line only: {got:?}");
    }
}

#[test]
fn yaml_syntax_errors_are_one_line() {
    let got = error("admin: [unclosed");
    assert!(got.starts_with("dgate.yaml: invalid YAML: "), "{got}");
    assert!(!got.contains('\n'));
}

/// DGate v0.11's config keys: what DGate has in another form is read with DGate's meaning,
/// what dgate does not use is named (for a warning) rather than refused.
#[test]
fn dgate_config_forms() {
    let c = parse_with(
        r#"
version: v1
debug: true
log_level: ${LOG_LEVEL:-info}
log_json: true
tags: [a, b]
disable_default_namespace: true
"stats?": {enable_request_stats: true}
test_server: {port: 18888, host: 0.0.0.0, global_headers: {X-Test: "1"}}
proxy:
  port: 8081
  console_log_level: info
  transport: {dns_prefer_go: true}
  redirect_https: [/^(.+\.)?example\.net$/, "*local*"]
  allowed_domains: ["*local*", "*dgate.dev"]
  init_resources:
    namespaces: [{name: admin}]
admin:
  port: 9081
  watch_only: true
  replication:
    id: test1
    bootstrap_cluster: true
    advert_address: "localhost:9081"
    cluster_address: ["localhost:9082", "http://localhost:9083"]
    raft_config: {heartbeat_timeout: 100ms, election_timeout: 1s}
"#,
        &[],
    )
    .unwrap();
    assert!(c.debug && c.disable_default_namespace);
    assert_eq!(
        c.log_format,
        LogFormat::Json,
        "log_json: true is log_format: json"
    );
    assert_eq!(c.test_server.as_ref().unwrap().port, 18888);
    assert_eq!(
        c.proxy.redirect_https,
        RedirectHttps::Hosts(vec![r"/^(.+\.)?example\.net$/".into(), "*local*".into()])
    );
    let r = c.admin.replication.as_ref().unwrap();
    assert!(
        r.shared_key.is_empty(),
        "shared_key is optional, as in DGate"
    );
    assert!(r.watch_only, "admin.watch_only is DGate's place for it");
    assert_eq!(r.advert_address.as_deref(), Some("http://localhost:9081"));
    assert_eq!(
        r.cluster_address,
        ["http://localhost:9082", "http://localhost:9083"]
    );
    assert_eq!(c.proxy.init_resources.as_ref().unwrap().namespaces.len(), 1);
    assert_eq!(
        c.unused_dgate_keys,
        [
            "tags",
            "stats?",
            "proxy.console_log_level",
            "proxy.transport",
            "admin.replication.raft_config.heartbeat_timeout",
            "admin.replication.raft_config.election_timeout",
        ]
    );
}
