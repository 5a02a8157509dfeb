//! The one place that reads QuickJS's private object layout: an object's reference count and
//! whether any weak reference (a `WeakMap` key, a `WeakRef`, a `FinalizationRegistry` target)
//! points at it. Offsets are those of the QuickJS in `rquickjs-sys`, whose version Cargo.toml
//! pins, built for wasm32.
//!
//! [`check`] is the guard: every build runs it at initialization, before any module is
//! evaluated, and refuses to build if the layout is not what these offsets say. A QuickJS update
//! that moves a field fails every `dgate build` at once instead of reusing objects that are
//! still referenced.

use javy::quickjs::{Ctx, Function, Object, Value, qjs};

/// The byte offset of `first_weak_ref` in `JSObject` on wasm32: after the 16-byte GC header,
/// `shape` and `prop`.
const FIRST_WEAK_REF: usize = 24;
const _: () = assert!(
    cfg!(not(target_arch = "wasm32")) || std::mem::size_of::<usize>() == 4,
    "FIRST_WEAK_REF is the wasm32 layout"
);

/// Where QuickJS keeps an object value.
pub(crate) fn object_ptr(o: &Object<'_>) -> *const u8 {
    // SAFETY: JS_VALUE_GET_PTR of an object value is its JSObject; reading it reads the value's
    // payload only.
    unsafe { qjs::JS_VALUE_GET_PTR(o.as_raw()) as *const u8 }
}

/// The object's reference count: the first field of the GC header.
///
/// SAFETY: `p` points at a live `JSObject` and no JS runs meanwhile.
pub(crate) unsafe fn ref_count(p: *const u8) -> i32 {
    // SAFETY: the caller's promise; the header starts the object and is 4-byte aligned.
    unsafe { p.cast::<i32>().read() }
}

/// Whether any weak reference points at the object.
///
/// SAFETY: `p` points at a live `JSObject` and no JS runs meanwhile.
pub(crate) unsafe fn has_weak_refs(p: *const u8) -> bool {
    // SAFETY: the caller's promise; `first_weak_ref` is a pointer-aligned field inside the
    // object at FIRST_WEAK_REF.
    unsafe { !p.add(FIRST_WEAK_REF).cast::<*const u8>().read().is_null() }
}

/// Checks the offsets against this QuickJS: a new object held once reads a count of 1 and no
/// weak reference; once it is a `WeakMap` key, it reads a weak reference and still a count of 1.
pub(crate) fn check(cx: &Ctx<'_>) -> Result<(), String> {
    let changed = |what: &str| {
        Err(format!(
            "QuickJS's object layout is not what toolchain/runtime/src/layout.rs reads ({what}): update its offsets"
        ))
    };
    let object = Object::new(cx.clone()).map_err(|e| e.to_string())?;
    let p = object_ptr(&object);
    // SAFETY: `object` keeps the object alive, and no JS runs while it is read.
    let (count, weak) = unsafe { (ref_count(p), has_weak_refs(p)) };
    if count != 1 || weak {
        return changed("a new object");
    }
    let key: Function = cx
        .eval("(o) => { const m = new WeakMap(); m.set(o, 1); return m; }")
        .map_err(|e| e.to_string())?;
    let map: Value = key.call((object.clone(),)).map_err(|e| e.to_string())?;
    // SAFETY: as above; `map` keeps the weak reference alive.
    let (count, weak) = unsafe { (ref_count(p), has_weak_refs(p)) };
    drop(map);
    if count != 1 || !weak {
        return changed("a WeakMap key");
    }
    Ok(())
}
