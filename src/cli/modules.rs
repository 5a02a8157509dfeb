//! `dgate build` (local) and `dgate deploy` (build, then upload to a gateway). `dgate module run`
//! is in `run.rs`.

use std::path::Path;

use serde_json::{Value, json};

use super::client::CliError;
use super::{BuildArgs, BuildTarget, Cli, DeployArgs};
use crate::build::{self, BuildError};

pub(super) fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))
}

pub(super) fn build_error(e: BuildError) -> CliError {
    match e {
        BuildError::Read { .. } => CliError::Usage(e.to_string()),
        other => CliError::Failed(other.to_string()),
    }
}

pub(super) fn is_source(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("ts" | "mts" | "js" | "mjs")
    )
}

/// A module file built as `dgate deploy` and `dgate apply` build it (its warnings printed): the
/// component, and the project's own files it was built from, by module id (the path from the
/// module's directory; packages from node_modules are left out).
pub(super) fn build_project(
    path: &Path,
    source: &str,
) -> (
    Result<Vec<u8>, BuildError>,
    std::collections::BTreeMap<String, String>,
) {
    let file = path.display().to_string();
    let entry = path
        .file_name()
        .map_or(file.clone(), |n| n.to_string_lossy().into_owned());
    let read = std::sync::Mutex::new(std::collections::BTreeMap::from([(
        entry,
        source.to_string(),
    )]));
    let resolve = build::project(path);
    let recording = |from: &str, spec: &str| {
        let found = resolve(from, spec)?;
        if let Some(f) = found.as_ref().filter(|f| !f.id.contains("node_modules/")) {
            read.lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(f.id.clone(), f.source.clone());
        }
        Ok(found)
    };
    let mut steps = build::Steps::default();
    let built = build::build_resolving(&file, source, &recording, false, &mut steps);
    steps.warnings.iter().for_each(|w| eprintln!("{w}"));
    (built, read.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// `dgate build FILE [-o OUT] [--target js] [--check] [--quiet]`.
pub fn build(args: &BuildArgs) -> Result<(), CliError> {
    if !is_source(&args.file) {
        return Err(CliError::Usage(format!(
            "{}: dgate builds .ts, .mts, .js or .mjs files",
            args.file.display()
        )));
    }
    let source = read(&args.file)?;
    let file = args.file.display().to_string();
    let resolve = build::project(&args.file);
    if args.check {
        type_check(&args.file, args.quiet)?;
    }
    if args.target == BuildTarget::Js {
        let name = args
            .file
            .file_name()
            .map_or(file.clone(), |n| n.to_string_lossy().into_owned());
        let js = build::to_js_resolving(&file, &name, &source, &resolve).map_err(build_error)?;
        build::hook_warnings(&file, &js)
            .iter()
            .for_each(|w| eprintln!("{w}"));
        print!("{}", js.code);
        return Ok(());
    }
    let started = std::time::Instant::now();
    let mut steps = build::Steps::default();
    let built = build::build_resolving(&file, &source, &resolve, false, &mut steps);
    steps.warnings.iter().for_each(|w| eprintln!("{w}"));
    let component = built.map_err(build_error)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.file.with_extension("wasm"));
    std::fs::write(&out, &component)
        .map_err(|e| CliError::Failed(format!("cannot write {}: {e}", out.display())))?;
    if !args.quiet {
        eprintln!(
            "wrote {} ({} bytes) in {} ms: {}",
            out.display(),
            component.len(),
            started.elapsed().as_millis(),
            describe_steps(&steps)
        );
    }
    Ok(())
}

/// `parse 12 ms, bundle 3 ms (2 modules), snapshot 410 ms, encode 96 ms`.
fn describe_steps(steps: &build::Steps) -> String {
    let ms = |d: std::time::Duration| d.as_millis();
    let modules = match steps.modules {
        0 => String::new(),
        1 => " (1 module)".into(),
        n => format!(" ({n} modules)"),
    };
    format!(
        "parse {} ms, bundle {} ms{modules}, snapshot {} ms, encode {} ms",
        ms(steps.parse),
        ms(steps.bundle),
        ms(steps.snapshot),
        ms(steps.encode)
    )
}

/// `--check`: the project's own TypeScript (`node_modules/.bin/tsc` at or above the module)
/// checks it, with the project's tsconfig.json when there is one.
fn type_check(file: &Path, quiet: bool) -> Result<(), CliError> {
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tsc = dir
        .ancestors()
        .map(|d| d.join("node_modules/.bin/tsc"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            CliError::Usage(
                "--check needs TypeScript in the project: npm install --save-dev typescript".into(),
            )
        })?;
    let mut cmd = std::process::Command::new(&tsc);
    cmd.arg("--noEmit");
    match dir
        .ancestors()
        .map(|d| d.join("tsconfig.json"))
        .find(|p| p.is_file())
    {
        Some(config) => cmd.arg("-p").arg(config),
        None => cmd.arg(file),
    };
    let started = std::time::Instant::now();
    let out = cmd
        .output()
        .map_err(|e| CliError::Failed(format!("cannot run {}: {e}", tsc.display())))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
        return Err(CliError::Failed(format!("type check failed:\n{text}")));
    }
    if !quiet {
        eprintln!("type check passed in {} ms", started.elapsed().as_millis());
    }
    Ok(())
}

/// `dgate deploy FILE [--namespace NS] [--name N] [--route R]`.
pub async fn deploy(cli: &Cli, args: &DeployArgs) -> Result<(), CliError> {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use reqwest::Method;

    let name = match &args.name {
        Some(n) => n.clone(),
        None => args
            .file
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
            .ok_or_else(|| {
                CliError::Usage(format!("{}: give the module a --name", args.file.display()))
            })?,
    };
    let started = std::time::Instant::now();
    // The files a source module was built from go with it, so it can be read back.
    let mut sources = std::collections::BTreeMap::new();
    let component = if is_source(&args.file) {
        let source = read(&args.file)?;
        let path = args.file.clone();
        let (built, read) = tokio::task::spawn_blocking(move || build_project(&path, &source))
            .await
            .map_err(|e| CliError::Failed(format!("build: {e}")))?;
        sources.extend(read);
        built.map_err(build_error)?
    } else {
        std::fs::read(&args.file)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", args.file.display())))?
    };
    let client = super::client::Client::new(cli)?;
    let mut limits = serde_json::Map::new();
    if let Some(f) = args.fuel {
        limits.insert("fuel".into(), json!(f));
    }
    if let Some(m) = &args.memory {
        limits.insert("memory".into(), json!(m));
    }
    if let Some(t) = &args.timeout {
        limits.insert("timeout".into(), json!(t));
    }
    if let Some(n) = args.max_fetches {
        limits.insert("maxFetches".into(), json!(n));
    }
    let mut module = json!({
        "name": name,
        "namespace": args.namespace,
        "payload": BASE64.encode(&component),
        "moduleType": "wasm",
    });
    if !limits.is_empty() {
        module["limits"] = Value::Object(limits);
    }
    if !sources.is_empty() {
        module["sources"] = json!(sources);
    }
    let built = started.elapsed();
    // The route as it will be: read before anything is uploaded, so a missing route or a
    // route that runs another module leaves nothing behind.
    let route = match &args.route {
        None => None,
        Some(route) => {
            let query = [("namespace", args.namespace.clone())];
            let current = client
                .send(Method::GET, &format!("/route/{route}"), &query, None)
                .await?
                .ok_or_else(|| CliError::Transport(format!("route {route}: empty answer")))?;
            Some((route, attach(route, current, &name, args.replace)?))
        }
    };
    let uploading = std::time::Instant::now();
    let attached = match &route {
        Some((_, Some(changed))) => {
            // The module and the route in one replicated change: both or neither.
            module["kind"] = json!("module");
            let mut changed = changed.clone();
            changed["kind"] = json!("route");
            client
                .send(Method::PUT, "/batch", &[], Some(&json!([module, changed])))
                .await?;
            true
        }
        _ => {
            client
                .send(Method::PUT, "/module", &[], Some(&module))
                .await?;
            false
        }
    };
    eprintln!(
        "deployed module {name} in namespace {} ({} bytes): built in {} ms, uploaded and compiled in {} ms",
        args.namespace,
        component.len(),
        built.as_millis(),
        uploading.elapsed().as_millis()
    );
    if let Some((route, _)) = &route {
        let how = if attached { "now runs" } else { "already runs" };
        eprintln!("route {route} {how} module {name}");
    }
    if args.wait.0 > 0 {
        let hash = crate::modules::content_hash(&component);
        report_ready(&client, &name, &args.namespace, &hash, args.wait).await;
    }
    Ok(())
}

/// How long each node of the cluster took to have version `hash` of the module compiled and
/// ready (counted from now, the end of the upload), waiting up to `wait` for each (`dgate
/// deploy --wait`). Only says what it sees: a node it cannot ask is named with the reason.
async fn report_ready(
    client: &super::client::Client,
    name: &str,
    namespace: &str,
    hash: &str,
    wait: crate::units::Millis,
) {
    use reqwest::Method;
    let since = std::time::Instant::now();
    let status = client.send(Method::GET, "/cluster", &[], None).await;
    let status = status.ok().flatten().unwrap_or(Value::Null);
    let me = status["node"].as_str().unwrap_or_default().to_string();
    let mut nodes: Vec<(String, super::client::Client)> = status["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let node = m["name"].as_str()?.to_string();
            // The node the CLI talks to, at the address the CLI uses for it.
            let at = if node == me {
                client.at(client.base())
            } else {
                client.at(m["address"].as_str()?)
            };
            Some((node, at))
        })
        .collect();
    if nodes.is_empty() {
        nodes.push((me, client.at(client.base())));
    }
    let path = format!("/module/{}/status", super::resource::encode(name));
    let query = [("namespace", namespace.to_string())];
    let mut waits = tokio::task::JoinSet::new();
    for (i, (node, at)) in nodes.into_iter().enumerate() {
        let (path, query, hash) = (path.clone(), query.clone(), hash.to_string());
        waits.spawn(async move {
            let deadline = since + wait.as_duration();
            let mut last: String;
            let said = loop {
                match at.send(Method::GET, &path, &query, None).await {
                    Ok(Some(s)) if s["hash"] == hash.as_str() && s["ready"] == true => {
                        break format!("{node} {} ms", since.elapsed().as_millis());
                    }
                    Ok(Some(s)) if s["hash"] == hash.as_str() && s["error"].is_string() => {
                        let why = s["error"].as_str().unwrap_or_default();
                        break format!("{node} cannot load it: {why}");
                    }
                    Ok(_) => last = "not ready".into(),
                    Err(e) => last = e.to_string(),
                }
                if std::time::Instant::now() >= deadline {
                    break format!("{node} {last} after {wait}");
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            };
            (i, said)
        });
    }
    let mut said: Vec<(usize, String)> = waits.join_all().await;
    said.sort();
    let said: Vec<String> = said.into_iter().map(|(_, s)| s).collect();
    eprintln!("ready on each node: {}", said.join(", "));
}

/// `route` (as the admin API shows it) with `name` as the module it runs, or `None` when it
/// already does. Only a route's first module runs; the others are libraries it may import.
/// A route that runs another module is refused unless `replace`.
fn attach(
    route: &str,
    mut current: Value,
    name: &str,
    replace: bool,
) -> Result<Option<Value>, CliError> {
    let fields = current
        .as_object_mut()
        .ok_or_else(|| CliError::Transport(format!("route {route}: not an object")))?;
    let modules: Vec<String> = match fields.get("modules") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|m| m.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                CliError::Transport(format!("route {route}: modules is not a list of names"))
            })?,
        Some(_) => {
            return Err(CliError::Transport(format!(
                "route {route}: modules is not a list"
            )));
        }
    };
    match modules.first() {
        Some(first) if first == name => return Ok(None),
        Some(first) if !replace => {
            return Err(CliError::Failed(format!(
                "route {route} runs module {first:?} (only a route's first module runs): \
                 --replace makes {name:?} the one it runs; nothing was deployed"
            )));
        }
        _ => {}
    }
    let rest = modules.iter().skip(1).filter(|m| *m != name);
    let list: Vec<Value> = std::iter::once(name)
        .chain(rest.map(String::as_str))
        .map(|m| json!(m))
        .collect();
    fields.insert("modules".into(), Value::Array(list));
    Ok(Some(current))
}
