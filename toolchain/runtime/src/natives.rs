//! The native functions the JS prelude builds on, on a global `__dgate_native` object: each one
//! is a thin wrapper over a host import (or a digest). Host errors become JS `Error`s with a
//! `code` ("not-allowed", "invalid", "not-found", "failed", "limit").

use hmac::{Hmac, Mac};
use javy::quickjs::function::Opt;
use javy::quickjs::{Array, Ctx, Exception, Function, Object, Result, TypedArray, Value};
use sha1::Sha1;
use md5::Md5;
use sha2::{Digest, Sha256, Sha384, Sha512, Sha512_224, Sha512_256};

use crate::dgate::module::types::{Field, HeaderEdit, HostError, LogLevel};
use crate::dgate::module::{cache, documents, http};
use crate::{is_current, live, pairs_from_js, pairs_to_js};

fn throw(cx: &Ctx<'_>, code: &str, message: &str) -> javy::quickjs::Error {
    let build = || -> Result<Value<'_>> {
        let e = Exception::from_message(cx.clone(), message)?;
        e.as_object().set("code", code)?;
        Ok(e.into_value())
    };
    match build() {
        Ok(v) => cx.throw(v),
        Err(e) => e,
    }
}

fn host_error(cx: &Ctx<'_>, e: HostError) -> javy::quickjs::Error {
    let (code, m) = match &e {
        HostError::NotAllowed(m) => ("not-allowed", m),
        HostError::Invalid(m) => ("invalid", m),
        HostError::NotFound(m) => ("not-found", m),
        HostError::Failed(m) => ("failed", m),
        HostError::Limit(m) => ("limit", m),
    };
    throw(cx, code, m)
}

/// Host imports exist only once the module is live (not while wizer snapshots it).
fn require_live(cx: &Ctx<'_>, what: &str) -> Result<()> {
    if live() {
        Ok(())
    } else {
        Err(throw(
            cx,
            "not-allowed",
            &format!("{what} is not available while the module is loading; call it from a hook"),
        ))
    }
}

fn bytes<'js>(cx: &Ctx<'js>, b: Vec<u8>) -> Result<TypedArray<'js, u8>> {
    TypedArray::new(cx.clone(), b)
}

fn input<'a>(cx: &Ctx<'_>, a: &'a TypedArray<'_, u8>) -> Result<&'a [u8]> {
    a.as_bytes()
        .ok_or_else(|| throw(cx, "invalid", "the byte array is detached"))
}

fn document_to_js<'js>(cx: &Ctx<'js>, d: documents::Document) -> Result<Object<'js>> {
    let o = Object::new(cx.clone())?;
    o.set("id", d.id)?;
    o.set("collection", d.collection)?;
    o.set("data", d.data)?;
    Ok(o)
}

/// `alg` as dgate/crypto passes it: lower case, without `-` or `_` (`sha512224`).
fn digest(alg: &str, data: &[u8]) -> Option<Vec<u8>> {
    Some(match alg {
        "md5" => Md5::digest(data).to_vec(),
        "sha1" => Sha1::digest(data).to_vec(),
        "sha256" => Sha256::digest(data).to_vec(),
        "sha384" => Sha384::digest(data).to_vec(),
        "sha512" => Sha512::digest(data).to_vec(),
        "sha512224" => Sha512_224::digest(data).to_vec(),
        "sha512256" => Sha512_256::digest(data).to_vec(),
        _ => return None,
    })
}

fn hmac(alg: &str, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC takes any key");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
    Some(match alg {
        "md5" => run::<Hmac<Md5>>(key, data),
        "sha1" => run::<Hmac<Sha1>>(key, data),
        "sha256" => run::<Hmac<Sha256>>(key, data),
        "sha384" => run::<Hmac<Sha384>>(key, data),
        "sha512" => run::<Hmac<Sha512>>(key, data),
        "sha512224" => run::<Hmac<Sha512_224>>(key, data),
        "sha512256" => run::<Hmac<Sha512_256>>(key, data),
        _ => return None,
    })
}

fn log(level: u32, message: String) {
    if !live() {
        // Console output while the module loads goes nowhere rather than trapping.
        return;
    }
    let level = match level {
        0 => LogLevel::Debug,
        1 => LogLevel::Info,
        2 => LogLevel::Warn,
        _ => LogLevel::Error,
    };
    http::log(level, &message);
}

fn finished(cx: &Ctx<'_>) -> javy::quickjs::Error {
    throw(
        cx,
        "not-allowed",
        "this context belongs to a hook call that has finished",
    )
}

/// One field of the call in flight, from the host (see the prelude's context classes for the
/// numbers).
fn field<'js>(cx: Ctx<'js>, seq: u32, i: u32) -> Result<Value<'js>> {
    require_call(&cx, seq, "the request")?;
    let f = match i {
        0 => Field::Namespace,
        1 => Field::Route,
        2 => Field::Service,
        3 => {
            let urls = Array::new(cx.clone())?;
            for (i, u) in http::service_urls().iter().enumerate() {
                urls.set(i, u.as_str())?;
            }
            return Ok(urls.into_value());
        }
        4 => return Ok(pairs_to_js(&cx, &http::path_params())?.into_value()),
        5 => Field::Method,
        6 => Field::Uri,
        7 => Field::RemoteAddress,
        8 => Field::Host,
        9 => Field::Proto,
        10 => Field::ErrorMessage,
        _ => return Ok(Value::new_undefined(cx.clone())),
    };
    match http::call_field(f) {
        Some(s) => Ok(javy::quickjs::String::from_str(cx.clone(), &s)?.into_value()),
        None => Ok(Value::new_undefined(cx.clone())),
    }
}

/// Refuses `what` of a context object outside its call: while the module loads, or once the
/// call has finished (the object kept in a global, say).
fn require_call(cx: &Ctx<'_>, seq: u32, what: &str) -> Result<()> {
    require_live(cx, what)?;
    if is_current(seq) {
        Ok(())
    } else {
        Err(finished(cx))
    }
}

/// The request's (0) or the upstream response's (1) headers, from the host.
fn headers<'js>(cx: Ctx<'js>, seq: u32, which: u32) -> Result<Array<'js>> {
    require_call(&cx, seq, "headers")?;
    let list = if which == 0 {
        http::request_headers()
    } else {
        http::response_headers()
    };
    pairs_to_js(&cx, &list)
}

/// One header of the request (0) or the upstream response (1) by name, from the host: its
/// values joined with ", ", or null; undefined for a name that is not ASCII, which the prelude
/// lowercases and looks up itself (the host lowercases ASCII only).
fn header<'js>(cx: Ctx<'js>, seq: u32, which: u32, name: String) -> Result<Value<'js>> {
    require_call(&cx, seq, "headers")?;
    if !name.is_ascii() {
        return Ok(Value::new_undefined(cx.clone()));
    }
    optional_string(&cx, http::header(which != 0, &name))
}

/// One path parameter by name, from the host, or null.
fn path_param<'js>(cx: Ctx<'js>, seq: u32, name: String) -> Result<Value<'js>> {
    require_call(&cx, seq, "the request")?;
    optional_string(&cx, http::path_param(&name))
}

fn optional_string<'js>(cx: &Ctx<'js>, s: Option<std::string::String>) -> Result<Value<'js>> {
    match s {
        Some(s) => Ok(javy::quickjs::String::from_str(cx.clone(), &s)?.into_value()),
        None => Ok(Value::new_null(cx.clone())),
    }
}

/// A change to the client's response headers from a hook before the response exists: `code`
/// 1 set, 2 append, 3 remove (as the prelude's edit lists).
fn client_header<'js>(cx: Ctx<'js>, seq: u32, code: u32, name: String, value: String) -> Result<()> {
    require_call(&cx, seq, "ctx.response()")?;
    let edit = match code {
        1 => HeaderEdit::Set((name, value)),
        2 => HeaderEdit::Append((name, value)),
        _ => HeaderEdit::Remove(name),
    };
    http::client_header_edit(&edit).map_err(|e| host_error(&cx, e))
}

fn request_body<'js>(cx: Ctx<'js>, seq: u32) -> Result<TypedArray<'js, u8>> {
    require_call(&cx, seq, "the request body")?;
    let b = http::request_body().map_err(|e| host_error(&cx, e))?;
    bytes(&cx, b)
}

fn set_request_body<'js>(cx: Ctx<'js>, seq: u32, body: TypedArray<'js, u8>) -> Result<()> {
    require_call(&cx, seq, "the request body")?;
    http::set_request_body(input(&cx, &body)?).map_err(|e| host_error(&cx, e))
}

fn response_body<'js>(cx: Ctx<'js>, seq: u32) -> Result<TypedArray<'js, u8>> {
    require_call(&cx, seq, "the response body")?;
    let b = http::response_body().map_err(|e| host_error(&cx, e))?;
    bytes(&cx, b)
}

fn set_response_body<'js>(cx: Ctx<'js>, seq: u32, body: TypedArray<'js, u8>) -> Result<()> {
    require_call(&cx, seq, "the response body")?;
    http::set_response_body(input(&cx, &body)?).map_err(|e| host_error(&cx, e))
}

/// A response body given as a string, sent as UTF-8 (what `TextEncoder` would make of it,
/// without building the byte array in JS).
fn set_response_text(cx: Ctx<'_>, seq: u32, body: String) -> Result<()> {
    require_call(&cx, seq, "the response body")?;
    http::set_response_body(body.as_bytes()).map_err(|e| host_error(&cx, e))
}

fn fetch<'js>(
    cx: Ctx<'js>,
    method: String,
    url: String,
    headers: Array<'js>,
    body: Opt<Option<TypedArray<'js, u8>>>,
) -> Result<Object<'js>> {
    require_live(&cx, "fetch")?;
    let body = match body.0.flatten().as_ref() {
        Some(b) => Some(input(&cx, b)?.to_vec()),
        None => None,
    };
    let req = http::FetchRequest {
        method,
        url,
        headers: pairs_from_js(headers)?,
        body,
    };
    let res = http::fetch(&req).map_err(|e| host_error(&cx, e))?;
    let o = Object::new(cx.clone())?;
    o.set("status", res.status)?;
    o.set("headers", pairs_to_js(&cx, &res.headers)?)?;
    o.set("body", bytes(&cx, res.body)?)?;
    Ok(o)
}

fn doc_get<'js>(cx: Ctx<'js>, collection: String, id: String) -> Result<Value<'js>> {
    require_live(&cx, "documents")?;
    match documents::get(&collection, &id).map_err(|e| host_error(&cx, e))? {
        Some(d) => Ok(document_to_js(&cx, d)?.into_value()),
        None => Ok(Value::new_undefined(cx.clone())),
    }
}

fn doc_set<'js>(cx: Ctx<'js>, collection: String, id: String, data: String) -> Result<()> {
    require_live(&cx, "documents")?;
    documents::set(&collection, &id, &data).map_err(|e| host_error(&cx, e))
}

fn doc_delete<'js>(cx: Ctx<'js>, collection: String, id: String) -> Result<bool> {
    require_live(&cx, "documents")?;
    documents::delete(&collection, &id).map_err(|e| host_error(&cx, e))
}

fn doc_list<'js>(cx: Ctx<'js>, collection: String, limit: u32, offset: u32) -> Result<Array<'js>> {
    require_live(&cx, "documents")?;
    let docs = documents::list(&collection, limit, offset).map_err(|e| host_error(&cx, e))?;
    let list = Array::new(cx.clone())?;
    for (i, d) in docs.into_iter().enumerate() {
        list.set(i, document_to_js(&cx, d)?)?;
    }
    Ok(list)
}

fn col_get<'js>(cx: Ctx<'js>, name: String) -> Result<Value<'js>> {
    require_live(&cx, "collections")?;
    match documents::get_collection(&name).map_err(|e| host_error(&cx, e))? {
        Some(json) => Ok(javy::quickjs::String::from_str(cx.clone(), &json)?.into_value()),
        None => Ok(Value::new_undefined(cx.clone())),
    }
}

fn col_set(cx: Ctx<'_>, json: String) -> Result<()> {
    require_live(&cx, "collections")?;
    documents::set_collection(&json).map_err(|e| host_error(&cx, e))
}

fn col_delete(cx: Ctx<'_>, name: String) -> Result<bool> {
    require_live(&cx, "collections")?;
    documents::delete_collection(&name).map_err(|e| host_error(&cx, e))
}

fn cache_get<'js>(cx: Ctx<'js>, key: String) -> Result<Value<'js>> {
    require_live(&cx, "the cache")?;
    match cache::get(&key) {
        Some(b) => Ok(bytes(&cx, b)?.into_value()),
        None => Ok(Value::new_undefined(cx.clone())),
    }
}

fn cache_set<'js>(
    cx: Ctx<'js>,
    key: String,
    value: TypedArray<'js, u8>,
    ttl_ms: Opt<Option<f64>>,
) -> Result<()> {
    require_live(&cx, "the cache")?;
    let ttl = ttl_ms
        .0
        .flatten()
        .filter(|t| t.is_finite() && *t >= 0.0)
        .map(|t| t as u64);
    cache::set(&key, input(&cx, &value)?, ttl);
    Ok(())
}

fn cache_delete<'js>(cx: Ctx<'js>, key: String) -> Result<()> {
    require_live(&cx, "the cache")?;
    cache::delete(&key);
    Ok(())
}

fn unknown_hash(cx: &Ctx<'_>, alg: &str) -> javy::quickjs::Error {
    throw(
        cx,
        "invalid",
        &format!(
            "unknown hash {alg:?}: use md5, sha1, sha256, sha384, sha512, sha512_224 or sha512_256"
        ),
    )
}

fn js_digest<'js>(
    cx: Ctx<'js>,
    alg: String,
    data: TypedArray<'js, u8>,
) -> Result<TypedArray<'js, u8>> {
    let out = digest(&alg.to_ascii_lowercase(), input(&cx, &data)?)
        .ok_or_else(|| unknown_hash(&cx, &alg))?;
    bytes(&cx, out)
}

fn js_hmac<'js>(
    cx: Ctx<'js>,
    alg: String,
    key: TypedArray<'js, u8>,
    data: TypedArray<'js, u8>,
) -> Result<TypedArray<'js, u8>> {
    let out = hmac(
        &alg.to_ascii_lowercase(),
        input(&cx, &key)?,
        input(&cx, &data)?,
    )
    .ok_or_else(|| unknown_hash(&cx, &alg))?;
    bytes(&cx, out)
}

/// DGate's `sleep`: waits on the host, within the call's time limit.
fn sleep(cx: Ctx<'_>, ms: f64) -> Result<()> {
    require_live(&cx, "sleep")?;
    if ms.is_finite() && ms > 0.0 {
        http::sleep(ms.min(f64::from(u32::MAX)) as u32);
    }
    Ok(())
}

fn random_bytes<'js>(cx: Ctx<'js>, len: u32) -> Result<TypedArray<'js, u8>> {
    if len > 65536 {
        return Err(throw(&cx, "invalid", "randomBytes: at most 65536 bytes"));
    }
    let mut b = vec![0u8; len as usize];
    getrandom::fill(&mut b).map_err(|e| throw(&cx, "failed", &e.to_string()))?;
    bytes(&cx, b)
}

pub fn register(cx: &Ctx<'_>) -> Result<()> {
    let n = Object::new(cx.clone())?;
    n.set("log", Function::new(cx.clone(), log)?)?;
    n.set("keep", Function::new(cx.clone(), crate::keep)?)?;
    n.set("field", Function::new(cx.clone(), field)?)?;
    n.set("headers", Function::new(cx.clone(), headers)?)?;
    n.set("header", Function::new(cx.clone(), header)?)?;
    n.set("pathParam", Function::new(cx.clone(), path_param)?)?;
    n.set("requestBody", Function::new(cx.clone(), request_body)?)?;
    n.set(
        "setRequestBody",
        Function::new(cx.clone(), set_request_body)?,
    )?;
    n.set("responseBody", Function::new(cx.clone(), response_body)?)?;
    n.set(
        "setResponseBody",
        Function::new(cx.clone(), set_response_body)?,
    )?;
    n.set(
        "setResponseText",
        Function::new(cx.clone(), set_response_text)?,
    )?;
    n.set("fetch", Function::new(cx.clone(), fetch)?)?;
    n.set("docGet", Function::new(cx.clone(), doc_get)?)?;
    n.set("docSet", Function::new(cx.clone(), doc_set)?)?;
    n.set("docDelete", Function::new(cx.clone(), doc_delete)?)?;
    n.set("docList", Function::new(cx.clone(), doc_list)?)?;
    n.set("colGet", Function::new(cx.clone(), col_get)?)?;
    n.set("colSet", Function::new(cx.clone(), col_set)?)?;
    n.set("colDelete", Function::new(cx.clone(), col_delete)?)?;
    n.set("cacheGet", Function::new(cx.clone(), cache_get)?)?;
    n.set("cacheSet", Function::new(cx.clone(), cache_set)?)?;
    n.set("cacheDelete", Function::new(cx.clone(), cache_delete)?)?;
    n.set("digest", Function::new(cx.clone(), js_digest)?)?;
    n.set("hmac", Function::new(cx.clone(), js_hmac)?)?;
    n.set("randomBytes", Function::new(cx.clone(), random_bytes)?)?;
    n.set("sleep", Function::new(cx.clone(), sleep)?)?;
    n.set("clientHeader", Function::new(cx.clone(), client_header)?)?;
    cx.globals().set("__dgate_native", n)?;
    Ok(())
}
