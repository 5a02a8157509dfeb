//! Initialization under wizer: the build's input, the JS API prelude, the built-ins and the
//! module evaluated, its hooks kept in the [`State`] the snapshot carries.

use std::io::Read;

use javy::Config;
use javy::quickjs::{Function, Value};

use super::*;

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
            // The instance never ends before its state: it lives as long as the module.
            let state: &'static State = Box::leak(Box::new(state));
            STATE.with(|s| {
                if s.set(state).is_err() {
                    fail(name, "initialized twice");
                }
            });
            LIVE.with(|l| l.set(true));
        }
        Err(message) => fail(name, &message),
    }
}

/// The `name\nlength\ncode` records of the build's input.
pub(crate) fn parse_input(mut input: &str) -> Option<Vec<(&str, &str)>> {
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

pub(crate) fn fail(name: &str, message: &str) -> ! {
    if message.starts_with(name) {
        eprintln!("{message}");
    } else {
        eprintln!("{name}: {message}");
    }
    std::process::exit(1)
}

pub(crate) fn init(
    name: &str,
    source: &str,
    libraries: &[(&str, &str)],
    library: bool,
) -> Result<State, String> {
    let mut config = Config::default();
    config.text_encoding(true).javy_stream_io(false);
    let runtime = Runtime::new(config).map_err(|e| e.to_string())?;
    let state = runtime.context().with(|cx| -> Result<_, String> {
        layout::check(&cx)?;
        natives::register(&cx).map_err(|e| describe(&cx, e, name))?;
        for prelude in PRELUDE {
            // One file name for both: stack traces leave the runtime's own frames out by it.
            let mut options = javy::quickjs::context::EvalOptions::default();
            options.filename = Some("dgate:runtime".into());
            cx.eval_with_options::<(), _>(prelude, options)
                .map_err(|e| describe(&cx, e, "dgate:runtime"))?;
        }
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
