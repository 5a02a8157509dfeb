//! `dgate <kind> <create|get|list|delete> ...`

use reqwest::Method;
use serde_json::{Map, Value};

use super::client::{CliError, Client};
use super::{Action, Cli, ClusterAction, HistoryArgs, RollbackArgs, fields, output};
use crate::resources::Kind;

/// Runs one resource command against the admin API and prints the result.
pub async fn run(cli: &Cli, kind: Kind, action: &Action) -> Result<(), CliError> {
    let client = Client::new(cli)?;
    let map = fields::parse(kind, action.fields(), &|p| std::fs::read(p))?;
    let path = format!("/{kind}");
    match action {
        Action::Create(_) => {
            let data = client
                .send(Method::PUT, &path, &[], Some(&Value::Object(map)))
                .await?;
            output::print(kind, cli.output, data.as_ref());
        }
        Action::Get(get) => {
            let (name, query) = lookup_args(kind, map, true)?;
            let name = name.unwrap_or_default();
            if get.source && kind != Kind::Module {
                return Err(CliError::Usage("--source is for modules".into()));
            }
            let data = client
                .send(
                    Method::GET,
                    &format!("{path}/{}", encode(&name)),
                    &query,
                    None,
                )
                .await?;
            if get.source {
                print!("{}", module_source(&name, data.as_ref())?);
                return Ok(());
            }
            output::print(kind, cli.output, data.as_ref());
        }
        Action::List(_) => {
            // `payload=true`: module listings with their payloads.
            let mut map = map;
            let payload = map.remove("payload").map(as_string).transpose()?;
            let (_, mut query) = lookup_args(kind, map, false)?;
            if let Some(p) = payload {
                query.push(("payload", p));
            }
            let data = client.send(Method::GET, &path, &query, None).await?;
            output::print(kind, cli.output, data.as_ref());
        }
        Action::Delete(_) => {
            let (name, query) = lookup_args(kind, map, true)?;
            let mut body = Map::new();
            body.insert(
                fields::name_key(kind).to_string(),
                Value::String(name.unwrap_or_default()),
            );
            for (k, v) in query {
                body.insert(k.to_string(), Value::String(v));
            }
            client
                .send(Method::DELETE, &path, &[], Some(&Value::Object(body)))
                .await?;
            output::deleted(kind, cli.output);
        }
    }
    Ok(())
}

/// The name (or id) a command names, and its `namespace`/`collection` query pairs.
type Lookup = (Option<String>, Vec<(&'static str, String)>);

/// `dgate cluster status`.
pub async fn run_cluster(cli: &Cli, action: &ClusterAction) -> Result<(), CliError> {
    let client = Client::new(cli)?;
    let data = match action {
        ClusterAction::Status => client.send(Method::GET, "/cluster", &[], None).await?,
        ClusterAction::Join {
            name,
            address,
            watch_only,
        } => {
            let body =
                serde_json::json!({ "name": name, "address": address, "watch_only": watch_only });
            client
                .send(Method::POST, "/cluster/join", &[], Some(&body))
                .await?
        }
        ClusterAction::Promote { name } | ClusterAction::Leave { name } => {
            let path = match action {
                ClusterAction::Promote { .. } => "/cluster/promote",
                _ => "/cluster/leave",
            };
            let body = serde_json::json!({ "name": name });
            client.send(Method::POST, path, &[], Some(&body)).await?
        }
    };
    output::cluster(cli.output, data.as_ref());
    Ok(())
}

/// `dgate history <kind> NAME`: the kept versions, newest first.
pub async fn run_history(cli: &Cli, args: &HistoryArgs) -> Result<(), CliError> {
    let client = Client::new(cli)?;
    let (kind, name) = (args.of.kind.kind(), &args.of.name);
    let mut query = vec![("namespace", args.of.namespace.clone())];
    if args.payload {
        query.push(("payload", "true".into()));
    }
    let path = format!("/{kind}/{}/history", encode(name));
    let data = client.send(Method::GET, &path, &query, None).await?;
    output::history(kind, cli.output, data.as_ref());
    Ok(())
}

/// `dgate rollback <kind> NAME [--to N]`.
pub async fn run_rollback(cli: &Cli, args: &RollbackArgs) -> Result<(), CliError> {
    let client = Client::new(cli)?;
    let (kind, name) = (args.of.kind.kind(), &args.of.name);
    let mut query = vec![("namespace", args.of.namespace.clone())];
    if let Some(to) = args.to {
        query.push(("to", to.to_string()));
    }
    let path = format!("/{kind}/{}/rollback", encode(name));
    let data = client.send(Method::POST, &path, &query, None).await?;
    if cli.output == super::Output::Json {
        output::print(kind, cli.output, data.as_ref());
        return Ok(());
    }
    let field = |k: &str| {
        data.as_ref()
            .and_then(|d| d.get(k))
            .map_or_else(String::new, Value::to_string)
    };
    println!(
        "{kind} {name} restored to version {} (now version {})",
        field("restored"),
        field("version")
    );
    Ok(())
}

/// Splits get/list/delete fields into the name (or id) and the `namespace`/`collection` query.
fn lookup_args(
    kind: Kind,
    mut map: Map<String, Value>,
    needs_name: bool,
) -> Result<Lookup, CliError> {
    let name_key = fields::name_key(kind);
    let name = map.remove(name_key).map(as_string).transpose()?;
    if needs_name && name.as_deref().is_none_or(str::is_empty) {
        return Err(CliError::Usage(format!(
            "which {kind}? give its {name_key} (e.g. `dgate {kind} ... my-{kind}`)"
        )));
    }
    let mut query = Vec::new();
    for key in ["namespace", "collection"] {
        if let Some(v) = map.remove(key) {
            query.push((key, as_string(v)?));
        }
    }
    if let Some(extra) = map.keys().next() {
        return Err(CliError::Usage(format!(
            "unexpected field {extra:?}: this command takes only {name_key}, namespace and collection"
        )));
    }
    Ok((name, query))
}

fn as_string(v: Value) -> Result<String, CliError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(CliError::Usage(format!("expected a string, got {other}"))),
    }
}

/// Percent-encodes one path segment.
pub(super) fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// A module's source as the admin API shows the module: its JS/TS payload, or the files a
/// component was built from (each under a `// file:` line when there are several).
fn module_source(name: &str, module: Option<&Value>) -> Result<String, CliError> {
    use base64::Engine as _;
    let module =
        module.ok_or_else(|| CliError::Transport(format!("module {name}: empty answer")))?;
    let text = |v: &Value| v.as_str().map(str::to_string);
    if module["moduleType"] != "wasm" {
        let payload = text(&module["payload"]).unwrap_or_default();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(payload.split_whitespace().collect::<String>())
            .map_err(|e| CliError::Transport(format!("module {name}: payload: {e}")))?;
        return String::from_utf8(bytes)
            .map_err(|_| CliError::Transport(format!("module {name}: the payload is not text")));
    }
    let sources = module["sources"].as_object().filter(|s| !s.is_empty()).ok_or_else(|| {
        CliError::Failed(format!(
            "module {name} was uploaded as a component without its source (dgate deploy of a .ts/.js file keeps it)"
        ))
    })?;
    if sources.len() == 1 {
        return Ok(sources.values().next().and_then(text).unwrap_or_default());
    }
    let mut out = String::new();
    for (file, source) in sources {
        out.push_str(&format!(
            "// file: {file}\n{}",
            text(source).unwrap_or_default()
        ));
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}
