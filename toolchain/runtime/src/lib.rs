//! The JS runtime guest of dgate modules: QuickJS (through the `javy` crate) behind the
//! `dgate:module` WIT world.
//!
//! `dgate build` runs [`initialize`] once under wizer with the module's JS on stdin: it evaluates
//! the JS API prelude, the built-in modules and the user's module, and keeps the module's hooks.
//! The snapshot of that memory is the module; each hook call then only builds a context object,
//! calls the hook and drives the job queue until its promise settles.

mod call;
mod errors;
mod init;
mod layout;
mod natives;
mod reuse;

use javy::Runtime;
use javy::quickjs::{Array, Ctx, qjs};

wit_bindgen::generate!({
    path: "../../wit",
    world: "dgate-module",
});

use dgate::module::types::{
    HeaderEdit, Hook, HookError, RequestChanges, ResponseChanges, ThrownError,
};
use exports::dgate::module::hooks::Guest;

use call::*;
use errors::*;
use reuse::*;

/// What initialization leaves behind for the hook calls.
struct State {
    runtime: Runtime,
    defined: Vec<Hook>,
    /// The prelude's function that runs one hook call (with the module's hooks bound in) and
    /// the one that ends it (see `__dgate_install`), and the module's hooks by number
    /// (undefined where not defined). Called through the C API: they live as long as the
    /// instance, which never frees them.
    run: qjs::JSValue,
    finish: qjs::JSValue,
    hooks: [qjs::JSValue; 5],
    /// The names of the properties [`run_reused`] writes and reads.
    atoms: Atoms,
}
thread_local! {
    /// What initialization leaves behind: set once by [`initialize`], then only read. A
    /// wasm32-wasip1 module has one thread, so this is one static, kept by wizer's snapshot.
    static STATE: std::cell::OnceCell<&'static State> = const { std::cell::OnceCell::new() };
    /// True while the hooks run, false under wizer (where host imports must not be called).
    static LIVE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn state() -> &'static State {
    STATE.with(|s| *s.get().expect("the module was not initialized"))
}

pub(crate) fn live() -> bool {
    LIVE.with(std::cell::Cell::get)
}

const HOOKS: [(Hook, &str); 5] = [
    (Hook::FetchUpstream, "fetchUpstream"),
    (Hook::RequestModifier, "requestModifier"),
    (Hook::ResponseModifier, "responseModifier"),
    (Hook::ErrorHandler, "errorHandler"),
    (Hook::RequestHandler, "requestHandler"),
];

/// The JS API prelude, evaluated in this order before the built-ins: the web APIs, then the
/// hooks' context objects.
const PRELUDE: [&str; 2] = [include_str!("../js/web.js"), include_str!("../js/hooks.js")];

const BUILTINS: [(&str, &str); 6] = [
    ("dgate/crypto", include_str!("../js/crypto.js")),
    ("dgate/state", include_str!("../js/state.js")),
    ("dgate/storage", include_str!("../js/storage.js")),
    ("dgate/http", include_str!("../js/http.js")),
    ("dgate/util", include_str!("../js/util.js")),
    ("dgate", include_str!("../js/dgate.js")),
];

/// Pairs as one flat JS array: `[name, value, name, value, ...]`.
pub(crate) fn pairs_to_js<'js>(
    cx: &Ctx<'js>,
    pairs: &[(String, String)],
) -> javy::quickjs::Result<Array<'js>> {
    let list = Array::new(cx.clone())?;
    for (i, (k, v)) in pairs.iter().enumerate() {
        list.set(2 * i, k.as_str())?;
        list.set(2 * i + 1, v.as_str())?;
    }
    Ok(list)
}

/// The inverse of [`pairs_to_js`].
pub(crate) fn pairs_from_js(list: Array<'_>) -> javy::quickjs::Result<Vec<(String, String)>> {
    let n = list.len() / 2;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push((list.get(2 * i)?, list.get(2 * i + 1)?));
    }
    Ok(out)
}

struct Hooks;

impl Guest for Hooks {
    fn defined() -> Vec<Hook> {
        state().defined.clone()
    }

    fn fetch_upstream() -> Result<String, HookError> {
        run(Hook::FetchUpstream, 0, |_, o| o.full()?.get(1))
    }

    fn request_modifier() -> Result<RequestChanges, HookError> {
        run(Hook::RequestModifier, 0, |_, o| {
            Ok(match o {
                Outcome::Unchanged => RequestChanges {
                    method: None,
                    uri: None,
                    headers: Vec::new(),
                },
                Outcome::Edits(list) => RequestChanges {
                    method: None,
                    uri: None,
                    headers: edits_from_js(Some(list))?,
                },
                Outcome::Full(o) => RequestChanges {
                    method: o.get(1)?,
                    uri: o.get(2)?,
                    headers: edits_from_js(o.get(3)?)?,
                },
            })
        })
    }

    fn response_modifier(status: u16) -> Result<ResponseChanges, HookError> {
        run(Hook::ResponseModifier, status, |_, o| {
            read_response(status, o)
        })
    }

    fn error_handler(status: u16) -> Result<ResponseChanges, HookError> {
        run(Hook::ErrorHandler, status, |_, o| read_response(status, o))
    }

    fn request_handler() -> Result<ResponseChanges, HookError> {
        run(Hook::RequestHandler, 0, |_, o| read_response(200, o))
    }
}

export!(Hooks);
