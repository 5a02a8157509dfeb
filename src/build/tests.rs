use super::ts::line_col;
use super::*;

#[test]
fn typescript_is_stripped_and_imports_kept() {
    let js = to_js(
        "m.ts",
        "import type { Ctx } from 'dgate';\nimport { sha1 } from 'dgate/crypto';\nenum Color { Red, Green }\ninterface X { a: number }\nexport const requestModifier = (ctx: Ctx): void => { const c: Color = Color.Green; ctx.request().headers.set('x', sha1(String(c), 'hex') as string); };\n",
    )
    .unwrap();
    assert!(!js.code.contains("import type"), "{}", js.code);
    assert!(!js.code.contains("interface"), "{}", js.code);
    assert!(js.code.contains("from \"dgate/crypto\""), "{}", js.code);
    assert!(
        js.code.contains("Color[Color[\"Green\"] = 1]") || js.code.contains("Green"),
        "{}",
        js.code
    );
    assert!(!js.code.contains(": Ctx"), "{}", js.code);
}

#[test]
fn syntax_errors_name_file_line_and_column() {
    let err = to_js("bad.ts", "const a = 1;\nconst b = ;\n")
        .err()
        .unwrap();
    let BuildError::Source(m) = err else {
        panic!("{err:?}")
    };
    assert!(m.starts_with("bad.ts:2:11: "), "{m}");
}

#[test]
fn line_col_counts_from_one() {
    assert_eq!(line_col("ab\ncd", 0), (1, 1));
    assert_eq!(line_col("ab\ncd", 4), (2, 2));
}

#[test]
fn only_builtin_modules_can_be_imported() {
    let err = to_js(
        "m.js",
        "import { a } from 'dgate/state';\nimport b from './b.js';\n",
    )
    .err()
    .unwrap();
    let BuildError::Source(m) = err else {
        panic!("{err:?}")
    };
    assert!(m.starts_with("m.js:2:15: cannot import \"./b.js\""), "{m}");
    assert!(!m.contains("dgate/state\":"), "{m}");
}

/// A worker binary that cannot be started (removed by an upgrade in place) falls back to building
/// in this process; errors in the source are still source errors.
#[tokio::test]
async fn a_missing_build_worker_falls_back_to_in_process() {
    let builder = Builder::Worker(
        crate::worker::Worker::new("/nonexistent/dgate".into()),
        super::BuildLimits::new(
            std::time::Duration::from_secs(60),
            512 << 20,
            1,
            std::time::Duration::from_secs(10),
        ),
    );
    let req = |source: &str| BuildRequest {
        file: "m.js".into(),
        source: source.into(),
        libraries: Default::default(),
        library: false,
    };
    let component = builder
        .build(req("export const requestModifier = () => {};"))
        .await
        .unwrap();
    assert!(component.starts_with(b"\0asm"));
    match builder.build(req("export const = ;")).await {
        Err(BuildError::Source(m)) => assert!(m.starts_with("m.js:1:"), "{m}"),
        other => panic!("{other:?}"),
    }
}
