//! DGate's test server (`test_server:` with `debug: true`): an upstream that answers every
//! request with what it received, for trying routes and modules out without a real service.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::config::TestServerConfig;

/// The longest `?wait=` the server honours.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// The router: every method on every path answers with DGate's envelope around
/// `{method, path, body, host, remote_addr, req_headers, global_headers[, waited][, env]}`.
pub fn router(config: &TestServerConfig) -> axum::Router {
    let global: Vec<(HeaderName, HeaderValue)> = config
        .global_headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                HeaderName::from_bytes(k.as_bytes()).ok()?,
                HeaderValue::from_str(v).ok()?,
            ))
        })
        .collect();
    let shown = config.global_headers.clone();
    let env = config.enable_env_vars;
    axum::Router::new().fallback(move |req: Request| {
        let global = global.clone();
        let shown = shown.clone();
        async move { echo(req, &global, &shown, env).await }
    })
}

async fn echo(
    req: Request,
    global: &[(HeaderName, HeaderValue)],
    shown: &BTreeMap<String, String>,
    env: bool,
) -> Response {
    let (parts, body) = req.into_parts();
    let mut answer = serde_json::Map::new();
    if let Some(wait) = query_value(parts.uri.query(), "wait") {
        match crate::units::nanos::parse(&wait) {
            Ok(d) if d.as_duration() <= MAX_WAIT => {
                tokio::time::sleep(d.as_duration()).await;
                answer.insert("waited".into(), json!(wait));
            }
            _ => {
                let error = json!({"error": format!("Invalid wait time: {wait}")});
                return envelope(StatusCode::BAD_REQUEST, error, global);
            }
        }
    }
    let body: Bytes = axum::body::to_bytes(body, 16 << 20)
        .await
        .unwrap_or_default();
    let remote = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    answer.insert("method".into(), json!(parts.method.as_str()));
    answer.insert("path".into(), json!(parts.uri.to_string()));
    answer.insert("body".into(), json!(String::from_utf8_lossy(&body)));
    answer.insert(
        "host".into(),
        json!(
            parts
                .headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default()
        ),
    );
    answer.insert("remote_addr".into(), json!(remote));
    answer.insert("req_headers".into(), headers_json(&parts.headers));
    answer.insert("global_headers".into(), json!(shown));
    if env {
        let vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
        answer.insert("env".into(), json!(vars));
    }
    envelope(StatusCode::OK, Value::Object(answer), global)
}

/// Headers as Go's `http.Header` marshals them: each name to the list of its values.
fn headers_json(headers: &HeaderMap) -> Value {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        out.entry(canonical(name.as_str()))
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    json!(out)
}

/// `x-forwarded-for` as Go writes it: `X-Forwarded-For`.
fn canonical(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn query_value(query: Option<&str>, key: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn envelope(status: StatusCode, data: Value, global: &[(HeaderName, HeaderValue)]) -> Response {
    let body = json!({"status_code": status.as_u16(), "data": data});
    let mut res = (status, axum::Json(body)).into_response();
    for (k, v) in global {
        res.headers_mut().insert(k.clone(), v.clone());
    }
    res
}
