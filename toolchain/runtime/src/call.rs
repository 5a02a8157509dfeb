//! One hook call: its sequence number, the call through the prelude (or [`run_reused`]), the
//! job queue driven until its promise settles, and the outcome read back as the WIT records.

use javy::quickjs::Value;

use super::*;

// The sequence number of the call in flight. The call's fields reach JS only when a hook reads
// them (`__dgate_native.field`, which asks the host), and only through the context objects of
// this call: a context kept past its call cannot read the next call's request.
thread_local! {
    static CURRENT: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
    static SEQ: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// True while the call `seq` is in flight.
pub(crate) fn is_current(seq: u32) -> bool {
    CURRENT.with(|c| c.get() == Some(seq))
}

/// The hooks in the order of the prelude's `HOOKS` table.
pub(crate) fn hook_index(hook: Hook) -> u32 {
    match hook {
        Hook::FetchUpstream => 0,
        Hook::RequestModifier => 1,
        Hook::ResponseModifier => 2,
        Hook::ErrorHandler => 3,
        Hook::RequestHandler => 4,
    }
}

/// What a hook call left for the runtime to read (the prelude's `run`).
pub(crate) enum Outcome<'js> {
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
    pub(crate) fn full(self) -> javy::quickjs::Result<Array<'js>> {
        match self {
            Outcome::Full(o) => Ok(o),
            _ => Err(javy::quickjs::Error::new_from_js("edits", "hook outcome")),
        }
    }
}

/// Runs one hook to completion and reads its outcome with `read`.
pub(crate) fn run<T>(
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
            // type checks) cost more than the call.
            // SAFETY: the functions are alive (see `State`), the objects too (see `reusable`),
            // the other arguments hold no references, and the result is owned by the `Value`
            // made of it.
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
pub(crate) fn edits_from_js(list: Option<Array<'_>>) -> javy::quickjs::Result<Vec<HeaderEdit>> {
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
        // SAFETY: as above; the value read is an int (no reference) or freed here.
        let code = unsafe {
            let code = qjs::JS_GetPropertyUint32(cx, list, 3 * i);
            if qjs::JS_VALUE_GET_TAG(code) == qjs::JS_TAG_INT {
                Some(qjs::JS_VALUE_GET_INT(code))
            } else {
                qjs::JS_FreeValue(cx, code);
                None
            }
        };
        let Some(code) = code else {
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
pub(crate) fn string_at(
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
pub(crate) fn not_a(expected: &'static str, what: &'static str) -> javy::quickjs::Error {
    javy::quickjs::Error::new_from_js(expected, what)
}

/// A response hook's outcome (`[invalid, status, edits]` in full); `status` is the one it was
/// called with.
pub(crate) fn read_response(status: u16, o: Outcome<'_>) -> javy::quickjs::Result<ResponseChanges> {
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
