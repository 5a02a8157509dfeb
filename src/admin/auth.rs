//! Admin access control: the IP allow list (403) for every endpoint, then key or basic auth (401)
//! for everything but the health probes.

use std::net::{IpAddr, SocketAddr};

use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ipnet::IpNet;

use super::AppError;
use crate::config::{AuthMethod, Config};
use crate::constant_time::eq as constant_time_eq;

tokio::task_local! {
    /// Who the admin request being handled is from, as [`enforce`] authenticated it.
    static CALLER: String;
}

/// Who the admin request being handled is from: `anonymous` (no auth configured), `key N`
/// (the Nth configured key), a basic-auth user; `dgate` outside a request (`init_resources`).
pub fn caller() -> String {
    CALLER
        .try_with(String::clone)
        .unwrap_or_else(|_| "dgate".into())
}

/// What a request must show to reach the admin API.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    allow_list: Vec<IpNet>,
    auth: Auth,
}

#[derive(Debug, Clone)]
enum Auth {
    None,
    Key {
        header: HeaderName,
        keys: Vec<String>,
    },
    Basic {
        users: Vec<(String, String)>,
    },
}

/// Endpoints that answer without credentials (still subject to the allow list).
const PUBLIC_PATHS: [&str; 2] = ["/healthz", "/readyz"];

impl AccessPolicy {
    pub fn from_config(config: &Config) -> AccessPolicy {
        let admin = &config.admin;
        let auth = match admin.auth_method {
            AuthMethod::None => Auth::None,
            AuthMethod::Key => {
                let key_auth =
                    admin
                        .key_auth
                        .clone()
                        .unwrap_or_else(|| crate::config::KeyAuthConfig {
                            keys: vec![],
                            header_name: crate::config::defaults::KEY_HEADER.into(),
                        });
                Auth::Key {
                    // Validated by Config::validate.
                    header: HeaderName::from_bytes(key_auth.header_name.as_bytes())
                        .unwrap_or(HeaderName::from_static("x-dgate-key")),
                    keys: key_auth.keys,
                }
            }
            AuthMethod::Basic => Auth::Basic {
                users: admin
                    .basic_auth
                    .iter()
                    .flat_map(|b| b.users.iter())
                    .map(|u| (u.username.clone(), u.password.clone()))
                    .collect(),
            },
        };
        AccessPolicy {
            allow_list: config.allow_list(),
            auth,
        }
    }

    fn allows_ip(&self, ip: Option<IpAddr>) -> bool {
        if self.allow_list.is_empty() {
            return true;
        }
        let Some(ip) = ip else { return false };
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.allow_list.iter().any(|net| net.contains(&ip))
    }

    /// Who the request's credentials name: a basic-auth user, `key N` (the Nth configured key)
    /// or `anonymous` without auth.
    fn check_credentials(&self, req: &Request) -> Result<String, AppError> {
        match &self.auth {
            Auth::None => Ok("anonymous".into()),
            Auth::Key { header, keys } => {
                let given = req.headers().get(header).map(|v| v.as_bytes());
                // Every key is compared, so the time taken does not tell which one matched.
                let matched = given.and_then(|given| {
                    keys.iter().enumerate().fold(None, |hit, (i, k)| {
                        if constant_time_eq(k.as_bytes(), given) {
                            Some(i)
                        } else {
                            hit
                        }
                    })
                });
                match (given, matched) {
                    (_, Some(i)) => Ok(format!("key {i}")),
                    (Some(_), None) => Err(AppError::Unauthorized {
                        message: format!("invalid key in header {header}"),
                        basic: false,
                    }),
                    (None, None) => Err(AppError::Unauthorized {
                        message: format!("missing key: send it in header {header}"),
                        basic: false,
                    }),
                }
            }
            Auth::Basic { users } => {
                let creds = req
                    .headers()
                    .get(axum::http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Basic "))
                    .and_then(|b| BASE64.decode(b.trim()).ok())
                    .and_then(|b| String::from_utf8(b).ok());
                let Some(creds) = creds else {
                    return Err(AppError::Unauthorized {
                        message: "missing basic credentials".into(),
                        basic: true,
                    });
                };
                let (user, pass) = creds.split_once(':').unwrap_or((&creds, ""));
                // Compare against every user so the time taken does not tell which names exist.
                let ok = users.iter().fold(false, |ok, (u, p)| {
                    let hit = constant_time_eq(u.as_bytes(), user.as_bytes())
                        & constant_time_eq(p.as_bytes(), pass.as_bytes());
                    ok | hit
                });
                if ok {
                    Ok(user.to_string())
                } else {
                    Err(AppError::Unauthorized {
                        message: "invalid username or password".into(),
                        basic: true,
                    })
                }
            }
        }
    }
}

pub async fn enforce(
    State(policy): State<std::sync::Arc<AccessPolicy>>,
    req: Request,
    next: Next,
) -> Result<Response, AppError> {
    // Like axum's ConnectInfo extractor: the real peer, or the one a test injected.
    let ext = req.extensions();
    let peer = ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .or_else(|| ext.get::<MockConnectInfo<SocketAddr>>().map(|m| m.0.ip()));
    if !policy.allows_ip(peer) {
        let who = peer.map_or("unknown address".to_string(), |ip| ip.to_string());
        return Err(AppError::Forbidden(format!(
            "{who} is not in the admin allow list"
        )));
    }
    // Raft's endpoints carry the cluster's shared key instead of admin credentials.
    let path = req.uri().path();
    let who = if path.starts_with("/api/v1/raft/") {
        "cluster".to_string()
    } else if PUBLIC_PATHS.contains(&path) {
        "anonymous".to_string()
    } else {
        policy.check_credentials(&req)?
    };
    // The handlers' audit lines (`dgate::audit`) carry who and from where; the history keeps who.
    let from = peer.map_or_else(|| "-".to_string(), |ip| ip.to_string());
    let span = tracing::info_span!("admin", who = %who, from = %from);
    Ok(CALLER
        .scope(who, tracing::Instrument::instrument(next.run(req), span))
        .await)
}
