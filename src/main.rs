use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

use dgate::cli::{self, Command, ServerArgs};
use dgate::config::{Config, LogFormat, Overrides};
use dgate::server::Prepared;

fn main() -> ExitCode {
    let cli = cli::parse();
    dgate::tls::install_default_provider();
    if !matches!(cli.command, None | Some(Command::Server(_))) {
        // A command whose output is piped into `head` ends quietly when the reader goes, as
        // command-line tools do, instead of panicking on the write. (The server keeps Rust's
        // ignored SIGPIPE: a client that leaves is an error on its socket, not the end.)
        // SAFETY: setting a signal's disposition to the default, before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match &cli.command {
        None => serve(&ServerArgs::default()),
        Some(Command::Server(args)) => serve(args),
        Some(Command::Check { config, file }) => {
            let config_ok = config.as_deref().map_or(ExitCode::SUCCESS, check);
            match file {
                Some(file) if config_ok == ExitCode::SUCCESS => match cli::check_file(file) {
                    Ok(n) => {
                        println!("{}: ok ({n} resources)", file.display());
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(e.exit_code(), &e.to_string()),
                },
                _ => config_ok,
            }
        }
        Some(Command::Man) => match cli::print_man_page() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(1, &format!("cannot write the man page: {e}")),
        },
        Some(Command::Schema { what }) => {
            println!("{:#}", cli::schema(*what));
            ExitCode::SUCCESS
        }
        Some(Command::Completions { shell }) => {
            cli::print_completions(*shell);
            ExitCode::SUCCESS
        }
        Some(Command::Cluster { action }) => run_client(cli::run_cluster(&cli, action)),
        Some(Command::Build(args)) => match cli::build(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e.exit_code(), &e.to_string()),
        },
        Some(Command::Deploy(args)) => run_client(cli::deploy(&cli, args)),
        Some(Command::Apply(args)) => run_client(cli::apply(&cli, args)),
        Some(Command::Diff(args)) => run_client(cli::diff(&cli, args)),
        Some(Command::Export(args)) => run_client(cli::export(&cli, args)),
        Some(Command::New(args)) => match cli::new_project(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e.exit_code(), &e.to_string()),
        },
        Some(Command::History(args)) => run_client(cli::run_history(&cli, args)),
        Some(Command::Rollback(args)) => run_client(cli::run_rollback(&cli, args)),
        Some(Command::CompileWorker { args }) => {
            ExitCode::from(u8::try_from(dgate::modules::compiler_main(args)).unwrap_or(1))
        }
        Some(Command::BuildWorker) => {
            ExitCode::from(u8::try_from(dgate::build::worker_main()).unwrap_or(1))
        }
        Some(Command::Module(cli::ModuleCommand {
            action: cli::ModuleAction::Run(args),
        })) => run_client(cli::run_module(args)),
        Some(cmd) => match cmd.resource() {
            Some((kind, action)) => run_client(cli::run_resource(&cli, kind, action)),
            None => ExitCode::FAILURE,
        },
    }
}

/// Runs one admin-API client command on a small runtime.
fn run_client(command: impl std::future::Future<Output = Result<(), cli::CliError>>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(1, &format!("cannot start runtime: {e}")),
    };
    match rt.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e.exit_code(), &e.to_string()),
    }
}

fn fail(code: i32, message: &str) -> ExitCode {
    eprintln!("dgate: {message}");
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// `dgate check -c FILE`: what `dgate server -c FILE` would refuse, without starting anything.
fn check(config: &std::path::Path) -> ExitCode {
    match Config::load(Some(config), &Overrides::default()).and_then(Prepared::new) {
        Ok(prepared) => {
            for key in &prepared.config.unused_dgate_keys {
                eprintln!(
                    "{}: warning: DGate key {key} is not used by dgate",
                    config.display()
                );
            }
            println!("{}: ok", config.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(2, &format!("config: {e}")),
    }
}

fn serve(args: &ServerArgs) -> ExitCode {
    let overrides = Overrides {
        proxy_port: args.proxy_port,
        admin_port: args.admin_port,
        data_dir: args.data_dir.clone(),
    };
    let prepared = match Config::load(args.config.as_deref(), &overrides).and_then(Prepared::new) {
        Ok(p) => p,
        Err(e) => return fail(2, &format!("config: {e}")),
    };
    let config = &prepared.config;
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("dgate={}", config.log_level.as_str())));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        // One object per line, the event's fields at the top level and the admin request's
        // (who, from) under "span".
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(1, &format!("cannot start runtime: {e}")),
    };
    let node = config.node_name().to_string();
    let result = rt.block_on(dgate::server::run(prepared, |bound| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "dgate ready: node={node} {bound}");
        let _ = out.flush();
    }));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(1, &format!("{e:#}")),
    }
}
