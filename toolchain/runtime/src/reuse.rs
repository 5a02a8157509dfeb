//! Reusing a hook's context objects from one call to the next, when nothing kept them: the
//! atoms of the properties renewed, the objects watched ([`Kept`]), and a hook call made on them
//! from Rust ([`run_reused`]).

use javy::quickjs::{Object, Persistent};

use super::*;

/// Property names of the prelude's hook objects, made once.
pub(crate) struct Atoms {
    seq: qjs::JSAtom,
    ops: qjs::JSAtom,
    s: qjs::JSAtom,
    m: qjs::JSAtom,
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
    pub(crate) unsafe fn new(cx: *mut qjs::JSContext) -> Atoms {
        // SAFETY: the caller's promise that `cx` is live; `name` is a C string.
        let atom = |name: &std::ffi::CStr| unsafe { qjs::JS_NewAtom(cx, name.as_ptr()) };
        Atoms {
            seq: atom(c"_seq"),
            ops: atom(c"_ops"),
            s: atom(c"_s"),
            m: atom(c"_m"),
            f: atom(c"_f"),
            req: atom(c"_req"),
            body: atom(c"_body"),
            status_code: atom(c"statusCode"),
            sent: atom(c"sent"),
            headers: atom(c"headers"),
        }
    }
}

/// What the runtime watches of one hook's reused objects (the prelude's `fresh`): its context,
/// the object the context hands out (request, upstream response or response) and that object's
/// headers.
pub(crate) struct Kept {
    /// Keeps the objects alive while their pointers are read.
    _objects: [Persistent<Object<'static>>; 3],
    /// Where QuickJS keeps each object, to read its reference count and weak references.
    raw: [*const u8; 3],
}

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
            unsafe { layout::ref_count(p) == holders && !layout::has_weak_refs(p) }
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
    let raw = objects.each_ref().map(layout::object_ptr);
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
pub(crate) fn reusable(hook: u32) -> Option<[qjs::JSValue; 3]> {
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
pub(crate) fn number(n: u64) -> qjs::JSValue {
    match i32::try_from(n) {
        Ok(i) => qjs::JS_MKVAL(qjs::JS_TAG_INT, i),
        Err(_) => qjs::JS_NewFloat64(n as f64),
    }
}

/// True when `v` is the number `n` (JS's `===`).
pub(crate) fn equals_number(v: qjs::JSValue, n: u16) -> bool {
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
pub(crate) unsafe fn run_reused(
    cx: *mut qjs::JSContext,
    state: &State,
    hook: u32,
    seq: u32,
    status: u16,
    objects: [qjs::JSValue; 3],
) -> Option<qjs::JSValue> {
    let [ctx, inner, h] = objects;
    let a = &state.atoms;
    // SAFETY: `obj` is one of `objects`, values of the live `cx` (the caller's promise);
    // `JS_SetProperty` takes the reference of the value it writes.
    let set = |obj, atom, v| unsafe { qjs::JS_SetProperty(cx, obj, atom, v) } == 1;
    // SAFETY: as for `set`; the value read is owned by the caller, who frees it once.
    let get = |obj, atom| unsafe { qjs::JS_GetProperty(cx, obj, atom) };
    // SAFETY: `v` is an owned value of `cx`, freed exactly once.
    let free = |v| unsafe { qjs::JS_FreeValue(cx, v) };
    // SAFETY: a tag check reads the value only.
    let is_exception = |v| unsafe { qjs::JS_IsException(v) };
    let seq_value = number(seq.into());
    let renewed = set(ctx, a.seq, seq_value)
        && set(inner, a.seq, seq_value)
        && set(h, a.ops, qjs::JS_NULL)
        && match hook {
            0 | 1 => {
                set(inner, a.s, qjs::JS_UNDEFINED)
                    && set(inner, a.m, qjs::JS_UNDEFINED)
                    && set(h, a.f, number(2 * u64::from(seq)))
            }
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
                        // SAFETY: a new array of the live `cx`; `set` takes its reference.
                        let list = unsafe { qjs::JS_NewArray(cx) };
                        !is_exception(list) && set(h, a.f, list)
                    }
            }
            _ => false,
        };
    if !renewed {
        // A write to a field made read-only throws: forget it, `run` makes new objects.
        // SAFETY: the pending exception of the live `cx`, owned here and freed once.
        free(unsafe { qjs::JS_GetException(cx) });
        return None;
    }
    let mut args = [ctx, inner];
    let argc = if hook == 2 { 2 } else { 1 };
    // SAFETY: the hook is a function of `cx` held for the instance's life (see `State`); the
    // arguments are borrowed for the call, which returns an owned value.
    let result = unsafe {
        qjs::JS_Call(
            cx,
            state.hooks[hook as usize],
            qjs::JS_UNDEFINED,
            argc,
            args.as_mut_ptr(),
        )
    };
    if is_exception(result) {
        return Some(result);
    }
    // SAFETY: a tag check reads the value only.
    let is_undefined = |v| unsafe { qjs::JS_IsUndefined(v) };
    // `finish`'s usual outcomes, checked here first.
    if is_undefined(result) && (hook == 1 || hook == 2) {
        let usual = if hook == 1 {
            let s = get(inner, a.s);
            let unset = is_undefined(s);
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
            // SAFETY: a tag check reads the value only.
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
    // SAFETY: `finish` is held for the instance's life (see `State`); the arguments are borrowed
    // for the call, and `result`, which `run_reused` owns, is freed after it.
    let out = unsafe { qjs::JS_Call(cx, state.finish, qjs::JS_UNDEFINED, 6, args.as_mut_ptr()) };
    free(result);
    Some(out)
}
