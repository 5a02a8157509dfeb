//! The `dgate` command line: `server`, `completions`, and one command group per resource kind that
//! talks to a running gateway's admin API over HTTP.

mod apply;
mod client;
mod fields;
mod modules;
mod new;
mod output;
mod resource;
mod run;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::resources::Kind;

pub use apply::{apply, check_file, diff, export};
pub use client::CliError;
pub use modules::{build, deploy};
pub use new::new_project;
pub use resource::{run as run_resource, run_cluster, run_history, run_rollback};
pub use run::run_module;

#[derive(Debug, Parser)]
#[command(
    name = "dgate",
    version,
    // `-V` is dgate-cli's --verbose; the version stays at --version.
    disable_version_flag = true,
    about = "A distributed API gateway programmed with sandboxed JS/TS modules",
    long_about = "A distributed API gateway programmed with sandboxed JS/TS modules.\n\n\
        With no command, runs the server on the defaults (like `dgate server`)."
)]
pub struct Cli {
    /// Admin API of the gateway the resource commands talk to.
    #[arg(
        long,
        global = true,
        env = "DGATE_ADMIN_API",
        default_value = "http://127.0.0.1:9080"
    )]
    pub admin: String,
    /// Credentials: `user:password` for basic auth, anything else is sent as the API key.
    #[arg(
        long,
        short = 'a',
        global = true,
        env = "DGATE_ADMIN_AUTH",
        hide_env_values = true
    )]
    pub auth: Option<String>,
    /// Header that carries an API key given with --auth.
    #[arg(
        long,
        global = true,
        env = "DGATE_ADMIN_AUTH_HEADER",
        default_value = "X-DGate-Key"
    )]
    pub auth_header: String,
    /// A PEM CA certificate to trust for an https:// admin URL (besides the system's roots).
    #[arg(long, global = true, env = "DGATE_ADMIN_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Do not verify the admin API's certificate (https://): encrypted, not authenticated.
    #[arg(long, global = true, env = "DGATE_ADMIN_INSECURE")]
    pub insecure: bool,
    /// A PEM client certificate to show an admin API that requires one (admin.tls.client_ca_file).
    #[arg(
        long,
        global = true,
        env = "DGATE_ADMIN_CLIENT_CERT",
        value_name = "FILE",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,
    /// The PEM private key of --client-cert.
    #[arg(
        long,
        global = true,
        env = "DGATE_ADMIN_CLIENT_KEY",
        value_name = "FILE",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,
    /// How resource commands print what the server returns.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Print each admin API request and its status on stderr.
    #[arg(long, short = 'V', global = true)]
    pub verbose: bool,
    /// Follow redirects, as dgate-cli's `-f` asks. Always on: any node takes a write and
    /// forwards it to the leader, so only a proxy in front of the admin API redirects.
    #[arg(long, short = 'f', global = true)]
    pub follow: bool,
    /// Print the version.
    #[arg(long, action = clap::ArgAction::Version)]
    version: Option<bool>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `dgate build ... -o OUT` names the output file and `dgate apply -f FILE` the resource file,
/// while everywhere else `-o` is the global `--output` format and `-f` dgate-cli's `--follow`.
/// Rewrites them after that *command* (the first word that is neither a flag nor a global
/// flag's value) to `--out` / `--file` before clap sees them; `dgate svc get build -o json`
/// keeps its `-o`.
pub fn normalize_args(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    /// Global flags that take a value as the next word.
    const VALUED: [&str; 6] = ["--admin", "-a", "--auth", "--auth-header", "-o", "--output"];
    let mut out: Vec<std::ffi::OsString> = args.into_iter().collect();
    let mut i = 1;
    while i < out.len() {
        let word = out[i].to_string_lossy();
        if VALUED.contains(&word.as_ref()) {
            i += 2;
        } else if word.starts_with('-') {
            i += 1;
        } else {
            break;
        }
    }
    // The command's own short flags that a global one has too: build's `-o` (the output file),
    // apply's and diff's `-f` (the file; dgate-cli's global `-f` is a no-op).
    let own: &[(&str, &str)] = match out.get(i).map(|w| w.to_string_lossy()) {
        Some(w) if w == "build" => &[("-o", "--out")],
        Some(w) if w == "apply" || w == "diff" || w == "check" => &[("-f", "--file")],
        _ => &[],
    };
    for a in out.iter_mut().skip(i + 1) {
        if let Some((_, long)) = own.iter().find(|(short, _)| a == short) {
            *a = long.into();
        }
    }
    out
}

/// The command line with each resource kind's fields in its `create` help (`dgate svc create
/// --help`): what parsing, the man page and completions use.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    for kind in Kind::ALL {
        // Each kind's command group is named as its API path segment.
        cmd = cmd.mut_subcommand(kind.as_str(), |g| {
            g.mut_subcommand("create", |c| c.after_help(fields::help(kind)))
        });
    }
    // The client flags are global (`dgate --admin URL svc list` and `dgate svc list --admin
    // URL` both work). Commands that talk to no gateway neither show nor take them: clap does
    // not give a command a global flag it has an argument of the same id for, so each gets a
    // hidden one that refuses a value.
    for name in LOCAL_COMMANDS {
        cmd = cmd.mut_subcommand(name, |mut c| {
            for (id, long, short) in CLIENT_FLAGS {
                let taken = c.get_arguments().any(|a| {
                    a.get_long() == Some(long) || short.is_some() && a.get_short() == short
                });
                if !taken {
                    c = c.arg(not_here(id, long, short));
                }
            }
            c
        });
    }
    cmd
}

/// Commands that run here without a gateway.
const LOCAL_COMMANDS: [&str; 7] = [
    "server",
    "check",
    "man",
    "completions",
    "new",
    "build",
    "schema",
];
/// The global flags only commands that talk to a gateway use: id, long, short.
const CLIENT_FLAGS: [(&str, &str, Option<char>); 10] = [
    ("admin", "admin", None),
    ("ca", "ca", None),
    ("insecure", "insecure", None),
    ("client_cert", "client-cert", None),
    ("client_key", "client-key", None),
    ("auth", "auth", Some('a')),
    ("auth_header", "auth-header", None),
    ("output", "output", Some('o')),
    ("verbose", "verbose", Some('V')),
    ("follow", "follow", Some('f')),
];

/// A hidden `--long` that a command refuses: it talks to no gateway.
fn not_here(id: &'static str, long: &'static str, short: Option<char>) -> clap::Arg {
    let refuse = move |_: &str| -> Result<bool, String> {
        Err(format!(
            "--{long} is for the commands that talk to a gateway's admin API"
        ))
    };
    let arg = clap::Arg::new(id)
        .long(long)
        .hide(true)
        .num_args(0..=1)
        .default_missing_value("")
        .value_parser(refuse);
    match short {
        Some(c) => arg.short(c),
        None => arg,
    }
}

/// Parses the process's arguments (see [`normalize_args`] and [`command`]).
pub fn parse() -> Cli {
    use clap::FromArgMatches as _;
    let matches = command().get_matches_from(normalize_args(std::env::args_os()));
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// The admin API (OpenAPI 3.1).
    Openapi,
    /// The server config file, dgate.yaml (JSON Schema 2020-12).
    Config,
}

/// What `dgate schema` prints.
pub fn schema(what: SchemaKind) -> serde_json::Value {
    match what {
        SchemaKind::Openapi => crate::admin::openapi_document(),
        SchemaKind::Config => crate::resources::schema_of::<crate::config::Config>(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Json,
    Table,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway: the proxy and the admin API in one process (the default command).
    Server(ServerArgs),
    /// Make the gateway hold what a resource file lists (the format of init_resources): what is
    /// created or updated is written as one replicated change (--prune's deletes follow, one
    /// by one); prints what was created, updated, deleted.
    Apply(ApplyArgs),
    /// What `apply` would change, written nowhere.
    Diff(ApplyArgs),
    /// The gateway's resources in the file format `apply` reads (YAML; `-o json` for JSON).
    Export(ExportArgs),
    /// Check a server config without starting anything: the same errors as at startup (exit 2),
    /// TLS files and init_resources read too.
    /// With `--file`: check a resource file as `dgate apply` reads it (modules built), without
    /// a gateway.
    Check {
        /// The YAML config file.
        #[arg(
            long,
            short = 'c',
            env = "DGATE_CONFIG",
            required_unless_present = "file"
        )]
        config: Option<PathBuf>,
        /// A resource file (the format of `dgate apply`).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Print the man page (roff): `dgate man > dgate.1`.
    Man,
    /// Print a machine-readable description: the admin API's OpenAPI 3.1 document (also served
    /// at /api/v1/openapi.json) or the JSON Schema of dgate.yaml (for an editor's completion).
    Schema {
        #[arg(value_enum)]
        what: SchemaKind,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    #[command(visible_alias = "ns", about = "Manage namespaces")]
    Namespace(ResourceCommand),
    #[command(visible_alias = "svc", about = "Manage services (upstreams)")]
    Service(ResourceCommand),
    #[command(visible_alias = "rt", about = "Manage routes")]
    Route(ResourceCommand),
    /// Start a module project: package.json with the SDK, tsconfig, mod.ts, fixtures and an
    /// `npm test` that builds and runs the module.
    New(NewArgs),
    /// Build a TypeScript or JavaScript module into a WebAssembly component.
    Build(BuildArgs),
    /// Put a module live on a running gateway: build it (.ts/.js), upload it, optionally attach
    /// it to a route.
    Deploy(DeployArgs),
    #[command(
        visible_alias = "mod",
        about = "Manage modules, or run one hook of a module locally"
    )]
    Module(ModuleCommand),
    #[command(visible_alias = "dom", about = "Manage domains")]
    Domain(ResourceCommand),
    #[command(visible_alias = "col", about = "Manage collections")]
    Collection(ResourceCommand),
    #[command(visible_alias = "doc", about = "Manage documents")]
    Document(ResourceCommand),
    #[command(visible_alias = "sec", about = "Manage secrets")]
    Secret(ResourceCommand),
    /// Builds one module for a running gateway (a JSON request on stdin, the component on
    /// stdout): the server runs its builds in this child process.
    #[command(name = "__build", hide = true)]
    BuildWorker,
    /// Compiles one component for a running gateway (`MAX_INSTANCES MAX_MEMORY`, the component
    /// on stdin, the compiled code on stdout).
    #[command(name = "__compile", hide = true)]
    CompileWorker { args: Vec<String> },
    /// The kept versions of a module or route, newest first (`storage.history` of them).
    History(HistoryArgs),
    /// Write an earlier version of a module or route again: by default the one before the
    /// current one (after a delete, the deleted one). The rollback is itself a new version.
    Rollback(RollbackArgs),
    /// Inspect the Raft cluster the gateway belongs to.
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterAction {
    /// The leader, the members and their roles, and this node's applied index.
    Status,
    /// Add a running node to the cluster: it must be started with replication on (the same
    /// shared key, no bootstrap) and answer at ADDRESS with this NAME.
    Join {
        name: String,
        /// The node's admin URL, e.g. http://10.0.0.4:9080.
        address: String,
        /// Keep it a learner: it serves traffic but never votes.
        #[arg(long)]
        watch_only: bool,
    },
    /// Make a learner a voter.
    Promote { name: String },
    /// Remove a node from the cluster.
    Leave { name: String },
}

impl Command {
    /// The resource kind and action of a resource command.
    pub fn resource(&self) -> Option<(Kind, &Action)> {
        let (kind, cmd) = match self {
            Command::Namespace(c) => (Kind::Namespace, c),
            Command::Service(c) => (Kind::Service, c),
            Command::Route(c) => (Kind::Route, c),
            Command::Module(c) => match &c.action {
                ModuleAction::Resource(a) => return Some((Kind::Module, a)),
                ModuleAction::Run(_) => return None,
            },
            Command::Domain(c) => (Kind::Domain, c),
            Command::Collection(c) => (Kind::Collection, c),
            Command::Document(c) => (Kind::Document, c),
            Command::Secret(c) => (Kind::Secret, c),
            Command::Server(_)
            | Command::Completions { .. }
            | Command::Check { .. }
            | Command::Apply(_)
            | Command::Diff(_)
            | Command::Export(_)
            | Command::Man
            | Command::Schema { .. }
            | Command::Cluster { .. }
            | Command::Build(_)
            | Command::BuildWorker
            | Command::CompileWorker { .. }
            | Command::History(_)
            | Command::Rollback(_)
            | Command::New(_)
            | Command::Deploy(_) => {
                return None;
            }
        };
        Some((kind, &cmd.action))
    }
}

#[derive(Debug, Default, Args)]
pub struct ServerArgs {
    /// YAML config file; without one the server runs on the built-in defaults.
    #[arg(long, short = 'c', env = "DGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Proxy port (overrides proxy.port).
    #[arg(long)]
    pub proxy_port: Option<u16>,
    /// Admin API port (overrides admin.port).
    #[arg(long)]
    pub admin_port: Option<u16>,
    /// Data directory (overrides storage.dir).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The module: `.ts`, `.mts`, `.js` or `.mjs`.
    pub file: PathBuf,
    /// Where to write the component (default: FILE with a `.wasm` extension). `-o` is a
    /// shorthand here, where the global `--output` format means nothing.
    #[arg(long = "out", value_name = "OUT")]
    pub out: Option<PathBuf>,
    /// What to produce: the component, or the JS after type stripping (printed).
    #[arg(long, value_enum, default_value_t = BuildTarget::Wasm)]
    pub target: BuildTarget,
    /// Type-check first with the project's TypeScript (`node_modules/.bin/tsc`).
    #[arg(long)]
    pub check: bool,
    /// Print only warnings and errors.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The resource file (YAML or JSON): lists `namespaces`, `modules`, `services`, `routes`,
    /// `domains`, `collections`, `documents`, `secrets`, each resource as the admin API takes it;
    /// a module by `payload` (source text), `payload_file` (`.ts`/`.js` built here) or
    /// `payload_base64`; a domain's `cert_file`/`key_file`. Paths are relative to the file.
    /// `-f FILE` works too.
    #[arg(long)]
    pub file: PathBuf,
    /// Also delete what the file's namespaces hold and the file does not list (namespaces
    /// themselves are kept).
    #[arg(long)]
    pub prune: bool,
    /// Say what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only these namespaces (repeatable); default: all.
    #[arg(long = "namespace", short = 'n')]
    pub namespaces: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The project's directory (created; it must not hold anything yet); its last part is the
    /// package name.
    pub name: PathBuf,
    #[arg(long, short = 't', value_enum, default_value_t = Template::Header)]
    pub template: Template,
    /// What package.json depends on for @dgate/sdk, instead of the copy this dgate writes to
    /// `.dgate/sdk` (a version range, or a tarball from `npm pack`).
    #[arg(long)]
    pub sdk: Option<String>,
}

/// What a new project starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Template {
    /// requestModifier: request header edits.
    Header,
    /// requestHandler: answers from documents (a URL shortener).
    Handler,
    /// fetchUpstream: an IP-hash load balancer.
    Balancer,
}

/// The kinds that keep versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VersionedKind {
    #[value(alias = "mod")]
    Module,
    #[value(alias = "rt")]
    Route,
}

impl VersionedKind {
    pub fn kind(self) -> Kind {
        match self {
            VersionedKind::Module => Kind::Module,
            VersionedKind::Route => Kind::Route,
        }
    }
}

/// A module or route, by kind, name and namespace.
#[derive(Debug, Args)]
pub struct Versioned {
    #[arg(value_enum)]
    pub kind: VersionedKind,
    pub name: String,
    #[arg(long, short = 'n', default_value = "default")]
    pub namespace: String,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub of: Versioned,
    /// With `-o json`, include module payloads and sources.
    #[arg(long)]
    pub payload: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub of: Versioned,
    /// The version to restore (see `dgate history`); default: the one before the current.
    #[arg(long)]
    pub to: Option<u64>,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The module: `.ts`/`.mts`/`.js`/`.mjs` (built here first) or a component (`.wasm`).
    pub file: PathBuf,
    /// The module's namespace.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// The module's name (default: the file name without its extension).
    #[arg(long)]
    pub name: Option<String>,
    /// Also make this route (in the same namespace) run the module, in the same write.
    #[arg(long)]
    pub route: Option<String>,
    /// Let `--route` replace the module the route runs now.
    #[arg(long, requires = "route")]
    pub replace: bool,
    /// This module's fuel per hook call (default: the gateway's `modules.fuel`).
    #[arg(long)]
    pub fuel: Option<u64>,
    /// This module's memory, e.g. `16MiB` (at most the gateway's `modules.memory`).
    #[arg(long)]
    pub memory: Option<String>,
    /// This module's wall time per hook call, e.g. `20ms`.
    #[arg(long)]
    pub timeout: Option<String>,
    /// This module's outbound fetches per hook call.
    #[arg(long)]
    pub max_fetches: Option<u32>,
    /// How long to wait for each node of the cluster to have the module compiled and ready,
    /// e.g. `2m` (`0s`: do not wait or report).
    #[arg(long, default_value = "60s", value_parser = crate::units::Millis::parse_human)]
    pub wait: crate::units::Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BuildTarget {
    Wasm,
    Js,
}

#[derive(Debug, Args)]
pub struct ModuleCommand {
    #[command(subcommand)]
    pub action: ModuleAction,
}

#[derive(Debug, Subcommand)]
pub enum ModuleAction {
    #[command(flatten)]
    Resource(Action),
    /// Run one hook of a module locally, on the gateway's engine, and print the result as JSON.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A component from `dgate build`, or a `.ts`/`.js` module (built first).
    pub file: PathBuf,
    /// The hook: fetchUpstream, requestModifier, responseModifier, errorHandler, requestHandler.
    #[arg(long)]
    pub hook: String,
    /// The request as JSON: {"method", "path", "headers", "body", "host", "remoteAddress"}.
    #[arg(long)]
    pub request: Option<PathBuf>,
    /// The upstream response for responseModifier: {"status", "headers", "body"}.
    #[arg(long)]
    pub response: Option<PathBuf>,
    /// The error for errorHandler: {"status", "message"}.
    #[arg(long)]
    pub error: Option<PathBuf>,
    /// Routing context: {"namespace", "route", "service", "serviceUrls": [...], "params": {...}}.
    #[arg(long)]
    pub context: Option<PathBuf>,
    /// Documents to start with: {"collection": {"id": data}}; the result shows them after.
    #[arg(long)]
    pub documents: Option<PathBuf>,
    /// Fuel for the call (about one unit per Wasm instruction).
    #[arg(long, default_value_t = 1_000_000_000)]
    pub fuel: u64,
    /// Memory limit, e.g. 64MiB.
    #[arg(long, default_value = "64MiB")]
    pub memory: String,
    /// Wall-time limit, e.g. 50ms.
    #[arg(long, default_value = "50ms")]
    pub timeout: String,
    /// Instead of printing the result, time N calls on a reused instance and N on fresh ones.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub bench: u32,
}

#[derive(Debug, Args)]
pub struct ResourceCommand {
    #[command(subcommand)]
    pub action: Action,
}

/// Fields are `key=value` (string), `key:=json` (any JSON value), `key@=file` (the file's text;
/// for a module's payload, its bytes in base64). A first argument without `=` is the name (the id
/// for documents). List fields (`urls`, `paths`, `methods`, `modules`, `patterns`, `tags`) take
/// `a,b` or a repeated key.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// Create or replace a resource.
    #[command(visible_alias = "mk")]
    Create(FieldArgs),
    /// Show one resource.
    Get(GetArgs),
    /// List resources in a namespace (`namespace=...`, default "default").
    #[command(visible_alias = "ls")]
    List(FieldArgs),
    /// Delete a resource.
    #[command(visible_alias = "rm")]
    Delete(FieldArgs),
}

#[derive(Debug, Args)]
pub struct FieldArgs {
    #[arg(value_name = "NAME | KEY=VALUE | KEY:=JSON | KEY@=FILE")]
    pub fields: Vec<String>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    #[arg(value_name = "NAME | KEY=VALUE")]
    pub fields: Vec<String>,
    /// For a module: print its source (a JS/TS payload, or the files a deployed component was
    /// built from) instead of the resource.
    #[arg(long)]
    pub source: bool,
}

impl Action {
    pub fn fields(&self) -> &[String] {
        match self {
            Action::Create(f) | Action::List(f) | Action::Delete(f) => &f.fields,
            Action::Get(g) => &g.fields,
        }
    }
}

/// Writes the completion script for `shell` to stdout.
/// `dgate man`: the man page (options, and each command with what it does).
pub fn print_man_page() -> std::io::Result<()> {
    clap_mangen::Man::new(command()).render(&mut std::io::stdout().lock())
}

pub fn print_completions(shell: clap_complete::Shell) {
    let mut cmd = command();
    clap_complete::generate(shell, &mut cmd, "dgate", &mut std::io::stdout());
}
