//! `dgate module run FILE --hook H`: one hook call (or `--bench N` calls) on the gateway's
//! engine, with fixtures for the request, response, context and documents; no gateway needed.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::RunArgs;
use super::client::CliError;
use super::modules::{build_error, is_source, read};
use crate::build;
use crate::config::ModulesConfig;
use crate::modules::{
    CallError, CallInfo, Engine, EngineOptions, Hook, Host, HostEnv, Io, Limits, LocalDocuments,
    LogTo, RouteInfo,
};

/// Where `dgate module run` caches compiled modules.
fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("dgate").join("modules"))
}

fn json_file(path: Option<&PathBuf>) -> Result<Value, CliError> {
    match path {
        None => Ok(json!({})),
        Some(p) => serde_json::from_str(&read(p)?)
            .map_err(|e| CliError::Usage(format!("{}: not JSON: {e}", p.display()))),
    }
}

/// Headers from `{"name": "value"}` or `[["name", "value"], ...]`, names lower-cased.
fn headers(v: &Value, what: &str) -> Result<http::HeaderMap, CliError> {
    let mut map = http::HeaderMap::new();
    for (k, v) in header_list(v, what)? {
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(&v),
        ) else {
            return Err(CliError::Usage(format!(
                "{what}: header {k:?} is not valid HTTP"
            )));
        };
        map.append(name, value);
    }
    Ok(map)
}

fn header_list(v: &Value, what: &str) -> Result<Vec<(String, String)>, CliError> {
    let bad = || {
        CliError::Usage(format!(
            "{what}: headers must be an object or a list of [name, value]"
        ))
    };
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match v {
        Value::Null => Ok(vec![]),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| Ok((k.to_ascii_lowercase(), text(v).ok_or_else(bad)?)))
            .collect(),
        Value::Array(list) => list
            .iter()
            .map(|p| match p.as_array().map(Vec::as_slice) {
                Some([k, v]) => Ok((
                    k.as_str().ok_or_else(bad)?.to_ascii_lowercase(),
                    text(v).ok_or_else(bad)?,
                )),
                _ => Err(bad()),
            })
            .collect(),
        _ => Err(bad()),
    }
}

fn body(v: &Value, what: &str) -> Result<Vec<u8>, CliError> {
    match v {
        Value::Null => Ok(vec![]),
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        other => {
            serde_json::to_vec(other).map_err(|e| CliError::Usage(format!("{what}: body: {e}")))
        }
    }
}

fn string(v: &Value, key: &str, default: &str) -> Result<String, CliError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(default.to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(CliError::Usage(format!("{key} must be a string"))),
    }
}

/// A call's inputs from `--request`, `--context`, `--response` and `--error`.
struct Fixture {
    call: CallInfo,
    request_headers: http::HeaderMap,
    response_status: u16,
    response_headers: http::HeaderMap,
    error_status: u16,
}

impl Fixture {
    /// A call's I/O (bodies empty).
    fn io(&self) -> Box<Io> {
        Box::new(Io {
            call: self.call.clone(),
            request_headers: self.request_headers.clone(),
            response_headers: self.response_headers.clone(),
            ..Io::default()
        })
    }
}

fn parse_request(v: &Value, call: &mut CallInfo) -> Result<(http::HeaderMap, Vec<u8>), CliError> {
    if !v.is_object() {
        return Err(CliError::Usage("the request must be a JSON object".into()));
    }
    let headers = headers(v.get("headers").unwrap_or(&Value::Null), "request")?;
    let host_header = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.split(':').next().unwrap_or_default().to_string());
    let bad_path = || CliError::Usage("request path must be a string starting with /".into());
    call.uri = match v.get("path").or_else(|| v.get("uri")) {
        Some(Value::String(p)) if p.starts_with('/') => p.parse().map_err(|_| bad_path())?,
        None => http::Uri::from_static("/"),
        Some(_) => return Err(bad_path()),
    };
    let method = string(v, "method", "GET")?.to_ascii_uppercase();
    call.method = http::Method::from_bytes(method.as_bytes())
        .map_err(|_| CliError::Usage(format!("request method {method:?} is not valid")))?;
    call.host = string(v, "host", host_header.as_deref().unwrap_or("localhost"))?.into();
    let remote = string(v, "remoteAddress", "127.0.0.1")?;
    call.remote_address = Some(remote.parse().map_err(|_| {
        CliError::Usage(format!(
            "request remoteAddress {remote:?} is not an IP address"
        ))
    })?);
    call.tls = match string(v, "proto", "http")?.as_str() {
        "http" => false,
        "https" => true,
        other => {
            return Err(CliError::Usage(format!(
                "request proto {other:?}: use http or https"
            )));
        }
    };
    Ok((
        headers,
        body(v.get("body").unwrap_or(&Value::Null), "request")?,
    ))
}

fn parse_context(v: &Value, call: &mut CallInfo) -> Result<(), CliError> {
    call.path_params = match v.get("params") {
        None | Some(Value::Null) => vec![],
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(CliError::Usage("context params must be strings".into())),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(CliError::Usage("context params must be an object".into())),
    };
    call.route = Arc::new(RouteInfo {
        namespace: string(v, "namespace", "default")?,
        route: string(v, "route", "local")?,
        service: v.get("service").and_then(Value::as_str).map(str::to_string),
        service_urls: match v.get("serviceUrls") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(list)) => list
                .iter()
                .map(|u| u.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| CliError::Usage("context serviceUrls must be strings".into()))?,
            Some(_) => return Err(CliError::Usage("context serviceUrls must be a list".into())),
        },
    });
    Ok(())
}

/// The `status` of a `--response` or `--error` fixture, or `default` without one.
fn status_of(v: &Value, default: u16) -> u16 {
    v.get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(default)
}

fn pairs_json(headers: &http::HeaderMap) -> Value {
    Value::Array(
        crate::modules::header_pairs(headers)
            .iter()
            .map(|(k, v)| json!([k, v]))
            .collect(),
    )
}

fn body_json(out: &mut Map<String, Value>, body: &[u8]) {
    match std::str::from_utf8(body) {
        Ok(s) => out.insert("body".into(), Value::String(s.into())),
        Err(_) => out.insert("bodyBytes".into(), json!(body.len())),
    };
}

/// `dgate module run FILE --hook H ...`: one call on a fresh instance, the result on stdout.
pub async fn run_module(args: &RunArgs) -> Result<(), CliError> {
    let hook = Hook::from_js_name(&args.hook).ok_or_else(|| {
        CliError::Usage(format!(
            "unknown hook {:?}: use fetchUpstream, requestModifier, responseModifier, errorHandler or requestHandler",
            args.hook
        ))
    })?;
    let memory: crate::units::ByteSize = args
        .memory
        .parse()
        .map_err(|e| CliError::Usage(format!("--memory: {e}")))?;
    let wall = humantime::parse_duration(&args.timeout)
        .map_err(|e| CliError::Usage(format!("--timeout: {e}")))?;
    let limits = Limits {
        fuel: args.fuel,
        memory: usize::try_from(memory.0).unwrap_or(usize::MAX),
        wall,
        ..Limits::default()
    };
    let mut call = CallInfo::default();
    let (req_headers, req_body) = parse_request(&json_file(args.request.as_ref())?, &mut call)?;
    parse_context(&json_file(args.context.as_ref())?, &mut call)?;
    let response = json_file(args.response.as_ref())?;
    let error = json_file(args.error.as_ref())?;
    let namespace = call.route.namespace.clone();
    let documents = Arc::new(match &args.documents {
        Some(p) => LocalDocuments::default()
            .with_documents(&namespace, &json_file(Some(p))?)
            .map_err(|e| CliError::Usage(format!("{}: {e}", p.display())))?,
        None => LocalDocuments::default(),
    });
    // On the author's own machine, fetch may reach anything (a local test server).
    let services = HostEnv::new(
        documents.clone(),
        &ModulesConfig::default(),
        crate::modules::Egress::unrestricted(),
        LogTo::Stderr,
    )
    .host(&namespace, "local");

    let component = if is_source(&args.file) {
        let source = read(&args.file)?;
        let mut steps = build::Steps::default();
        let built = build::build_resolving(
            &args.file.display().to_string(),
            &source,
            &build::project(&args.file),
            false,
            &mut steps,
        );
        steps.warnings.iter().for_each(|w| eprintln!("{w}"));
        built.map_err(build_error)?
    } else {
        std::fs::read(&args.file)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", args.file.display())))?
    };
    let engine = Engine::new(EngineOptions {
        cache_dir: cache_dir(),
        max_instances: 4,
        max_memory: limits.memory.max(1 << 20),
        compiler: None,
    })
    .map_err(|e| CliError::Failed(format!("cannot start the engine: {e:#}")))?;
    let loading = std::time::Instant::now();
    let module = engine
        .load(&component, limits)
        .await
        .map_err(|e| CliError::Failed(format!("{}: {e}", args.file.display())))?;
    if !module.defined.contains(&hook) {
        let defined: Vec<&str> = module.defined.iter().map(|h| h.js_name()).collect();
        return Err(CliError::Failed(format!(
            "{} does not define {} (it defines {})",
            args.file.display(),
            hook.js_name(),
            defined.join(", ")
        )));
    }
    call.error_message = Some(string(&error, "message", "upstream unreachable")?);
    let fixture = Fixture {
        call,
        request_headers: req_headers,
        response_status: status_of(&response, 200),
        response_headers: headers(response.get("headers").unwrap_or(&Value::Null), "response")?,
        error_status: status_of(&error, 502),
    };
    if args.bench > 0 {
        let load_ms = loading.elapsed().as_secs_f64() * 1e3;
        let mut timings = bench(&module, services, limits, hook, args.bench, &fixture).await?;
        timings.insert("load_ms".into(), json!((load_ms * 10.0).round() / 10.0));
        println!("{}", Value::Object(timings));
        return Ok(());
    }
    let mut instance = module
        .instantiate(services.clone(), limits)
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let mut io = fixture.io();
    io.request_body = req_body;
    io.response_body = body(response.get("body").unwrap_or(&Value::Null), "response")?;
    let mut out = Map::new();
    out.insert("hook".into(), json!(hook.js_name()));
    let failed = |e: CallError| {
        let mut m = format!("{} failed: {e}", hook.js_name());
        if let CallError::Thrown { stack: Some(s), .. } = &e {
            m.push('\n');
            m.push_str(s.trim_end());
        }
        CliError::Failed(m)
    };
    let response_json = |status: u16, io: &Io| {
        let mut r = Map::new();
        r.insert("status".into(), json!(status));
        r.insert("headers".into(), pairs_json(&io.response_headers));
        body_json(&mut r, &io.response_body);
        Value::Object(r)
    };
    match hook {
        Hook::FetchUpstream => {
            let (r, mut io) = instance.fetch_upstream(io).await;
            out.insert("upstream".into(), json!(r.map_err(failed)?));
            client_headers(&mut out, &mut io)?;
        }
        Hook::RequestModifier => {
            let (r, mut io) = instance.request_modifier(io).await;
            r.map_err(failed)?;
            let mut m = Map::new();
            m.insert("method".into(), json!(io.call.method.as_str()));
            m.insert(
                "path".into(),
                json!(io.call.uri.path_and_query().map_or("/", |pq| pq.as_str())),
            );
            m.insert("headers".into(), pairs_json(&io.request_headers));
            body_json(&mut m, &io.request_body);
            m.insert("bodyChanged".into(), json!(io.request_body_set));
            out.insert("request".into(), Value::Object(m));
            client_headers(&mut out, &mut io)?;
        }
        Hook::ResponseModifier => {
            let (r, mut io) = instance
                .response_modifier(fixture.response_status, io)
                .await;
            let status = r.map_err(failed)?;
            // As the proxy does: changes made through ctx.response() come last.
            let edits = std::mem::take(&mut io.client_header_edits);
            crate::modules::apply_edits(&mut io.response_headers, edits)
                .map_err(|e| CliError::Failed(e.to_string()))?;
            out.insert("response".into(), response_json(status, &io));
        }
        Hook::ErrorHandler => {
            let (r, io) = instance.error_handler(fixture.error_status, io).await;
            out.insert("response".into(), response_json(r.map_err(failed)?, &io));
        }
        Hook::RequestHandler => {
            let (r, io) = instance.request_handler(io).await;
            out.insert("response".into(), response_json(r.map_err(failed)?, &io));
        }
    }
    if args.documents.is_some() {
        out.insert("documents".into(), documents.documents(&namespace));
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&Value::Object(out)).unwrap_or_default()
    );
    Ok(())
}

/// One call of `hook`, for the benchmark. The proxy moves a call's headers and fields into it;
/// here they are cloned, which the timings include.
async fn call_once(
    instance: &mut crate::modules::Instance,
    hook: Hook,
    f: &Fixture,
) -> Result<(), CallError> {
    let io = f.io();
    match hook {
        Hook::FetchUpstream => instance.fetch_upstream(io).await.0.map(drop),
        Hook::RequestModifier => instance.request_modifier(io).await.0,
        Hook::ResponseModifier => instance
            .response_modifier(f.response_status, io)
            .await
            .0
            .map(drop),
        Hook::ErrorHandler => instance.error_handler(f.error_status, io).await.0.map(drop),
        Hook::RequestHandler => instance.request_handler(io).await.0.map(drop),
    }
}

/// `--bench N`: N calls on one reused instance, then N calls each on a fresh instance from the
/// pool; returns microseconds per call.
async fn bench(
    module: &crate::modules::Module,
    services: Arc<Host>,
    limits: Limits,
    hook: Hook,
    n: u32,
    fixture: &Fixture,
) -> Result<Map<String, Value>, CliError> {
    let failed = |e: CallError| CliError::Failed(format!("{} failed: {e}", hook.js_name()));
    let fresh = || async {
        module
            .instantiate(services.clone(), limits)
            .await
            .map_err(|e| CliError::Failed(e.to_string()))
    };
    let mut instance = fresh().await?;
    // Warm up: first-call costs (lazy init, page faults) are not what is measured.
    for _ in 0..n.min(100) {
        call_once(&mut instance, hook, fixture)
            .await
            .map_err(failed)?;
    }
    let started = std::time::Instant::now();
    for _ in 0..n {
        call_once(&mut instance, hook, fixture)
            .await
            .map_err(failed)?;
    }
    let reused = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    let started = std::time::Instant::now();
    for _ in 0..n {
        let mut instance = fresh().await?;
        call_once(&mut instance, hook, fixture)
            .await
            .map_err(failed)?;
    }
    let fresh_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    let mut out = Map::new();
    out.insert("hook".into(), json!(hook.js_name()));
    out.insert("calls".into(), json!(n));
    out.insert(
        "reused_instance_us_per_call".into(),
        json!((reused * 10.0).round() / 10.0),
    );
    out.insert(
        "fresh_instance_us_per_call".into(),
        json!((fresh_us * 10.0).round() / 10.0),
    );
    Ok(out)
}

/// The headers a request-side hook set on the client's response through `ctx.response()`, as
/// `clientResponseHeaders` (on an otherwise empty response).
fn client_headers(out: &mut Map<String, Value>, io: &mut Io) -> Result<(), CliError> {
    if io.client_header_edits.is_empty() {
        return Ok(());
    }
    let mut headers = ::http::HeaderMap::new();
    crate::modules::apply_edits(&mut headers, std::mem::take(&mut io.client_header_edits))
        .map_err(|e| CliError::Failed(e.to_string()))?;
    out.insert("clientResponseHeaders".into(), pairs_json(&headers));
    Ok(())
}
