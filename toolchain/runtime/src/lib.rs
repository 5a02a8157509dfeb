//! The JS runtime guest of dgate modules: QuickJS (through the `javy` crate) behind the
//! `dgate:module` WIT world.
//!
//! `dgate build` runs [`initialize`] once under wizer with the module's JS on stdin: it evaluates
//! the JS API prelude, the built-in modules and the user's module, and keeps the module's hooks.
//! The snapshot of that memory is the module; each hook call then only builds a context object,
//! calls the hook and drives the job queue until its promise settles.

mod natives;

use std::io::Read;

use javy::quickjs::{Array, Ctx, Function, Object, Persistent, Value, qjs};
use javy::{Config, Runtime};

wit_bindgen::generate!({
    path: "../../wit",
    world: "dgate-module",
});

use dgate::module::types::{
    HeaderEdit, Hook, HookError, RequestChanges, ResponseChanges, ThrownError,
};
use exports::dgate::module::hooks::Guest;

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

/// Property names of the prelude's hook objects, made once.
struct Atoms {
    seq: qjs::JSAtom,
    ops: qjs::JSAtom,
    s: qjs::JSAtom,
    f: qjs::JSAtom,
    req: qjs::JSAtom,
    body: qjs::JSAtom,
    status_code: qjs::JSAtom,
    sent: qjs::JSAtom,
    headers: qjs::JSAtom,
}

impl Atoms {
    /// SAFETY: `cx` is a live context; the atoms are never freed (they live as long as the
    /// instance).
    unsafe fn new(cx: *mut qjs::JSContext) -> Atoms {
        let atom = |name: &std::ffi::CStr| unsafe { qjs::JS_NewAtom(cx, name.as_ptr()) };
        Atoms {
            seq: atom(c"_seq"),
            ops: atom(c"_ops"),
            s: atom(c"_s"),
            f: atom(c"_f"),
            req: atom(c"_req"),
            body: atom(c"_body"),
            status_code: atom(c"statusCode"),
            sent: atom(c"sent"),
            headers: atom(c"headers"),
        }
    }
}

static mut STATE: Option<State> = None;

/// True while the hooks run, false under wizer (where host imports must not be called).
static mut LIVE: bool = false;

fn state() -> &'static State {
    // SAFETY: wasm32-wasip1 modules are single-threaded, and STATE is written only by
    // `initialize`, before any hook can run.
    unsafe { (*std::ptr::addr_of!(STATE)).as_ref() }.expect("the module was not initialized")
}

pub(crate) fn live() -> bool {
    // SAFETY: single-threaded; see `state`.
    unsafe { *std::ptr::addr_of!(LIVE) }
}

const HOOKS: [(Hook, &str); 5] = [
    (Hook::FetchUpstream, "fetchUpstream"),
    (Hook::RequestModifier, "requestModifier"),
    (Hook::ResponseModifier, "responseModifier"),
    (Hook::ErrorHandler, "errorHandler"),
    (Hook::RequestHandler, "requestHandler"),
];

const BUILTINS: [(&str, &str); 5] = [
    ("dgate/crypto", include_str!("../js/crypto.js")),
    ("dgate/state", include_str!("../js/state.js")),
    ("dgate/storage", include_str!("../js/storage.js")),
    ("dgate/http", include_str!("../js/http.js")),
    ("dgate", include_str!("../js/dgate.js")),
];

/// Wizer's entry point. Stdin holds a line saying what is built (`module`: it must export a
/// hook; `library`: it may export none, for other modules to import), then `name\nbyte
/// length\ncode` records: the modules the module may import by name, then the module itself.
/// On failure it prints `file:line:col: message` to stderr and exits with 1.
#[unsafe(export_name = "wizer.initialize")]
pub extern "C" fn initialize() {
    let mut input = String::new();
    if std::io::stdin().read_to_string(&mut input).is_err() {
        fail("<stdin>", "stdin is not UTF-8 JavaScript");
    }
    let (kind, records) = input.split_once('\n').unwrap_or_default();
    let mut modules = parse_input(records).unwrap_or_else(|| fail("<stdin>", "malformed input"));
    let Some((name, source)) = modules.pop() else {
        fail("<stdin>", "no module on stdin")
    };
    match init(name, source, &modules, kind == "library") {
        Ok(state) => {
            // SAFETY: single-threaded; nothing else touches STATE during initialization.
            unsafe {
                STATE = Some(state);
                LIVE = true;
            }
        }
        Err(message) => fail(name, &message),
    }
}

/// The `name\nlength\ncode` records of the build's input.
fn parse_input(mut input: &str) -> Option<Vec<(&str, &str)>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (name, rest) = input.split_once('\n')?;
        let (len, rest) = rest.split_once('\n')?;
        let len: usize = len.parse().ok()?;
        let code = rest.get(..len)?;
        out.push((name, code));
        input = &rest[len..];
    }
    Some(out)
}

fn fail(name: &str, message: &str) -> ! {
    if message.starts_with(name) {
        eprintln!("{message}");
    } else {
        eprintln!("{name}: {message}");
    }
    std::process::exit(1)
}

fn init(
    name: &str,
    source: &str,
    libraries: &[(&str, &str)],
    library: bool,
) -> Result<State, String> {
    let mut config = Config::default();
    config.text_encoding(true).javy_stream_io(false);
    let runtime = Runtime::new(config).map_err(|e| e.to_string())?;
    let state = runtime.context().with(|cx| -> Result<_, String> {
        natives::register(&cx).map_err(|e| describe(&cx, e, name))?;
        let mut options = javy::quickjs::context::EvalOptions::default();
        options.filename = Some("dgate:runtime".into());
        cx.eval_with_options::<(), _>(include_str!("../js/prelude.js"), options)
            .map_err(|e| describe(&cx, e, "dgate:runtime"))?;
        for (builtin, code) in BUILTINS {
            javy::quickjs::Module::declare(cx.clone(), builtin, code)
                .map_err(|e| describe(&cx, e, builtin))?;
        }
        for (lib, code) in libraries {
            javy::quickjs::Module::declare(cx.clone(), *lib, *code)
                .map_err(|e| describe(&cx, e, lib))?;
        }
        let module = javy::quickjs::Module::declare(cx.clone(), name, source)
            .map_err(|e| describe(&cx, e, name))?;
        let (module, promise) = module.eval().map_err(|e| describe(&cx, e, name))?;
        // Top-level await: settle it now (a fetch here would trap: no host calls under wizer).
        promise.finish::<()>().map_err(|e| describe(&cx, e, name))?;
        let namespace = module.namespace().map_err(|e| describe(&cx, e, name))?;
        let raw = cx.as_raw().as_ptr();
        // SAFETY: one more reference to each, never released: the instance ends with the
        // module. Undefined holds no reference.
        let hold = |v: &Value| unsafe { qjs::JS_DupValue(raw, v.as_raw()) };
        let hooks = Array::new(cx.clone()).map_err(|e| describe(&cx, e, name))?;
        let mut hook_fns = [qjs::JS_UNDEFINED; 5];
        let mut defined = Vec::new();
        for (hook, js_name) in HOOKS {
            let value: Value = namespace.get(js_name).map_err(|e| describe(&cx, e, name))?;
            if value.is_undefined() {
                continue;
            }
            if !value.is_function() {
                return Err(format!("export {js_name} must be a function"));
            }
            let index = hook_index(hook) as usize;
            hook_fns[index] = hold(&value);
            hooks
                .set(index, value)
                .map_err(|e| describe(&cx, e, name))?;
            defined.push(hook);
        }
        if defined.is_empty() && !library {
            return Err(format!(
                "the module exports none of the hooks ({})",
                HOOKS.map(|(_, n)| n).join(", ")
            ));
        }
        let install: Function = cx
            .globals()
            .get("__dgate_install")
            .map_err(|e| describe(&cx, e, "dgate:runtime"))?;
        let fns: Array = install
            .call((hooks,))
            .map_err(|e| describe(&cx, e, "dgate:runtime"))?;
        let run: Function = fns.get(0).map_err(|e| describe(&cx, e, "dgate:runtime"))?;
        let finish: Function = fns.get(1).map_err(|e| describe(&cx, e, "dgate:runtime"))?;
        // javy never runs the cycle collector on its own (threshold usize::MAX), which suits a
        // one-shot program but not an instance the gateway reuses: collect cycles once the heap
        // passes 8 MiB (reference counting frees everything else at once).
        // SAFETY: the context pointer is valid inside `with`, and the runtime outlives it.
        unsafe {
            let rt = qjs::JS_GetRuntime(cx.as_raw().as_ptr());
            qjs::JS_SetGCThreshold(rt, 8 << 20);
        }
        // SAFETY: the context is live inside `with`.
        let atoms = unsafe { Atoms::new(raw) };
        Ok((defined, hold(&run), hold(&finish), hook_fns, atoms))
    })?;
    let (defined, run, finish, hooks, atoms) = state;
    Ok(State {
        runtime,
        defined,
        run,
        finish,
        hooks,
        atoms,
    })
}

/// A JS error as `file:line:col: message` when its stack names a place in `file`.
fn describe(cx: &Ctx<'_>, e: javy::quickjs::Error, file: &str) -> String {
    let thrown = thrown(cx, e);
    match thrown.stack.as_deref().and_then(|s| place(s, file)) {
        Some(at) => format!("{at}: {}", thrown.message),
        None => thrown.message,
    }
}

/// The first `file:line:col` in a QuickJS stack trace that is in `file`.
fn place(stack: &str, file: &str) -> Option<String> {
    let at = stack.find(&format!("{file}:"))?;
    let rest = &stack[at..];
    let end = rest.find([')', '\n']).unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

/// The pending exception (or the error itself) as a message and a stack.
fn thrown(cx: &Ctx<'_>, e: javy::quickjs::Error) -> ThrownError {
    if !e.is_exception() {
        return ThrownError {
            message: e.to_string(),
            stack: None,
        };
    }
    let value = cx.catch();
    if let Some(ex) = value.as_exception() {
        return ThrownError {
            message: ex.message().unwrap_or_else(|| "error".into()),
            stack: ex
                .stack()
                .map(|s| user_frames(&s))
                .filter(|s| !s.is_empty()),
        };
    }
    if let Some(obj) = value.as_object() {
        let message: Option<String> = obj.get("message").ok();
        if let Some(message) = message {
            return ThrownError {
                message,
                stack: obj.get("stack").ok(),
            };
        }
    }
    let message = cx
        .json_stringify(value)
        .ok()
        .flatten()
        .and_then(|s| s.to_string().ok())
        .unwrap_or_else(|| "a value that is not an Error".into());
    ThrownError {
        message: format!("threw {message}"),
        stack: None,
    }
}

/// A stack trace without the runtime's own frames.
fn user_frames(stack: &str) -> String {
    stack
        .lines()
        .filter(|l| !l.contains("dgate:runtime"))
        .collect::<Vec<_>>()
        .join("\n")
}

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

// The sequence number of the call in flight. The call's fields reach JS only when a hook reads
// them (`__dgate_native.field`, which asks the host), and only through the context objects of
// this call: a context kept past its call cannot read the next call's request.
thread_local! {
    static CURRENT: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
    static SEQ: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// What the runtime watches of one hook's reused objects (the prelude's `fresh`): its context,
/// the object the context hands out (request, upstream response or response) and that object's
/// headers.
struct Kept {
    /// Keeps the objects alive while their pointers are read.
    _objects: [Persistent<Object<'static>>; 3],
    /// Where QuickJS keeps each object, to read its reference count and weak references.
    raw: [*const u8; 3],
}

/// The byte offset of `first_weak_ref` in QuickJS's `JSObject` on wasm32 (after the 16-byte
/// GC header, `shape` and `prop`); the reference count is the header's first field. The tests
/// of object reuse (a `WeakMap` keyed by a context) fail if a QuickJS update moves it.
const FIRST_WEAK_REF: usize = 24;
const _: () = assert!(
    cfg!(not(target_arch = "wasm32")) || std::mem::size_of::<usize>() == 4,
    "FIRST_WEAK_REF is the wasm32 layout"
);

impl Kept {
    /// True when nothing holds the objects but the runtime, the prelude's slot and their links
    /// (the context holds the inner object, which holds the headers), and no weak reference (a
    /// `WeakMap` key, a `WeakRef`, a `FinalizationRegistry` target) points at them: the next
    /// call can renew them without anything from an earlier call seeing its request.
    fn unshared(&self) -> bool {
        const HOLDERS: [i32; 3] = [2, 3, 3];
        self.raw.iter().zip(HOLDERS).all(|(&p, holders)| {
            // SAFETY: each pointer is a live JSObject, kept alive by `_objects`; QuickJS does
            // not move objects, and no JS runs while the runtime reads them.
            unsafe {
                p.cast::<i32>().read() == holders
                    && p.add(FIRST_WEAK_REF).cast::<*const u8>().read().is_null()
            }
        })
    }
}

thread_local! {
    static KEPT: std::cell::RefCell<[Option<Kept>; 5]> = const {
        std::cell::RefCell::new([None, None, None, None, None])
    };
}

/// `keep(hook, ctx, inner, headers)` (the prelude takes it off `__dgate_native`): the prelude
/// made new objects for `hook`.
pub(crate) fn keep<'js>(
    cx: Ctx<'js>,
    hook: u32,
    ctx: Object<'js>,
    inner: Object<'js>,
    headers: Object<'js>,
) {
    let slot = hook as usize;
    if slot >= 5 {
        return;
    }
    let objects = [ctx, inner, headers];
    // SAFETY: JS_VALUE_GET_PTR of an object value is its JSObject.
    let raw = objects
        .each_ref()
        .map(|o| unsafe { qjs::JS_VALUE_GET_PTR(o.as_raw()) as *const u8 });
    let objects = objects.map(|o| Persistent::save(&cx, o));
    KEPT.with(|k| {
        k.borrow_mut()[slot] = Some(Kept {
            _objects: objects,
            raw,
        })
    });
}

/// The hook's objects from its last call (context, inner object, headers) when they may be
/// renewed for the next.
fn reusable(hook: u32) -> Option<[qjs::JSValue; 3]> {
    KEPT.with(|k| {
        k.borrow()[hook as usize]
            .as_ref()
            .filter(|k| k.unshared())
            .map(|k| {
                k.raw
                    .map(|p| qjs::JS_MKPTR(qjs::JS_TAG_OBJECT, p.cast_mut().cast()))
            })
    })
}

/// A JS number.
fn number(n: u64) -> qjs::JSValue {
    match i32::try_from(n) {
        Ok(i) => qjs::JS_MKVAL(qjs::JS_TAG_INT, i),
        Err(_) => qjs::JS_NewFloat64(n as f64),
    }
}

/// True when `v` is the number `n` (JS's `===`).
fn equals_number(v: qjs::JSValue, n: u16) -> bool {
    // SAFETY: reading a value's tag and payload.
    unsafe {
        match qjs::JS_VALUE_GET_NORM_TAG(v) {
            qjs::JS_TAG_INT => qjs::JS_VALUE_GET_INT(v) == i32::from(n),
            qjs::JS_TAG_FLOAT64 => qjs::JS_VALUE_GET_FLOAT64(v) == f64::from(n),
            _ => false,
        }
    }
}

/// A hook call on the hook's reused objects `[ctx, inner, h]`, as the prelude's `run` makes it
/// (the same writes, then the hook, then `finish`), without the interpreter running `run`: it
/// was most of the bytecode a small hook call executed. Returns the outcome (owned; an
/// exception value when the hook threw), or `None` when the objects cannot be renewed in place
/// (a hook made a field read-only or replaced a response's headers): `run` makes new ones then.
///
/// SAFETY: `cx` is the live context the objects belong to, and `objects` are alive (held by
/// `KEPT`).
unsafe fn run_reused(
    cx: *mut qjs::JSContext,
    state: &State,
    hook: u32,
    seq: u32,
    status: u16,
    objects: [qjs::JSValue; 3],
) -> Option<qjs::JSValue> {
    let [ctx, inner, h] = objects;
    let a = &state.atoms;
    // SAFETY (all blocks below): values of `cx`; `JS_SetProperty` takes the value it writes,
    // every value read is freed once, and `objects` stay alive through the hook call.
    let set = |obj, atom, v| unsafe { qjs::JS_SetProperty(cx, obj, atom, v) } == 1;
    let get = |obj, atom| unsafe { qjs::JS_GetProperty(cx, obj, atom) };
    let free = |v| unsafe { qjs::JS_FreeValue(cx, v) };
    let seq_value = number(seq.into());
    let renewed = set(ctx, a.seq, seq_value)
        && set(inner, a.seq, seq_value)
        && set(h, a.ops, qjs::JS_NULL)
        && match hook {
            0 | 1 => set(inner, a.s, qjs::JS_UNDEFINED) && set(h, a.f, number(2 * u64::from(seq))),
            2 => {
                set(ctx, a.req, qjs::JS_UNDEFINED)
                    && set(inner, a.status_code, number(status.into()))
                    && set(inner, a.body, qjs::JS_UNDEFINED)
                    && set(h, a.f, number(2 * u64::from(seq) + 1))
            }
            4 => {
                let headers = get(inner, a.headers);
                let same = headers == h;
                free(headers);
                same && set(ctx, a.req, qjs::JS_UNDEFINED)
                    && set(inner, a.status_code, number(200))
                    && set(inner, a.sent, qjs::JS_FALSE)
                    && {
                        let list = unsafe { qjs::JS_NewArray(cx) };
                        !unsafe { qjs::JS_IsException(list) } && set(h, a.f, list)
                    }
            }
            _ => false,
        };
    if !renewed {
        // A write to a field made read-only throws: forget it, `run` makes new objects.
        free(unsafe { qjs::JS_GetException(cx) });
        return None;
    }
    let mut args = [ctx, inner];
    let argc = if hook == 2 { 2 } else { 1 };
    let result = unsafe {
        qjs::JS_Call(
            cx,
            state.hooks[hook as usize],
            qjs::JS_UNDEFINED,
            argc,
            args.as_mut_ptr(),
        )
    };
    if unsafe { qjs::JS_IsException(result) } {
        return Some(result);
    }
    // `finish`'s usual outcomes, checked here first.
    if unsafe { qjs::JS_IsUndefined(result) } && (hook == 1 || hook == 2) {
        let usual = if hook == 1 {
            let s = get(inner, a.s);
            let unset = unsafe { qjs::JS_IsUndefined(s) };
            free(s);
            unset
        } else {
            let code = get(inner, a.status_code);
            let kept = equals_number(code, status);
            free(code);
            kept
        };
        if usual {
            let ops = get(h, a.ops);
            if unsafe { qjs::JS_IsNull(ops) } {
                return Some(qjs::JS_UNDEFINED);
            }
            if ops != qjs::JS_FALSE {
                return Some(ops);
            }
        }
    }
    let mut args = [
        number(hook.into()),
        ctx,
        inner,
        h,
        number(status.into()),
        result,
    ];
    let out = unsafe { qjs::JS_Call(cx, state.finish, qjs::JS_UNDEFINED, 6, args.as_mut_ptr()) };
    free(result);
    Some(out)
}

/// True while the call `seq` is in flight.
pub(crate) fn is_current(seq: u32) -> bool {
    CURRENT.with(|c| c.get() == Some(seq))
}

/// The hooks in the order of the prelude's `HOOKS` table.
fn hook_index(hook: Hook) -> u32 {
    match hook {
        Hook::FetchUpstream => 0,
        Hook::RequestModifier => 1,
        Hook::ResponseModifier => 2,
        Hook::ErrorHandler => 3,
        Hook::RequestHandler => 4,
    }
}

/// What a hook call left for the runtime to read (the prelude's `run`).
enum Outcome<'js> {
    /// A requestModifier or responseModifier that changed nothing.
    Unchanged,
    /// One that changed only headers: its edit list, `[code, name, value, ...]`.
    Edits(Array<'js>),
    /// Anything else: an array whose first element is a reason the result is unusable, when it
    /// is, then the hook's fields (see the readers).
    Full(Array<'js>),
}

impl<'js> Outcome<'js> {
    /// The outcome of a hook that always leaves a full one.
    fn full(self) -> javy::quickjs::Result<Array<'js>> {
        match self {
            Outcome::Full(o) => Ok(o),
            _ => Err(javy::quickjs::Error::new_from_js("edits", "hook outcome")),
        }
    }
}

/// Runs one hook to completion and reads its outcome with `read`.
fn run<T>(
    hook: Hook,
    status: u16,
    read: impl for<'js> FnOnce(&Ctx<'js>, Outcome<'js>) -> javy::quickjs::Result<T>,
) -> Result<T, HookError> {
    let state = state();
    if !state.defined.contains(&hook) {
        return Err(HookError::NotDefined);
    }
    let seq = SEQ.with(|s| {
        let next = s.get().wrapping_add(1);
        s.set(next);
        next
    });
    CURRENT.with(|c| c.set(Some(seq)));
    let out = state.runtime.context().with(|cx| {
        let invalid = |e| HookError::InvalidResult(thrown(&cx, e).message);
        let attempt = || -> javy::quickjs::Result<Option<Value>> {
            let index = hook_index(hook);
            let objects = reusable(index);
            // Through the C API: rquickjs's `Function::call` (argument list, conversions,
            // type checks) cost more than the call. SAFETY: the functions are alive (see
            // `State`), the objects too (see `reusable`), the other arguments hold no
            // references, and the result is owned by the `Value` made of it.
            let out = unsafe {
                let cx_raw = cx.as_raw().as_ptr();
                let reused = match objects {
                    Some(objects) if hook != Hook::ErrorHandler => {
                        run_reused(cx_raw, state, index, seq, status, objects)
                    }
                    _ => None,
                };
                let out = reused.unwrap_or_else(|| {
                    let renew = objects.is_some() && hook == Hook::ErrorHandler;
                    let mut args = [
                        number(index.into()),
                        number(seq.into()),
                        number(status.into()),
                        if renew { qjs::JS_TRUE } else { qjs::JS_FALSE },
                    ];
                    qjs::JS_Call(cx_raw, state.run, qjs::JS_UNDEFINED, 4, args.as_mut_ptr())
                });
                if qjs::JS_IsException(out) {
                    return Err(javy::quickjs::Error::Exception);
                }
                Value::from_raw(cx.clone(), out)
            };
            let out = match out.as_promise() {
                Some(p) => match p.finish::<Value>() {
                    Ok(v) => v,
                    Err(javy::quickjs::Error::WouldBlock) => return Ok(None),
                    Err(e) => return Err(e),
                },
                None => out,
            };
            Ok(Some(out))
        };
        match attempt() {
            Ok(Some(out)) => {
                let outcome = || -> javy::quickjs::Result<Result<Outcome, String>> {
                    if out.is_undefined() {
                        return Ok(Ok(Outcome::Unchanged));
                    }
                    let Some(list) = out.into_array() else {
                        return Ok(Err("the hook's outcome is not a list".into()));
                    };
                    let first: Value = list.get(0)?;
                    if first.is_number() {
                        Ok(Ok(Outcome::Edits(list)))
                    } else if let Some(why) = first.as_string() {
                        Ok(Err(why.to_string()?))
                    } else {
                        Ok(Ok(Outcome::Full(list)))
                    }
                };
                match outcome().map_err(invalid)? {
                    Ok(outcome) => read(&cx, outcome).map_err(invalid),
                    Err(why) => Err(HookError::InvalidResult(why)),
                }
            }
            Ok(None) => Err(HookError::Unsettled),
            Err(e) => Err(HookError::Thrown(thrown(&cx, e))),
        }
    });
    CURRENT.with(|c| c.set(None));
    out
}

/// Header edits from the prelude's flat `[code, name, value, ...]` list (0 clear, 1 set,
/// 2 append, 3 remove). Read through the C API, as `run` is called: each rquickjs `get` made and
/// dropped a value handle and converted it with type checks, more work than the read.
fn edits_from_js(list: Option<Array<'_>>) -> javy::quickjs::Result<Vec<HeaderEdit>> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let cx = list.ctx().as_raw().as_ptr();
    let list = list.as_raw();
    let mut len = 0i64;
    // SAFETY: `list` is a live array of the context `cx`; every value read is freed below.
    if unsafe { qjs::JS_GetLength(cx, list, &mut len) } < 0 {
        return Err(javy::quickjs::Error::Exception);
    }
    let n = u32::try_from(len / 3).unwrap_or(0);
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        // SAFETY: as above.
        let code = unsafe { qjs::JS_GetPropertyUint32(cx, list, 3 * i) };
        let code = if unsafe { qjs::JS_VALUE_GET_TAG(code) } == qjs::JS_TAG_INT {
            unsafe { qjs::JS_VALUE_GET_INT(code) }
        } else {
            unsafe { qjs::JS_FreeValue(cx, code) };
            return Err(not_a("number", "header edit"));
        };
        let name = string_at(cx, list, 3 * i + 1)?;
        out.push(match code {
            0 => HeaderEdit::Clear,
            1 => HeaderEdit::Set((name, string_at(cx, list, 3 * i + 2)?)),
            2 => HeaderEdit::Append((name, string_at(cx, list, 3 * i + 2)?)),
            _ => HeaderEdit::Remove(name),
        });
    }
    Ok(out)
}

/// `list[index]` as a string (`String(value)`: the prelude records a hook's first header edit
/// as it was made).
fn string_at(
    cx: *mut qjs::JSContext,
    list: qjs::JSValue,
    index: u32,
) -> javy::quickjs::Result<String> {
    // SAFETY: `list` is a live value of `cx`; the value read is freed, and the C string is
    // copied before it is freed.
    unsafe {
        let value = qjs::JS_GetPropertyUint32(cx, list, index);
        let mut len = 0;
        let ptr = qjs::JS_ToCStringLen2(cx, &mut len, value, false);
        qjs::JS_FreeValue(cx, value);
        if ptr.is_null() {
            return Err(javy::quickjs::Error::Exception);
        }
        let text = std::str::from_utf8(std::slice::from_raw_parts(ptr.cast::<u8>(), len as usize))
            .map(str::to_owned);
        qjs::JS_FreeCString(cx, ptr);
        Ok(text?)
    }
}

/// The error for a list element of the wrong type.
fn not_a(expected: &'static str, what: &'static str) -> javy::quickjs::Error {
    javy::quickjs::Error::new_from_js(expected, what)
}

/// A response hook's outcome (`[invalid, status, edits]` in full); `status` is the one it was
/// called with.
fn read_response(status: u16, o: Outcome<'_>) -> javy::quickjs::Result<ResponseChanges> {
    Ok(match o {
        Outcome::Unchanged => ResponseChanges {
            status,
            headers: Vec::new(),
        },
        Outcome::Edits(list) => ResponseChanges {
            status,
            headers: edits_from_js(Some(list))?,
        },
        Outcome::Full(o) => ResponseChanges {
            status: o.get(1)?,
            headers: edits_from_js(o.get(2)?)?,
        },
    })
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
