use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::cluster::Cluster;
use crate::config::ModulesConfig;
use crate::modules::{
    CallInfo, Engine, EngineOptions, Host, HostEnv, HostError, Io, Limits, LogTo, ModuleSet,
    ModuleSource, RouteInfo,
};
use crate::resources::{ChangeCommand, Kind, Resource, ResourceKey};
use crate::storage::Store;

fn res(kind: Kind, v: serde_json::Value) -> Resource {
    Resource::from_json(kind, v.to_string().as_bytes()).unwrap()
}

/// Module hosts whose documents go through `c`, with a one-second fetch timeout.
fn env(c: &Cluster) -> Arc<HostEnv> {
    let config = ModulesConfig {
        fetch_timeout: crate::units::Millis(1000),
        ..ModulesConfig::default()
    };
    HostEnv::new(
        Arc::new(GatewayServices::new(c.clone())),
        &config,
        crate::modules::Egress::new(&Default::default(), Vec::new()),
        LogTo::Tracing,
    )
}

async fn cluster() -> Cluster {
    let c = Cluster::single_node(Store::open_memory().unwrap(), "http://127.0.0.1:9080")
        .await
        .unwrap();
    let schema =
        json!({"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}});
    for r in [
        res(Kind::Namespace, json!({"name": "other"})),
        res(
            Kind::Collection,
            json!({"name": "short_link", "namespace": "default", "schema": schema}),
        ),
        res(
            Kind::Collection,
            json!({"name": "short_link", "namespace": "other", "schema": schema}),
        ),
        res(
            Kind::Document,
            json!({"id": "theirs", "namespace": "other", "collection": "short_link", "data": {"url": "https://other.test/"}}),
        ),
    ] {
        c.write(ChangeCommand::put(r)).await.unwrap();
    }
    c
}

#[tokio::test]
async fn documents_go_through_the_state_machine_and_stay_in_the_namespace() {
    let c = cluster().await;
    let env = env(&c);
    let s = env.host("default", "m");
    let col = || "short_link".to_string();
    s.set_document(col(), "a".into(), r#"{"url":"https://a.test/"}"#.into())
        .await
        .unwrap();
    let got = s.get_document(col(), "a".into()).await.unwrap().unwrap();
    assert_eq!(got.data, r#"{"url":"https://a.test/"}"#);
    // The collection's schema applies, as through the admin API.
    let err = s
        .set_document(col(), "b".into(), r#"{"nourl":1}"#.into())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HostError::Invalid(m) if m.contains("url")),
        "{err:?}"
    );
    let err = s.get_document("nope".into(), "a".into()).await.unwrap_err();
    assert!(matches!(err, HostError::NotFound(_)), "{err:?}");
    // Another namespace's document of the same collection name is invisible.
    assert!(
        s.get_document(col(), "theirs".into())
            .await
            .unwrap()
            .is_none()
    );
    let list = s.list_documents(col(), 10, 0).await.unwrap();
    assert_eq!(
        list.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["a"]
    );
    assert!(s.delete_document(col(), "a".into()).await.unwrap());
    assert!(!s.delete_document(col(), "a".into()).await.unwrap());
    // The other namespace's document is untouched.
    let theirs = env.host("other", "m");
    assert!(
        theirs
            .get_document(col(), "theirs".into())
            .await
            .unwrap()
            .is_some()
    );
    // One cache per namespace.
    s.cache().set("k", b"v".to_vec(), None);
    assert_eq!(
        env.host("default", "n").cache().get("k"),
        Some(b"v".to_vec())
    );
    assert_eq!(theirs.cache().get("k"), None);
}

/// The URL shortener example against the real state: its documents land in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_url_shortener_example_writes_real_documents() {
    let c = cluster().await;
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sdk-ts/examples/url-shortener.ts"
    ))
    .unwrap();
    let component = crate::build::build("url-shortener.ts", &source).unwrap();
    let engine = Engine::new(EngineOptions::default()).unwrap();
    let module = engine.load(&component, Limits::default()).await.unwrap();
    let services: Arc<Host> = env(&c).host("default", "url-shortener");
    let limits = Limits {
        wall: Duration::from_secs(2),
        ..Limits::default()
    };
    let mut instance = module.instantiate(services, limits).await.unwrap();
    let io = |method: &str, uri: &str, params: Vec<(String, String)>| {
        Box::new(Io {
            call: CallInfo {
                route: Arc::new(RouteInfo {
                    namespace: "default".into(),
                    route: "short".into(),
                    ..RouteInfo::default()
                }),
                method: method.parse().unwrap(),
                uri: uri.parse().unwrap(),
                path_params: params,
                ..CallInfo::default()
            },
            ..Io::default()
        })
    };
    let (r, io_out) = instance
        .request_handler(io("POST", "/?url=https://example.com/x", vec![]))
        .await;
    assert_eq!(r.unwrap(), 201);
    let id: serde_json::Value = serde_json::from_slice(&io_out.response_body).unwrap();
    let id = id["id"].as_str().unwrap().to_string();
    let key = ResourceKey {
        kind: Kind::Document,
        namespace: "default".into(),
        collection: Some("short_link".into()),
        name: id.clone(),
    };
    let Some(Resource::Document(doc)) = c.store().get(&key).unwrap() else {
        panic!("no document {id}")
    };
    assert_eq!(doc.data, json!({"url": "https://example.com/x"}));
    let (r, io) = instance
        .request_handler(io("GET", "/x", vec![("id".into(), id)]))
        .await;
    assert_eq!(r.unwrap(), 302);
    assert_eq!(io.response_headers["location"], "https://example.com/x");
}

/// What the proxy compiled for a module goes when the module is no longer served, so a deleted
/// module's idle instances give back their pool slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_drop_modules_no_longer_served() {
    let c = cluster().await;
    let hooks = ModuleSet::new(
        Arc::new(GatewayServices::new(c)),
        None,
        None,
        &ModulesConfig::default(),
        crate::modules::Egress::new(&Default::default(), Vec::new()),
        &prometheus::Registry::new(),
    )
    .unwrap();
    let component =
        crate::build::build("m.js", "export const requestModifier = () => {};").unwrap();
    let src = Arc::new(ModuleSource::new(
        "default",
        "m",
        component,
        Default::default(),
    ));
    let loaded = hooks.get(&src).await.unwrap();
    let lease = loaded.take().await.unwrap();
    loaded.give_back(lease);
    assert_eq!(hooks.loaded_count(), 1);
    hooks.retain(|_, name, hash, _| name == "m" && hash == src.hash);
    assert_eq!(hooks.loaded_count(), 1);
    hooks.retain(|_, _, _, _| false);
    assert_eq!(hooks.loaded_count(), 0);
}

#[tokio::test]
async fn collections_written_by_modules_go_through_the_state_machine() {
    let c = cluster().await;
    let env = env(&c);
    let s = env.host("default", "m");
    s.set_collection(
        r#"{"name": "links", "visibility": "private", "schema": {"type": "object"}}"#.into(),
    )
    .await
    .unwrap();
    let got = s.get_collection("links".into()).await.unwrap().unwrap();
    assert_eq!(got["namespace"], "default");
    assert_eq!(got["visibility"], "private");
    // Replicated as any write: the cluster has it.
    assert!(
        c.get(&ResourceKey::new(Kind::Collection, "default", "links"))
            .unwrap()
            .is_some()
    );
    // Checked as the admin API checks it; another namespace is out of reach.
    let err = s
        .set_collection(r#"{"name": "bad", "schema": 5}"#.into())
        .await
        .unwrap_err();
    assert!(matches!(err, HostError::Invalid(_)), "{err:?}");
    let err = s
        .set_collection(r#"{"name": "x", "namespace": "other"}"#.into())
        .await
        .unwrap_err();
    assert!(matches!(err, HostError::NotAllowed(_)), "{err:?}");
    // A collection with documents is kept; an empty one goes.
    s.set_document(
        "short_link".into(),
        "a".into(),
        r#"{"url":"https://a.test/"}"#.into(),
    )
    .await
    .unwrap();
    let err = s.delete_collection("short_link".into()).await.unwrap_err();
    assert!(matches!(err, HostError::Invalid(_)), "{err:?}");
    assert!(s.delete_collection("links".into()).await.unwrap());
    assert!(!s.delete_collection("links".into()).await.unwrap());
    assert!(s.get_collection("links".into()).await.unwrap().is_none());
}
