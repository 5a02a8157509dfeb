//! JS errors as the host sees them: a message with the place in the user's file, and the stack
//! without the runtime's own frames.

use super::*;

/// A JS error as `file:line:col: message` when its stack names a place in `file`.
pub(crate) fn describe(cx: &Ctx<'_>, e: javy::quickjs::Error, file: &str) -> String {
    let thrown = thrown(cx, e);
    match thrown.stack.as_deref().and_then(|s| place(s, file)) {
        Some(at) => format!("{at}: {}", thrown.message),
        None => thrown.message,
    }
}

/// The first `file:line:col` in a QuickJS stack trace that is in `file`.
pub(crate) fn place(stack: &str, file: &str) -> Option<String> {
    let at = stack.find(&format!("{file}:"))?;
    let rest = &stack[at..];
    let end = rest.find([')', '\n']).unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

/// The pending exception (or the error itself) as a message and a stack.
pub(crate) fn thrown(cx: &Ctx<'_>, e: javy::quickjs::Error) -> ThrownError {
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
pub(crate) fn user_frames(stack: &str) -> String {
    stack
        .lines()
        .filter(|l| !l.contains("dgate:runtime"))
        .collect::<Vec<_>>()
        .join("\n")
}
