//! The server's YAML configuration: the schema ([`schema`], which refuses unknown keys), every
//! default ([`defaults`]), `${VAR:-default}` substitution ([`env`]), and [`Config::validate`]
//! ([`validate`]), which refuses every value it does not understand with one line naming the key
//! and the reason ([`ConfigError`]).

pub mod defaults;
mod dgate;
mod env;
mod error;
mod fetch;
mod schema;
mod validate;

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

pub use error::ConfigError;
pub use fetch::{FetchRule, FetchTarget};
pub use schema::*;

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
        let mut value = match value {
            serde_json::Value::Null => serde_json::Value::Object(Default::default()),
            v => v,
        };
        let unused = dgate::read_dgate_forms(&mut value);
        let mut config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            ConfigError::Schema {
                key: if path == "." {
                    "config".to_string()
                } else {
                    path
                },
                reason: e.into_inner().to_string(),
            }
        })?;
        config.unused_dgate_keys = unused;
        Ok(config)
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

pub fn parse_host(key: &'static str, value: &str) -> Result<IpAddr, ConfigError> {
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
