use clap::Parser;
use serde_json::json;

use super::*;

fn no_files(_: &std::path::Path) -> std::io::Result<Vec<u8>> {
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "no such file",
    ))
}

fn parse(kind: Kind, args: &[&str]) -> Result<serde_json::Value, String> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    fields::parse(kind, &args, &no_files)
        .map(serde_json::Value::Object)
        .map_err(|e| e.to_string())
}

#[test]
fn field_syntax() {
    assert_eq!(
        parse(
            Kind::Service,
            &[
                "svc1",
                "namespace=ns",
                "urls=http://a,http://b",
                "retries:=3"
            ]
        )
        .unwrap(),
        json!({"name": "svc1", "namespace": "ns", "urls": ["http://a", "http://b"], "retries": 3})
    );
    assert_eq!(
        parse(
            Kind::Route,
            &[
                "name=r",
                "paths=/a",
                "paths=/b",
                "methods:=[\"GET\"]",
                "stripPath:=true"
            ]
        )
        .unwrap(),
        json!({"name": "r", "paths": ["/a", "/b"], "methods": ["GET"], "stripPath": true})
    );
    assert_eq!(
        parse(Kind::Document, &["d1", "collection=c", "data:={\"a\":1}"]).unwrap(),
        json!({"id": "d1", "collection": "c", "data": {"a": 1}})
    );
    // dgate-cli's command lines: booleans and numbers from `key=value`.
    assert_eq!(
        parse(
            Kind::Route,
            &[
                "name=r",
                "stripPath=true",
                "preserveHost=0",
                "paths=/,/{id}"
            ]
        )
        .unwrap(),
        json!({"name": "r", "stripPath": true, "preserveHost": false, "paths": ["/", "/{id}"]})
    );
    assert_eq!(
        parse(Kind::Service, &["s", "retries=2", "retryTimeout=1.5s"]).unwrap(),
        json!({"name": "s", "retries": 2, "retryTimeout": "1.5s"})
    );
    assert_eq!(
        parse(Kind::Domain, &["d", "priority=-3"]).unwrap()["priority"],
        -3
    );
    // A value may itself contain '='.
    assert_eq!(
        parse(Kind::Secret, &["s", "data=a=b"]).unwrap()["data"],
        "a=b"
    );
}

#[test]
fn field_errors() {
    assert_eq!(
        parse(Kind::Service, &["a", "b"]).unwrap_err(),
        "\"b\" is not a field: write KEY=VALUE, KEY:=JSON or KEY@=FILE"
    );
    assert!(
        parse(Kind::Service, &["retries:=three"])
            .unwrap_err()
            .starts_with("retries:= takes JSON")
    );
    assert_eq!(
        parse(Kind::Route, &["r", "stripPth=true"]).unwrap_err(),
        "a route has no field \"stripPth\" (its fields: name, namespace, methods, modules, paths, preserveHost, service, stripPath, tags)"
    );
    assert_eq!(
        parse(Kind::Route, &["stripPath=yes"]).unwrap_err(),
        "stripPath takes true or false, not \"yes\""
    );
    assert_eq!(
        parse(Kind::Service, &["retries=two"]).unwrap_err(),
        "retries takes a whole number, not \"two\""
    );
    assert_eq!(
        parse(Kind::Service, &["=x"]).unwrap_err(),
        "\"=x\" has no key before '='"
    );
    assert_eq!(
        parse(Kind::Module, &["payload@=missing.js"]).unwrap_err(),
        "cannot read missing.js: no such file"
    );
}

#[test]
fn module_payload_files_are_base64_with_type_from_extension() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.ts");
    std::fs::write(&file, "export {}").unwrap();
    let args = vec!["m".to_string(), format!("payload@={}", file.display())];
    let map = fields::parse(Kind::Module, &args, &|p| std::fs::read(p)).unwrap();
    assert_eq!(map["payload"], "ZXhwb3J0IHt9");
    assert_eq!(map["moduleType"], "typescript");
    // Other @= fields are the file's text.
    let args = vec!["d".to_string(), format!("cert@={}", file.display())];
    let map = fields::parse(Kind::Domain, &args, &|p| std::fs::read(p)).unwrap();
    assert_eq!(map["cert"], "export {}");
}

#[test]
fn tables() {
    let data = json!([
        {"name": "r1", "namespace": "default", "paths": ["/a", "/b"], "methods": ["GET"], "service": "s"},
        {"name": "route-two", "namespace": "default", "paths": ["/c"], "methods": ["*"]},
    ]);
    assert_eq!(
        output::table(Kind::Route, &data),
        "NAME       NAMESPACE  PATHS  METHODS  SERVICE  MODULES\n\
         r1         default    /a,/b  GET      s        -\n\
         route-two  default    /c     *        -        -\n"
    );
}

#[test]
fn command_line_shapes() {
    let cli = Cli::try_parse_from([
        "dgate",
        "svc",
        "mk",
        "s1",
        "urls=http://x",
        "--admin",
        "http://h:1",
    ])
    .unwrap();
    assert_eq!(cli.admin, "http://h:1");
    let (kind, action) = cli.command.as_ref().unwrap().resource().unwrap();
    assert_eq!(kind, Kind::Service);
    assert!(matches!(action, Action::Create(_)));
    assert_eq!(action.fields(), ["s1", "urls=http://x"]);
    for alias in ["ns", "svc", "rt", "mod", "dom", "col", "doc", "sec"] {
        for verb in ["create", "mk", "get", "list", "ls", "delete", "rm"] {
            assert!(
                Cli::try_parse_from(["dgate", alias, verb]).is_ok(),
                "{alias} {verb}"
            );
        }
    }
    let cli = Cli::try_parse_from(["dgate"]).unwrap();
    assert!(cli.command.is_none());
    // dgate-cli's flags: -V verbose, -f follow, -a auth.
    let cli = Cli::try_parse_from(["dgate", "-Vf", "-a", "k", "ns", "create", "name=x"]).unwrap();
    assert!(cli.verbose && cli.follow);
    assert_eq!(cli.auth.as_deref(), Some("k"));
    assert!(
        Cli::try_parse_from(["dgate", "--version"])
            .is_err_and(|e| e.kind() == clap::error::ErrorKind::DisplayVersion)
    );
    assert!(Cli::try_parse_from(["dgate", "server", "--admin-port", "x"]).is_err());
}

/// `-o` after the `build` command is its output file; elsewhere (a resource named "build"
/// included) it stays the output format.
#[test]
fn dash_o_means_the_output_file_only_for_build() {
    use clap::FromArgMatches as _;
    let parse = |args: &[&str]| {
        let args = super::normalize_args(args.iter().map(std::ffi::OsString::from));
        Cli::from_arg_matches(&super::command().try_get_matches_from(args).unwrap()).unwrap()
    };
    let cli = parse(&[
        "dgate",
        "--admin",
        "http://h:1",
        "build",
        "m.ts",
        "-o",
        "x.wasm",
    ]);
    match &cli.command {
        Some(Command::Build(b)) => {
            assert_eq!(b.out.as_deref(), Some(std::path::Path::new("x.wasm")))
        }
        other => panic!("{other:?}"),
    }
    let cli = parse(&["dgate", "svc", "get", "build", "-o", "json"]);
    assert_eq!(cli.output, Output::Json);
    let cli = parse(&["dgate", "-o", "json", "rt", "ls", "namespace=build"]);
    assert_eq!(cli.output, Output::Json);
}

/// Each kind's `create --help` lists its fields from the resource type's schema, the required
/// ones marked, each with its description.
#[test]
fn create_help_lists_each_kinds_fields() {
    let mut cmd = super::command();
    let help = |cmd: &mut clap::Command, kind: Kind| {
        cmd.find_subcommand_mut(kind.as_str())
            .and_then(|r| r.find_subcommand_mut("create"))
            .map(|c| c.render_long_help().to_string())
            .unwrap()
    };
    let route = help(&mut cmd, Kind::Route);
    assert!(
        route.contains("stripPath       Remove the matched path prefix before proxying."),
        "{route}"
    );
    let required = |help: &str| -> Vec<String> {
        let mut r: Vec<String> = help
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("*"))
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect();
        r.sort();
        r
    };
    assert_eq!(required(&route), ["methods", "name", "paths"]);
    // Every kind: exactly the fields its schema has, less those the server sets.
    for kind in Kind::ALL {
        let text = help(&mut cmd, kind);
        let schema = kind.schema();
        let props = schema["properties"].as_object().unwrap();
        for (name, p) in props {
            let listed = text
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name));
            let set_by_server = p["readOnly"] == serde_json::json!(true);
            assert_eq!(listed, !set_by_server, "{kind} {name} in {text}");
        }
        let mut want: Vec<String> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        want.sort();
        assert_eq!(required(&text), want, "{kind}");
    }
}

/// Commands that talk to no gateway neither show the client flags nor take them.
#[test]
fn client_flags_only_where_they_apply() {
    let mut cmd = super::command();
    let server = cmd
        .find_subcommand_mut("server")
        .map(|c| c.render_long_help().to_string())
        .unwrap();
    assert!(server.contains("--config"), "{server}");
    for flag in ["--admin <", "--auth <", "--output", "--verbose", "--follow"] {
        assert!(!server.contains(flag), "{flag} in {server}");
    }
    for args in [
        &["dgate", "server", "--admin", "http://x:1"][..],
        &["dgate", "server", "-o", "json"],
        &["dgate", "server", "-V"],
        &["dgate", "check", "-c", "x.yaml", "--auth", "k"],
    ] {
        let err = super::command()
            .try_get_matches_from(super::normalize_args(
                args.iter().map(std::ffi::OsString::from),
            ))
            .unwrap_err();
        assert!(
            err.to_string().contains("talk to a gateway"),
            "{args:?}: {err}"
        );
    }
    // Where they apply, before or after the command.
    use clap::FromArgMatches as _;
    let parse = |args: &[&str]| {
        let args = super::normalize_args(args.iter().map(std::ffi::OsString::from));
        Cli::from_arg_matches(&super::command().try_get_matches_from(args).unwrap()).unwrap()
    };
    for args in [
        &["dgate", "--admin", "http://h:1", "svc", "ls"][..],
        &["dgate", "svc", "ls", "--admin", "http://h:1"],
    ] {
        assert_eq!(parse(args).admin, "http://h:1");
    }
}
