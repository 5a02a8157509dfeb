//! Module cases as data: each folder under `tests/modules/` is one hook call through
//! `dgate module run`, the same path a module author uses.
//!
//! - `module.ts` or `module.js`: the module (a link to an SDK example is fine).
//! - `request.json`: `{"hook": "requestModifier", ...}` plus the fixtures `module run` takes, by
//!   flag name: `request`, `response`, `context`, `error`, `documents`; `args`, a list of more
//!   flags (`["--timeout", "5s"]`).
//! - `expect.json`: `{"output": ...}` — what the run prints must contain it (objects by key,
//!   arrays element by element in any order, strings exactly or, written `"re:..."`, by regular
//!   expression) — or `{"exit": N, "stderr": "..."}` for a run that must fail with that text.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::helpers::BIN;

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/modules")
}

/// Whether `actual` contains `expected` (see the module docs); on a mismatch, where.
fn contains(actual: &Value, expected: &Value, at: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let av = a.get(k).ok_or_else(|| format!("{at}.{k}: missing"))?;
                contains(av, ev, &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) => {
            for (i, ev) in e.iter().enumerate() {
                if !a.iter().any(|av| contains(av, ev, at).is_ok()) {
                    return Err(format!("{at}[{i}]: no element matches {ev} in {actual}"));
                }
            }
            Ok(())
        }
        (Value::String(e), Value::String(a)) if e.starts_with("re:") => {
            let re = regex::Regex::new(&e[3..]).map_err(|err| format!("{at}: {err}"))?;
            if re.is_match(a) {
                Ok(())
            } else {
                Err(format!("{at}: {a:?} does not match {e:?}"))
            }
        }
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{at}: expected {e}, got {a}")),
    }
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs one case; the reason it failed, if it did.
fn run_case(dir: &Path, scratch: &Path) -> Result<(), String> {
    let module = ["module.ts", "module.js"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
        .ok_or("no module.ts or module.js")?;
    let request = read_json(&dir.join("request.json"));
    let expect = read_json(&dir.join("expect.json"));
    let hook = request["hook"].as_str().ok_or("request.json has no hook")?;
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let mut cmd = Command::new(BIN);
    cmd.args(["module", "run"])
        .arg(&module)
        .args(["--hook", hook])
        .env("XDG_CACHE_HOME", scratch)
        .stdin(Stdio::null());
    for flag in ["request", "response", "context", "error", "documents"] {
        if let Some(v) = request.get(flag) {
            let file = scratch.join(format!("{name}-{flag}.json"));
            std::fs::write(&file, v.to_string()).map_err(|e| e.to_string())?;
            cmd.arg(format!("--{flag}")).arg(file);
        }
    }
    if let Some(args) = request.get("args") {
        let args = args.as_array().ok_or("request.json: args must be a list")?;
        for a in args {
            cmd.arg(a.as_str().ok_or("request.json: args must be strings")?);
        }
    }
    let out = cmd.output().map_err(|e| format!("cannot run dgate: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want_exit = expect.get("exit").and_then(Value::as_i64).unwrap_or(0);
    if i64::from(out.status.code().unwrap_or(-1)) != want_exit {
        return Err(format!(
            "exit {:?}, expected {want_exit}; stderr: {stderr}",
            out.status.code()
        ));
    }
    if let Some(text) = expect.get("stderr").and_then(Value::as_str)
        && !stderr.contains(text)
    {
        return Err(format!("stderr lacks {text:?}: {stderr}"));
    }
    if let Some(output) = expect.get("output") {
        let actual: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("stdout is not JSON ({e}); stderr: {stderr}"))?;
        contains(&actual, output, "output")?;
    }
    Ok(())
}

#[test]
fn every_module_case_gives_its_expected_result() {
    let scratch = tempfile::tempdir().unwrap();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("tests/modules")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no module cases");
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|dir| {
            run_case(dir, scratch.path())
                .err()
                .map(|e| format!("{}: {e}", dir.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}

#[test]
fn the_matcher_tells_a_mismatch() {
    let actual = serde_json::json!({"a": [["x", "1"], ["y", "2"]], "b": "abc"});
    assert!(contains(&actual, &serde_json::json!({"a": [["y", "2"]]}), "o").is_ok());
    assert!(contains(&actual, &serde_json::json!({"b": "re:^a.c$"}), "o").is_ok());
    assert!(contains(&actual, &serde_json::json!({"a": [["y", "3"]]}), "o").is_err());
    assert!(contains(&actual, &serde_json::json!({"c": 1}), "o").is_err());
    assert!(contains(&actual, &serde_json::json!({"b": "re:^x"}), "o").is_err());
}
